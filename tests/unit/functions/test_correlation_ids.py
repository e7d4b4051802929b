"""Every log line of an invocation carries a correlation id (Powertools' `correlation_id`): the API Gateway request
id for the HTTP functions, the source's event id for the process function (ingest logs it with the request id, so
one event is followed from the request to its processing), the execution for the act function. Never an address."""

from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import InvocationContext
from shared.clock import Clock
from shared.events import ContactFacts, Event
from tests.unit.functions.test_process_metrics import handler as process_handler  # noqa: F401 (fixture)
from tests.unit.functions.test_process_metrics import sqs_event


@pytest.fixture
def ingest(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tests.conftest import handler_of

    yield from handler_of("functions.ingest.app", aws, monkeypatch)


def http_event(path: str, request_id: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "requestId": request_id,
            "stage": "$default",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
        },
        "body": "",
        "isBase64Encoded": False,
    }


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_ingest_functions_logs_carry_the_api_gateway_request_id(ingest: Any) -> None:
    from functions.ingest import app

    ingest(http_event("/nowhere", "req-7f3a"), InvocationContext.of("ingest"))
    assert app.logger.get_correlation_id() == "req-7f3a"


def test_the_process_functions_logs_carry_each_events_own_id(
    process_handler: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.process import app

    now = Clock().now().isoformat()
    first = Event("segment#c1", "form.submitted", "tracking", "track", now, now, ContactFacts())
    second = Event("segment#c2", "form.submitted", "tracking", "track", now, now, ContactFacts())
    seen: list[str | None] = []
    original = app.logger.set_correlation_id

    def record(value: str | None) -> None:
        seen.append(value)
        original(value)

    monkeypatch.setattr(app.logger, "set_correlation_id", record)
    process_handler(sqs_event(first, second), InvocationContext.of("process"))
    assert [value for value in seen if value is not None and value.startswith("segment#")] == [
        "segment#c1",
        "segment#c2",
    ]
    assert app.logger.get_correlation_id() == "segment#c2"
