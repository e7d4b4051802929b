"""Step Functions Tasks: the actions of a scenario. Each re-checks what it must right before acting."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import actions, secrets, sending
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event.get("action")
    settings = get_settings()
    result: dict[str, Any]
    if action == "send_email":
        request = sending.SendRequest.from_payload(event)
        link_secret = secrets.resolve(settings.link_secret, settings.link_secret_parameter, "link signing secret")
        result = sending.send_email(request, settings, settings.clock(), link_secret)
        metrics.add_metric(name=f"Email{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    elif action == "plan_wait":
        result = actions.plan_wait(event, settings, settings.clock().now())
    elif action == "await":
        result = actions.await_event(event, settings, settings.clock().now())
    elif action == "evaluate":
        result = actions.evaluate(event, settings, settings.clock().now())
    elif action == "add_score":
        result = actions.add_score(event, settings, settings.clock().now())
    elif action == "set_attribute":
        result = actions.set_attribute(event, settings)
    elif action in ("add_to_list", "remove_from_list"):
        result = actions.change_list(event, settings, action == "add_to_list", settings.clock().now())
    else:
        raise actions.InvalidAction(f"unknown action {action!r}")
    logger.info(
        "scenario step",
        extra={
            "action": action,
            "scenario": event.get("scenario"),
            "step": event.get("step"),
            "contact_id": event.get("contact_id"),
            **result,
        },
    )
    return result
