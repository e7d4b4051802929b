"""HTTP API -> verified, normalised event on the FIFO queue. Answers within milliseconds; no processing here."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import dispatch, ingestion, secrets
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()


def _raw_body() -> bytes:
    """The exact bytes the sender signed."""
    event = app.current_event
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def _answer(code: int, **fields: Any) -> Response[dict[str, Any]]:
    return Response(status_code=code, content_type=content_types.APPLICATION_JSON, body=fields)


@app.post("/webhooks/shopify")
def shopify() -> Response[dict[str, Any]]:
    settings = get_settings()
    headers = {name.lower(): value for name, value in (app.current_event.headers or {}).items()}
    secret = secrets.resolve(settings.shopify_secret, settings.shopify_secret_parameter, "Shopify webhook secret")
    try:
        event = ingestion.receive_shopify(_raw_body(), headers, secret, settings.clock())
    except ingestion.Rejected as rejected:
        logger.warning(
            "webhook rejected",
            extra={"source": "shopify", "status": rejected.status, "reason": rejected.reason},
        )
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
        return _answer(rejected.status, error=rejected.reason)
    try:
        ingestion.enqueue(event, settings)
    except ingestion.QueueUnavailable:
        logger.exception("queue unavailable", extra={"source": "shopify"})
        return _answer(503, error="temporarily unavailable, retry later")
    logger.info("webhook accepted", extra={"source": "shopify", "topic": event.topic, "type": event.type})
    metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=1)
    return _answer(202, status="accepted", event_id=event.event_id, type=event.type)


@app.post("/v1/scenarios/<scenario>/start")
def start_scenario(scenario: str) -> Response[dict[str, Any]]:
    """An explicit start, for callers the operator allowed (IAM-authorised in AWS)."""
    settings = get_settings()
    try:
        event = ingestion.receive_start_request(
            scenario, _raw_body(), dispatch.api_startable(dispatch.catalogue()), settings.clock()
        )
    except ingestion.Rejected as rejected:
        return _answer(rejected.status, error=rejected.reason)
    try:
        ingestion.enqueue(event, settings)
    except ingestion.QueueUnavailable:
        logger.exception("queue unavailable", extra={"source": "api"})
        return _answer(503, error="temporarily unavailable, retry later")
    metrics.add_metric(name="ScenarioStartRequested", unit=MetricUnit.Count, value=1)
    return _answer(202, status="accepted", event_id=event.event_id, scenario=scenario)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
