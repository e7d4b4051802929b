"""A scenario's send step: re-check right before sending, claim, render, send, record (decision 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from shared import outbox
from shared.clock import Clock
from shared.journeys import bearer, enrolments, pacing
from shared.messages import discounts, mailer
from shared.messages.templates import render_email
from shared.people import conditions, consent, dates, links, moments, subscriptions, suppression
from shared.settings import Settings
from shared.storage import ContactModel, Tables, get_or_none, tables


class InvalidRequest(ValueError):
    """The state machine sent a payload this function does not understand (a compiler bug)."""


@dataclass(frozen=True)
class SendRequest:
    scenario: str
    step: str
    template: str
    category: str
    execution: str
    contact_id: str
    trigger: dict[str, Any]
    variant: str | None = None  # the split variant the step is in
    topic: str | None = None  # the scenario's preference-centre topic (marketing only)
    pacing: dict[str, Any] | None = None  # the sending habits' rules (marketing only; shared.journeys.pacing)
    discount: dict[str, str] | None = None  # the step's discount: {code: X} or {pool: P} (shared.messages.discounts)
    soft_opt_in: bool = False  # the scenario's: customers who never objected need no opt-in (shared.people.consent)
    subject: str | None = None  # plain text in place of the template's subject (a campaign's A/B variant)
    has_goal: bool = True  # a campaign's send has no execution whose goal could stop it: no enrolment to read

    @classmethod
    def from_payload(cls, payload: dict[str, Any], action: str = "send_email") -> SendRequest:
        try:
            return cls(
                scenario=str(payload["scenario"]),
                step=str(payload["step"]),
                template=str(payload["template"]),
                category=str(payload.get("category", "marketing")),
                execution=str(payload["execution"]),
                contact_id=str(payload["contact_id"]),
                trigger=dict(payload.get("trigger") or {}),
                variant=str(payload["variant"]) if payload.get("variant") else None,
                topic=str(payload["topic"]) if payload.get("topic") else None,
                pacing=dict(payload["pacing"]) if payload.get("pacing") else None,
                discount=dict(payload["discount"]) if payload.get("discount") else None,
                soft_opt_in=payload.get("soft_opt_in") is True,
            )
        except KeyError as missing:
            raise InvalidRequest(f"{action} payload lacks the field {missing.args[0]}") from None


def _refusal(request: SendRequest, contact: ContactModel | None) -> str | None:
    if request.category == "marketing":
        return consent.refusal_for_marketing_email(contact, soft_opt_in=request.soft_opt_in)
    if contact is None or not contact.email:
        return "no email address"
    if contact.suppressed:
        return "address suppressed"
    return None


def held_back(
    request: SendRequest, channel: str, contact: ContactModel, settings: Settings, now: datetime
) -> tuple[pacing.Rules | None, dict[str, Any] | None]:
    """The step's sending-habit rules, and the answer when they hold the message back: `deferred` with the
    seconds until it may go (the state machine waits, then asks again), or `capped` (skipped by the scenario's
    rule). None when it may go now."""
    try:
        rules = pacing.Rules.from_payload(request.pacing, channel)
    except pacing.PacingError as error:
        raise InvalidRequest(str(error)) from None
    if rules is None:
        return None, None
    timezone = conditions.attribute(contact, dates.TIMEZONE)
    decision = pacing.decide(
        rules,
        channel=channel,
        topic=request.topic,
        log=pacing.log_of(contact),
        key=outbox.send_id(request.execution, request.step),
        now=now,
        tz=moments.zone(timezone if isinstance(timezone, str) else None, settings.default_timezone),
        frequency=contact.preferences.frequency if contact.preferences is not None else None,
        phone=contact.phone,
    )
    if decision.action == "send":
        return rules, None
    if decision.action == "skip" or decision.until is None:
        return rules, {"status": "capped", "reason": decision.reason or "held back"}
    seconds = max(1, math.ceil((decision.until - now).total_seconds()))
    until = decision.until.isoformat()
    return rules, {"status": "deferred", "reason": decision.reason, "until": until, "seconds": seconds}


def count_send(
    t: Tables, request: SendRequest, channel: str, contact: ContactModel, settings: Settings, now: datetime
) -> dict[str, Any] | None:
    """Counts the claimed send against the contact's caps. When another send to the contact was counted since it
    was read (two scenarios at the same moment), reads the contact again and decides again, so two sends never
    both squeeze under a cap; answers `deferred` or `capped` when the send is held back after all (the caller
    gives back its claim), None once counted."""
    key = outbox.send_id(request.execution, request.step)
    for _ in range(5):
        if pacing.record(contact, pacing.Sent(now, channel, request.topic, key)):
            return None
        fresh = get_or_none(t.contacts, contact.contact_id, consistent=True)
        if fresh is None:
            return {"status": "skipped", "reason": "contact not found"}
        contact = fresh
        held = held_back(request, channel, contact, settings, now)[1]
        if held is not None:
            return held
    outbox.release(t, key)
    raise mailer.SendDeferred("the contact's send log kept changing")  # the Task retries and decides again


def recorded(
    t: Tables, request: SendRequest, channel: str, contact_id: str, answer: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A send held back (deferred, capped) or refused (failed) is recorded for the reports (shared.outbox), once
    per send; answers `answer`."""
    status = answer.get("status")
    if status in outbox.OUTCOMES:
        outbox.record_outcome(
            t,
            outbox.send_id(request.execution, request.step),
            str(status),
            scenario=request.scenario,
            step=request.step,
            variant=request.variant,
            contact_id=contact_id,
            channel=channel,
            now=now,
        )
    return answer


def give_back(t: Tables, key: str, contact_id: str, counted: bool) -> None:
    """SES or SNS said no and nothing went out: the claim is released (a retry or a redrive may send) and the send
    no longer counts against the contact's caps."""
    outbox.release(t, key)
    if counted:
        pacing.forget(t, contact_id, key)


def email_context(
    settings: Settings,
    locale: str,
    *,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    trigger: dict[str, Any],
    unsubscribe_url: str,
    preferences_url: str,
    confirm_url: str,
    discount: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What an email template is rendered with (a send's, and a campaign's preview or test, whose links are
    stand-ins): the contact, the trigger, the sender and its postal address, the signed links."""
    return {
        "contact": {"first_name": first_name, "last_name": last_name, "email": email},
        "first_name": first_name,
        "trigger": trigger,
        "sender": {"name": settings.sender_name, "postal_address": settings.postal_address},
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        # for a double opt-in email (scenario confirm-subscription): the link and the sentence it records
        "confirm_url": confirm_url,
        "confirm_wording": subscriptions.wording(subscriptions.CONFIRM_WORDING, locale, settings.sender_name),
        "discount": discount,
    }


def send_email(
    request: SendRequest, settings: Settings, clock: Clock, link_secret: str, suppression_key: suppression.HashKey
) -> dict[str, Any]:
    """Sends the step's email at most once; answers sent, skipped (with the reason) or duplicate."""
    t = tables(settings)
    contact = get_or_none(t.contacts, request.contact_id, consistent=True)
    refusal = _refusal(request, contact)
    if refusal is None and contact is not None and suppression.is_suppressed(t, suppression_key, contact.email):
        refusal = "address suppressed"  # by a bounce or complaint, maybe on a contact since erased
    if refusal is None and contact is not None:
        refusal = subscriptions.topic_refusal(contact, request.topic)
    if (
        refusal is None
        and request.has_goal
        and enrolments.goal_reached(t, request.contact_id, request.scenario, request.execution)
    ):
        refusal = "goal reached"
    if refusal is not None or contact is None or contact.email is None:
        return {"status": "skipped", "reason": refusal or "no email address"}
    now = clock.now()
    rules, held = held_back(request, "email", contact, settings, now)
    if held is not None:
        return recorded(t, request, "email", contact.contact_id, held, now)
    discount = discounts.for_send(request, t, now)  # a pool's code: the contact's own, claimed once
    # The link names the email it is in (scenario, step, variant) under its MAC: the reports count an unsubscribe there
    origin = links.Origin(request.scenario, request.step, request.variant)
    unsubscribe_token = links.token(contact.contact_id, subscriptions.UNSUBSCRIBE_SCOPE, link_secret, origin)
    unsubscribe_url = f"{settings.public_base_url}/unsubscribe?t={quote(unsubscribe_token)}"
    base, contact_id = settings.public_base_url, contact.contact_id
    locale = contact.locale or settings.default_locale
    context = email_context(
        settings,
        locale,
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        # its bearer links read back from the contact's history, kept out of the execution (shared.journeys.bearer)
        trigger=bearer.restore(request.trigger, contact.contact_id, t.events, contact.last_cart_url),
        unsubscribe_url=unsubscribe_url,
        preferences_url=links.url(base, "/preferences", contact_id, subscriptions.PREFERENCES_SCOPE, link_secret),
        confirm_url=links.url(base, "/confirm", contact_id, subscriptions.CONFIRM_SCOPE, link_secret),
        discount=discount.context() if discount else None,
    )
    envelope = mailer.Envelope(
        sender_name=settings.sender_name,
        sender_address=settings.from_address,
        to=contact.email,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=f"mailto:{settings.from_address}?subject=unsubscribe%20{quote(unsubscribe_token)}",
        scenario=request.scenario,
        step=request.step,
        sent_at=now,
        variant=request.variant,
        contact_id=contact.contact_id,
    )
    rendered = render_email(request.template, locale, context, subject=request.subject)
    message = mailer.build_message(envelope, rendered)
    key = outbox.send_id(request.execution, request.step)
    if not outbox.claim(
        t,
        key,
        scenario=request.scenario,
        step=request.step,
        contact_id=contact.contact_id,
        channel="email",
        now=now,
        discount_code=discount.code if discount else None,
        discount_pool=discount.pool if discount else None,
        subject=rendered.subject,
        variant=request.variant,
    ):
        return {"status": "duplicate", "reason": "this step was already sent for this execution"}
    held = count_send(t, request, "email", contact, settings, now) if rules is not None else None
    if held is not None:
        outbox.release(t, key)
        return recorded(t, request, "email", contact.contact_id, held, now)
    try:
        message_id = mailer.send(message, envelope, settings.region, settings.configuration_set)
    except (mailer.SendDeferred, mailer.SendRefused) as error:
        give_back(t, key, contact.contact_id, counted=rules is not None)
        if isinstance(error, mailer.SendRefused):  # for good: the execution fails at this step
            recorded(t, request, "email", contact.contact_id, {"status": "failed"}, now)
        raise
    outbox.mark_sent(t, key, message_id, clock.now())
    return {"status": "sent", "message_id": message_id, **discounts.answer(discount)}
