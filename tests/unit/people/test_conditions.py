"""Conditions on a contact, evaluated when a branch is reached."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.people.conditions import ConditionError, Facts, age, check, check_where, holds, matches, whole
from shared.storage import ContactModel

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def contact(**fields: Any) -> ContactModel:
    return ContactModel(contact_id="c1", email="c@example.com", created_at=NOW, updated_at=NOW, **fields)


def test_behaviour_counts_come_from_the_history_asked_for_the_window() -> None:
    asked: list[tuple[str, datetime, dict[str, Any] | None]] = []

    def history(event_type: str, since: datetime, where: dict[str, Any] | None) -> int:
        asked.append((event_type, since, where))
        return 2

    facts = Facts(now=NOW, history=history)
    condition = {"event": "order.placed", "at_least": 2, "within": 15552000}
    assert holds(condition, contact(), facts)
    assert not holds({**condition, "at_least": 3}, contact(), facts)
    assert holds({"event": "order.placed", "at_most": 2, "within": 86400}, contact(), facts)
    assert asked[0] == ("order.placed", NOW - timedelta(days=180), None)


class History:
    """A contact's recorded events: (type, recorded at, properties); counts what the filter matches."""

    def __init__(self, *events: tuple[str, datetime, dict[str, Any]]) -> None:
        self.events = events
        self.queries = 0

    def __call__(self, event_type: str, since: datetime, where: dict[str, Any] | None) -> int:
        self.queries += 1
        return sum(1 for kind, at, props in self.events if kind == event_type and at >= since and matches(where, props))


def test_a_page_visit_condition_filters_the_events_on_their_properties() -> None:
    visited = {"event": "page.viewed", "where": {"path": {"contains": "/pricing"}}, "at_least": 1, "within": 30 * 86400}
    check(visited)
    pricing = History(("page.viewed", NOW - timedelta(days=2), {"path": "/en/pricing/teams", "url": "https://x"}))
    home = History(("page.viewed", NOW - timedelta(days=2), {"path": "/en/home"}))
    old = History(("page.viewed", NOW - timedelta(days=31), {"path": "/pricing"}))
    upper = History(("page.viewed", NOW - timedelta(days=2), {"path": "/PRICING"}))
    assert holds(visited, contact(), Facts(now=NOW, history=pricing))
    assert pricing.queries == 1
    assert not holds(visited, contact(), Facts(now=NOW, history=home))
    assert not holds(visited, contact(), Facts(now=NOW, history=old))
    assert not holds(visited, contact(), Facts(now=NOW, history=upper))  # contains is case sensitive


@pytest.mark.parametrize(
    ("test", "value", "expected"),
    [
        ({"contains": "/pricing"}, "/fr/pricing?x=1", True),
        ({"contains": "/pricing"}, "/Pricing", False),
        ({"contains": "/pricing"}, None, False),
        ({"contains": "5"}, 5, False),  # text only: a number does not contain text
    ],
)
def test_contains_looks_for_text_in_text(test: dict[str, Any], value: Any, expected: bool) -> None:
    assert matches({"path": test}, {"path": value}) is expected


@pytest.mark.parametrize("value", [5, "", None, ["/a"]])
def test_contains_with_something_else_than_text_is_refused(value: Any) -> None:
    with pytest.raises(ConditionError, match="contains looks for a text"):
        check_where({"path": {"contains": value}})


@pytest.mark.parametrize(
    ("birthday", "timezone", "now", "years"),
    [
        ("2008-11-24", None, NOW, 18),  # the 18th birthday itself
        ("2008-11-25", None, NOW, 17),  # the day before it
        ("1990-01-31", None, NOW, 36),
        # 23:30 UTC on the 24th is already the 25th in Tokyo, still the 24th in Paris
        ("2008-11-25", "Asia/Tokyo", datetime(2026, 11, 24, 23, 30, tzinfo=UTC), 18),
        ("2008-11-25", "Europe/Paris", datetime(2026, 11, 24, 22, 30, tzinfo=UTC), 17),
        ("2008-11-25", "Not/AZone", datetime(2026, 11, 24, 23, 30, tzinfo=UTC), 18),  # the default zone: Paris
        ("2008-02-29", None, datetime(2026, 2, 28, 12, tzinfo=UTC), 17),
        ("2008-02-29", None, datetime(2026, 3, 1, 12, tzinfo=UTC), 18),
    ],
)
def test_age_is_counted_on_the_contacts_own_calendar(
    birthday: str, timezone: str | None, now: datetime, years: int
) -> None:
    attributes = {"birthday": birthday, **({"timezone": timezone} if timezone else {})}
    person = contact(attributes=attributes)
    facts = Facts(now=now, default_timezone="Europe/Paris")
    assert holds({"age": {"equals": years}}, person, facts)
    assert holds({"age": {"gte": years}}, person, facts)
    assert not holds({"age": {"gt": years}}, person, facts)
    assert holds({"age": {"lt": years + 1}}, person, facts)
    assert not holds({"age": {"lte": years - 1}}, person, facts)


@pytest.mark.parametrize("birthday", [None, "", "24/11/2008", "2008-13-01", "soon", 20081124, "2030-01-01"])
def test_without_a_usable_birthday_no_age_test_holds(birthday: Any) -> None:
    person = contact(attributes={} if birthday is None else {"birthday": birthday})
    facts = Facts(now=NOW)
    assert not holds({"age": {"gte": 0}}, person, facts)
    assert not holds({"age": {"lt": 200}}, person, facts)
    assert age(birthday, NOW.date()) is None


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"age": 18}, "age takes exactly one of equals, gt, gte, lt, lte"),
        ({"age": {"over": 18}}, "age takes exactly one of"),
        ({"age": {"gte": 18, "lt": 65}}, "age takes exactly one of"),
        ({"age": {"gte": "adult"}}, "age compares with a whole number of years, not 'adult'"),
        ({"age": {"gte": -1}}, "whole number of years"),
        ({"opened": "E1 Welcome"}, "opened names a send step of this scenario"),
        ({"clicked": 3}, "clicked names a send step"),
        ({"event": "page.viewed", "where": [], "at_least": 1, "within": 60}, "where maps event properties"),
    ],
)
def test_malformed_age_opened_and_filtered_conditions_say_what_is_wrong(
    condition: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConditionError, match=message):
        check(condition)


def test_opened_reads_this_executions_message_of_that_step() -> None:
    sent_at = NOW - timedelta(days=2)
    sends = {"e1-welcome": ("msg-1", sent_at)}
    opened = History(
        (
            "email.opened",
            sent_at + timedelta(hours=3),
            {"message_id": "msg-1", "scenario": "welcome", "step": "e1-welcome"},
        )
    )
    other_message = History(
        (
            "email.opened",
            sent_at + timedelta(hours=3),
            {"message_id": "msg-0", "scenario": "welcome", "step": "e1-welcome"},
        )
    )
    clicked = History(
        (
            "email.clicked",
            NOW,
            {"message_id": "msg-1", "scenario": "welcome", "step": "e1-welcome", "link": "https://x"},
        )
    )

    def facts(history: History) -> Facts:
        return Facts(now=NOW, scenario="welcome", history=history, sent=sends.get)

    assert holds({"opened": "e1-welcome"}, contact(), facts(opened))
    assert opened.queries == 1
    assert not holds({"opened": "e1-welcome"}, contact(), facts(other_message))  # an earlier execution's copy
    assert not holds({"clicked": "e1-welcome"}, contact(), facts(opened))
    assert holds({"clicked": "e1-welcome"}, contact(), facts(clicked))
    never_sent = History()
    assert not holds({"opened": "e2-value"}, contact(), facts(never_sent))  # skipped or not reached: not opened
    assert never_sent.queries == 0
    assert not holds({"opened": "e1-welcome"}, contact())  # nothing to read: does not hold


def test_nested_conditions_combine() -> None:
    person = contact(first_name="Lou", lists={"vip"}, orders_count=3, attributes={"plan": "pro"})
    assert holds({"all": [{"in_list": "vip"}, {"attribute": "orders_count", "equals": 3}]}, person)
    assert holds({"any": [{"not_in_list": "vip"}, {"attribute": "plan", "in": ["pro", "team"]}]}, person)
    assert not holds({"not": {"attribute": "first_name", "exists": True}}, person)
    assert not holds({"consent": "email"}, person)  # no consent recorded


def test_counters_and_attributes_compare_as_numbers() -> None:
    person = contact(score=55, total_spent=499.5, attributes={"seats": "12", "plan": "pro"})
    assert holds({"attribute": "score", "gte": 50}, person)
    assert not holds({"attribute": "total_spent", "gte": 500}, person)
    assert holds({"attribute": "total_spent", "lt": 500}, person)
    assert holds({"attribute": "seats", "gt": 10}, person)  # a number written as text, as the shops send them
    assert not holds({"attribute": "plan", "gt": 1}, person)  # not a number: does not hold
    assert not holds({"attribute": "missing", "lte": 0}, person)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"attribute": "score", "gte": "lots"}, "gte compares with a number"),
        ({"attribute": "score", "gte": 1, "lt": 5}, "exactly one of"),
        ({"attribute": "score", "above": 1}, "exactly one of"),
    ],
)
def test_a_malformed_comparison_is_refused(condition: dict[str, object], message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        check(condition)


def test_a_contact_that_no_longer_exists_meets_no_condition() -> None:
    assert not holds({"not": {"in_list": "vip"}}, None)


@pytest.mark.parametrize(
    "condition",
    [
        {"event": "order.placed", "at_least": -1, "within": 10},
        {"event": "order.placed", "at_least": 1},
        {"event": "order.placed", "at_least": 1, "at_most": 3, "within": 10},
        {"event": "", "at_least": 1, "within": 1},
    ],
)
def test_malformed_behaviour_conditions_are_refused(condition: dict[str, object]) -> None:
    with pytest.raises(ConditionError):
        check(condition)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2), (2.0, 2), (2.5, None), (True, None), ("2", None), (float("inf"), None), (float("nan"), None)],
)
def test_whole_numbers_survive_a_json_round_trip(value: object, expected: int | None) -> None:
    assert whole(value) == expected


@pytest.mark.parametrize(
    ("state", "level", "suppressed", "expected"),
    [
        ("granted", "single_opt_in", False, True),
        ("granted", None, False, True),
        ("granted", "confirmed_opt_in", False, False),  # confirmed already: nothing to ask
        ("denied", "single_opt_in", False, False),
        ("granted", "single_opt_in", True, False),  # a suppressed address is never asked
        (None, None, False, False),  # no consent at all
    ],
)
def test_unconfirmed_consent_is_a_granted_consent_not_confirmed_yet(
    state: str | None, level: str | None, suppressed: bool, expected: bool
) -> None:
    from shared.storage import Consent

    given = Consent(state=state, level=level, source="generic", at=NOW) if state else None
    assert holds({"consent": "unconfirmed"}, contact(email_consent=given, suppressed=suppressed)) is expected
    check({"consent": "unconfirmed"})
    with pytest.raises(ConditionError, match=r"'email'.*'unconfirmed'"):
        check({"consent": "confirmed"})
