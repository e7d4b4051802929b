"""What the ingest function does with a delivery: verify, normalise, enqueue durably. Nothing more."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients, shopify
from shared.clock import Clock
from shared.events import Event
from shared.settings import Settings
from shared.signatures import verify_shopify

MAX_BODY_BYTES = 256 * 1024


class Rejected(Exception):
    """A delivery refused with an HTTP status and a reason that names the problem."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class QueueUnavailable(RuntimeError):
    """SQS did not take the event: answer 5xx so the source retries."""


def receive_shopify(raw_body: bytes, headers: Mapping[str, str], secret: str, clock: Clock) -> Event:
    if len(raw_body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    if not verify_shopify(raw_body, headers.get("x-shopify-hmac-sha256"), secret):
        raise Rejected(401, "invalid or missing X-Shopify-Hmac-Sha256 signature")
    try:
        payload = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Rejected(400, f"body is not JSON: {error}") from None
    try:
        return shopify.to_event(headers, payload, clock.now())
    except shopify.ShopifyPayloadError as error:
        raise Rejected(400, str(error)) from None


def group_and_dedup_ids(event: Event) -> tuple[str, str]:
    """FIFO ids: one group per contact (their events stay in order), deduplicated on the event id."""
    return (
        hashlib.sha256(event.contact_key().encode()).hexdigest(),
        hashlib.sha256(event.event_id.encode()).hexdigest(),
    )


def enqueue(event: Event, settings: Settings) -> str:
    """Sends to the FIFO queue; SQS drops a redelivery within its 5-minute window."""
    try:
        group, dedup = group_and_dedup_ids(event)
        answer = clients.sqs(settings.region).send_message(
            QueueUrl=settings.queue_url,
            MessageBody=event.to_json(),
            MessageGroupId=group,
            MessageDeduplicationId=dedup,
        )
    except (ClientError, BotoCoreError) as error:
        raise QueueUnavailable(type(error).__name__) from error
    return answer["MessageId"]
