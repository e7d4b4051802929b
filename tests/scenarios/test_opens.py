"""`opened`: a real open (POST /_local/ses-event -> the stack's SNS topic -> feedback -> queue -> process) decides
the branch, read from the contact's own history when the condition is reached."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from infra import validation
from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start

TRIGGER = validation.SAMPLE_CONTEXT["trigger"]  # what the templates of the fixture's emails read


@pytest.fixture(scope="module")
def opens(local: RunningLocal) -> str:
    return deploy_fixture(local, "opens")


def sent(local: RunningLocal, email: str) -> list[tuple[str, datetime]]:
    return [(message["step"], datetime.fromisoformat(message["sent_at"])) for message in local.outbox(to=email)]


def history(store: Tables, contact_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(event.type, event.properties or {}) for event in store.events.query(contact_id)]


def test_an_open_of_the_first_email_takes_the_opened_branch(local: RunningLocal, store: Tables, opens: str) -> None:
    # Given a contact who received the first email of the scenario
    email = f"reader.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    started = local.now()
    execution = start(local, opens, contact_id, trigger=TRIGGER)
    local.advance(seconds=0)  # the first email goes out at once; the scenario then waits 2 days
    assert sent(local, email) == [("hello", started)]

    # When they open it, a day later (SES publishes the Open event on the configuration set's topic)
    local.advance(to=started + timedelta(days=1))
    status, answer = local.ses_event(to=email, step="hello", type="open")
    assert (status, answer["type"]) == (202, "Open")

    # Then the open is in their history (SNS, the feedback function and the events queue ran within the request),
    # mapped back to the scenario and step by the message tags ...
    [properties] = [p for k, p in history(store, contact_id) if k == "email.opened"]
    assert properties["scenario"] == "opens"
    assert properties["step"] == "hello"
    assert properties["message_id"] == answer["message_id"]
    # (a click goes the same way, with its link)
    link = "https://boutique.example/pricing"
    assert local.ses_event(message_id=answer["message_id"], type="click", link=link)[0] == 202
    [click] = [p for k, p in history(store, contact_id) if k == "email.clicked"]
    assert (click["step"], click["link"]) == ("hello", link)
    # ... and when the wait ends, 2 days after the first email, the condition reads it
    local.advance(to=started + timedelta(days=2))
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution)[-2:] == ["read-it?", "Send email more"]
    assert sent(local, email) == [("hello", started), ("more", started + timedelta(days=2))]


def test_without_an_open_the_other_branch_runs(local: RunningLocal, store: Tables, opens: str) -> None:
    email = f"silent.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    started = local.now()
    execution = start(local, opens, contact_id, trigger=TRIGGER)
    local.advance(to=started + timedelta(days=2))
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution)[-2:] == ["read-it?", "Send email again"]
    assert sent(local, email) == [("hello", started), ("again", started + timedelta(days=2))]
    assert [kind for kind, _ in history(store, contact_id)] == []


def test_the_local_route_refuses_what_ses_would_never_publish(local: RunningLocal) -> None:
    assert local.ses_event(to="nobody@example.com", step="hello", type="open")[0] == 404
    assert local.ses_event(to="nobody@example.com", step="hello", type="bounce")[0] == 404
    assert local.ses_event(to="nobody@example.com", step="hello", type="unsubscribe")[0] == 400  # not an SES event
    assert local.ses_event(to="nobody@example.com", step="hello", type="bounce", bounce_type="Soft")[0] == 400
    assert local.ses_event(message_id="x", type="click")[0] == 400  # a click needs its link
