"""The daily run. `lambda_handler`: EventBridge Scheduler, once a day, plans the run's pages onto the schedule
queue. `page_handler`: the schedule queue, one page each, queues its date.reached and contact.inactive events,
erases its prospects past retention."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared.journeys import schedule
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


@logger.inject_lambda_context(correlation_id_path="time")
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    now = settings.clock().now()
    planned = schedule.fan_out(settings, schedule.scheduled_time(event, now), now)
    metrics.add_metric(name="SchedulePagesPlanned", unit=MetricUnit.Count, value=planned.pages)
    logger.info("daily run planned", extra=asdict(planned))
    return asdict(planned)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@traced(tracer)
@metrics.log_metrics
def page_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Each record on its own: a failed page is retried (then dead-lettered) alone."""
    settings = get_settings()
    failures = []
    for record in event.get("Records", []):
        try:
            report = schedule.work_page(settings, record["body"])
        except Exception:
            logger.exception("daily run page failed", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        metrics.add_metric(name="DateEventsQueued", unit=MetricUnit.Count, value=report.date_events)
        metrics.add_metric(name="InactiveEventsQueued", unit=MetricUnit.Count, value=report.inactive_events)
        metrics.add_metric(name="ProspectsPurged", unit=MetricUnit.Count, value=report.prospects_purged)
        logger.info("daily run page", extra=asdict(report))
    return {"batchItemFailures": failures}
