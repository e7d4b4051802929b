"""notify_crm steps against a real HTTP server on 127.0.0.1: what the CRM receives, how it is signed, and which
answers are retried."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.runtime import free_port
from shared import clock
from shared.journeys import compiler
from shared.messages import actions
from shared.outbox import send_id
from shared.people import crm
from shared.settings import Settings
from shared.storage import tables
from tests.crm_receiver import CrmReceiver

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SECRET = "crm-test-secret"
EXECUTION = "arn:aws:states:eu-west-3:123456789012:execution:parcours-lead-nurturing:x"


@pytest.fixture
def receiver() -> Iterator[CrmReceiver]:
    server = CrmReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def settings(aws: dict[str, str], receiver: CrmReceiver) -> Settings:
    settings = Settings.from_environ({**aws, "PARCOURS_CRM_URL": receiver.url, "PARCOURS_CRM_SECRET": SECRET})
    contact = tables(settings).contacts(
        contact_id="c1",
        email="camille@example.com",
        first_name="Camille",
        last_name="Martin",
        phone="+33612345678",
        locale="fr",
        score=55,
        lists={"prospects"},
        attributes={"plan": "pro"},
        orders_count=2,
        total_spent=59.8,
        created_at=NOW,
        updated_at=NOW,
    )
    contact.save()
    return settings


def payload(**fields: Any) -> dict[str, Any]:
    return {
        "action": "notify_crm",
        "type": "qualified",
        "scenario": "lead-nurturing",
        "step": "handoff",
        "contact_id": "c1",
        "execution": EXECUTION,
        "trigger": {"type": "score.changed", "event_id": "e1", "properties": {"old": 45, "new": 55, "points": 10}},
        **fields,
    }


def notify(settings: Settings, **fields: Any) -> dict[str, Any]:
    return crm.notify(payload(**fields), settings, NOW, lambda: SECRET)


def test_the_crm_gets_the_contact_and_the_trigger_as_signed_json(settings: Settings, receiver: CrmReceiver) -> None:
    result = notify(settings)
    assert result["status"] == "sent"
    [received] = receiver.received
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-parcours-delivery"] == send_id(EXECUTION, "handoff")
    assert received.json() == {
        "type": "qualified",
        "scenario": "lead-nurturing",
        "step": "handoff",
        "occurred_at": "2026-11-24T09:00:00+00:00",
        "contact": {
            "contact_id": "c1",
            "email": "camille@example.com",
            "first_name": "Camille",
            "last_name": "Martin",
            "phone": "+33612345678",
            "locale": "fr",
            "score": 55,
            "lists": ["prospects"],
            "attributes": {"plan": "pro"},
            "orders_count": 2,
            "total_spent": 59.8,
        },
        "trigger": {"type": "score.changed", "properties": {"old": 45, "new": 55, "points": 10}},
    }


def test_the_signature_verifies_with_the_crm_secret_and_not_with_another(
    settings: Settings, receiver: CrmReceiver
) -> None:
    before = int(clock.wall_time())
    notify(settings)  # at NOW, a simulated instant
    after = clock.wall_time()
    [received] = receiver.received
    assert received.verifies_with(SECRET)
    assert not received.verifies_with("another-secret")
    timestamp = int(received.headers["x-parcours-signature"].split(",")[0].removeprefix("t="))
    assert before <= timestamp <= after  # the receiver's wall clock, whatever the simulated time


def test_the_delivery_id_is_stable_for_an_execution_and_step_and_differs_otherwise(
    settings: Settings, receiver: CrmReceiver
) -> None:
    receiver.answer(503)
    with pytest.raises(crm.CrmDeferred):
        notify(settings)
    notify(settings)  # the Task's retry
    notify(settings, step="handoff-2")
    notify(settings, execution=EXECUTION + "-2")
    deliveries = [r.headers["x-parcours-delivery"] for r in receiver.received]
    assert deliveries[0] == deliveries[1]
    assert len(set(deliveries)) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_busy_or_failing_crm_is_retried(settings: Settings, receiver: CrmReceiver, status: int) -> None:
    receiver.answer(status)
    with pytest.raises(crm.CrmDeferred, match=str(status)):
        notify(settings)
    assert notify(settings)["status"] == "sent"  # nothing recorded as done: the retry posts again
    assert len(receiver.received) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 302])
def test_a_refusal_is_not_retried(settings: Settings, receiver: CrmReceiver, status: int) -> None:
    receiver.answer(status)
    with pytest.raises(crm.CrmRefused, match=str(status)):
        notify(settings)
    assert len(receiver.received) == 1  # a redirect is not followed either


def test_the_compiled_tasks_retry_crm_deferred_and_never_crm_refused() -> None:
    assert "CrmDeferred" in compiler.RETRYABLE
    assert "CrmRefused" not in compiler.RETRYABLE
    assert crm.CrmDeferred.__name__ == "CrmDeferred"  # the error name Step Functions matches


def test_an_unreachable_crm_is_retried(aws: dict[str, str], settings: Settings) -> None:
    closed = Settings.from_environ(
        {**aws, "PARCOURS_CRM_URL": f"http://127.0.0.1:{free_port()}/x", "PARCOURS_CRM_SECRET": SECRET}
    )
    with pytest.raises(crm.CrmDeferred, match="unreachable"):
        crm.notify(payload(), closed, NOW, lambda: SECRET)


def test_a_crm_slower_than_the_timeout_is_retried(receiver: CrmReceiver) -> None:
    receiver.answer(200, delay=1.0)
    with pytest.raises(crm.CrmDeferred, match="unreachable"):
        crm.post(receiver.url, b"{}", {"Content-Type": "application/json"}, timeout=0.2)


def test_once_the_crm_accepted_a_retried_task_does_not_post_again(settings: Settings, receiver: CrmReceiver) -> None:
    assert notify(settings)["status"] == "sent"
    assert notify(settings) == {"status": "duplicate", "reason": "the CRM already accepted this notification"}
    assert len(receiver.received) == 1


def test_without_a_crm_endpoint_the_step_is_skipped(aws: dict[str, str], receiver: CrmReceiver) -> None:
    settings = Settings.from_environ(aws)
    result = actions.perform(payload(), settings)
    assert result == {"status": "skipped", "reason": "no CRM endpoint configured"}
    assert receiver.received == []


def test_a_contact_erased_meanwhile_is_skipped(settings: Settings, receiver: CrmReceiver) -> None:
    assert notify(settings, contact_id="gone") == {"status": "skipped", "reason": "contact not found"}
    assert receiver.received == []


def test_the_act_function_signs_with_the_configured_secret(settings: Settings, receiver: CrmReceiver) -> None:
    assert actions.perform(payload(), settings)["status"] == "sent"
    assert receiver.received[0].verifies_with(SECRET)


@pytest.mark.parametrize(
    ("fields", "words"), [({"type": "Qualified Lead"}, "notify_crm type"), ({"type": None}, "notify_crm type")]
)
def test_a_payload_the_compiler_never_makes_is_refused(settings: Settings, fields: dict[str, Any], words: str) -> None:
    with pytest.raises(crm.InvalidNotification, match=words):
        notify(settings, **fields)


def test_a_crm_url_that_is_not_http_is_a_configuration_error(aws: dict[str, str]) -> None:
    from shared.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="PARCOURS_CRM_URL"):
        Settings.from_environ({**aws, "PARCOURS_CRM_URL": "file:///etc/passwd"})


def test_the_body_is_compact_json_with_non_ascii_kept(settings: Settings, receiver: CrmReceiver) -> None:
    tables(settings).contacts.get("c1").update(actions=[tables(settings).contacts.first_name.set("Zoé")])
    notify(settings)
    raw = receiver.received[0].body
    assert "Zoé".encode() in raw
    assert json.loads(raw)["contact"]["first_name"] == "Zoé"


def test_a_garbled_answer_is_retried() -> None:
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def answer_nonsense() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")

        threading.Thread(target=answer_nonsense, daemon=True).start()
        with pytest.raises(crm.CrmDeferred, match="unreachable"):
            crm.post(f"http://127.0.0.1:{server.getsockname()[1]}/x", b"{}", {})
