"""Public subscription routes: unsubscribe (page + RFC 8058 one-click POST), preference centre, double opt-in."""

from __future__ import annotations

import binascii
from typing import Any
from urllib.parse import parse_qs, quote

# Every route answers a rendered page: Jinja loads with the handler, where its cost is counted (shared.messages.
# templates leaves it to the first render for the functions that render only for some requests).
import jinja2.sandbox  # noqa: F401
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared import secrets
from shared.messages.templates import render_page
from shared.people import subscriptions, topics
from shared.settings import ConfigurationError, Settings, get_settings

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)
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


def _link(settings: Settings, scope: str | None = None) -> tuple[str, subscriptions.LinkHolder | None]:
    token = app.current_event.get_query_string_value("t", "") or ""
    link_secret = secrets.resolve(settings.link_secret, settings.link_secret_parameter, "link signing secret")
    return token, subscriptions.holder(token, settings, link_secret, scope)


def _preferences_page(
    settings: Settings, code: int, state: str, link: subscriptions.LinkHolder | None, token: str = ""
) -> Response[str]:
    locale = link.locale if link is not None else settings.default_locale
    view = subscriptions.preferences_of(subscriptions.read(link, settings) if link is not None else None)
    html = render_page(
        "preferences",
        locale,
        {
            "state": state,
            "action": f"/preferences?t={quote(token)}",
            "topics": topics.TOPICS,
            "frequencies": topics.FREQUENCIES,
            "view": view,
            "resubscribe_wording": subscriptions.wording(
                subscriptions.RESUBSCRIBE_WORDING, locale, settings.sender_name
            ),
            "sender": {"name": settings.sender_name, "postal_address": settings.postal_address},
        },
    )
    return Response(code, content_types.TEXT_HTML, html, headers={"Cache-Control": "no-store"})


def _form() -> dict[str, list[str]]:
    """The posted form; a body that is not UTF-8 text (never a browser's form) reads as an empty form, not a 500."""
    try:
        return parse_qs(app.current_event.decoded_body or "")
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return {}


@app.get("/preferences")
def preferences() -> Response[str]:
    """The preference centre: a plain form (no JavaScript) showing the topics, the frequency and the consent."""
    settings = get_settings()
    token, link = _link(settings, subscriptions.PREFERENCES_SCOPE)
    if link is None:
        return _preferences_page(settings, 403, "invalid", None)
    if subscriptions.read(link, settings) is None:
        return _preferences_page(settings, 404, "erased", link)
    return _preferences_page(settings, 200, "form", link, token)


@app.post("/preferences")
def change_preferences() -> Response[str]:
    """One form, three buttons (`do`): save the topics and frequency, unsubscribe from everything, resubscribe."""
    settings = get_settings()
    token, link = _link(settings, subscriptions.PREFERENCES_SCOPE)
    if link is None:
        metrics.add_metric(name="PreferencesRefused", unit=MetricUnit.Count, value=1)
        return _preferences_page(settings, 403, "invalid", None)
    if subscriptions.read(link, settings) is None:
        return _preferences_page(settings, 404, "erased", link)  # nothing left to choose for
    form = _form()
    do = (form.get("do") or ["save"])[0]
    now = settings.clock()
    try:
        if do == "save":
            frequency = (form.get("frequency") or ["all"])[0]
            subscriptions.save_preferences(link, form.get("topic", []), frequency, settings, now)
            state = "saved"
        elif do == "unsubscribe":
            subscriptions.unsubscribe(link, "preferences", settings, now)
            state = "unsubscribed"
        elif do == "resubscribe":
            subscriptions.resubscribe(link, form.get("consent") == ["yes"], settings, now)
            state = "resubscribed"
        else:
            raise subscriptions.PreferencesRefused(f"unknown action {do!r}")
    except subscriptions.PreferencesRefused as problem:
        logger.info("preferences refused", extra={"contact_id": link.contact_id, "problem": str(problem)})
        state = "needs-consent" if do == "resubscribe" else "refused"
        return _preferences_page(settings, 400, state, link, token)
    logger.info("preferences", extra={"contact_id": link.contact_id, "do": do})
    metrics.add_metric(name="PreferencesChanged", unit=MetricUnit.Count, value=1)
    return _preferences_page(settings, 200, state, link, token)


def _confirm_page(
    settings: Settings, code: int, state: str, link: subscriptions.LinkHolder | None, token: str = ""
) -> Response[str]:
    locale = link.locale if link is not None else settings.default_locale
    html = render_page(
        "confirm",
        locale,
        {
            "state": state,
            "action": f"/confirm?t={quote(token)}",
            # the button's sentence: the same as the email's, and what the consent statement records as wording
            "wording": subscriptions.wording(subscriptions.CONFIRM_WORDING, locale, settings.sender_name),
            "sender": {"name": settings.sender_name, "postal_address": settings.postal_address},
        },
    )
    return Response(code, content_types.TEXT_HTML, html, headers={"Cache-Control": "no-store"})


@app.get("/confirm")
def show_confirm() -> Response[str]:
    """Double opt-in, step one: only shows a page with a button. Mail scanners fetch GET links: a GET changes
    nothing (REQUIREMENTS.md, Trust: every state change behind a link happens on POST)."""
    settings = get_settings()
    token, link = _link(settings, subscriptions.CONFIRM_SCOPE)
    if link is None:
        return _confirm_page(settings, 403, "invalid", None)
    state = subscriptions.confirmation(link, settings)
    return _confirm_page(settings, 404 if state == "erased" else 200, state, link, token)


@app.post("/confirm")
def confirm() -> Response[str]:
    """Double opt-in, step two: the button's POST records the confirmation; a repeat changes nothing, and it never
    undoes an unsubscribe made since."""
    settings = get_settings()
    token, link = _link(settings, subscriptions.CONFIRM_SCOPE)
    if link is None:
        metrics.add_metric(name="ConfirmRefused", unit=MetricUnit.Count, value=1)
        return _confirm_page(settings, 403, "invalid", None)
    form = parse_qs(app.current_event.decoded_body or "")
    if form.get("confirm") != ["yes"]:  # not the page's button (an empty POST): the page again, nothing changed
        state = subscriptions.confirmation(link, settings)
        return _confirm_page(settings, 404 if state == "erased" else 400, state, link, token)
    state = subscriptions.confirm(link, settings, settings.clock())
    logger.info("confirm", extra={"contact_id": link.contact_id, "state": state})
    if state == "confirmed":
        metrics.add_metric(name="SignupConfirmed", unit=MetricUnit.Count, value=1)
    return _confirm_page(settings, 404 if state == "erased" else 200, state, link)


@app.get("/unsubscribe")
def show() -> Response[str]:
    """Only shows a page with a button: mail scanners fetch GET links, which must change nothing."""
    settings = get_settings()
    token, link = _link(settings, subscriptions.UNSUBSCRIBE_SCOPE)
    if link is None:
        return _page(settings, 403, "invalid", settings.default_locale)
    return _page(settings, 200, "confirm", link.locale, token)


@app.post("/unsubscribe")
def act() -> Response[str]:
    settings = get_settings()
    _, link = _link(settings, subscriptions.UNSUBSCRIBE_SCOPE)
    if link is None:
        metrics.add_metric(name="UnsubscribeRefused", unit=MetricUnit.Count, value=1)
        return _page(settings, 403, "invalid", settings.default_locale)
    form = _form()
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    source = "unsubscribe:one-click" if one_click else "unsubscribe:page"
    changed = subscriptions.unsubscribe(link, source, settings, settings.clock())
    logger.info("unsubscribe", extra={"contact_id": link.contact_id, "source": source, "changed": changed})
    metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    return _page(settings, 200, "done", link.locale)


@app.exception_handler(ConfigurationError)  # type: ignore[untyped-decorator]
def not_configured(error: ConfigurationError) -> Response[str]:
    """The link secret not set (its SSM parameter not created yet, say): the operator's to fix, a 503 naming it."""
    logger.error("subscription routes not configured", extra={"reason": str(error)})
    return Response(
        503,
        content_types.TEXT_PLAIN,
        f"not configured: {error}",
        headers={"Cache-Control": "no-store", "Retry-After": "300"},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
