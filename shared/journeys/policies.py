"""The deployment's rules read beside the scenarios: sending.yaml (caps, quiet hours: shared.journeys.pacing) and
scoring.yaml (lead-scoring rules and stages: shared.people.scoring).
"""

from __future__ import annotations

from datetime import time as dtime
from pathlib import Path

from shared.events import (
    CONTACT_INACTIVE,
)
from shared.journeys import pacing
from shared.journeys.reading import Located, Reader, plain, read_file, time_of_day
from shared.journeys.scenario import KNOWN_EVENTS, ONE_YEAR, SLUG, parse_duration
from shared.people import scoring
from shared.people.conditions import ConditionError, check_where
from shared.people.topics import TOPICS

SENDING = "sending.yaml"
SCORING = "scoring.yaml"


def load_sending(path: Path) -> pacing.Policy:
    """Reads scenarios/sending.yaml, the deployment's sending habits (absent: no caps nor quiet hours, the French
    SMS hours only); mistakes name file, line and column."""
    if not path.exists():
        return pacing.Policy()
    reader, top = read_file(path)
    if top is None:
        return pacing.Policy()
    root = reader.mapping(top, "the sending habits", ("caps", "quiet_hours", "french_sms_hours"), ())
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
    reader, top = read_file(path)
    if top is None:
        return scoring.Config()
    root = reader.mapping(top, "the scoring", ("rules", "decay", "stages"), ())
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


def _scoring_rule(reader: Reader, item: Located, taken: set[str]) -> scoring.Rule:
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
    where = plain(rule["where"]) if "where" in rule else None
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


def _days(reader: Reader, at: Located, what: str) -> int:
    seconds = parse_duration(str(at.value))
    if seconds is None or seconds <= 0 or seconds % 86400:
        raise reader.fail(at, f"{what} {at.value!r}: a number of days or weeks of silence, e.g. 60d")
    return seconds // 86400


def _span(reader: Reader, at: Located, what: str) -> pacing.Hours:
    span = reader.mapping(at, what, ("from", "until"), ("from", "until"))
    start, end = time_of_day(reader, span["from"]), time_of_day(reader, span["until"])
    if start == end:
        raise reader.fail(at, f"{what}: from and until are the same time; remove it to hold nothing back")
    return pacing.Hours(dtime.fromisoformat(start), dtime.fromisoformat(end))
