"""A campaign seen before it goes: rendered for one contact (`preview`), or sent to a few given addresses marked as
a test (`test`: "[TEST]" before the subject, the SES tag step `test`, nothing claimed, counted or logged on anyone).
An SMS campaign's preview is its text with the stop mention, its encoding and segments; its test goes to a few
given numbers, "[TEST]" first.

Both render with the scenarios' context (shared.messages.sending.email_context): the contact's names and language,
the sender and its postal address. The links are stand-ins (`t=preview`, `t=test`), which the public routes refuse:
a preview opened by a colleague, or a test forwarded, cannot unsubscribe anyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared import clients
from shared.campaigns import delivery, document
from shared.campaigns.errors import CampaignRequestError
from shared.events import normalise_email, normalise_phone
from shared.messages import mailer, segments, sending, sms
from shared.messages.templates import RenderedEmail, render_email, render_sms
from shared.settings import Settings
from shared.storage import ContactModel, get_or_none, tables

MOST_TEST_ADDRESSES = 10
TEST_PREFIX = "[TEST] "


def _body(body: bytes) -> dict[str, Any]:
    given = delivery.parse_body(body)
    if not isinstance(given, dict):
        raise CampaignRequestError(400, "the body must be a JSON object")
    return given


def _campaign(settings: Settings, campaign_id: str) -> document.Campaign:
    store = delivery._store(settings)
    return delivery._campaign_of(delivery._existing(store, campaign_id), store)


def _render(
    settings: Settings, campaign: document.Campaign, contact: ContactModel | None, to: str, token: str
) -> tuple[RenderedEmail, mailer.Envelope]:
    locale = (contact.locale if contact is not None else None) or settings.default_locale
    base = settings.public_base_url
    context = sending.email_context(
        settings,
        locale,
        first_name=contact.first_name if contact is not None else None,
        last_name=contact.last_name if contact is not None else None,
        email=to,
        trigger={},
        unsubscribe_url=f"{base}/unsubscribe?t={token}",
        preferences_url=f"{base}/preferences?t={token}",
        confirm_url=f"{base}/confirm?t={token}",
    )
    rendered = render_email(campaign.email, locale, context)
    envelope = mailer.Envelope(
        sender_name=settings.sender_name,
        sender_address=settings.from_address,
        to=to,
        unsubscribe_url=f"{base}/unsubscribe?t={token}",
        unsubscribe_mailto=f"mailto:{settings.from_address}?subject=unsubscribe%20{token}",
        scenario=f"campaign.{campaign.id}",
        step=token,
        sent_at=settings.clock().now(),
    )
    return rendered, envelope


def _render_sms(settings: Settings, campaign: document.Campaign, contact: ContactModel | None) -> tuple[str, str]:
    """The text as published to this contact (a campaign is marketing: the stop mention at its end), its locale."""
    locale = (contact.locale if contact is not None else None) or settings.default_locale
    rendered = render_sms(campaign.sms, locale, sms.sms_context(settings, contact, {}))
    return sms.with_stop_mention(rendered.text, settings.sms_stop_text), rendered.locale


def _contact_by_email(settings: Settings, address: str) -> ContactModel | None:
    t = tables(settings)
    identity = get_or_none(t.identities, "email#" + address)
    return None if identity is None else get_or_none(t.contacts, str(identity.contact_id))


def preview(settings: Settings, campaign_id: str, body: bytes) -> dict[str, Any]:
    """POST /v1/campaigns/{id}/preview {"email"}: the email as this contact would get it (404 for no such contact)."""
    campaign = _campaign(settings, campaign_id)
    address = normalise_email(_body(body).get("email"))
    if address is None:
        raise CampaignRequestError(400, 'name the contact: {"email": ...}', "email")
    contact = _contact_by_email(settings, address)
    if contact is None:
        raise CampaignRequestError(404, "no contact with this email", "email")
    if campaign.channel == "sms":
        text, locale = _render_sms(settings, campaign, contact)
        size = segments.size(text)
        return {
            "id": campaign.id,
            "channel": "sms",
            "to": address,
            "phone": contact.phone,
            "locale": locale,
            "text": text,
            "encoding": size.encoding,
            "segments": size.segments,
        }
    rendered, envelope = _render(settings, campaign, contact, address, "preview")
    message = mailer.build_message(envelope, rendered)
    return {
        "id": campaign.id,
        "to": address,
        "locale": rendered.locale,
        "subject": rendered.subject,
        "headers": {name: str(value) for name, value in message.items() if name.startswith("List-")},
        "html": rendered.html,
        "text": rendered.text,
    }


def test(settings: Settings, campaign_id: str, body: bytes, now: datetime) -> dict[str, Any]:
    """POST /v1/campaigns/{id}/test {"to": [addresses]}: sent to those addresses only, marked as a test, whatever
    the campaign's status; a contact's own names and language when the address is one's."""
    campaign = _campaign(settings, campaign_id)
    given = _body(body).get("to")
    listed = [given] if isinstance(given, str) else given
    if not isinstance(listed, list) or not listed or len(listed) > MOST_TEST_ADDRESSES:
        what = "a phone number" if campaign.channel == "sms" else "an address"
        raise CampaignRequestError(400, f'"to" is {what} or a list of 1 to {MOST_TEST_ADDRESSES}', "to")
    if campaign.channel == "sms":
        return _test_sms(settings, campaign, listed, now)
    addresses = []
    for n, raw in enumerate(listed):
        address = normalise_email(raw)
        if address is None:
            raise CampaignRequestError(400, f"to[{n}] is not an email address", f"to[{n}]")
        addresses.append(address)
    sent = []
    for address in addresses:
        rendered, envelope = _render(settings, campaign, _contact_by_email(settings, address), address, "test")
        marked = RenderedEmail(
            subject=TEST_PREFIX + rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
            locale=rendered.locale,
        )
        message = mailer.build_message(envelope, marked)
        try:
            message_id = mailer.send(message, envelope, settings.region, settings.configuration_set)
        except mailer.SendDeferred:
            raise CampaignRequestError(503, "SES is busy: try again in a moment") from None
        except mailer.SendRefused as error:
            raise CampaignRequestError(502, f"SES refused the test email: {error}") from None
        sent.append({"to": address, "message_id": message_id, "subject": marked.subject})
    return {"id": campaign.id, "test": True, "sent": sent, "at": now.isoformat()}


def _test_sms(settings: Settings, campaign: document.Campaign, listed: list[Any], now: datetime) -> dict[str, Any]:
    """An SMS campaign's test: its text to these numbers (E.164), "[TEST]" first; a contact's own names when the
    number is one's. Promotional, as the campaign's sends: SNS itself refuses a number on its opt-out list."""
    phones = []
    for n, raw in enumerate(listed):
        phone = normalise_phone(raw)
        if phone is None:
            raise CampaignRequestError(
                400, f"to[{n}] is not a phone number in international form, such as +33612345678", f"to[{n}]"
            )
        phones.append(phone)
    t = tables(settings)
    sns = clients.sns(settings.region)
    sent = []
    for phone in phones:
        identity = get_or_none(t.identities, "phone#" + phone)
        contact = None if identity is None else get_or_none(t.contacts, str(identity.contact_id))
        text = TEST_PREFIX + _render_sms(settings, campaign, contact)[0]
        try:
            message_id = sms.publish(sns, phone, text, sms.SMS_TYPES["marketing"], settings.sms_sender_id)
        except mailer.SendDeferred:
            raise CampaignRequestError(503, "SNS is busy: try again in a moment") from None
        except mailer.SendRefused as error:
            raise CampaignRequestError(502, f"SNS refused the test SMS: {error}") from None
        sent.append({"to": phone, "message_id": message_id, "text": text, "segments": segments.size(text).segments})
    return {"id": campaign.id, "test": True, "channel": "sms", "sent": sent, "at": now.isoformat()}
