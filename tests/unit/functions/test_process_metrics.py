"""The process handler counts the events that identify no one (EventWithoutIdentity), and only those."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import InvocationContext
from shared.clock import Clock
from shared.events import ContactFacts, Event
from shared.settings import get_settings
from shared.sources import tracking


@pytest.fixture
def handler(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        **aws,
        "POWERTOOLS_METRICS_NAMESPACE": "parcours",
        "POWERTOOLS_SERVICE_NAME": "parcours",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    from functions.process import app

    app._handle_once.cache_clear()
    yield app.lambda_handler
    app._handle_once.cache_clear()
    get_settings.cache_clear()


def sqs_event(*events: Event) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": "r",
                "body": event.to_json(),
                "attributes": {"MessageGroupId": "g", "MessageDeduplicationId": f"d{index}"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-3:123456789012:parcours-events.fifo",
                "awsRegion": "eu-west-3",
            }
            for index, event in enumerate(events)
        ]
    }


def metrics_of(output: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[metric["Name"]] = document[metric["Name"]]
    return values


def test_an_event_without_identity_is_counted_and_an_anonymous_visit_is_not(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    now = Clock().now()
    nobody = Event(
        "segment#n", "checkout.started", "tracking", "track", now.isoformat(), now.isoformat(), ContactFacts()
    )
    visit = tracking.to_event("page", {"anonymousId": "a1", "properties": {"path": "/"}}, now)
    answer = handler(sqs_event(nobody, visit), InvocationContext.of("process"))
    assert answer == {"batchItemFailures": []}
    metrics = metrics_of(capsys.readouterr().out)
    assert metrics["EventProcessed"] == [1.0, 1.0]
    assert metrics["EventWithoutIdentity"] == [1.0]  # the nobody, not the anonymous visitor


def test_a_redelivered_event_without_identity_is_counted_once(handler: Any, capsys: pytest.CaptureFixture[str]) -> None:
    now = Clock().now()
    nobody = Event(
        "segment#n2", "form.submitted", "tracking", "track", now.isoformat(), now.isoformat(), ContactFacts()
    )
    handler(sqs_event(nobody), InvocationContext.of("process"))
    assert metrics_of(capsys.readouterr().out)["EventWithoutIdentity"] == [1.0]
    handler(sqs_event(nobody), InvocationContext.of("process"))
    assert "EventWithoutIdentity" not in metrics_of(capsys.readouterr().out)


def test_a_failed_contacts_later_events_wait_with_it_and_the_failure_is_logged_without_its_text(
    handler: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.process import app

    now = Clock().now().isoformat()
    first, second, other = (
        Event(f"test#{n}", "contact.subscribed", "test", "test", now, now, ContactFacts(email=f"{n}@example.com"))
        for n in ("lou", "lou-again", "sam")
    )
    event = sqs_event(first, second, other)
    event["Records"][2]["attributes"]["MessageGroupId"] = "another contact"
    handled: list[str] = []

    def handle(event: Event) -> dict[str, Any]:
        handled.append(event.event_id)
        if event.event_id == "test#lou":
            raise RuntimeError("DynamoDB said no about lou@example.com")
        return {}

    once: Any = lambda: handle  # noqa: E731
    once.cache_clear = lambda: None  # as the fixture clears the real one
    monkeypatch.setattr(app, "_handle_once", once)
    answer = handler(event, InvocationContext.of("process"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert handled == ["test#lou", "test#sam"]
    assert metrics_of(capsys.readouterr().out)["EventRetried"] == [1.0]
    [retried] = [record for record in caplog.records if record.getMessage() == "event failed, to be retried"]
    assert (getattr(retried, "error", None), getattr(retried, "message_id", None)) == ("RuntimeError", "m0")
    assert "lou@example.com" not in caplog.text + str(vars(retried))
