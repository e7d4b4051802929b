"""Public subscription routes: the unsubscribe page (GET shows, POST acts) and the RFC 8058 one-click POST."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import secrets, subscriptions
from shared.settings import Settings, get_settings
from shared.templates import render_page

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()


def _page(settings: Settings, code: int, state: str, locale: str, token: str = "") -> Response[str]:
    html = render_page(
        "unsubscribe",
        locale,
        {
            "state": state,
            "action": f"/unsubscribe?t={quote(token)}",
            "sender": {"name": settings.sender_name, "postal_address": settings.postal_address},
        },
    )
    # Link scanners and browsers must not cache an answer that depends on the token.
    return Response(code, content_types.TEXT_HTML, html, headers={"Cache-Control": "no-store"})


def _link(settings: Settings) -> tuple[str, subscriptions.LinkHolder | None]:
    token = app.current_event.get_query_string_value("t", "") or ""
    link_secret = secrets.resolve(settings.link_secret, settings.link_secret_parameter, "link signing secret")
    return token, subscriptions.holder(token, settings, link_secret)


@app.get("/unsubscribe")
def show() -> Response[str]:
    """Only shows a page with a button: mail scanners fetch GET links, which must change nothing."""
    settings = get_settings()
    token, link = _link(settings)
    if link is None:
        return _page(settings, 403, "invalid", settings.default_locale)
    return _page(settings, 200, "confirm", link.locale, token)


@app.post("/unsubscribe")
def act() -> Response[str]:
    settings = get_settings()
    _, link = _link(settings)
    if link is None:
        metrics.add_metric(name="UnsubscribeRefused", unit=MetricUnit.Count, value=1)
        return _page(settings, 403, "invalid", settings.default_locale)
    form = parse_qs(app.current_event.decoded_body or "")
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    source = "unsubscribe:one-click" if one_click else "unsubscribe:page"
    changed = subscriptions.unsubscribe(link, source, settings, settings.clock())
    logger.info("unsubscribe", extra={"contact_id": link.contact_id, "source": source, "changed": changed})
    metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    return _page(settings, 200, "done", link.locale)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
