"""HTTP API -> verified, normalised event on the FIFO queue. Answers within milliseconds; no processing here."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared import clock, secrets
from shared.events import Event
from shared.settings import ConfigurationError, Settings, get_settings
from shared.sources import ingestion, tracking

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)
app = APIGatewayHttpResolver()


class _Unreadable(ValueError):
    """A body API Gateway would never pass (base64 that is not): refused like a body that is not JSON."""


def _raw_body() -> bytes:
    """The exact bytes the sender signed (a lone surrogate kept as its bytes: it then verifies and parses as
    nothing)."""
    event = app.current_event
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise _Unreadable("body is not text")
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise _Unreadable("body is not valid base64") from None


def _headers() -> dict[str, str]:
    """Header names lower-cased, as HTTP APIs deliver them (and as the local runtime must too)."""
    return {name.lower(): value for name, value in (app.current_event.headers or {}).items()}


def _answer(code: int, **fields: Any) -> Response[dict[str, Any]]:
    return Response(status_code=code, content_type=content_types.APPLICATION_JSON, body=fields)


def _accept(event: Event, settings: Settings, metric: str, **answer: Any) -> Response[dict[str, Any]]:
    """Queues the event durably, then answers 202; 503 (the sender retries) when the queue refused it."""
    try:
        ingestion.enqueue(event, settings)
    except ingestion.QueueUnavailable:
        logger.exception("queue unavailable", extra={"source": event.source})
        return _answer(503, error="temporarily unavailable, retry later")
    logger.info(
        "event accepted",
        extra={"event_id": event.event_id, "source": event.source, "topic": event.topic, "type": event.type},
    )
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    return _answer(202, status="accepted", event_id=event.event_id, **answer)


def _refuse(source: str, rejected: ingestion.Rejected) -> Response[dict[str, Any]]:
    logger.warning("request refused", extra={"source": source, "status": rejected.status, "reason": rejected.reason})
    metrics.add_metric(name="RequestRefused", unit=MetricUnit.Count, value=1)
    return _answer(rejected.status, error=rejected.reason)


@app.exception_handler(ConfigurationError)  # type: ignore[untyped-decorator]
def not_configured(error: ConfigurationError) -> Response[dict[str, Any]]:
    """A source whose secret is not set: the operator's to fix; the sender retries meanwhile."""
    logger.error("source not configured", extra={"reason": str(error)})
    return _answer(503, error=f"not configured: {error}")


@app.exception_handler(_Unreadable)  # type: ignore[untyped-decorator]
def unreadable(error: _Unreadable) -> Response[dict[str, Any]]:
    return _answer(400, error=str(error))


@app.post("/webhooks/shopify")
def shopify() -> Response[dict[str, Any]]:
    settings = get_settings()
    secret = secrets.resolve(settings.shopify_secret, settings.shopify_secret_parameter, "Shopify webhook secret")
    try:
        event = ingestion.receive_shopify(_raw_body(), _headers(), secret, settings.clock(), clock.wall_time())
    except ingestion.Rejected as rejected:
        return _refuse("shopify", rejected)
    return _accept(event, settings, "WebhookAccepted", type=event.type)


@app.post("/webhooks/woocommerce")
def woocommerce() -> Response[dict[str, Any]]:
    settings = get_settings()
    secret = secrets.resolve(
        settings.woocommerce_secret, settings.woocommerce_secret_parameter, "WooCommerce webhook secret"
    )
    try:
        event = ingestion.receive_woocommerce(_raw_body(), _headers(), secret, settings.clock(), clock.wall_time())
    except ingestion.Rejected as rejected:
        return _refuse("woocommerce", rejected)
    if event is None:  # the activation ping: WooCommerce only needs a 2xx to activate the webhook
        return _answer(200, status="ping acknowledged")
    return _accept(event, settings, "WebhookAccepted", type=event.type)


@app.post("/webhooks/generic")
def generic_webhook() -> Response[dict[str, Any]]:
    settings = get_settings()
    configured = secrets.resolve(settings.generic_secret, settings.generic_secret_parameter, "generic webhook secret")
    rotation = [secret.strip() for secret in configured.split(",") if secret.strip()]
    try:
        event = ingestion.receive_generic(_raw_body(), _headers(), rotation, settings.clock(), clock.wall_time())
    except ingestion.Rejected as rejected:
        return _refuse("generic", rejected)
    return _accept(event, settings, "WebhookAccepted", type=event.type)


def _track(call: str) -> Response[dict[str, Any]]:
    """Segment's tracking API: 200 {"success": true} once every message of the request is queued."""
    settings = get_settings()
    write_key = secrets.resolve(settings.write_key, settings.write_key_parameter, "tracking write key")
    try:
        now = settings.clock().now()
        events = tracking.receive(
            call, _raw_body(), _headers(), write_key, now, settings.browser_key, wall_time=clock.wall_time()
        )
    except ingestion.Rejected as rejected:
        return _refuse(tracking.SOURCE, rejected)
    try:
        ingestion.enqueue_all(events, settings)
    except ingestion.QueueUnavailable:
        logger.exception("queue unavailable", extra={"source": tracking.SOURCE, "messages": len(events)})
        return _answer(503, success=False, error="temporarily unavailable, retry later")
    logger.info("tracking accepted", extra={"call": call, "messages": len(events)})
    metrics.add_metric(name="TrackingMessageAccepted", unit=MetricUnit.Count, value=len(events))
    return _answer(200, success=True, event_ids=[event.event_id for event in events])


@app.post("/v1/identify")
def track_identify() -> Response[dict[str, Any]]:
    return _track("identify")


@app.post("/v1/track")
def track_track() -> Response[dict[str, Any]]:
    return _track("track")


@app.post("/v1/page")
def track_page() -> Response[dict[str, Any]]:
    return _track("page")


@app.post("/v1/batch")
def track_batch() -> Response[dict[str, Any]]:
    return _track("batch")


@app.post("/v1/scenarios/<scenario>/start")
def start_scenario(scenario: str) -> Response[dict[str, Any]]:
    """An explicit start, for callers the operator allowed (IAM-authorised in AWS)."""
    from shared.journeys import dispatch
    # the scenario catalogue: only this rare route pays its import (and PynamoDB's)

    settings = get_settings()
    startable = dispatch.api_startable(dispatch.catalogue())
    try:
        event = ingestion.receive_start_request(scenario, _raw_body(), startable, settings.clock(), clock.wall_time())
    except ingestion.Rejected as rejected:
        return _refuse("api", rejected)
    return _accept(event, settings, "ScenarioStartRequested", scenario=scenario)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
