"""DynamoDB Streams (enrolments, sends, events) -> the reports' counters and revenue attribution, each fact once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared.reports import counting
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


def _emit(counted: Counter[tuple[str, str]]) -> None:
    """The scenario metrics (dimension `scenario`; the dashboard's per-scenario widgets), one flush per scenario."""
    by_scenario: dict[str, Counter[str]] = {}
    for (scenario, counter), facts in counted.items():
        name = counting.METRICS.get(counter)
        if name is not None and facts > 0:
            by_scenario.setdefault(scenario, Counter())[name] += facts
    for scenario, named in sorted(by_scenario.items()):
        metrics.add_dimension(name="scenario", value=scenario)
        for name, value in sorted(named.items()):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()
        metrics.clear_metrics()


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@traced(tracer)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    records = event.get("Records") or []
    outcome = counting.count(records, settings, settings.clock().now())
    _emit(outcome.counted)
    # Counts and scenario ids only: no record's content (it may name a person).
    logger.info(
        "reports counted",
        extra={
            "records": len(records),
            "facts": sum(outcome.counted.values()),
            "repeated": outcome.repeated,
            "failed_at": outcome.failed_at,
        },
    )
    failures = [{"itemIdentifier": outcome.failed_at}] if outcome.failed_at else []
    return {"batchItemFailures": failures}
