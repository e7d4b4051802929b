"""MIME messages with the inbox providers' headers (RFC 8058), sent through SESv2 with a configuration set."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients
from shared.messages.templates import RenderedEmail

if TYPE_CHECKING:
    from mypy_boto3_sesv2.type_defs import MessageTagTypeDef

# SES answers these when it is busy; the Task retries them (SendDeferred is in compiler.RETRYABLE).
_RETRYABLE_CODES = {
    "TooManyRequestsException",
    "LimitExceededException",
    "ThrottlingException",
    "ServiceUnavailable",
}


_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def tag_value(text: str) -> str:
    """SES message tag values allow only [A-Za-z0-9_-.@] (at most 256): anything else becomes `_`."""
    return _TAG_UNSAFE.sub("_", text)[:256] or "_"


class SendDeferred(RuntimeError):
    """SES was busy or unreachable: nothing went out, the Task should retry later."""


class SendRefused(RuntimeError):
    """SES refused the message for good (e.g. unverified sender, rejected content)."""


@dataclass(frozen=True)
class Envelope:
    sender_name: str
    sender_address: str
    to: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    scenario: str
    step: str
    sent_at: datetime
    variant: str | None = None
    contact_id: str = ""

    def tags(self) -> list[MessageTagTypeDef]:
        """What SES hands back with every event about the message (opens, clicks, bounces): enough to map it to
        the contact and to the scenario's step and variant."""
        tags = {"scenario": self.scenario, "step": self.step, "variant": self.variant, "contact": self.contact_id}
        return [{"Name": name, "Value": tag_value(value)} for name, value in tags.items() if value]


def build_message(envelope: Envelope, email: RenderedEmail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((envelope.sender_name, envelope.sender_address))
    message["To"] = envelope.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(envelope.sent_at)
    message["Message-ID"] = make_msgid(domain=envelope.sender_address.partition("@")[2] or None)
    message["List-Unsubscribe"] = f"<{envelope.unsubscribe_url}>, <{envelope.unsubscribe_mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-Parcours-Scenario"] = envelope.scenario
    message["X-Parcours-Step"] = envelope.step
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def send(message: EmailMessage, envelope: Envelope, region: str, configuration_set: str) -> str:
    """The SES message id; SendDeferred when a retry may succeed, SendRefused when it will not."""
    try:
        answer = clients.sesv2(region).send_email(
            FromEmailAddress=envelope.sender_address,
            Destination={"ToAddresses": [envelope.to]},
            Content={"Raw": {"Data": message.as_bytes()}},
            ConfigurationSetName=configuration_set,
            EmailTags=envelope.tags(),
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _RETRYABLE_CODES:
            raise SendDeferred(code) from error
        raise SendRefused(code or "ClientError") from error
    except BotoCoreError as error:
        raise SendDeferred(type(error).__name__) from error
    return answer["MessageId"]
