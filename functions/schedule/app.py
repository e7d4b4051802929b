"""EventBridge Scheduler, once a day: queues the day's date.reached and contact.inactive events."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import schedule
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    now = settings.clock().now()
    report = schedule.run(settings, schedule.scheduled_time(event, now), now)
    metrics.add_metric(name="DateEventsQueued", unit=MetricUnit.Count, value=report.date_events)
    metrics.add_metric(name="InactiveEventsQueued", unit=MetricUnit.Count, value=report.inactive_events)
    logger.info("daily run", extra=asdict(report))
    return asdict(report)
