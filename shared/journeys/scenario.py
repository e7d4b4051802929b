"""Scenario files: YAML read with line numbers, validated into a model the compiler trusts.

Build-time only (the CLI and the tests); no Lambda imports this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from typing import Any, Literal

import yaml

from shared.events import (
    CATALOGUE,
    CONTACT_INACTIVE,
    DATE_REACHED,
    LIST_JOINED,
    LIST_LEFT,
    SCENARIO_REQUESTED,
    SCHEDULED,
)
from shared.journeys import pacing
from shared.people import scoring
from shared.people.conditions import COUNTERS, LIST_NAME, NAME, PROFILE_FIELDS, ConditionError, check, check_where
from shared.people.moments import WEEKDAYS
from shared.people.topics import DEFAULT_TOPIC, TOPICS

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
DAY_OFFSET = re.compile(r"^([+-]?)(\d+)\s*(d|w)$")
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
ONE_YEAR = 365 * 86400
KNOWN_EVENTS = CATALOGUE


class ScenarioError(ValueError):
    """A scenario problem at a place in a file, with a hint on how to fix it."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path, self.line, self.column, self.message = path, line, column, message


@dataclass(frozen=True)
class Discount:
    """A send step's discount code: the same `code` for everyone, or each contact's own from a loaded `pool`."""

    code: str | None = None
    pool: str | None = None


@dataclass(frozen=True)
class SendEmail:
    id: str
    template: str
    discount: Discount | None = None
    line: int = field(default=0, compare=False, repr=False)  # where the step starts, for validate's messages


@dataclass(frozen=True)
class SendSms:
    id: str
    template: str  # templates/sms/<template>.<locale>.txt


@dataclass(frozen=True)
class NotifyCrm:
    """POSTs a signed notification of this type (a slug such as `qualified`) to the configured CRM."""

    id: str
    type: str


@dataclass(frozen=True)
class Wait:
    seconds: int
    text: str  # as written, e.g. "2d"


@dataclass(frozen=True)
class SetAttribute:
    id: str
    name: str
    value: Any


@dataclass(frozen=True)
class AddScore:
    id: str
    points: int


@dataclass(frozen=True)
class ListChange:
    id: str
    list: str
    add: bool


@dataclass(frozen=True)
class If:
    id: str
    condition: dict[str, Any]
    then: tuple[Step, ...]
    otherwise: tuple[Step, ...]


@dataclass(frozen=True)
class Case:
    condition: dict[str, Any]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Choose:
    """A multi-way branch: the first case whose condition holds, else `otherwise`; one evaluation for all."""

    id: str
    cases: tuple[Case, ...]
    otherwise: tuple[Step, ...]


@dataclass(frozen=True)
class Variant:
    name: str
    percent: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Split:
    id: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class WaitForEvent:
    """Waits until the contact does `event` or `timeout_seconds` pass, whichever comes first."""

    id: str
    event: str
    timeout_seconds: int
    on_event: tuple[Step, ...]
    on_timeout: tuple[Step, ...]


@dataclass(frozen=True)
class WaitUntil:
    """Waits until the next local time of day, on allowed weekdays, in the contact's time zone."""

    id: str
    at: str  # "HH:MM"
    weekdays: tuple[str, ...]  # empty: every day


@dataclass(frozen=True)
class WaitUntilDate:
    """Waits until a day at a local time of day: a date attribute's day (`yearly`: its next anniversary) plus an
    offset in days; with no attribute, the day a date trigger's event names (the leading wait of such scenarios)."""

    id: str
    attribute: str | None
    yearly: bool
    offset_days: int
    at: str  # "HH:MM"


@dataclass(frozen=True)
class Unsubscribe:
    """Withdraws the contact's marketing consent for the channel, with the scenario and step as its source."""

    id: str
    channel: str  # email


@dataclass(frozen=True)
class DateTrigger:
    """A date attribute's yearly anniversary (plus an offset in days) at a local time of day."""

    attribute: str
    at: str
    offset_days: int = 0


@dataclass(frozen=True)
class Exit:
    """Leaves the scenario here (the execution succeeds)."""


Step = (
    SendEmail
    | Choose
    | SendSms
    | NotifyCrm
    | Wait
    | WaitUntil
    | WaitUntilDate
    | SetAttribute
    | AddScore
    | ListChange
    | If
    | Split
    | WaitForEvent
    | Unsubscribe
    | Exit
)
ACTIONS = (
    "send_email",
    "wait",
    "wait_until",
    "wait_for",
    "if",
    "choose",
    "split",
    "set_attribute",
    "add_score",
    "add_to_list",
    "remove_from_list",
    "send_sms",
    "notify_crm",
    "unsubscribe",
    "exit",
)


@dataclass(frozen=True)
class Reference:
    """A list or custom attribute a scenario reads or writes, where it is written (for the cross-file check)."""

    kind: Literal["list", "attribute"]
    name: str
    writes: bool
    line: int
    column: int


@dataclass(frozen=True)
class Scenario:
    id: str
    name: str
    description: str
    category: Literal["marketing", "transactional"]
    trigger_event: str
    entry_consent: Literal["email", "none"]
    steps: tuple[Step, ...]
    source: str
    re_entry: str = "never"  # never | always | after:<seconds>
    topic: str | None = DEFAULT_TOPIC  # what the preference centre turns off (None: transactional)
    when_capped: str = "defer"  # a send held by a cap or quiet hours waits (defer) or is dropped (skip)
    goal_event: str | None = None  # the first of goal_events
    trigger_where: dict[str, Any] | None = None
    references: tuple[Reference, ...] = ()
    entry_cap: int | None = None  # at most this many contacts in the scenario at once
    trigger_date: DateTrigger | None = None  # date triggers: the daily schedule emits date.reached
    inactive_days: int | None = None  # inactivity triggers: the daily schedule emits contact.inactive
    goal_events: tuple[str, ...] = ()
    entry_condition: dict[str, Any] | None = None  # entry.if: checked on the contact when the trigger matches
    goal_condition: dict[str, Any] | None = None  # goal.if: met, the contact leaves (checked on each of its events)


class _Located:
    """A parsed YAML value with the place it came from."""

    def __init__(self, value: Any, line: int, column: int) -> None:
        self.value, self.line, self.column = value, line, column


def _locate(node: yaml.Node, path: str) -> _Located:
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, _Located] = {}
        for key, value in node.value:
            if str(key.value) in mapping:
                raise ScenarioError(
                    path, key.start_mark.line + 1, key.start_mark.column + 1, f"key {key.value!r} is repeated"
                )
            mapping[str(key.value)] = _locate(value, path)
        return _Located(mapping, line, column)
    if isinstance(node, yaml.SequenceNode):
        return _Located([_locate(item, path) for item in node.value], line, column)
    return _Located(yaml.SafeLoader("").construct_object(node), line, column)  # typed: 2d text, 5 int, true bool


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, at: _Located, message: str) -> ScenarioError:
        return ScenarioError(self.path, at.line, at.column, message)

    def mapping(
        self, at: _Located, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, _Located]:
        if not isinstance(at.value, dict):
            raise self.fail(at, f"{what} must be a mapping of keys to values")
        for key, value in at.value.items():
            if key not in allowed:
                raise self.fail(value, f"unknown key {key!r} in {what}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in at.value:
                raise self.fail(at, f"{what} needs the key {key!r}")
        return at.value

    def text(self, at: _Located, what: str) -> str:
        if not isinstance(at.value, str) or not at.value.strip():
            raise self.fail(at, f"{what} must be a non-empty text")
        return at.value.strip()

    def choice(self, at: _Located, what: str, choices: tuple[str, ...]) -> str:
        value = self.text(at, what)
        if value not in choices:
            raise self.fail(at, f"{what} must be one of {', '.join(choices)}, not {value!r}")
        return value


def parse_duration(text: str) -> int | None:
    match = DURATION.match(text.strip())
    if not match:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _shown(path: Path) -> str:
    """The path as the user would type it: relative to where they stand when it is below."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _compose(path: Path, name: str) -> yaml.Node | None:
    """The file's YAML tree, with places; a YAML mistake is a ScenarioError at its line and column."""
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError(name, line, column, f"not valid YAML: {error.problem}") from None
    return node


def load(path: Path, templates_dir: Path | None = None) -> Scenario:
    """Reads and validates one scenario file; ScenarioError names file, line and column."""
    name = _shown(path)
    node = _compose(path, name)
    if node is None:
        raise ScenarioError(name, 1, 1, "the file is empty; a scenario needs id, name, trigger and steps")
    reader = _Reader(name)
    root = reader.mapping(
        _locate(node, name),
        "the scenario",
        ("id", "name", "description", "category", "topic", "when_capped", "trigger", "entry", "goal", "steps"),
        ("id", "name", "trigger", "steps"),
    )
    scenario_id = reader.text(root["id"], "id")
    if not SLUG.match(scenario_id):
        raise reader.fail(root["id"], "id must be lower-case letters, digits and dashes (at most 40)")
    if scenario_id != path.stem:
        raise reader.fail(root["id"], f"id {scenario_id!r} must match the file name {path.stem!r}")
    category = (
        reader.choice(root["category"], "category", ("marketing", "transactional"))
        if "category" in root
        else "marketing"
    )
    topic: str | None = DEFAULT_TOPIC if category == "marketing" else None
    if "topic" in root:
        if category != "marketing":
            raise reader.fail(root["topic"], "a transactional scenario has no topic: no preference turns it off")
        topic = reader.choice(root["topic"], "topic", TOPICS)
    when_capped = "defer"
    if "when_capped" in root:
        if category != "marketing":
            raise reader.fail(root["when_capped"], "a transactional scenario is never capped nor held back")
        when_capped = reader.choice(root["when_capped"], "when_capped", pacing.WHEN_CAPPED)
    trigger = reader.mapping(
        root["trigger"], "trigger", ("event", "where", "api", "date", "time", "offset", "inactive"), ()
    )
    where: dict[str, Any] | None
    date_trigger: DateTrigger | None = None
    inactive_days: int | None = None
    if sum(1 for kind in ("event", "api", "date", "inactive") if kind in trigger) != 1:
        raise reader.fail(
            root["trigger"],
            "a trigger is one of `event: ...`, `api: true` (started through the API), "
            '`date: birthday` with `time: "10:00"`, or `inactive: 90d`',
        )
    for extra in ("time", "offset"):
        if extra in trigger and "date" not in trigger:
            raise reader.fail(trigger[extra], f"`{extra}` goes with a date trigger (`date: birthday`)")
    if "where" in trigger and "event" not in trigger:
        raise reader.fail(trigger["where"], "`where` filters an event trigger's properties")
    if "date" in trigger:
        attribute = _date_attribute(reader, trigger["date"], "trigger.date")
        if "time" not in trigger:
            raise reader.fail(root["trigger"], 'a date trigger needs `time`, e.g. time: "10:00" (local time)')
        at = _time_of_day(reader, trigger["time"])
        offset = _day_offset(reader, trigger["offset"]) if "offset" in trigger else 0
        date_trigger = DateTrigger(attribute, at, offset)
        event, where = DATE_REACHED, {"attribute": attribute, "offset_days": offset, "time": at}
    elif "inactive" in trigger:
        text = str(trigger["inactive"].value)
        seconds = parse_duration(text)
        if seconds is None or seconds <= 0 or seconds % 86400:
            raise reader.fail(trigger["inactive"], f"inactive {text!r}: write a number of days or weeks, e.g. 90d")
        inactive_days = seconds // 86400
        event, where = CONTACT_INACTIVE, {"days": inactive_days}
    elif "api" in trigger:
        if trigger["api"].value is not True or "where" in trigger:
            raise reader.fail(trigger["api"], "write `api: true`, without `where`")
        event, where = SCENARIO_REQUESTED, {"scenario": scenario_id}
    else:
        event = reader.text(trigger["event"], "trigger.event")
        if event not in KNOWN_EVENTS:
            raise reader.fail(trigger["event"], f"unknown event {event!r}; known events: {', '.join(KNOWN_EVENTS)}")
        if event in SCHEDULED:
            raise reader.fail(
                trigger["event"],
                f'{event} comes from the daily schedule: write `date: birthday` with `time: "10:00"`, '
                "or `inactive: 90d`",
            )
        where = _plain(trigger["where"]) if "where" in trigger else None
    if where is not None and "event" in trigger:
        try:
            check_where(where, "trigger.where")
        except ConditionError as error:
            raise reader.fail(trigger["where"], str(error)) from None
    entry_consent = "email" if category == "marketing" else "none"
    # A date comes back every year and a silence can follow each re-engagement: both come again by default.
    re_entry = "always" if date_trigger is not None or inactive_days is not None else "never"
    entry_cap = None
    if "entry" in root:
        entry = reader.mapping(root["entry"], "entry", ("consent", "re_entry", "cap", "if"), ())
        if "consent" in entry:
            entry_consent = reader.choice(entry["consent"], "entry.consent", ("email", "none"))
        if "re_entry" in entry:
            re_entry = _re_entry(reader, entry["re_entry"])
        if "cap" in entry:
            entry_cap = entry["cap"].value
            if isinstance(entry_cap, bool) or not isinstance(entry_cap, int) or entry_cap <= 0:
                raise reader.fail(
                    entry["cap"], "entry.cap is how many contacts may be in the scenario at once: a whole number > 0"
                )
    entry_condition = None
    if "entry" in root and "if" in root["entry"].value:
        entry_condition = _entry_or_goal_condition(reader, root["entry"].value["if"], "entry.if")
    goal_events: list[str] = []
    goal_condition = None
    if "goal" in root:
        goal = reader.mapping(root["goal"], "goal", ("event", "if"), ())
        if not goal:
            raise reader.fail(root["goal"], "a goal is `event: ...` (or a list of events), `if: CONDITION`, or both")
        if "if" in goal:
            goal_condition = _entry_or_goal_condition(reader, goal["if"], "goal.if")
        listed: list[_Located] = []
        if "event" in goal:
            listed = goal["event"].value if isinstance(goal["event"].value, list) else [goal["event"]]
            if not listed:
                raise reader.fail(goal["event"], "goal.event is an event, or a list of events (any of them)")
        for item in listed:
            goal_event = reader.text(item, "goal.event")
            if goal_event not in KNOWN_EVENTS:
                raise reader.fail(item, f"unknown event {goal_event!r}; known events: {', '.join(KNOWN_EVENTS)}")
            if goal_event == event:
                raise reader.fail(item, "the goal is the trigger itself: every contact would leave at once")
            goal_events.append(goal_event)
    step_reader = _StepReader(reader, templates_dir)
    # A date trigger's executions first wait up to a day for the local moment.
    steps = step_reader.steps(root["steps"], "steps", 86400 if date_trigger is not None else 0)[0]
    step_reader.check_message_references()
    if event in (LIST_JOINED, LIST_LEFT) and "where" in trigger:
        step_reader.reads_in(trigger["where"], ("list",))
    if date_trigger is not None:
        step_reader.refer("attribute", trigger["date"], writes=False)
    if entry_condition is not None:
        step_reader.reads_condition(root["entry"].value["if"])
    if goal_condition is not None:
        step_reader.reads_condition(root["goal"].value["if"])
    return Scenario(
        id=scenario_id,
        name=reader.text(root["name"], "name"),
        description=reader.text(root["description"], "description") if "description" in root else "",
        category=category,  # type: ignore[arg-type]
        topic=topic,
        when_capped=when_capped,
        trigger_event=event,
        entry_consent=entry_consent,  # type: ignore[arg-type]
        steps=steps,
        source=path.name,
        re_entry=re_entry,
        goal_event=goal_events[0] if goal_events else None,
        trigger_where=where,
        references=tuple(step_reader.references),
        entry_cap=entry_cap,
        trigger_date=date_trigger,
        inactive_days=inactive_days,
        goal_events=tuple(goal_events),
        entry_condition=entry_condition,
        goal_condition=goal_condition,
    )


def _entry_or_goal_condition(reader: _Reader, at: _Located, what: str) -> dict[str, Any]:
    """A condition on the contact outside the steps (no message of the scenario to have opened)."""
    try:
        condition: dict[str, Any] = _durations(_plain(at))
        check(condition, what)
        _events_known(condition)
    except ConditionError as error:
        raise reader.fail(at, str(error)) from None
    for _, test in _keyed(at, ("opened", "clicked")):
        raise reader.fail(test, f"{what}: opened and clicked read a message of the execution; there is none here")
    return condition


def _date_attribute(reader: _Reader, at: _Located, what: str) -> str:
    name = reader.text(at, what)
    if not NAME.match(name) or name in PROFILE_FIELDS or name in COUNTERS:
        raise reader.fail(
            at, f"{what} {name!r}: name a custom attribute holding a date (YYYY-MM-DD), such as birthday, or created_at"
        )
    return name


def _time_of_day(reader: _Reader, at: _Located) -> str:
    value = at.value
    if isinstance(value, int):
        raise reader.fail(at, 'write the time in quotes, e.g. time: "10:00" (YAML reads 10:00 as a number)')
    if not isinstance(value, str) or not TIME_OF_DAY.match(value):
        raise reader.fail(at, f'time {value!r} is not a time of day such as "10:00"')
    return value


def _day_offset(reader: _Reader, at: _Located) -> int:
    text = str(at.value).strip()
    match = DAY_OFFSET.match(text)
    if not match:
        raise reader.fail(at, f"offset {text!r} is not a number of days: write e.g. -7d (a week before), 1d, 2w")
    days = int(match.group(2)) * (7 if match.group(3) == "w" else 1)
    if days >= 365:
        raise reader.fail(at, f"offset {text!r}: an offset is under a year")
    return -days if match.group(1) == "-" else days


DISCOUNT_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as shared.messages.discounts.CODE, which loads the pools


def _discount(reader: _Reader, at: _Located) -> Discount:
    """`discount: {code: BIENVENUE10}` (everyone the same) or `discount: {pool: welcome-10}` (a code each)."""
    spec = reader.mapping(at, "discount", ("code", "pool"), ())
    if len(spec) != 1:
        raise reader.fail(
            at, "discount is `{code: BIENVENUE10}` (the same code for everyone) or `{pool: welcome-10}` (a code each)"
        )
    if "code" in spec:
        code = spec["code"].value
        if not isinstance(code, str) or not DISCOUNT_CODE.match(code):
            raise reader.fail(spec["code"], f"discount code {code!r}: letters, digits, _ and -, at most 64")
        return Discount(code=code)
    pool = spec["pool"].value
    if not isinstance(pool, str) or not SLUG.match(pool):
        raise reader.fail(spec["pool"], f"discount pool {pool!r}: lower-case letters, digits and dashes, at most 40")
    return Discount(pool=pool)


def _re_entry(reader: _Reader, at: _Located) -> str:
    text = reader.text(at, "entry.re_entry")
    if text in ("never", "always"):
        return text
    seconds = parse_duration(text.removeprefix("after").strip()) if text.startswith("after ") else None
    if seconds is None or seconds <= 0:
        raise reader.fail(at, f"re_entry {text!r}: write never, always, or after a duration such as `after 7d`")
    return f"after:{seconds}"


def _plain(at: _Located) -> Any:
    if isinstance(at.value, dict):
        return {key: _plain(value) for key, value in at.value.items()}
    if isinstance(at.value, list):
        return [_plain(item) for item in at.value]
    return at.value


class _StepReader:
    """Reads a list of steps, recursively through branches, checking ids, templates, waits and reachability."""

    def __init__(self, reader: _Reader, templates_dir: Path | None) -> None:
        self.reader = reader
        self.templates_dir = templates_dir
        self.seen: set[str] = set()
        self.references: list[Reference] = []
        self.kinds: dict[str, str] = {}  # step id -> its kind (send_email, if, ...)
        self.conditions: list[_Located] = []  # every `if`, for the references checked once all steps are known

    def refer(self, kind: Literal["list", "attribute"], at: _Located, writes: bool) -> None:
        name = at.value
        if isinstance(name, str) and (kind == "list" or name not in (*PROFILE_FIELDS, *COUNTERS, "created_at")):
            self.references.append(Reference(kind, name, writes, at.line, at.column))

    def condition(self, at: _Located, what: str) -> dict[str, Any]:
        """A branch's condition, checked, with the lists, attributes and messages it reads recorded."""
        try:
            condition: dict[str, Any] = _durations(_plain(at))
            check(condition, what)
            _events_known(condition)
        except ConditionError as error:
            raise self.reader.fail(at, str(error)) from None
        self.reads_condition(at)
        self.conditions.append(at)
        return condition

    def reads_condition(self, at: _Located) -> None:
        """The lists and custom attributes a condition reads, for the cross-file reference check."""
        self.reads_in(at, ("in_list", "not_in_list", "attribute"))
        for _, test in _keyed(at, ("age",)):  # age reads the custom attribute birthday
            self.refer("attribute", _Located("birthday", test.line, test.column), writes=False)

    def reads_in(self, at: _Located, keys: tuple[str, ...]) -> None:
        """Every list (or, with `attribute`, every custom attribute) a condition or filter names, with its place."""
        if isinstance(at.value, list):
            for item in at.value:
                self.reads_in(item, keys)
        elif isinstance(at.value, dict):
            for key, value in at.value.items():
                if key in keys and isinstance(value.value, dict):  # a trigger filter: {list: {equals|in: ...}}
                    for test, expected in value.value.items():
                        for item in expected.value if test == "in" and isinstance(expected.value, list) else [expected]:
                            self.refer("list", item, writes=False)
                elif key in keys:
                    self.refer("attribute" if key == "attribute" else "list", value, writes=False)
                else:
                    self.reads_in(value, keys)

    def steps(self, at: _Located, what: str, elapsed: int = 0) -> tuple[tuple[Step, ...], int]:
        """The steps, and the time waited by the end of the longest path through them."""
        reader = self.reader
        if not isinstance(at.value, list) or not at.value:
            raise reader.fail(at, f"{what} must be a non-empty list")
        steps: list[Step] = []
        for item in at.value:
            if steps and isinstance(steps[-1], Exit):
                raise reader.fail(item, "this step can never run: the step before it exits the scenario")
            step, elapsed = self.step(item, elapsed)
            steps.append(step)
        return tuple(steps), elapsed

    def _id(self, at: _Located) -> str:
        step_id = self.reader.text(at, "step id")
        if not SLUG.match(step_id):
            raise self.reader.fail(at, "a step id is lower-case letters, digits and dashes")
        if step_id in self.seen:
            raise self.reader.fail(at, f"step id {step_id!r} is used twice; step ids must be unique")
        self.seen.add(step_id)
        return step_id

    def check_message_references(self) -> None:
        """`opened: ID` / `clicked: ID` name a send_email step of this scenario (anywhere in it)."""
        sends = sorted(step_id for step_id, kind in self.kinds.items() if kind == "send_email")
        for at in self.conditions:
            for kind, ref in _keyed(at, ("opened", "clicked")):
                if ref.value not in self.kinds:
                    raise self.reader.fail(
                        ref,
                        f"{kind}: no step {ref.value!r} in this scenario; send steps: {', '.join(sends) or 'none'}",
                    )
                if self.kinds[ref.value] != "send_email":
                    raise self.reader.fail(
                        ref,
                        f"{kind}: step {ref.value!r} is a {self.kinds[ref.value]} step; only what a send_email "
                        f"step sent is {kind} (send steps: {', '.join(sends) or 'none'})",
                    )

    def _send(
        self, item: _Located, kind: str, folder: str, suffix: str, extra: tuple[str, ...] = ()
    ) -> tuple[str, str]:
        """A send step's id and template, the template checked for in templates/<folder>/."""
        fields = self.reader.mapping(item, f"a {kind} step", ("id", kind, *extra), ("id", kind))
        step_id = self._id(fields["id"])
        template = self.reader.text(fields[kind], kind)
        if self.templates_dir is not None and not any((self.templates_dir / folder).glob(f"{template}.*.{suffix}")):
            what = "SMS" if folder == "sms" else folder
            expected = f"templates/{folder}/{template}.<locale>.{suffix}"
            raise self.reader.fail(fields[kind], f"no {what} template {template!r}: expected {expected}")
        return step_id, template

    def step(self, item: _Located, elapsed: int) -> tuple[Step, int]:
        reader = self.reader
        kinds = [key for key in ACTIONS if isinstance(item.value, dict) and key in item.value]
        if len(kinds) != 1:
            raise reader.fail(item, f"each step is a mapping with one of: {', '.join(ACTIONS)}")
        kind = kinds[0]
        if isinstance(item.value, dict) and "id" in item.value and isinstance(item.value["id"].value, str):
            self.kinds.setdefault(item.value["id"].value.strip(), kind)
        if kind == "wait":
            fields = reader.mapping(item, "a wait step", ("wait",), ("wait",))
            text = str(fields["wait"].value)
            seconds = parse_duration(text)
            if seconds is None or seconds <= 0:
                raise reader.fail(fields["wait"], f"wait {text!r} is not a duration; write e.g. 90s, 30m, 1h, 2d, 1w")
            if elapsed + seconds >= ONE_YEAR:
                raise reader.fail(
                    fields["wait"], "the waits add up to a year or more; Step Functions ends executions at one year"
                )
            return Wait(seconds=seconds, text=text), elapsed + seconds
        if kind == "wait_until":
            fields = reader.mapping(item, "a wait_until step", ("id", "wait_until"), ("id", "wait_until"))
            step_id = self._id(fields["id"])
            spec = reader.mapping(
                fields["wait_until"], "wait_until", ("time", "weekdays", "date", "anniversary", "offset"), ("time",)
            )
            at = _time_of_day(reader, spec["time"])
            if "date" in spec or "anniversary" in spec:
                if "date" in spec and "anniversary" in spec:
                    raise reader.fail(fields["wait_until"], "wait_until takes `date` or `anniversary`, not both")
                if "weekdays" in spec:
                    raise reader.fail(spec["weekdays"], "weekdays do not go with a date: the date is the day")
                yearly = "anniversary" in spec
                attribute = _date_attribute(reader, spec["anniversary" if yearly else "date"], "wait_until date")
                offset = _day_offset(reader, spec["offset"]) if "offset" in spec else 0
                self.refer("attribute", spec["anniversary" if yearly else "date"], writes=False)
                # How long is known only at run time; the plan refuses a moment past the execution's year.
                return WaitUntilDate(step_id, attribute, yearly, offset, at), elapsed
            if "offset" in spec:
                raise reader.fail(spec["offset"], "offset goes with `date` or `anniversary`")
            days: tuple[str, ...] = ()
            if "weekdays" in spec:
                raw = _plain(spec["weekdays"])
                if not isinstance(raw, list) or not raw or any(day not in WEEKDAYS for day in raw):
                    raise reader.fail(spec["weekdays"], f"weekdays is a list of {', '.join(WEEKDAYS)}")
                days = tuple(day for day in WEEKDAYS if day in raw)
            # At most a week: counted as such against the one-year limit.
            return WaitUntil(step_id, at, days), elapsed + 7 * 86400
        if kind == "wait_for":
            fields = reader.mapping(
                item, "a wait_for step", ("id", "wait_for", "on_event", "on_timeout"), ("id", "wait_for")
            )
            step_id = self._id(fields["id"])
            spec = reader.mapping(fields["wait_for"], "wait_for", ("event", "timeout"), ("event", "timeout"))
            awaited = reader.text(spec["event"], "wait_for.event")
            if awaited not in KNOWN_EVENTS:
                raise reader.fail(spec["event"], f"unknown event {awaited!r}; known events: {', '.join(KNOWN_EVENTS)}")
            text = str(spec["timeout"].value)
            timeout = parse_duration(text)
            if timeout is None or timeout <= 0:
                raise reader.fail(spec["timeout"], f"timeout {text!r} is not a duration; write e.g. 1h, 2d")
            if elapsed + timeout >= ONE_YEAR:
                raise reader.fail(spec["timeout"], "the waits add up to a year or more")
            if "on_event" not in fields and "on_timeout" not in fields:
                raise reader.fail(item, "wait_for needs on_event, on_timeout or both: what happens next?")
            on_event, after_event = (
                self.steps(fields["on_event"], "on_event", elapsed + timeout) if "on_event" in fields else ((), 0)
            )
            on_timeout, after_timeout = (
                self.steps(fields["on_timeout"], "on_timeout", elapsed + timeout) if "on_timeout" in fields else ((), 0)
            )
            step = WaitForEvent(step_id, awaited, timeout, on_event, on_timeout)
            return step, max(elapsed + timeout, after_event, after_timeout)
        if kind == "exit":
            fields = reader.mapping(item, "an exit step", ("exit",), ("exit",))
            if fields["exit"].value is not True:
                raise reader.fail(fields["exit"], "write `exit: true` to leave the scenario here")
            return Exit(), elapsed
        if kind == "send_email":
            step_id, template = self._send(item, kind, "email", "html", ("discount",))
            discount = _discount(reader, item.value["discount"]) if "discount" in item.value else None
            return SendEmail(id=step_id, template=template, discount=discount, line=item.line), elapsed
        if kind == "send_sms":
            step_id, template = self._send(item, kind, "sms", "txt")
            return SendSms(id=step_id, template=template), elapsed
        if kind == "notify_crm":
            fields = reader.mapping(item, "a notify_crm step", ("id", "notify_crm"), ("id", "notify_crm"))
            step_id = self._id(fields["id"])
            value = fields["notify_crm"].value
            if not isinstance(value, str) or not SLUG.match(value):
                raise reader.fail(
                    fields["notify_crm"],
                    "notify_crm takes the notification type: lower-case letters, digits and dashes, e.g. qualified",
                )
            return NotifyCrm(id=step_id, type=value), elapsed
        if kind == "set_attribute":
            fields = reader.mapping(item, "a set_attribute step", ("id", "set_attribute"), ("id", "set_attribute"))
            step_id = self._id(fields["id"])
            spec = reader.mapping(fields["set_attribute"], "set_attribute", ("name", "value"), ("name", "value"))
            name = reader.text(spec["name"], "set_attribute.name")
            if not NAME.match(name) or name in PROFILE_FIELDS or name in COUNTERS:
                raise reader.fail(spec["name"], "a custom attribute name is like plan_type (not a profile field)")
            self.refer("attribute", spec["name"], writes=True)
            return SetAttribute(id=step_id, name=name, value=_plain(spec["value"])), elapsed
        if kind == "add_score":
            fields = reader.mapping(item, "an add_score step", ("id", "add_score"), ("id", "add_score"))
            step_id = self._id(fields["id"])
            points = fields["add_score"].value
            if isinstance(points, bool) or not isinstance(points, int) or points == 0:
                raise reader.fail(fields["add_score"], "add_score takes a whole number of points, e.g. 10 or -5")
            return AddScore(step_id, points), elapsed
        if kind == "unsubscribe":
            fields = reader.mapping(item, "an unsubscribe step", ("id", "unsubscribe"), ("id", "unsubscribe"))
            step_id = self._id(fields["id"])
            channel = reader.choice(fields["unsubscribe"], "unsubscribe", ("email",))
            return Unsubscribe(step_id, channel), elapsed
        if kind in ("add_to_list", "remove_from_list"):
            fields = reader.mapping(item, f"an {kind} step", ("id", kind), ("id", kind))
            step_id = self._id(fields["id"])
            list_name = reader.text(fields[kind], kind)
            if not LIST_NAME.match(list_name):
                raise reader.fail(fields[kind], "a list name is lower-case letters, digits and dashes")
            self.refer("list", fields[kind], writes=kind == "add_to_list")
            return ListChange(id=step_id, list=list_name, add=kind == "add_to_list"), elapsed
        if kind == "if":
            fields = reader.mapping(item, "an if step", ("id", "if", "then", "else"), ("id", "if", "then"))
            step_id = self._id(fields["id"])
            condition = self.condition(fields["if"], "if")
            then, after_then = self.steps(fields["then"], "then", elapsed)
            otherwise, after_else = self.steps(fields["else"], "else", elapsed) if "else" in fields else ((), elapsed)
            return If(id=step_id, condition=condition, then=then, otherwise=otherwise), max(after_then, after_else)
        if kind == "choose":
            fields = reader.mapping(item, "a choose step", ("id", "choose", "else"), ("id", "choose"))
            step_id = self._id(fields["id"])
            if not isinstance(fields["choose"].value, list) or not fields["choose"].value:
                raise reader.fail(fields["choose"], "choose is a list of cases, each {if: CONDITION, then: [...]}")
            cases, ends = [], []
            for index, case_at in enumerate(fields["choose"].value):
                case = reader.mapping(case_at, f"case {index + 1} of choose", ("if", "then"), ("if", "then"))
                condition = self.condition(case["if"], f"choose[{index}].if")
                steps, end = self.steps(case["then"], "then", elapsed)
                cases.append(Case(condition, steps))
                ends.append(end)
            otherwise, after_else = self.steps(fields["else"], "else", elapsed) if "else" in fields else ((), elapsed)
            return Choose(step_id, tuple(cases), otherwise), max([*ends, after_else])
        fields = reader.mapping(item, "a split step", ("id", "split"), ("id", "split"))
        step_id = self._id(fields["id"])
        if not isinstance(fields["split"].value, dict) or len(fields["split"].value) < 2:
            raise reader.fail(fields["split"], "split maps two or more variant names to {percent, steps}")
        variants = []
        ends = []
        for variant_name, spec_at in fields["split"].value.items():
            if not SLUG.match(variant_name):
                raise reader.fail(spec_at, f"variant name {variant_name!r}: lower-case letters, digits and dashes")
            spec = reader.mapping(spec_at, f"variant {variant_name}", ("percent", "steps"), ("percent", "steps"))
            percent = spec["percent"].value
            if not isinstance(percent, int) or isinstance(percent, bool) or not 0 < percent < 100:
                raise reader.fail(spec["percent"], "percent is a whole number between 1 and 99")
            steps, end = self.steps(spec["steps"], "steps", elapsed)
            variants.append(Variant(variant_name, percent, steps))
            ends.append(end)
        if sum(v.percent for v in variants) != 100:
            raise reader.fail(fields["split"], f"the percents add up to {sum(v.percent for v in variants)}, not 100")
        return Split(id=step_id, variants=tuple(variants)), max(ends)


def _durations(condition: Any) -> Any:
    """Behaviour conditions say `within: 180d`; the compiled condition carries seconds."""
    if isinstance(condition, list):
        return [_durations(part) for part in condition]
    if not isinstance(condition, dict):
        return condition
    converted = {key: _durations(value) for key, value in condition.items()}
    if "within" in converted and isinstance(converted["within"], str):
        seconds = parse_duration(converted["within"])
        if seconds is None or seconds <= 0:
            raise ConditionError(f"within {converted['within']!r} is not a duration such as 30d")
        converted["within"] = seconds
    return converted


def _events_known(condition: Any) -> None:
    if isinstance(condition, list):
        for part in condition:
            _events_known(part)
    elif isinstance(condition, dict):
        if "event" in condition and condition["event"] not in KNOWN_EVENTS:
            raise ConditionError(f"unknown event {condition['event']!r}; known events: {', '.join(KNOWN_EVENTS)}")
        for value in condition.values():
            _events_known(value)


DECLARATIONS = "declarations.yaml"
SENDING = "sending.yaml"
SCORING = "scoring.yaml"


@dataclass(frozen=True)
class Declarations:
    """Lists and custom attributes filled outside the scenarios (sources, imports, the admin API)."""

    lists: frozenset[str]
    attributes: frozenset[str]


def load_declarations(path: Path) -> Declarations:
    """Reads scenarios/declarations.yaml (absent: nothing declared); mistakes name file, line and column."""
    if not path.exists():
        return Declarations(frozenset(), frozenset())
    name = _shown(path)
    node = _compose(path, name)
    if node is None:
        return Declarations(frozenset(), frozenset())
    reader = _Reader(name)
    root = reader.mapping(_locate(node, name), "the declarations", ("lists", "attributes"), ())
    found: dict[str, frozenset[str]] = {}
    for section, pattern in (("lists", LIST_NAME), ("attributes", NAME)):
        at = root.get(section)
        if at is None or at.value is None:
            found[section] = frozenset()
            continue
        entries = reader.mapping(at, section, tuple(at.value) if isinstance(at.value, dict) else (), ())
        for key, value in entries.items():
            if not pattern.match(key):
                raise reader.fail(value, f"{key!r} is not a {section[:-1]} name")
            if not isinstance(value.value, str) or not value.value.strip():
                raise reader.fail(value, f"say what {key!r} holds and who fills it, in a sentence")
        found[section] = frozenset(entries)
    return Declarations(found["lists"], found["attributes"])


def load_sending(path: Path) -> pacing.Policy:
    """Reads scenarios/sending.yaml, the deployment's sending habits (absent: no caps nor quiet hours, the French
    SMS hours only); mistakes name file, line and column."""
    if not path.exists():
        return pacing.Policy()
    name = _shown(path)
    node = _compose(path, name)
    if node is None:
        return pacing.Policy()
    reader = _Reader(name)
    root = reader.mapping(_locate(node, name), "the sending habits", ("caps", "quiet_hours", "french_sms_hours"), ())
    caps: list[pacing.Cap] = []
    listed = root.get("caps")
    if listed is not None and not isinstance(listed.value, list):
        raise reader.fail(listed, "caps is a list of `{channel: email, max: 2, per: 1d}` (topic optional)")
    for item in listed.value if listed is not None else ():
        cap = reader.mapping(item, "a cap", ("channel", "topic", "max", "per"), ("channel", "max", "per"))
        channel = reader.choice(cap["channel"], "channel", pacing.CHANNELS)
        topic = reader.choice(cap["topic"], "topic", TOPICS) if "topic" in cap else None
        most = cap["max"].value
        if isinstance(most, bool) or not isinstance(most, int) or most <= 0:
            raise reader.fail(cap["max"], "max is how many messages the window allows: a whole number > 0")
        seconds = parse_duration(str(cap["per"].value))
        if seconds is None or seconds <= 0 or seconds > pacing.KEPT.total_seconds():
            raise reader.fail(cap["per"], f"per {cap['per'].value!r}: a window such as 1d, 7d or 12h, at most 31d")
        caps.append(pacing.Cap(channel, most, seconds, topic))
    quiet: dict[str, pacing.Hours] = {}
    if "quiet_hours" in root:
        section = root["quiet_hours"]
        spans = reader.mapping(section, "quiet_hours", pacing.CHANNELS, ())
        for channel, at in spans.items():
            quiet[channel] = _span(reader, at, f"quiet_hours.{channel}")
    french = _span(reader, root["french_sms_hours"], "french_sms_hours") if "french_sms_hours" in root else None
    if french is not None and french.end < french.start:
        raise reader.fail(root["french_sms_hours"], "french_sms_hours is a span within the day: from before until")
    return pacing.Policy(tuple(caps), quiet, french or pacing.FRENCH_SMS_HOURS)


MAX_POINTS = 1000  # a rule's points, either way: more is surely a typo
DECAY_UNTIL = 365  # days of silence: the decay repeats `every` N days until then


def load_scoring(path: Path) -> scoring.Config:
    """Reads scenarios/scoring.yaml, the lead-scoring rules and lifecycle thresholds (absent: no scoring, no
    stages); mistakes name file, line and column."""
    if not path.exists():
        return scoring.Config()
    name = _shown(path)
    node = _compose(path, name)
    if node is None:
        return scoring.Config()
    reader = _Reader(name)
    root = reader.mapping(_locate(node, name), "the scoring", ("rules", "decay", "stages"), ())
    rules: list[scoring.Rule] = []
    listed = root.get("rules")
    if listed is not None and not isinstance(listed.value, list):
        raise reader.fail(listed, "rules is a list of `{id: email-opened, event: email.opened, points: 2}`")
    for item in listed.value if listed is not None else ():
        rules.append(_scoring_rule(reader, item, {rule.id for rule in rules}))
    decay = None
    if "decay" in root:
        spec = reader.mapping(root["decay"], "decay", ("after", "every", "percent"), ("after", "percent"))
        after = _days(reader, spec["after"], "decay.after")
        every = _days(reader, spec["every"], "decay.every") if "every" in spec else None
        percent = spec["percent"].value
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent <= 100:
            raise reader.fail(spec["percent"], "percent is the share of its points a score loses: 1 to 100")
        if after > DECAY_UNTIL:
            raise reader.fail(spec["after"], f"decay.after is at most {DECAY_UNTIL}d")
        days = tuple(range(after, DECAY_UNTIL + 1, every)) if every is not None else (after,)
        decay = scoring.Decay(percent, days)
    stages = None
    if "stages" in root:
        at = root["stages"]
        if isinstance(at.value, dict) and "customer" in at.value:
            raise reader.fail(
                at.value["customer"], "customer is not reached by points: a contact's first order makes it"
            )
        spec = reader.mapping(at, "stages", scoring.THRESHOLDS, scoring.THRESHOLDS)
        thresholds: list[int] = []
        for stage in scoring.THRESHOLDS:
            value = spec[stage].value
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise reader.fail(spec[stage], f"stages.{stage} is the score that reaches it: a whole number above 0")
            if thresholds and value <= thresholds[-1]:
                raise reader.fail(spec[stage], "the thresholds go up: lead < mql < sql")
            thresholds.append(value)
        stages = (thresholds[0], thresholds[1], thresholds[2])
    return scoring.Config(tuple(rules), decay, stages)


def _scoring_rule(reader: _Reader, item: _Located, taken: set[str]) -> scoring.Rule:
    rule = reader.mapping(item, "a rule", ("id", "event", "where", "points", "cap"), ("id", "event", "points"))
    rule_id = reader.text(rule["id"], "id")
    if not SLUG.match(rule_id) or rule_id == scoring.DECAY:
        raise reader.fail(rule["id"], "a rule id is lower-case letters, digits and dashes (and not `decay`)")
    if rule_id in taken:
        raise reader.fail(rule["id"], f"rule id {rule_id!r} is used twice: score.changed names the rule by it")
    event = reader.text(rule["event"], "event")
    if event not in KNOWN_EVENTS:
        raise reader.fail(rule["event"], f"unknown event {event!r}; known events: {', '.join(KNOWN_EVENTS)}")
    if event in scoring.OWN_EVENTS:
        raise reader.fail(rule["event"], f"{event} is parcours' own event: scoring on it would feed on itself")
    where = _plain(rule["where"]) if "where" in rule else None
    if where is not None:
        try:
            check_where(where, "where")
        except ConditionError as error:
            raise reader.fail(rule["where"], str(error)) from None
    if event == CONTACT_INACTIVE:
        days = where.get("days") if isinstance(where, dict) else None
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0 or set(where or {}) != {"days"}:
            raise reader.fail(
                rule.get("where", rule["event"]),
                "a contact.inactive rule says after how many silent days: where: {days: 30}",
            )
    points = rule["points"].value
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > MAX_POINTS:
        raise reader.fail(rule["points"], f"points is a whole number, not 0, at most {MAX_POINTS} either way: 5 or -10")
    cap = None
    if "cap" in rule:
        spec = reader.mapping(rule["cap"], "cap", ("times", "per"), ("times", "per"))
        times = spec["times"].value
        if isinstance(times, bool) or not isinstance(times, int) or times <= 0:
            raise reader.fail(spec["times"], "times is how often the rule may score in a period: a whole number > 0")
        per = parse_duration(str(spec["per"].value))
        if per is None or per < 3600 or per > ONE_YEAR:
            raise reader.fail(spec["per"], f"per {spec['per'].value!r}: a period such as 1d or 7d, from 1h to 365d")
        cap = scoring.Cap(times, per)
    return scoring.Rule(rule_id, event, points, where, cap)


def _days(reader: _Reader, at: _Located, what: str) -> int:
    seconds = parse_duration(str(at.value))
    if seconds is None or seconds <= 0 or seconds % 86400:
        raise reader.fail(at, f"{what} {at.value!r}: a number of days or weeks of silence, e.g. 60d")
    return seconds // 86400


def _span(reader: _Reader, at: _Located, what: str) -> pacing.Hours:
    span = reader.mapping(at, what, ("from", "until"), ("from", "until"))
    start, end = _time_of_day(reader, span["from"]), _time_of_day(reader, span["until"])
    if start == end:
        raise reader.fail(at, f"{what}: from and until are the same time; remove it to hold nothing back")
    return pacing.Hours(dtime.fromisoformat(start), dtime.fromisoformat(end))


def check_references(scenarios: list[Scenario], declared: Declarations, scenarios_dir: Path) -> None:
    """A list or custom attribute read somewhere must be written by some scenario or declared: a typo in a
    list name would otherwise make a branch silently never taken."""
    written = {(r.kind, r.name) for s in scenarios for r in s.references if r.writes}
    written |= {("list", name) for name in declared.lists} | {("attribute", name) for name in declared.attributes}
    for scenario in scenarios:
        for ref in scenario.references:
            if not ref.writes and (ref.kind, ref.name) not in written:
                filler = "adds contacts to it" if ref.kind == "list" else "sets it"
                raise ScenarioError(
                    _shown(scenarios_dir / scenario.source),
                    ref.line,
                    ref.column,
                    f"{ref.kind} {ref.name!r} is read here but no scenario {filler}; fix the name, or declare it "
                    f"under `{ref.kind}s:` in {_shown(scenarios_dir / DECLARATIONS)} if something else fills it",
                )


def _keyed(at: _Located, keys: tuple[str, ...]) -> list[tuple[str, _Located]]:
    """The values of these keys anywhere in a condition (`opened`, `clicked`, `age`), with where each was written."""
    found: list[tuple[str, _Located]] = []
    if isinstance(at.value, dict):
        for key, value in at.value.items():
            if key in keys:
                found.append((key, value))
            elif key != "where":  # an event filter names event properties, not conditions
                found += _keyed(value, keys)
    elif isinstance(at.value, list):
        for item in at.value:
            found += _keyed(item, keys)
    return found


LISTS = "lists.yaml"
LIST_RULE_REFUSED = {
    "consent": "consent is checked when a message is sent, not kept in a list",
    "opened": "opened reads a message of a scenario's execution; a list has none",
    "clicked": "clicked reads a message of a scenario's execution; a list has none",
    "age": "age changes with the date alone; a list rule does not read it (use a date trigger)",
}


@dataclass(frozen=True)
class DynamicList:
    """A list whose members a rule decides (scenarios/lists.yaml), kept current by shared.people.lists."""

    name: str
    description: str
    condition: dict[str, Any]
    line: int = field(default=0, compare=False)
    reads: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)  # lists read, where written


def load_lists(path: Path) -> dict[str, DynamicList]:
    """Reads scenarios/lists.yaml, the dynamic lists (absent: none); mistakes name file, line and column.
    The references to other lists are checked against the scenarios by `check_lists`."""
    if not path.exists():
        return {}
    name = _shown(path)
    node = _compose(path, name)
    if node is None:
        return {}
    reader = _Reader(name)
    root = reader.mapping(_locate(node, name), "the lists file", ("lists",), ())
    section = root.get("lists")
    if section is None or section.value is None:
        return {}
    if not isinstance(section.value, dict):
        raise reader.fail(section, "lists maps each list name to {description, if: CONDITION}")
    found: dict[str, DynamicList] = {}
    for list_name, at in section.value.items():
        if not LIST_NAME.match(list_name):
            raise reader.fail(at, f"{list_name!r} is not a list name: lower-case letters, digits and dashes")
        spec = reader.mapping(at, f"list {list_name}", ("description", "if"), ("description", "if"))
        description = reader.text(spec["description"], f"{list_name}.description")
        for key, refused in _keyed(spec["if"], tuple(LIST_RULE_REFUSED)):
            raise reader.fail(refused, f"{list_name}.if: {LIST_RULE_REFUSED[key]}")
        try:
            condition: dict[str, Any] = _durations(_plain(spec["if"]))
            check(condition, f"{list_name}.if")
            _events_known(condition)
        except ConditionError as error:
            raise reader.fail(spec["if"], str(error)) from None
        for _, value in _keyed(spec["if"], ("event",)):
            if value.value in SCHEDULED:
                raise reader.fail(value, f"{list_name}.if: {value.value} is emitted for scenarios by the daily run")
            if value.value in (LIST_JOINED, LIST_LEFT):
                raise reader.fail(value, f"{list_name}.if: read a list's members with in_list, not its events")
        reads = tuple(
            (str(value.value), value.line, value.column) for _, value in _keyed(spec["if"], ("in_list", "not_in_list"))
        )
        found[list_name] = DynamicList(list_name, description, condition, at.line, reads)
    return found


def list_reads(condition: Any) -> set[str]:
    """The lists a condition reads (in_list, not_in_list)."""
    found: set[str] = set()
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key in ("in_list", "not_in_list") and isinstance(value, str):
                found.add(value)
            elif key != "where":
                found |= list_reads(value)
    elif isinstance(condition, list):
        for part in condition:
            found |= list_reads(part)
    return found


def _list_changes(steps: tuple[Step, ...]) -> list[ListChange]:
    found: list[ListChange] = []
    for step in steps:
        if isinstance(step, ListChange):
            found.append(step)
        elif isinstance(step, If):
            found += _list_changes(step.then) + _list_changes(step.otherwise)
        elif isinstance(step, Choose):
            for case in step.cases:
                found += _list_changes(case.steps)
            found += _list_changes(step.otherwise)
        elif isinstance(step, Split):
            for variant in step.variants:
                found += _list_changes(variant.steps)
        elif isinstance(step, WaitForEvent):
            found += _list_changes(step.on_event) + _list_changes(step.on_timeout)
    return found


def check_lists(
    dynamic: dict[str, DynamicList], scenarios: list[Scenario], declared: Declarations, scenarios_dir: Path
) -> list[str]:
    """The dynamic lists against everything else: no scenario adds to or removes from one by hand, none is also
    declared as filled from outside, every list a rule reads exists (dynamic, written by a scenario or declared),
    and no list depends on itself through others. Returns the dynamic lists in an order where each comes after
    the lists it reads (shared.people.lists evaluates them so)."""
    where = _shown(scenarios_dir / LISTS)
    for scenario in scenarios:
        for change in _list_changes(scenario.steps):
            if change.list in dynamic:
                verb = "adds to" if change.add else "removes from"
                raise ScenarioError(
                    where,
                    dynamic[change.list].line,
                    1,
                    f"list {change.list!r} is dynamic (its rule decides who is in it) but scenario {scenario.id!r} "
                    f"{verb} it at step {change.id!r}; rename one of them",
                )
    for name, rule in dynamic.items():
        if name in declared.lists:
            raise ScenarioError(
                where,
                rule.line,
                1,
                f"list {name!r} is dynamic but also declared in {DECLARATIONS} as filled from outside; "
                "remove one of them",
            )
    written = {r.name for s in scenarios for r in s.references if r.kind == "list" and r.writes}
    known = set(dynamic) | written | declared.lists
    for name, rule in dynamic.items():
        for read, line, column in rule.reads:
            if read not in known:
                raise ScenarioError(
                    where,
                    line,
                    column,
                    f"list {name!r} reads list {read!r}, which is neither dynamic, nor added to by a scenario, "
                    f"nor declared in {DECLARATIONS}",
                )
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name) :], name]
            raise ScenarioError(
                where,
                dynamic[name].line,
                1,
                f"lists depend on each other in a cycle: {' -> '.join(cycle)}; a list cannot decide its own members",
            )
        state[name] = "visiting"
        for read in sorted(list_reads(dynamic[name].condition) & set(dynamic)):
            visit(read, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in dynamic:
        visit(name, [])
    return order
