"""Step Functions Tasks: the actions of a scenario. Each re-checks what it must right before acting."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared.messages import actions, discounts
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)


@logger.inject_lambda_context(correlation_id_path="execution")
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        result = actions.perform(event, get_settings())
    except discounts.DiscountPoolEmpty:
        metrics.add_metric(name="DiscountPoolEmpty", unit=MetricUnit.Count, value=1)  # DiscountPoolEmptyAlarm
        raise
    kind = {"send_email": "Email", "send_sms": "Sms", "notify_crm": "Crm"}.get(str(event.get("action")))
    if kind is not None:
        metrics.add_metric(name=f"{kind}{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    if "segments" in result:  # what an SMS costs: the operator bills per segment
        metrics.add_metric(name="SmsSegments", unit=MetricUnit.Count, value=result["segments"])
    if result.get("events_cut"):  # what the step emitted was not: its causal chain was at its limit (a loop?)
        metrics.add_metric(name="EventChainCut", unit=MetricUnit.Count, value=result["events_cut"])
    if result.get("discount_low"):
        metrics.add_metric(name="DiscountPoolLow", unit=MetricUnit.Count, value=1)  # DiscountPoolLowAlarm
    logger.info(
        "scenario step",
        extra={
            "action": event.get("action"),
            "scenario": event.get("scenario"),
            "step": event.get("step"),
            "contact_id": event.get("contact_id"),
            **result,
        },
    )
    return actions.hold_if_deferred(result)  # a deferral is an error the send's Task Catches: its Wait, then again
