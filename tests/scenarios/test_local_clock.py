"""The local runtime's skipped clock stands still while a Task runs: the real time a slow call takes is no simulated
time, so later sends keep their schedule to the second. (How a scaled runtime pins a Task to its execution's
instant is checked in tests/unit/test_settings_and_clock.py, without starting one.)"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.crm_receiver import CrmReceiver
from tests.scenarios.conftest import add_contact, deploy_fixture, described, start


def test_a_slow_task_before_a_wait_does_not_push_the_next_send(
    local: RunningLocal, store: Tables, crm: CrmReceiver
) -> None:
    # Given a CRM that takes 0.75 real seconds to answer
    crm.reset()
    crm.answer(200, delay=0.75)
    email = f"slow.{uuid.uuid4().hex[:8]}@example.com"
    machine, contact_id = deploy_fixture(local, "slow-task"), add_contact(store, email)
    # When the scenario sends E1, notifies the CRM, waits a day and sends E2
    started = local.now()
    execution = start(local, machine, contact_id)
    local.advance(seconds=0)
    # Then the CRM was called (slowly) at the start, and the clock had not moved meanwhile ...
    assert len([r for r in crm.received if email in r.body.decode()]) == 1
    assert local.now() == started
    # ... so E2 goes out a day after the start to the second, not a day plus the CRM's delay
    local.advance(to=started + timedelta(days=1))
    assert described(local, execution)["status"] == "SUCCEEDED"
    sent = [(m["step"], datetime.fromisoformat(m["sent_at"])) for m in local.outbox(to=email)]
    assert sent == [("e1", started), ("e2", started + timedelta(days=1))]
