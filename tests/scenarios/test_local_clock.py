"""The local runtime's compressed clock: the real milliseconds a Task takes would be magnified by the time scale,
so each execution keeps its own timeline, and later sends keep their schedule."""

from __future__ import annotations

import uuid
from datetime import datetime

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.crm_receiver import CrmReceiver
from tests.scenarios.conftest import add_contact, deploy_fixture, finished, start


def test_a_slow_task_before_a_wait_does_not_push_the_next_send(
    local: RunningLocal, store: Tables, crm: CrmReceiver
) -> None:
    # Given a CRM that takes 0.75 s to answer: 9 simulated hours at this time scale (43200)
    crm.reset()
    crm.answer(200, delay=0.75)
    email = f"slow.{uuid.uuid4().hex[:8]}@example.com"
    machine, contact_id = deploy_fixture(local, "slow-task"), add_contact(store, email)
    # When the scenario sends E1, notifies the CRM, waits a day and sends E2
    started = local.now()
    execution = start(local, machine, contact_id)
    assert finished(local, execution)["status"] == "SUCCEEDED"
    # Then E2 goes out a day after the start, not a day plus the CRM's magnified delay
    e1, e2 = (datetime.fromisoformat(m["sent_at"]) for m in local.outbox(to=email))
    hours = (e2 - started).total_seconds() / 3600
    assert 24 <= hours <= 27, f"E2 came {hours:.1f} simulated hours after the start"
    assert e1 < e2
