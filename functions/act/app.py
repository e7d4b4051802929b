"""Step Functions Tasks: the actions of a scenario. Each re-checks what it must right before acting."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import secrets, sending
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    action = event.get("action")
    if action != "send_email":
        raise sending.InvalidRequest(f"unknown action {action!r}")
    settings = get_settings()
    request = sending.SendRequest.from_payload(event)
    link_secret = secrets.resolve(settings.link_secret, settings.link_secret_parameter, "link signing secret")
    result = sending.send_email(request, settings, settings.clock(), link_secret)
    logger.info(
        "send step",
        extra={
            "scenario": request.scenario,
            "step": request.step,
            "contact_id": request.contact_id,
            **result,
        },
    )
    metrics.add_metric(name=f"Email{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    return result
