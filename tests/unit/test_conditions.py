"""Conditions on a contact, evaluated when a branch is reached."""

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.conditions import ConditionError, check, holds, whole
from shared.storage import ContactModel

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def contact(**fields: Any) -> ContactModel:
    return ContactModel(contact_id="c1", email="c@example.com", created_at=NOW, updated_at=NOW, **fields)


def test_behaviour_counts_come_from_the_history_asked_for_the_window() -> None:
    asked: list[tuple[str, int]] = []

    def history(event: str, within: int) -> int:
        asked.append((event, within))
        return 2

    condition = {"event": "order.placed", "at_least": 2, "within": 15552000}
    assert holds(condition, contact(), history)
    assert not holds({**condition, "at_least": 3}, contact(), history)
    assert holds({"event": "order.placed", "at_most": 2, "within": 86400}, contact(), history)
    assert asked[0] == ("order.placed", 15552000)


def test_nested_conditions_combine() -> None:
    person = contact(first_name="Lou", lists={"vip"}, orders_count=3, attributes={"plan": "pro"})
    assert holds({"all": [{"in_list": "vip"}, {"attribute": "orders_count", "equals": 3}]}, person)
    assert holds({"any": [{"not_in_list": "vip"}, {"attribute": "plan", "in": ["pro", "team"]}]}, person)
    assert not holds({"not": {"attribute": "first_name", "exists": True}}, person)
    assert not holds({"consent": "email"}, person)  # no consent recorded


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
