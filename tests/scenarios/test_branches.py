"""Every kind of step and every branch, compiled from a fixture and executed by moto's Step Functions interpreter
against the deployed act function."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start


@pytest.fixture(scope="module")
def branching(local: RunningLocal) -> str:
    return deploy_fixture(local, "branching")


def email() -> str:
    return f"branch.{uuid.uuid4().hex[:8]}@example.com"


def test_an_incomplete_profile_gets_the_reminder_and_leaves(local: RunningLocal, store: Tables, branching: str) -> None:
    address = email()
    contact_id = add_contact(store, address, last_name=None)
    execution = start(local, branching, contact_id, bucket=10)
    local.advance(seconds=0)  # no wait on this path: it ends at once
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == ["Check profile", "profile?", "Send email reminder"]
    assert [m["step"] for m in local.outbox(to=address)] == ["reminder"]
    assert store.contacts.get(contact_id).attributes.as_dict() == {}


@pytest.mark.parametrize(
    ("bucket", "variant"), [(0, "variant-a"), (29, "variant-a"), (30, "variant-b"), (99, "variant-b")]
)
def test_a_complete_profile_gets_tips_then_its_variant_then_the_updates(
    local: RunningLocal, store: Tables, branching: str, bucket: int, variant: str
) -> None:
    address = email()
    contact_id = add_contact(store, address, last_name="Durand")
    started = local.now()
    execution = start(local, branching, contact_id, bucket=bucket)
    local.advance(to=started + timedelta(days=1))
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Check profile",
        "profile?",
        "Send email tips",
        "Wait 1d until J+1",
        "Split subject-test",
        f"Send email {variant}",
        "Set onboarded (mark)",
        "Add to list clients-fideles (loyal)",
        "Check vip-check",
        "vip-check?",
        "Remove from list clients-fideles (leave-list)",
    ]
    messages = local.outbox(to=address)
    assert [(m["step"], datetime.fromisoformat(m["sent_at"])) for m in messages] == [
        ("tips", started),
        (variant, started + timedelta(days=1)),
    ]
    contact = store.contacts.get(contact_id, consistent_read=True)
    assert contact.attributes.as_dict() == {"onboarded": True}
    assert not contact.lists  # added, then removed by the second if
    # Each change went through the queue as an event other scenarios can start on, into the contact's history
    history = sorted(e.type for e in store.events.query(contact_id) if e.source == "parcours")
    assert history == ["list.joined", "list.left"]


def test_a_contact_erased_mid_scenario_is_skipped_by_every_action(
    local: RunningLocal, store: Tables, branching: str
) -> None:
    execution = start(local, branching, uuid.uuid4().hex, bucket=50)
    local.advance(seconds=0)
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution)[-1:] == ["Send email reminder"]  # no profile: the else branch
