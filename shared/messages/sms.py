"""A scenario's SMS step through SNS (REQUIREMENTS.md, SMS out): E.164 numbers only, prior opt-in for marketing,
the opt-out mention, SNS's own opt-out list checked (and mirrored on the contact), at most once per (execution,
step) like an email."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from shared import clients, outbox
from shared.clock import Clock
from shared.events import E164
from shared.journeys import bearer, enrolments
from shared.messages import segments
from shared.messages.mailer import SendDeferred, SendRefused
from shared.messages.sending import InvalidRequest, SendRequest, count_send, give_back, held_back, recorded
from shared.messages.templates import render_sms
from shared.people import consent
from shared.settings import Settings
from shared.storage import Consent, ContactModel, StorageError, Tables, get_or_none, tables

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

OPT_OUT_SOURCE = "sns:opt-out"
SMS_TYPES = {"marketing": "Promotional", "transactional": "Transactional"}
# SNS answers these when it is busy or failing for a while: nothing went out, the Task retries (SendDeferred).
_RETRYABLE_CODES = {
    "Throttled",
    "Throttling",
    "ThrottlingException",
    "KMSThrottling",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
}


def request_from(payload: dict[str, Any]) -> SendRequest:
    """The send_sms Task's payload: the same fields as an email's, with a category that names an SMS type."""
    request = SendRequest.from_payload(payload, action="send_sms")
    if request.category not in SMS_TYPES:
        raise InvalidRequest(f"send_sms category {request.category!r}")
    return request


def with_stop_mention(text: str, stop_text: str) -> str:
    """A marketing SMS ends with how to stop receiving them (once, even if the template already says it)."""
    text = text.rstrip()
    return text if text.endswith(stop_text) else f"{text}\n{stop_text}"


def _refusal(request: SendRequest, contact: ContactModel | None) -> str | None:
    if contact is None:
        return "contact not found"
    if not contact.phone:
        return "no phone number"
    if not E164.match(contact.phone):
        return "phone number not in E.164 format (+ country code, at most 15 digits)"
    if request.category == "marketing":
        return consent.refusal_for_marketing_sms(contact)
    return None  # `suppressed` is the email address's (a bounce, a complaint): the phone answers for itself


def _deferred_or_refused(error: ClientError | BotoCoreError) -> Exception:
    if isinstance(error, BotoCoreError):
        return SendDeferred(type(error).__name__)
    code = error.response.get("Error", {}).get("Code", "")
    return SendDeferred(code) if code in _RETRYABLE_CODES else SendRefused(code or "ClientError")


def opted_out(sns: SNSClient, phone: str) -> bool:
    try:
        return bool(sns.check_if_phone_number_is_opted_out(phoneNumber=phone)["isOptedOut"])
    except (ClientError, BotoCoreError) as error:
        raise _deferred_or_refused(error) from error


def mirror_opt_out(t: Tables, contact: ContactModel, now: datetime) -> None:
    """The number is on SNS's opt-out list (the person replied STOP): the contact's SMS consent says so too,
    with its proof in the history. Nothing is written when it already says denied."""
    current = contact.sms_consent
    if current is not None and current.state == "denied":
        return
    denial = Consent(state="denied", level=None, source=OPT_OUT_SOURCE, at=now)
    try:
        contact.update(
            actions=[
                ContactModel.sms_consent.set(denial),
                ContactModel.sms_consent_history.set((ContactModel.sms_consent_history | []).append([denial])),
            ]
        )
    except PynamoDBException as error:
        raise StorageError(str(error)) from error


def publish(sns: SNSClient, phone: str, text: str, sms_type: str, sender_id: str | None) -> str:
    """The SNS message id; SendDeferred when a retry may succeed, SendRefused when it will not."""
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type},
    }
    if sender_id:
        attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
    try:
        answer = sns.publish(PhoneNumber=phone, Message=text, MessageAttributes=attributes)
    except (ClientError, BotoCoreError) as error:
        raise _deferred_or_refused(error) from error
    return answer["MessageId"]


def sms_context(settings: Settings, contact: ContactModel | None, trigger: dict[str, Any]) -> dict[str, Any]:
    """What an SMS template reads: the contact's names and contacts, the trigger, the sender."""
    return {
        "contact": {
            "first_name": contact.first_name if contact is not None else None,
            "last_name": contact.last_name if contact is not None else None,
            "email": contact.email if contact is not None else None,
            "phone": contact.phone if contact is not None else None,
        },
        "first_name": contact.first_name if contact is not None else None,
        "trigger": trigger,
        "sender": {"name": settings.sender_name, "postal_address": settings.postal_address},
    }


def send_sms(request: SendRequest, settings: Settings, clock: Clock) -> dict[str, Any]:
    """Sends the step's SMS at most once; answers sent (with its encoding and segment count, what it costs),
    skipped (with the reason) or duplicate.

    The reasons never carry the number: they are logged.
    """
    t = tables(settings)
    contact = get_or_none(t.contacts, request.contact_id, consistent=True)
    refusal = _refusal(request, contact)
    if refusal is None and enrolments.goal_reached(t, request.contact_id, request.scenario, request.execution):
        refusal = "goal reached"
    if refusal is not None or contact is None or contact.phone is None:
        return {"status": "skipped", "reason": refusal or "no phone number"}
    now = clock.now()
    rules, held = held_back(request, "sms", contact, settings, now)
    if held is not None:
        return recorded(t, request, "sms", contact.contact_id, held, now)
    sns = clients.sns(settings.region)
    if opted_out(sns, contact.phone):
        mirror_opt_out(t, contact, now)
        return {"status": "skipped", "reason": "the number opted out of SMS (SNS opt-out list)"}
    # its bearer links read back from the contact's history, kept out of the execution (shared.journeys.bearer)
    trigger = bearer.restore(request.trigger, contact.contact_id, t.events, contact.last_cart_url)
    context = sms_context(settings, contact, trigger)
    text = render_sms(request.template, contact.locale or settings.default_locale, context).text
    if request.category == "marketing":
        text = with_stop_mention(text, settings.sms_stop_text)
    key = outbox.send_id(request.execution, request.step)
    claimed = outbox.claim(
        t,
        key,
        scenario=request.scenario,
        step=request.step,
        contact_id=contact.contact_id,
        channel="sms",
        now=now,
        variant=request.variant,
    )
    if not claimed:
        return {"status": "duplicate", "reason": "this step was already sent for this execution"}
    held = count_send(t, request, "sms", contact, settings, now) if rules is not None else None
    if held is not None:
        outbox.release(t, key)
        return recorded(t, request, "sms", contact.contact_id, held, now)
    try:
        message_id = publish(sns, contact.phone, text, SMS_TYPES[request.category], settings.sms_sender_id)
    except (SendDeferred, SendRefused) as error:
        give_back(t, key, contact.contact_id, counted=rules is not None)
        if isinstance(error, SendRefused):  # for good: the execution fails at this step
            recorded(t, request, "sms", contact.contact_id, {"status": "failed"}, now)
        raise
    cost = segments.size(text)
    outbox.mark_sent(t, key, message_id, clock.now(), segments=cost.segments, encoding=cost.encoding)
    return {"status": "sent", "message_id": message_id, "segments": cost.segments, "encoding": cost.encoding}
