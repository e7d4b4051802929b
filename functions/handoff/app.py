"""SQS batches of qualified leads -> one signed POST each to the CRM, then `contact.qualified` on EventBridge."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared import batches, secrets
from shared.people import handoff
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


def _crm_secret() -> str:
    settings = get_settings()
    return secrets.resolve(settings.crm_secret, settings.crm_secret_parameter, "CRM signing secret")


def record_handler(record: batches.Record) -> dict[str, Any]:
    logger.set_correlation_id(record.message_id)
    try:
        outcome = handoff.consume(record, get_settings(), _crm_secret)
    except Exception as error:
        logger.warning("CRM handoff deferred", extra={"error": type(error).__name__, "message_id": record.message_id})
        metrics.add_metric(name="CrmHandoffDeferred", unit=MetricUnit.Count, value=1)
        raise
    if outcome.dead_letter is not None:
        logger.warning("CRM handoff sent to the dead-letter queue", extra=vars(outcome.dead_letter))
        name = "CrmHandoffRefused" if outcome.dead_letter.kind == handoff.REFUSED else "CrmHandoffDeadLettered"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return {}
    result = outcome.result or {}
    logger.info("CRM handoff", extra=result)
    metrics.add_metric(
        name="CrmHandoffDelivered" if result.get("status") == "delivered" else "CrmHandoffSkipped",
        unit=MetricUnit.Count,
        value=1,
    )
    return result


@logger.inject_lambda_context
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A failing handoff is retried alone (its visibility set by its backoff); the others in the batch are done. A
    # batch that failed whole is reported item by item too, not as a function error: each item chose when it returns.
    return batches.partial(event, record_handler)
