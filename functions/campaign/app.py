"""The campaign queue's worker: one message each, a page of a campaign's audience read or a chunk of it sent
(shared.campaigns.delivery)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared.campaigns import delivery
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Each record on its own: a failed one (SES or DynamoDB busy) comes back alone after its visibility timeout."""
    settings = get_settings()
    failures = []
    for record in event.get("Records", []):
        try:
            report = delivery.work(settings, record["body"])
        except delivery.InvalidMessage:
            logger.exception("not a campaign message", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})  # the DLQ keeps it after its receives
            continue
        except Exception:
            logger.exception("campaign message failed", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        outcomes = dict(report.outcomes)
        sent, failed, deferred = outcomes.pop("sent", 0), outcomes.pop("failed", 0), outcomes.pop("deferred", 0)
        if sent:
            metrics.add_metric(name="CampaignSent", unit=MetricUnit.Count, value=sent)
        if failed:
            metrics.add_metric(name="CampaignFailed", unit=MetricUnit.Count, value=failed)
        if deferred:  # quiet hours: queued again for their end
            metrics.add_metric(name="CampaignDeferred", unit=MetricUnit.Count, value=deferred)
        if outcomes:  # skipped for a reason, or excluded
            metrics.add_metric(name="CampaignSkipped", unit=MetricUnit.Count, value=sum(outcomes.values()))
        logger.info("campaign message", extra=asdict(report))  # counts only
    return {"batchItemFailures": failures}
