"""SES events through SNS -> hard-bounced and complaining addresses suppressed at once; email.* events queued."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared.messages import feedback
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


@logger.inject_lambda_context(correlation_id_path="Records[0].Sns.MessageId")
@traced(tracer)
@metrics.log_metrics
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    outcomes = [feedback.handle(record.sns.message, settings, settings.clock().now()) for record in event.records]
    for outcome in outcomes:
        # Only the type and what became of it: the SES message names the recipient, which is not logged.
        decision = outcome.suppression
        logger.info(
            "ses event",
            extra={
                "ses_type": outcome.ses_type,
                "status": outcome.status,
                "reason": outcome.reason,
                "suppression": decision.status if decision else None,
                "suppression_reason": decision.reason if decision else None,
            },
        )
        metrics.add_metric(name=f"SesEvent{outcome.status.capitalize()}", unit=MetricUnit.Count, value=1)
        if decision is not None and decision.status == "suppressed":
            metrics.add_metric(name="EmailSuppressed", unit=MetricUnit.Count, value=1)
        if outcome.ses_type in feedback.FAILURES:
            metrics.add_metric(name="EmailFailed", unit=MetricUnit.Count, value=1)  # EmailFailuresAlarm
    return {"queued": sum(1 for outcome in outcomes if outcome.status == "queued"), "received": len(outcomes)}
