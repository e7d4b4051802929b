"""notify_crm steps: a signed JSON POST to the operator's CRM.

The signature is the Stripe pattern parcours itself accepts for generic webhooks (`X-Parcours-Signature:
t=<unix>,v1=<hex HMAC-SHA256 over "{t}.{raw body}">`); `X-Parcours-Delivery` names the (execution, step), the
same on every retry, so the CRM can deduplicate. Delivery is at least once: a Task retried after a POST whose
answer was lost posts again with the same delivery id.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from shared import clock, outbox
from shared.settings import Settings
from shared.sources.signatures import timestamped_signature
from shared.storage import AlreadyExists, ContactModel, SendModel, create_new, get_or_none, tables

TIMEOUT = 5.0  # seconds: a CRM slower than this is retried later rather than holding the Task
NOTIFICATION_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
SIGNATURE_HEADER = "X-Parcours-Signature"
DELIVERY_HEADER = "X-Parcours-Delivery"


class CrmDeferred(RuntimeError):
    """The CRM was unreachable, too slow, busy (429) or failing (5xx): the Task retries with backoff."""


class CrmRefused(RuntimeError):
    """The CRM refused the notification (a 4xx other than 429, or a redirect): a retry would be refused too."""


class InvalidNotification(ValueError):
    """The state machine sent a payload this function does not understand (a compiler bug)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without its body: it is an answer (refused), not a detour."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@cache
def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


def contact_view(contact: ContactModel) -> dict[str, Any]:
    """What the CRM learns about the contact: identity, language, score, lists, attributes, order counters."""
    return {
        "contact_id": contact.contact_id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "phone": contact.phone,
        "locale": contact.locale,
        "score": int(contact.score or 0),
        "lists": sorted(contact.lists or ()),
        "attributes": contact.attributes.as_dict() if contact.attributes is not None else {},
        "orders_count": int(contact.orders_count or 0),
        "total_spent": contact.total_spent or 0,
    }


def body(payload: dict[str, Any], contact: ContactModel, now: datetime) -> bytes:
    trigger = payload.get("trigger") or {}
    document = {
        "type": payload["type"],
        "scenario": payload["scenario"],
        "step": payload["step"],
        "occurred_at": now.isoformat(),
        "contact": contact_view(contact),
        "trigger": {"type": trigger.get("type"), "properties": trigger.get("properties") or {}},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode()


def signed_headers(raw: bytes, secret: str, delivery: str) -> dict[str, str]:
    """What every POST to the CRM carries: the signature over the exact body and the delivery id to deduplicate on."""
    # The receiver checks `t` against its own wall clock (replay window): real time, even when the local
    # runtime compresses the simulated one.
    return {
        "Content-Type": "application/json",
        "User-Agent": "parcours",
        SIGNATURE_HEADER: timestamped_signature(raw, secret, int(clock.wall_time())),
        DELIVERY_HEADER: delivery,
    }


def post(url: str, raw: bytes, headers: dict[str, str], timeout: float = TIMEOUT) -> int:
    """The CRM's 2xx status; CrmDeferred or CrmRefused otherwise."""
    # The settings accept only http(s) URLs: no file: or custom scheme reaches urllib.
    request = urllib.request.Request(url, data=raw, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener().open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:  # timeouts, resets, garbled answers
        raise CrmDeferred(f"CRM unreachable: {type(error).__name__}") from error
    if 200 <= status < 300:
        return status
    if status == 429 or status >= 500:
        raise CrmDeferred(f"CRM answered {status}")
    raise CrmRefused(f"CRM answered {status}")


def notify(payload: dict[str, Any], settings: Settings, now: datetime, secret: Callable[[], str]) -> dict[str, Any]:
    """POSTs the notification once the CRM accepts it; skipped when no CRM is configured or the contact is gone."""
    notification_type = payload.get("type")
    if not isinstance(notification_type, str) or not NOTIFICATION_TYPE.match(notification_type):
        raise InvalidNotification(f"notify_crm type {notification_type!r}")
    for name in ("scenario", "step", "execution", "contact_id"):
        if name not in payload:
            raise InvalidNotification(f"notify_crm payload lacks the field {name}")
    if settings.crm_url is None:
        return {"status": "skipped", "reason": "no CRM endpoint configured"}
    t = tables(settings)
    delivery = outbox.send_id(str(payload["execution"]), str(payload["step"]))
    if get_or_none(t.sends, delivery, consistent=True) is not None:
        return {"status": "duplicate", "reason": "the CRM already accepted this notification"}
    contact = get_or_none(t.contacts, str(payload["contact_id"]), consistent=True)
    if contact is None:
        return {"status": "skipped", "reason": "contact not found"}
    raw = body(payload, contact, now)
    status = post(settings.crm_url, raw, signed_headers(raw, secret(), delivery))
    record = t.sends(
        send_id=delivery,
        status="sent",
        scenario=str(payload["scenario"]),
        step=str(payload["step"]),
        contact_id=contact.contact_id,
        channel="crm",
        message_id=delivery,
        claimed_at=now,
        sent_at=now,
        expires_at=now + outbox.KEEP,
    )
    with contextlib.suppress(AlreadyExists):  # a concurrent attempt recorded it first; the CRM deduplicates
        create_new(record, SendModel.send_id)
    return {"status": "sent", "http_status": status, "delivery": delivery}
