"""Scenario files: the top of the file (id, trigger, entry, goal), read into the model the compiler trusts.

Build-time only (the CLI and the tests); no Lambda imports this module. The steps are read by shared.journeys.steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.events import (
    CONTACT_INACTIVE,
    DATE_REACHED,
    LIST_JOINED,
    LIST_LEFT,
    SCENARIO_REQUESTED,
    SCHEDULED,
)
from shared.journeys import pacing
from shared.journeys.reading import (
    Located,
    Reader,
    keyed,
    plain,
    read_condition,
    read_file,
    time_of_day,
)
from shared.journeys.scenario import KNOWN_EVENTS, SLUG, DateTrigger, Scenario, ScenarioError, parse_duration
from shared.journeys.steps import StepReader, date_attribute, day_offset
from shared.people.conditions import ConditionError, check_where
from shared.people.topics import DEFAULT_TOPIC, TOPICS


def load(path: Path, templates_dir: Path | None = None) -> Scenario:
    """Reads and validates one scenario file; ScenarioError names file, line and column."""
    reader, top = read_file(path)
    if top is None:
        raise ScenarioError(reader.path, 1, 1, "the file is empty; a scenario needs id, name, trigger and steps")
    root = reader.mapping(
        top,
        "the scenario",
        (
            "id",
            "name",
            "description",
            "category",
            "topic",
            "soft_opt_in",
            "when_capped",
            "trigger",
            "entry",
            "goal",
            "steps",
        ),
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
    soft_opt_in = False
    if "soft_opt_in" in root:
        if category != "marketing":
            raise reader.fail(
                root["soft_opt_in"], "soft_opt_in is for marketing scenarios: a transactional one needs none"
            )
        if not isinstance(root["soft_opt_in"].value, bool):
            raise reader.fail(root["soft_opt_in"], f"soft_opt_in is true or false, not {root['soft_opt_in'].value!r}")
        soft_opt_in = root["soft_opt_in"].value
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
        attribute = date_attribute(reader, trigger["date"], "trigger.date")
        if "time" not in trigger:
            raise reader.fail(root["trigger"], 'a date trigger needs `time`, e.g. time: "10:00" (local time)')
        at = time_of_day(reader, trigger["time"])
        offset = day_offset(reader, trigger["offset"]) if "offset" in trigger else 0
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
        where = plain(trigger["where"]) if "where" in trigger else None
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
        listed: list[Located] = []
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
    step_reader = StepReader(reader, templates_dir)
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
        soft_opt_in=soft_opt_in,
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


def _entry_or_goal_condition(reader: Reader, at: Located, what: str) -> dict[str, Any]:
    """A condition on the contact outside the steps (no message of the scenario to have opened)."""
    condition = read_condition(reader, at, what)
    for _, test in keyed(at, ("opened", "clicked")):
        raise reader.fail(test, f"{what}: opened and clicked read a message of the execution; there is none here")
    return condition


def _re_entry(reader: Reader, at: Located) -> str:
    text = reader.text(at, "entry.re_entry")
    if text in ("never", "always"):
        return text
    seconds = parse_duration(text.removeprefix("after").strip()) if text.startswith("after ") else None
    if seconds is None or seconds <= 0:
        raise reader.fail(at, f"re_entry {text!r}: write never, always, or after a duration such as `after 7d`")
    return f"after:{seconds}"
