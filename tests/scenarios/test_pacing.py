"""The sending habits in a running state machine (moto's interpreter): a send held back by a cap waits in a Wait
state for the moment the Task named, then goes; a scenario that skips drops it and goes on."""

from __future__ import annotations

import uuid
from datetime import timedelta

from infra.localprocess import RunningLocal
from shared.journeys import pacing
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, sent_at, start

TWO_IN_THREE_DAYS = pacing.Policy(caps=(pacing.Cap("email", 2, 3 * 86400),))


def test_a_capped_send_waits_until_the_cap_allows_it_then_the_series_goes_on(
    local: RunningLocal, store: Tables
) -> None:
    # Given a series of three emails a day apart, under a cap of two emails in three days
    machine = deploy_fixture(local, "paced", policy=TWO_IN_THREE_DAYS)
    email = f"paced.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    now = local.now()
    began = now.replace(microsecond=0)  # as an email's Date header shows it

    # When a consenting contact goes through it, until three days later
    execution = start(local, machine, contact_id)
    local.advance(to=now + timedelta(days=3))

    # Then the third email, due at J+2, waited until the first left the three-day window, and the series went on
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert sent_at(local, email) == {
        "e1": began,
        "e2": began + timedelta(days=1),
        "e3": began + timedelta(days=3),
    }
    states = entered_states(local, execution)
    assert states.count("Wait until e3 may go") == 1
    assert "Wait until e2 may go" not in states
    assert states[-1:] == ["Set paced_done (after)"]


def test_a_scenario_that_skips_capped_sends_drops_the_third_email_and_goes_on(
    local: RunningLocal, store: Tables
) -> None:
    machine = deploy_fixture(local, "paced", policy=TWO_IN_THREE_DAYS, when_capped="skip")
    email = f"skipped.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    now = local.now()
    began = now.replace(microsecond=0)  # as an email's Date header shows it
    execution = start(local, machine, contact_id)
    # The third email was due at J+2: dropped then, and the execution ends at once
    local.advance(to=now + timedelta(days=2))
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert sent_at(local, email) == {"e1": began, "e2": began + timedelta(days=1)}
    assert "Wait until e3 may go" not in entered_states(local, execution)
    assert store.contacts.get(contact_id, consistent_read=True).attributes["paced_done"] is True
