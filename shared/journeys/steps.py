"""A scenario's steps, read recursively through branches: ids, templates, waits, references and reachability checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from shared.journeys.reading import (
    Located,
    Reader,
    keyed,
    plain,
    read_condition,
    time_of_day,
)
from shared.journeys.scenario import (
    ACTIONS,
    DAY_OFFSET,
    KNOWN_EVENTS,
    ONE_YEAR,
    SLUG,
    AddScore,
    Case,
    Choose,
    Discount,
    Exit,
    If,
    ListChange,
    NotifyCrm,
    Reference,
    SendEmail,
    SendSms,
    SetAttribute,
    Split,
    Step,
    Unsubscribe,
    Variant,
    Wait,
    WaitForEvent,
    WaitUntil,
    WaitUntilDate,
    parse_duration,
)
from shared.people.conditions import COUNTERS, LIST_NAME, NAME, PROFILE_FIELDS
from shared.people.moments import WEEKDAYS


def date_attribute(reader: Reader, at: Located, what: str) -> str:
    name = reader.text(at, what)
    if not NAME.match(name) or name in PROFILE_FIELDS or name in COUNTERS:
        raise reader.fail(
            at, f"{what} {name!r}: name a custom attribute holding a date (YYYY-MM-DD), such as birthday, or created_at"
        )
    return name


def day_offset(reader: Reader, at: Located) -> int:
    text = str(at.value).strip()
    match = DAY_OFFSET.match(text)
    if not match:
        raise reader.fail(at, f"offset {text!r} is not a number of days: write e.g. -7d (a week before), 1d, 2w")
    days = int(match.group(2)) * (7 if match.group(3) == "w" else 1)
    if days >= 365:
        raise reader.fail(at, f"offset {text!r}: an offset is under a year")
    return -days if match.group(1) == "-" else days


DISCOUNT_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as shared.messages.discounts.CODE, which loads the pools


def _discount(reader: Reader, at: Located) -> Discount:
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


class StepReader:
    """Reads a list of steps, recursively through branches, checking ids, templates, waits and reachability."""

    def __init__(self, reader: Reader, templates_dir: Path | None) -> None:
        self.reader = reader
        self.templates_dir = templates_dir
        self.seen: set[str] = set()
        self.references: list[Reference] = []
        self.kinds: dict[str, str] = {}  # step id -> its kind (send_email, if, ...)
        self.conditions: list[Located] = []  # every `if`, for the references checked once all steps are known

    def refer(self, kind: Literal["list", "attribute"], at: Located, writes: bool) -> None:
        name = at.value
        if isinstance(name, str) and (kind == "list" or name not in (*PROFILE_FIELDS, *COUNTERS, "created_at")):
            self.references.append(Reference(kind, name, writes, at.line, at.column))

    def condition(self, at: Located, what: str) -> dict[str, Any]:
        """A branch's condition, checked, with the lists, attributes and messages it reads recorded."""
        condition = read_condition(self.reader, at, what)
        self.reads_condition(at)
        self.conditions.append(at)
        return condition

    def reads_condition(self, at: Located) -> None:
        """The lists and custom attributes a condition reads, for the cross-file reference check."""
        self.reads_in(at, ("in_list", "not_in_list", "attribute"))
        for _, test in keyed(at, ("age",)):  # age reads the custom attribute birthday
            self.refer("attribute", Located("birthday", test.line, test.column), writes=False)

    def reads_in(self, at: Located, keys: tuple[str, ...]) -> None:
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

    def steps(self, at: Located, what: str, elapsed: int = 0) -> tuple[tuple[Step, ...], int]:
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

    def _id(self, at: Located) -> str:
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
            for kind, ref in keyed(at, ("opened", "clicked")):
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

    def _send(self, item: Located, kind: str, folder: str, suffix: str, extra: tuple[str, ...] = ()) -> tuple[str, str]:
        """A send step's id and template, the template checked for in templates/<folder>/."""
        fields = self.reader.mapping(item, f"a {kind} step", ("id", kind, *extra), ("id", kind))
        step_id = self._id(fields["id"])
        template = self.reader.text(fields[kind], kind)
        if self.templates_dir is not None and not any((self.templates_dir / folder).glob(f"{template}.*.{suffix}")):
            what = "SMS" if folder == "sms" else folder
            expected = f"templates/{folder}/{template}.<locale>.{suffix}"
            raise self.reader.fail(fields[kind], f"no {what} template {template!r}: expected {expected}")
        return step_id, template

    def step(self, item: Located, elapsed: int) -> tuple[Step, int]:
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
            at = time_of_day(reader, spec["time"])
            if "date" in spec or "anniversary" in spec:
                if "date" in spec and "anniversary" in spec:
                    raise reader.fail(fields["wait_until"], "wait_until takes `date` or `anniversary`, not both")
                if "weekdays" in spec:
                    raise reader.fail(spec["weekdays"], "weekdays do not go with a date: the date is the day")
                yearly = "anniversary" in spec
                attribute = date_attribute(reader, spec["anniversary" if yearly else "date"], "wait_until date")
                offset = day_offset(reader, spec["offset"]) if "offset" in spec else 0
                self.refer("attribute", spec["anniversary" if yearly else "date"], writes=False)
                # How long is known only at run time; the plan refuses a moment past the execution's year.
                return WaitUntilDate(step_id, attribute, yearly, offset, at), elapsed
            if "offset" in spec:
                raise reader.fail(spec["offset"], "offset goes with `date` or `anniversary`")
            days: tuple[str, ...] = ()
            if "weekdays" in spec:
                raw = plain(spec["weekdays"])
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
            return SendEmail(
                id=step_id, template=template, discount=discount, line=item.line, column=item.column
            ), elapsed
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
            value = plain(spec["value"])
            return SetAttribute(step_id, name, value, line=item.line, column=item.column), elapsed
        if kind == "add_score":
            fields = reader.mapping(item, "an add_score step", ("id", "add_score"), ("id", "add_score"))
            step_id = self._id(fields["id"])
            points = fields["add_score"].value
            if isinstance(points, bool) or not isinstance(points, int) or points == 0:
                raise reader.fail(fields["add_score"], "add_score takes a whole number of points, e.g. 10 or -5")
            return AddScore(step_id, points, line=item.line, column=item.column), elapsed
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
            add = kind == "add_to_list"
            return ListChange(id=step_id, list=list_name, add=add, line=item.line, column=item.column), elapsed
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
