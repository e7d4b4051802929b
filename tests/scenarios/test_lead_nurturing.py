"""lead-nurturing as template.yaml deploys it, executed by moto's interpreter: a lead whose score crosses 50
becomes SQL, the CRM (a real HTTP server) receives one signed handoff, the lead joins the sales list and, with
consent, is told an expert will call."""

from __future__ import annotations

import uuid

import pytest

from infra.localprocess import RunningLocal
from shared.outbox import send_id
from shared.storage import Tables
from tests.conftest import CRM_SECRET
from tests.crm_receiver import CrmReceiver
from tests.scenarios.conftest import add_contact, entered_states, finished, machine, start

CROSSED = {"type": "score.changed", "event_id": "t", "properties": {"old": 45, "new": 60, "points": 15}}
STEPS = [
    "Set lifecycle_stage (stage-sql)",
    "Notify CRM handoff",
    "Add to list sales-qualified (sales-list)",
    "Send email e1-meet-sales",
    "Done",
]


@pytest.mark.parametrize("consent", ["granted", None])
def test_a_qualified_lead_is_handed_to_sales_once_and_told_with_consent_only(
    local: RunningLocal, store: Tables, crm: CrmReceiver, consent: str | None
) -> None:
    # Given a lead with a score of 60, with or without marketing consent
    crm.reset()
    email = f"lead.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent=consent, score=60, last_name="Martin")
    # When the scenario runs for the score that crossed 50
    execution = start(local, machine(local, "lead-nurturing"), contact_id, trigger=CROSSED)
    assert finished(local, execution)["status"] == "SUCCEEDED"
    # Then every step ran, the CRM got one signed handoff naming the lead and why, and the lead is in the sales list
    assert entered_states(local, execution) == STEPS
    [handoff] = crm.for_delivery(send_id(execution, "handoff"))
    assert handoff.verifies_with(CRM_SECRET)
    body = handoff.json()
    assert (body["type"], body["scenario"]) == ("qualified", "lead-nurturing")
    assert (body["contact"]["email"], body["contact"]["score"]) == (email, 60)
    assert body["contact"]["attributes"]["lifecycle_stage"] == "sql"
    assert body["trigger"] == {"type": "score.changed", "properties": CROSSED["properties"]}
    contact = store.contacts.get(contact_id, consistent_read=True)
    assert contact.lists == {"sales-qualified"}
    # and the email announcing the call went out only with consent
    assert [m["step"] for m in local.outbox(to=email)] == (["e1-meet-sales"] if consent else [])
