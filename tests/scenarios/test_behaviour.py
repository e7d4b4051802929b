"""Behaviour conditions read the contact's own recent history; add_score changes the score atomically."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from infra import validation
from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start


@pytest.fixture(scope="module")
def behaviour(local: RunningLocal) -> str:
    return deploy_fixture(local, "behaviour")


@pytest.mark.parametrize(
    ("orders_ago_days", "branch", "score"),
    [
        ([3, 40], ["Add +25 points (reward)", "Send email vip-mail"], 25),
        ([3], ["Add -5 points (nudge)"], -5),
        ([3, 400], ["Add -5 points (nudge)"], -5),
    ],  # the older order is outside the 180 days
)
def test_two_orders_in_six_months_make_a_big_buyer(
    local: RunningLocal, store: Tables, behaviour: str, orders_ago_days: list[int], branch: list[str], score: int
) -> None:
    email = f"buyer.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    now = local.now()
    for days in orders_ago_days:
        at = now - timedelta(days=days)
        store.events(
            contact_id=contact_id, at_id=f"{at.isoformat()}#e{days}", type="order.placed", source="test"
        ).save()
    store.events(contact_id=contact_id, at_id=f"{now.isoformat()}#page", type="checkout.started", source="test").save()
    execution = start(local, behaviour, contact_id, trigger=validation.SAMPLE_CONTEXT["trigger"])
    local.advance(seconds=0)  # no wait: it ends at once
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == ["Check big-buyer", "big-buyer?", *branch]
    assert store.contacts.get(contact_id, consistent_read=True).score == score
