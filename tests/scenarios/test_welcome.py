"""The welcome scenario's ASL, deployed by the real template and executed by moto's Step Functions interpreter."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, described, entered_states, start


def welcome(local: RunningLocal) -> str:
    return local.physical_ids()["WelcomeStateMachine"]


def test_a_consenting_contact_gets_four_emails_at_j0_j2_j5_j8(local: RunningLocal, store: Tables) -> None:
    # Given a contact who agreed to marketing email
    email = f"lou.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    began = local.now()

    # When the welcome state machine runs for them, up to the eighth day
    execution = start(local, welcome(local), contact_id)
    local.advance(to=began + timedelta(days=8))

    # Then every state ran in order, and four emails went out at J+0, J+2, J+5 and J+8 to the second (an email's
    # Date header has whole seconds), the last one ending the execution
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Send email e1-welcome",
        "Wait 2d until J+2",
        "Send email e2-value",
        "Wait 3d until J+5",
        "Send email e3-social-proof",
        "Wait 3d until J+8",
        "Send email e4-offer",
    ]
    messages = local.outbox(to=email)
    assert [m["step"] for m in messages] == ["e1-welcome", "e2-value", "e3-social-proof", "e4-offer"]
    assert messages[0]["subject"] == "Bienvenue, Lou !"
    assert [datetime.fromisoformat(m["sent_at"]) for m in messages] == [
        (began + timedelta(days=days)).replace(microsecond=0) for days in (0, 2, 5, 8)
    ]


def test_without_consent_every_send_is_skipped_and_nothing_goes_out(local: RunningLocal, store: Tables) -> None:
    email = f"no.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent="denied")
    began = local.now()
    execution = start(local, welcome(local), contact_id)
    local.advance(to=began + timedelta(days=8))  # the series' length
    result = described(local, execution)
    assert result["status"] == "SUCCEEDED"
    last = json.loads(result["output"])["last"]
    assert (last["status"], last["answer"]["reason"]) == ("skipped", "no marketing consent")
    assert local.outbox(to=email) == []


def test_a_send_that_ses_refuses_ends_in_step_failed_and_the_execution_fails(
    local: RunningLocal, store: Tables
) -> None:
    # Given a stored address SES will not accept
    execution = start(local, welcome(local), add_contact(store, "not-an-address"))
    local.advance(seconds=0)  # no retry: it fails at once
    result = described(local, execution)
    assert result["status"] == "FAILED"
    assert entered_states(local, execution) == ["Send email e1-welcome", "Step failed"]
    assert result.get("error") == "StepFailed"


def test_a_retried_send_task_does_not_send_twice(local: RunningLocal, store: Tables) -> None:
    email = f"retry.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email)
    payload = {
        "action": "send_email",
        "scenario": "welcome",
        "step": "e1-welcome",
        "template": "welcome/1-welcome",
        "category": "marketing",
        "execution": f"arn:aws:states:eu-west-3:123456789012:execution:x:{contact_id}",
        "contact_id": contact_id,
        "trigger": {},
    }
    act = local.physical_ids()["ActFunction"]
    answers = [
        json.loads(local.client("lambda").invoke(FunctionName=act, Payload=json.dumps(payload))["Payload"].read())
        for _ in range(2)
    ]
    assert [a["status"] for a in answers] == ["sent", "duplicate"]
    assert len(local.outbox(to=email)) == 1


def test_no_test_leaks_the_runtime_endpoint_into_the_environment() -> None:
    assert "AWS_ENDPOINT_URL" not in os.environ
