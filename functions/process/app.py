"""SQS FIFO batches -> contacts, history and scenario starts, each event handled once."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared import batches, deadletters
from shared.events import Event
from shared.journeys import processing
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


@lru_cache(maxsize=1)
def _handle_once() -> Callable[..., dict[str, Any]]:
    """Once per event id: its processed mark, written with everything it changes (shared.writes), makes a
    redelivery change nothing again (its first read finds the mark); built on first use, when the settings are known."""
    settings = get_settings()

    def handle(event: Event) -> dict[str, Any]:
        logger.set_correlation_id(event.event_id)  # the source's event id, the logs' from ingestion on
        result = processing.process(event, settings, settings.clock())
        if not result.again:  # a redelivery answers from the event's mark: counted when it was processed
            _count(result, event.topic)
        return {
            # Logged only, on the event's one line: the contact (none when answered from the event's mark)
            "contact_id": result.contact_id,
            "dropped": result.dropped,
            "event_id": result.event_id,
            "type": event.type,
            "unidentified": result.unidentified,
            "scenarios": [{"scenario": o.scenario, "started": o.started, "reason": o.reason} for o in result.outcomes],
        }

    return handle


def _count(result: processing.Result, topic: str) -> None:
    if result.compliance:
        # a data request not answered by itself (README): the operator exports within 30 days; alarmed
        logger.warning("compliance request for the operator: export within 30 days", extra={"topic": topic})
        metrics.add_metric(name="ComplianceRequestUnanswered", unit=MetricUnit.Count, value=1)
    if result.unidentified:  # accepted and recorded, but no email, phone nor id: no contact (counted once)
        metrics.add_metric(name="EventWithoutIdentity", unit=MetricUnit.Count, value=1)
    if result.cut:  # what this event caused was not emitted: its causal chain was at its limit (a loop?)
        metrics.add_metric(name="EventChainCut", unit=MetricUnit.Count, value=result.cut)


def record_handler(record: batches.Record) -> dict[str, Any]:
    logger.set_correlation_id(record.message_id)  # until its body, read once, names the event
    outcome = deadletters.consume(record, lambda event: _handle_once()(event=event), get_settings())
    if outcome.dead_letter is not None:
        logger.warning("event sent to the dead-letter queue", extra=vars(outcome.dead_letter))
        metrics.add_metric(name="EventDeadLettered", unit=MetricUnit.Count, value=1)
        return {}
    result = outcome.result or {}
    logger.info("event processed", extra=result)
    metrics.add_metric(name="EventProcessed", unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Only the failing message's group (its contact) waits for a retry; the other contacts' messages go on. A batch
    # failed whole fails the invocation.
    return batches.partial(event, record_handler, fifo=True, on_error=_retried, fail_whole=True)


def _retried(record: batches.Record, error: Exception) -> None:
    """SQS hands it out again (its type only: an error's text may name a person)."""
    logger.warning(
        "event failed, to be retried", extra={"error": type(error).__name__, "message_id": record.message_id}
    )
    metrics.add_metric(name="EventRetried", unit=MetricUnit.Count, value=1)
