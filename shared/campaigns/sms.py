"""An SMS campaign (`sms:` in place of `email:`): its template checked before anything is sent, and each person's SMS
through the scenarios' own send (shared.messages.sms: prior SMS opt-in, E.164, SNS's opt-out list mirrored, the stop
mention, once per person, caps), with the hours of REQUIREMENTS.md ("SMS out", "Sending habits").

The hours defer, never skip: a person whose moment falls outside the French commercial SMS hours (a +33 number:
Monday-Saturday 08:00-20:00 Paris time, not on a public holiday) or inside the SMS quiet hours of their own time zone
is put back on the campaign's line at the next moment both allow (`deferred`), and sent then. Consent, phone and topic
are checked first, so who will never get it is counted at once, not on Monday. A frequency cap skips, as it does for
an email campaign.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from shared import outbox
from shared.events import E164
from shared.journeys import pacing
from shared.messages import segments
from shared.messages.sending import SendRequest
from shared.messages.sms import with_stop_mention
from shared.messages.templates import DEFAULT_ROOT, LOCALES, TemplateProblem, render_sms
from shared.people import conditions, consent, dates, moments, subscriptions
from shared.settings import Settings
from shared.storage import ContactModel

STEP = "sms"
# A campaign's SMS goes to a whole list: beyond two segments (306 GSM-7 characters, 134 UCS-2 units), each person
# costs three SMS or more. `parcours validate` only warns for a scenario's SMS; a campaign's is refused.
MAX_SEGMENTS = 2
SAMPLE_FIRST_NAME = "Camille"


def template_refusal(
    name: str, stop_text: str, sender_name: str = "La Boutique", root: Path = DEFAULT_ROOT
) -> str | None:
    """Why `name` cannot be an SMS campaign's template (None when it can): no templates/sms/<name>.<locale>.txt, a
    locale that does not render, or a text longer than MAX_SEGMENTS once rendered for a sample person with the
    stop mention every marketing SMS ends with."""
    if not any((root / "sms").glob(f"{name}.*.txt")):
        return f"no SMS template {name!r}: expected templates/sms/{name}.<locale>.txt"
    context: dict[str, Any] = {
        "contact": {"first_name": SAMPLE_FIRST_NAME, "last_name": "Martin", "email": None, "phone": "+33612345678"},
        "first_name": SAMPLE_FIRST_NAME,
        "trigger": {},  # a campaign has no triggering event
        "sender": {"name": sender_name, "postal_address": ""},
    }
    for locale in LOCALES:
        try:
            rendered = render_sms(name, locale, context, root)
        except TemplateProblem as problem:
            return f"SMS template {name!r} ({locale}): templates/{problem}"
        text = with_stop_mention(rendered.text, stop_text)
        size = segments.size(text)
        if size.segments > MAX_SEGMENTS:
            unit = "characters" if size.encoding == "GSM-7" else "UTF-16 units"
            outside = "".join(segments.outside_gsm7(text))
            why = f" (UCS-2 because of {outside!r})" if outside else ""
            return (
                f"SMS template {name!r} ({rendered.locale}) is {size.units} {unit}{why} with the stop mention: "
                f"{size.segments} segments, a campaign's SMS is at most {MAX_SEGMENTS}; shorten it"
            )
    return None


def request(campaign_id: str, template: str, topic: str, contact_id: str, rules: dict[str, Any] | None) -> SendRequest:
    """The scenario SMS send's request for this person: marketing (Promotional, with the stop mention), the campaign
    as its scenario, one execution per person (the send's claim: once per person)."""
    return SendRequest(
        scenario=f"campaign.{campaign_id}",
        step=STEP,
        template=template,
        category="marketing",
        execution=f"campaign.{campaign_id}#{contact_id}",
        contact_id=contact_id,
        trigger={},
        topic=topic,
        pacing=rules or {"caps": [], "when_capped": "skip", "french_hours": pacing.FRENCH_SMS_HOURS.label()},
    )


def early_refusal(contact: ContactModel, topic: str) -> str | None:
    """Why this person will not get the SMS whenever it goes (the send's own reasons), checked before the hours
    so that they are counted at once; None when only the moment may hold it back."""
    refusal = consent.refusal_for_marketing_sms(contact)
    if refusal is None and contact.phone and not E164.match(contact.phone):
        refusal = "phone number not in E.164 format"
    return refusal or subscriptions.topic_refusal(contact, topic)


def next_moment(request: SendRequest, contact: ContactModel, settings: Settings, now: datetime) -> datetime | None:
    """When the hours let this person's SMS go, if not now (None): the French commercial hours for a +33 number and
    the SMS quiet hours in the contact's time zone, each pushed past the other."""
    rules = pacing.Rules.from_payload(request.pacing, "sms")
    if rules is None:
        return None
    hours = pacing.Rules((), "defer", rules.quiet_hours, rules.french_hours)
    zone = conditions.attribute(contact, dates.TIMEZONE)
    decision = pacing.decide(
        hours,
        channel="sms",
        topic=request.topic,
        log=[],
        key=outbox.send_id(request.execution, request.step),
        now=now,
        tz=moments.zone(zone if isinstance(zone, str) else None, settings.default_timezone),
        phone=contact.phone,
    )
    return decision.until if decision.action == "defer" else None


def reason_of(reason: str, contact: ContactModel | None) -> str | None:
    """The status's name for an SMS send's reason (None: one the email's names cover)."""
    if reason == "no phone number":
        return "no_phone"
    if reason.startswith("phone number not in E.164"):
        return "invalid_phone"
    if reason.startswith("the number opted out"):  # replied STOP: SNS's list, now mirrored on the contact
        return "unsubscribed"
    if reason == "no SMS marketing consent":
        denied = contact is not None and contact.sms_consent is not None and contact.sms_consent.state == "denied"
        return "unsubscribed" if denied else "no_consent"
    return None
