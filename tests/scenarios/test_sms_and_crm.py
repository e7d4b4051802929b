"""send_sms and notify_crm compiled from a fixture and executed by moto's Step Functions interpreter against the
deployed act function: the SMS lands in the local outbox, a real HTTP server receives the CRM's signed POST."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.localprocess import RunningLocal
from shared.journeys.compiler import RETRY
from shared.outbox import send_id
from shared.storage import Consent, Tables
from tests.conftest import CRM_SECRET, SMS_SENDER_ID
from tests.crm_receiver import CrmReceiver
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start

PARIS = ZoneInfo("Europe/Paris")
TRIGGER = {
    "type": "checkout.started",
    "event_id": "t",
    "properties": {"recovery_url": "https://boutique.example/r/1", "lines": [], "currency": "EUR"},
}


@pytest.fixture(scope="module")
def machine(local: RunningLocal) -> str:
    return deploy_fixture(local, "sms-and-crm")


@pytest.fixture
def receiver(crm: CrmReceiver) -> CrmReceiver:
    crm.reset()
    return crm


def phone() -> str:
    # A British mobile: the French SMS hours (tests/e2e/test_sending_habits) would hold a French one back at
    # whatever hour the session's clock shows. Never ending in 99, which moto's SNS lists as opted out.
    return f"+447{uuid.uuid4().int % 10**8:08d}0"


def in_the_day(local: RunningLocal) -> datetime:
    """The runtime's now, moved on to the next 10:00 when it falls in the SMS quiet hours (scenarios/sending.yaml:
    21:00-08:00 where the contact lives, Paris for these contacts), which would hold the SMS back."""
    now = local.now()
    paris = now.astimezone(PARIS)
    if time(8) <= paris.time() < time(21):
        return now
    day = paris.date() if paris.time() < time(8) else paris.date() + timedelta(days=1)
    morning = datetime.combine(day, time(10), tzinfo=PARIS)
    local.advance(to=morning)
    return morning


def contact(
    local: RunningLocal, store: Tables, number: str, sms_consent: str | None = "granted", email: str | None = None
) -> str:
    consent = Consent(state=sms_consent, level="single_opt_in", source="test", at=local.now())
    fields: dict[str, Any] = {"phone": number, "first_name": "Camille"}
    if sms_consent:
        fields["sms_consent"] = consent
    return add_contact(store, email or f"sms.{uuid.uuid4().hex[:8]}@example.com", **fields)


def test_the_sms_goes_out_once_and_the_crm_receives_one_signed_post(
    local: RunningLocal, store: Tables, machine: str, receiver: CrmReceiver
) -> None:
    # Given a contact who agreed to SMS, in the day
    began = in_the_day(local).replace(microsecond=0)  # as the outbox shows it
    number, address = phone(), f"sms.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = contact(local, store, number, email=address)

    # When the scenario runs for them
    execution = start(local, machine, contact_id, trigger=TRIGGER)
    local.advance(seconds=0)

    # Then it ran through at once: the SMS, the email, the CRM's POST, all at the moment it started
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Send SMS s1-reminder",
        "Send email e1-reminder",
        "Notify CRM handoff",
    ]
    # The outbox lists both channels together, oldest first: the SMS before the email sent after it.
    ours = [m for m in local.outbox() if m["to"] in (address, number)]
    assert [m["channel"] for m in ours] == ["sms", "email"]
    assert [datetime.fromisoformat(m["sent_at"]) for m in ours] == [began, began]
    [message] = local.outbox(to=number)
    del message["sent_at"]
    assert message == {
        "channel": "sms",
        "to": number,
        "from": SMS_SENDER_ID,
        "subject": None,
        "text": "La Boutique : Camille, votre panier vous attend. Reprenez votre commande : "
        "https://boutique.example/r/1\nSTOP : répondez STOP",
        "html": None,
        "headers": {},
        "scenario": "sms-and-crm",
        "step": "s1-reminder",
        "segments": 1,
        "encoding": "GSM-7",
    }
    [received] = receiver.received
    assert received.verifies_with(CRM_SECRET)
    assert not received.verifies_with("another-secret")
    assert received.headers["x-parcours-delivery"] == send_id(execution, "handoff")
    body = received.json()
    assert (body["type"], body["scenario"], body["step"]) == ("qualified", "sms-and-crm", "handoff")
    assert (body["contact"]["contact_id"], body["contact"]["phone"]) == (contact_id, number)
    assert body["trigger"] == {"type": "checkout.started", "properties": TRIGGER["properties"]}


def test_a_contact_without_sms_consent_gets_no_sms_and_the_crm_is_still_notified(
    local: RunningLocal, store: Tables, machine: str, receiver: CrmReceiver
) -> None:
    number = phone()
    execution = start(local, machine, contact(local, store, number, sms_consent=None), trigger=TRIGGER)
    local.advance(seconds=0)
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert local.outbox(to=number) == []
    assert len(receiver.received) == 1


def test_a_crm_answering_503_is_retried_by_the_task_with_the_same_delivery_id(
    local: RunningLocal, store: Tables, machine: str, receiver: CrmReceiver
) -> None:
    receiver.answer(503)
    in_the_day(local)
    number = phone()
    execution = start(local, machine, contact(local, store, number), trigger=TRIGGER)
    # The first retry comes within the Task's first interval (full jitter: anywhere from 0 to it)
    interval = RETRY[0]["IntervalSeconds"]
    assert isinstance(interval, int)
    local.advance(seconds=interval)
    assert described(local, execution)["status"] == "SUCCEEDED"
    first, retry = receiver.received
    assert first.headers["x-parcours-delivery"] == retry.headers["x-parcours-delivery"] == send_id(execution, "handoff")
    assert retry.verifies_with(CRM_SECRET)
    assert len(local.outbox(to=number)) == 1  # the SMS before it was not sent again


def test_a_crm_refusing_with_400_fails_the_step_without_retrying(
    local: RunningLocal, store: Tables, machine: str, receiver: CrmReceiver
) -> None:
    receiver.answer(400)
    in_the_day(local)
    execution = start(local, machine, contact(local, store, phone()), trigger=TRIGGER)
    local.advance(seconds=0)  # no retry: it fails at once
    assert described(local, execution)["status"] == "FAILED"
    assert entered_states(local, execution)[-2:] == ["Notify CRM handoff", "Step failed"]
    assert len(receiver.received) == 1
