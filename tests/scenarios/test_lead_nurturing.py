"""lead-nurturing as template.yaml deploys it, executed by moto's interpreter: a lead that became sales-qualified
joins the sales list and, with consent, is told an expert will call. The CRM hears of it from the CRM handoff
(tests/e2e/test_crm_handoff.py), never from the scenario: one POST per qualification."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.crm_receiver import CrmReceiver
from tests.scenarios.conftest import add_contact, described, entered_states, machine, start

STEPS = ["Add to list sales-qualified (sales-list)", "Send email e1-meet-sales"]


@pytest.mark.parametrize("consent", ["granted", None])
def test_a_qualified_lead_joins_the_sales_list_and_is_told_with_consent_only(
    local: RunningLocal, store: Tables, crm: CrmReceiver, consent: str | None
) -> None:
    # Given a lead the scoring made SQL, with or without marketing consent
    email = f"lead.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent=consent, score=60, last_name="Martin")
    received = len(crm.received)
    # When the scenario runs for its contact.qualified event, now
    now = local.now()
    qualified = {
        "type": "contact.qualified",
        "event_id": "t",
        "properties": {"score": 60, "stage": "sql", "qualified_at": now.isoformat()},
    }
    execution = start(local, machine(local, "lead-nurturing"), contact_id, trigger=qualified)
    local.advance(seconds=0)  # no wait: it ends at once
    assert described(local, execution)["status"] == "SUCCEEDED"
    # Then it joined the sales list, and the email announcing the call went out only with consent
    assert entered_states(local, execution) == STEPS
    contact = store.contacts.get(contact_id, consistent_read=True)
    assert contact.lists == {"sales-qualified"}
    sent = [(m["step"], datetime.fromisoformat(m["sent_at"])) for m in local.outbox(to=email)]
    assert sent == ([("e1-meet-sales", now)] if consent else [])
    # and the scenario itself posted nothing to the CRM (the handoff does, once)
    assert [r for r in crm.received[received:] if email in r.body.decode()] == []
