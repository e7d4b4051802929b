"""Conditions on a contact, written in scenarios and evaluated by the act function right when a branch is taken.

Forms (JSON once compiled):
  {"consent": "email"}                          marketing email allowed now (consent, not suppressed)
  {"consent": "unconfirmed"}                    ... and that consent is not confirmed yet (double opt-in asks it)
  {"attribute": NAME, "exists": true|false}     a profile field or custom attribute is set (non-empty)
  {"attribute": NAME, "equals": VALUE}          ... equals VALUE
  {"attribute": NAME, "in": [VALUES]}           ... is one of VALUES
  {"attribute": NAME, "gte": N}                 ... compares as a number with N (also gt, lt, lte): counters
                                                such as score, orders_count, total_spent
  {"in_list": LIST} / {"not_in_list": LIST}     list membership
  {"event": TYPE, "at_least": N, "within": S}   behaviour: N or more such events in the last S seconds
                                                (also "at_most"; read from the contact's own history;
                                                optional "where": a filter on the events' properties)
  {"age": {"gte": 18}}                          whole years since the custom attribute `birthday` (ISO
                                                date), today in the contact's time zone; also gt, lt, lte,
                                                equals. No or malformed birthday: does not hold
  {"opened": STEP} / {"clicked": STEP}          the contact opened / clicked the email this execution sent
                                                at send step STEP (SES feedback, email.opened / .clicked)
  {"all": [...]}, {"any": [...]}, {"not": {...}}

Each behaviour, opened or clicked condition costs one bounded query of the contact's own history (a key range
from a start time, never a scan); opened and clicked also read this execution's send record by key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from shared import writes
from shared.events import EMAIL_CLICKED, EMAIL_OPENED
from shared.people.consent import refusal_for_marketing_email
from shared.people.moments import zone
from shared.storage import ContactModel, EventModel

PROFILE_FIELDS = ("email", "first_name", "last_name", "locale")
COUNTERS = ("orders_count", "total_spent", "score")  # kept on the contact, read in O(1)
COMPARISONS = ("equals", "not_equals", "gt", "gte", "lt", "lte", "in", "exists", "contains")
AGE_TESTS = ("equals", "gt", "gte", "lt", "lte")
NUMERIC = ("gt", "gte", "lt", "lte")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
STEP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MESSAGE_EVENTS = {"opened": EMAIL_OPENED, "clicked": EMAIL_CLICKED}


class ConditionError(ValueError):
    """A condition that is not one of the forms above; the message says what is wrong."""


def check(condition: Any, where: str = "condition") -> None:
    """Validates the shape (at build time, so that run time never meets a malformed condition)."""
    if not isinstance(condition, dict) or not condition:
        raise ConditionError(f"{where} must be a mapping such as {{attribute: first_name, exists: true}}")
    keys = set(condition)
    if keys == {"consent"}:
        if condition["consent"] not in ("email", "unconfirmed"):
            raise ConditionError(
                f"{where}: consent is 'email' (marketing allowed) or 'unconfirmed' (not confirmed yet)"
            )
    elif "attribute" in keys:
        name = condition["attribute"]
        tests = keys - {"attribute"}
        if not isinstance(name, str) or not NAME.match(name):
            raise ConditionError(f"{where}: attribute must be a name like first_name or plan_type")
        if len(tests) != 1 or not tests <= {"exists", "equals", "in", *NUMERIC}:
            raise ConditionError(
                f"{where}: an attribute condition needs exactly one of exists, equals, in, {', '.join(NUMERIC)}"
            )
        for op in tests & set(NUMERIC):
            if _number(condition[op]) is None:
                raise ConditionError(f"{where}: {op} compares with a number, not {condition[op]!r}")
        if "exists" in tests and not isinstance(condition["exists"], bool):
            raise ConditionError(f"{where}: exists is true or false")
        if "in" in tests and not isinstance(condition["in"], list):
            raise ConditionError(f"{where}: in takes a list of values")
    elif "event" in keys:
        if not isinstance(condition["event"], str) or not condition["event"]:
            raise ConditionError(f"{where}: event names an event type such as order.placed")
        bounds = keys & {"at_least", "at_most"}
        if len(bounds) != 1 or keys - {"event", "at_least", "at_most", "within", "where"} or "within" not in keys:
            raise ConditionError(
                f"{where}: a behaviour condition is {{event, at_least or at_most, within}} and optionally where"
            )
        if "where" in keys:
            check_where(condition["where"], f"{where}.where")
        count = whole(condition[next(iter(bounds))])
        if count is None or count < 0:
            raise ConditionError(f"{where}: {next(iter(bounds))} is a whole number")
        within = whole(condition["within"])
        if within is None or within <= 0:
            raise ConditionError(f"{where}: within is a duration")
    elif keys == {"age"}:
        test = condition["age"]
        if not isinstance(test, dict) or len(test) != 1 or next(iter(test)) not in AGE_TESTS:
            raise ConditionError(
                f"{where}: age takes exactly one of {', '.join(AGE_TESTS)} and a number of years, e.g. {{gte: 18}}"
            )
        years = whole(next(iter(test.values())))
        if years is None or years < 0:
            raise ConditionError(
                f"{where}: age compares with a whole number of years, not {next(iter(test.values()))!r}"
            )
    elif keys in ({"opened"}, {"clicked"}):
        kind = next(iter(keys))
        step = condition[kind]
        if not isinstance(step, str) or not STEP_ID.match(step):
            raise ConditionError(f"{where}: {kind} names a send step of this scenario, e.g. {{{kind}: e1-welcome}}")
    elif keys in ({"in_list"}, {"not_in_list"}):
        list_name = condition[next(iter(keys))]
        if not isinstance(list_name, str) or not LIST_NAME.match(list_name):
            raise ConditionError(f"{where}: a list name is lower-case letters, digits and dashes")
    elif keys in ({"all"}, {"any"}):
        parts = condition[next(iter(keys))]
        if not isinstance(parts, list) or not parts:
            raise ConditionError(f"{where}: {next(iter(keys))} takes a non-empty list of conditions")
        for index, part in enumerate(parts):
            check(part, f"{where}.{next(iter(keys))}[{index}]")
    elif keys == {"not"}:
        check(condition["not"], f"{where}.not")
    else:
        raise ConditionError(
            f"{where}: unknown condition with keys {', '.join(sorted(keys))}; "
            "use consent, attribute, age, event, opened, clicked, in_list, not_in_list, all, any or not"
        )


def whole(value: Any) -> int | None:
    """A whole number, also when JSON tooling on the way wrote it as 2.0 (moto's interpreter does)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if value != int(value):
        return None
    return int(value)


def attribute(contact: ContactModel, name: str) -> Any:
    if name in PROFILE_FIELDS or name in COUNTERS:
        return getattr(contact, name)
    custom = contact.attributes.as_dict() if contact.attributes is not None else {}
    return custom.get(name)


class History(Protocol):
    """How many of the contact's events of a type, recorded since a moment, match a property filter."""

    def __call__(self, event_type: str, since: datetime, where: dict[str, Any] | None) -> int: ...


Sent = Callable[[str], tuple[str, datetime] | None]  # send step id -> (SES message id, sent at), this execution


def history_of(events: type[EventModel], contact_id: str) -> History:
    """The contact's history as conditions read it: one bounded query of its own events since a moment."""

    def count(event_type: str, since: datetime, where: dict[str, Any] | None) -> int:
        recent = list(
            events.query(
                contact_id, EventModel.at_id >= since.isoformat(), filter_condition=EventModel.type == event_type
            )
        )
        gathered = writes.current()  # the event in hand's own record, not written yet
        recent += [
            record
            for record in (gathered.records(contact_id) if gathered is not None else [])
            if record.type == event_type and record.at_id >= since.isoformat()
        ]
        return sum(1 for event in recent if matches(where, event.properties or {}))

    return count


@dataclass(frozen=True)
class Facts:
    """What a condition may read besides the contact: the evaluation's now and the contact's own records."""

    now: datetime
    default_timezone: str = "UTC"
    scenario: str = ""
    history: History | None = None
    sent: Sent | None = None


def age(birthday: Any, today: date) -> int | None:
    """Whole years lived by `today`; None for no birthday, a malformed one or one in the future.

    Someone born on 29 February turns a year older on 1 March in common years.
    """
    if not isinstance(birthday, str):
        return None
    try:
        born = date.fromisoformat(birthday.strip())
    except ValueError:
        return None
    if born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _local_today(contact: ContactModel, facts: Facts) -> date:
    timezone = attribute(contact, "timezone")
    return facts.now.astimezone(zone(timezone if isinstance(timezone, str) else None, facts.default_timezone)).date()


def holds(condition: dict[str, Any], contact: ContactModel | None, facts: Facts | None = None) -> bool:
    """True if the contact meets the condition; a contact that no longer exists meets none."""
    if contact is None:
        return False
    if "event" in condition:
        done = 0
        if facts is not None and facts.history is not None:
            since = facts.now - timedelta(seconds=int(condition["within"]))
            done = facts.history(condition["event"], since, condition.get("where"))
        return bool(done >= condition["at_least"] if "at_least" in condition else done <= condition["at_most"])
    if "age" in condition:
        if facts is None:
            return False
        years = age(attribute(contact, "birthday"), _local_today(contact, facts))
        op, expected = next(iter(condition["age"].items()))
        return years is not None and _compare(op, years, expected)
    if "opened" in condition or "clicked" in condition:
        kind = "opened" if "opened" in condition else "clicked"
        if facts is None or facts.sent is None or facts.history is None:
            return False
        sent = facts.sent(condition[kind])
        if sent is None:  # never sent in this execution (skipped, or not reached yet)
            return False
        message_id, sent_at = sent
        where = {"message_id": message_id, "scenario": facts.scenario, "step": condition[kind]}
        return facts.history(MESSAGE_EVENTS[kind], sent_at, where) >= 1
    if "consent" in condition:
        allowed = refusal_for_marketing_email(contact) is None
        if condition["consent"] == "unconfirmed":
            given = contact.email_consent if contact is not None else None
            return allowed and given is not None and given.level != "confirmed_opt_in"
        return allowed
    if "attribute" in condition:
        value = attribute(contact, condition["attribute"])
        if "exists" in condition:
            return bool((value not in (None, "", [], {})) == condition["exists"])
        if "equals" in condition:
            return bool(value == condition["equals"])
        for op in NUMERIC:
            if op in condition:
                return _compare(op, value, condition[op])
        return value in condition["in"]
    if "in_list" in condition:
        return condition["in_list"] in (contact.lists or set())
    if "not_in_list" in condition:
        return condition["not_in_list"] not in (contact.lists or set())
    if "all" in condition:
        return all(holds(part, contact, facts) for part in condition["all"])
    if "any" in condition:
        return any(holds(part, contact, facts) for part in condition["any"])
    return not holds(condition["not"], contact, facts)


def check_where(where: Any, where_name: str = "where") -> None:
    """Validates an event filter: {property: {comparison: value}} or {property: value} (equals)."""
    if not isinstance(where, dict) or not where:
        raise ConditionError(f"{where_name} maps event properties to tests, e.g. {{total: {{gte: 50}}}}")
    for name, test in where.items():
        if not NAME.match(str(name)):
            raise ConditionError(f"{where_name}: {name!r} is not a property name")
        if isinstance(test, dict):
            if len(test) != 1 or next(iter(test)) not in COMPARISONS:
                raise ConditionError(f"{where_name}.{name}: use exactly one of {', '.join(COMPARISONS)}")
            op, value = next(iter(test.items()))
            if op in ("gt", "gte", "lt", "lte") and _number(value) is None:
                raise ConditionError(f"{where_name}.{name}: {op} compares with a number, not {value!r}")
            if op == "in" and not isinstance(value, list):
                raise ConditionError(f"{where_name}.{name}: in takes a list of values")
            if op == "exists" and not isinstance(value, bool):
                raise ConditionError(f"{where_name}.{name}: exists is true or false")
            if op == "contains" and (not isinstance(value, str) or not value):
                raise ConditionError(
                    f"{where_name}.{name}: contains looks for a text (case sensitive), not {value!r}; "
                    "quote it if YAML reads it as something else"
                )


def _number(value: Any) -> float | None:
    """Amounts arrive as text ("59.80") from the shops: compared as numbers."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return bool((actual is not None) == expected)
    if op == "equals":
        return bool(actual == expected or (_number(actual) is not None and _number(actual) == _number(expected)))
    if op == "not_equals":
        return not _compare("equals", actual, expected)
    if op == "in":
        return actual in expected
    if op == "contains":  # text in text, case sensitive: /Pricing is not /pricing
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def matches(where: dict[str, Any] | None, properties: dict[str, Any]) -> bool:
    """True when every test of the filter holds on the event's properties (no filter: always)."""
    for name, test in (where or {}).items():
        op, expected = next(iter(test.items())) if isinstance(test, dict) else ("equals", test)
        if not _compare(op, properties.get(name), expected):
            return False
    return True
