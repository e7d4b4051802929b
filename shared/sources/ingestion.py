"""What the ingest function does with a delivery: verify, normalise, enqueue durably. Nothing more."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients
from shared.clock import Clock
from shared.events import SCENARIO_REQUESTED, ConsentFacts, ContactFacts, Event, PayloadError
from shared.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# The sources' mappings, checks and signatures (shared.sources.shopify, woocommerce, generic, validation, products,
# signatures) are imported by the receive_* functions, the ingest side's: the functions that only enqueue what they
# emit (process, act, schedule, admin, handoff) do not load them at their cold start (about 9 ms).

MAX_BODY_BYTES = 256 * 1024
FORM = "application/x-www-form-urlencoded"
_PING = re.compile(rb"webhook_id=[0-9]+")


class Rejected(Exception):
    """A delivery refused with an HTTP status and a reason that names the problem."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class QueueUnavailable(RuntimeError):
    """SQS did not take the event: answer 5xx so the source retries."""


def check_body(raw_body: bytes, headers: Mapping[str, str], accepted: tuple[str, ...] = ("application/json",)) -> None:
    """Size and media type, checked before the signature: 413 and 415 name what the route takes."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in accepted:
        raise Rejected(415, f"Content-Type must be {' or '.join(accepted)}, got {media_type or 'none'!r}")


def _decode(raw_body: bytes, to_event: Callable[[Any], Event], latest: datetime) -> Event:
    """The event of a verified body: 400 naming the problem when it is not JSON, not the source's shape, or holds
    what processing would choke on (shared.sources.validation; `latest`: its horizon)."""
    from shared.sources import validation

    try:
        return validation.checked(to_event(validation.loads(raw_body)), latest)
    except PayloadError as error:
        raise Rejected(400, str(error)) from None


def receive_shopify(
    raw_body: bytes, headers: Mapping[str, str], secret: str, clock: Clock, wall_time: float | None = None
) -> Event:
    from shared.sources import shopify, validation
    from shared.sources.signatures import verify_shopify

    check_body(raw_body, headers)
    if not verify_shopify(raw_body, headers.get("x-shopify-hmac-sha256"), secret):
        raise Rejected(401, "invalid or missing X-Shopify-Hmac-Sha256 signature")
    now = clock.now()
    latest = validation.horizon(now, wall_time)
    return _decode(raw_body, lambda payload: shopify.to_event(headers, payload, now), latest)


def receive_generic(
    raw_body: bytes, headers: Mapping[str, str], secrets: list[str], clock: Clock, wall_time: float
) -> Event:
    """A site's own signed event (shared/sources/generic.py documents the shape); any secret of a rotation verifies.

    The replay window is measured on the wall clock (`wall_time`), which the sender's timestamp comes from: the
    local runtime's compressed clock runs days ahead of it.
    """
    from shared.sources import generic, validation
    from shared.sources.signatures import verify_timestamped

    check_body(raw_body, headers)
    if not verify_timestamped(raw_body, headers.get("x-parcours-signature"), secrets, wall_time):
        raise Rejected(401, "invalid, missing or expired X-Parcours-Signature (t=<unix>,v1=<hex>, within 300 s of now)")
    now = clock.now()
    latest = validation.horizon(now, wall_time)
    return _decode(raw_body, lambda payload: generic.to_event(payload, now), latest)


def is_woocommerce_ping(raw_body: bytes, headers: Mapping[str, str]) -> bool:
    """WooCommerce's activation ping: the form body `webhook_id=N`, unsigned. It asks only for a 2xx."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == FORM and _PING.fullmatch(raw_body.strip()) is not None


def receive_woocommerce(
    raw_body: bytes, headers: Mapping[str, str], secret: str, clock: Clock, wall_time: float | None = None
) -> Event | None:
    """The event of a signed delivery, or None for the activation ping (answer 200, enqueue nothing)."""
    from shared.sources import validation, woocommerce
    from shared.sources.signatures import verify_woocommerce

    if len(raw_body) <= MAX_BODY_BYTES and is_woocommerce_ping(raw_body, headers):
        return None
    check_body(raw_body, headers)
    if not verify_woocommerce(raw_body, headers.get("x-wc-webhook-signature"), secret):
        raise Rejected(401, "invalid or missing X-WC-Webhook-Signature signature")
    now = clock.now()
    latest = validation.horizon(now, wall_time)
    event = _decode(raw_body, lambda payload: woocommerce.to_event(headers, payload, now), latest)
    return event


def group_and_dedup_ids(event: Event) -> tuple[str, str]:
    """FIFO ids: one group per contact (their events stay in order), deduplicated on the event id."""
    return (
        hashlib.sha256(event.contact_key().encode()).hexdigest(),
        hashlib.sha256(event.event_id.encode()).hexdigest(),
    )


_held: ContextVar[list[Event] | None] = ContextVar("held", default=None)

# The events one causal chain may emit, one after another: a source's event, what its processing emits (score,
# stage, lists), what the executions it starts emit, and so on. The shipped scenarios and rules go 2 deep; a chain
# of 20 leaves room for a deployment's own lists and scenarios built on each other, while a loop that parcours
# validate could not see (it refuses those it can) stops after 20 laps at most, within minutes, instead of never.
CHAIN_LIMIT = 20
logger = logging.getLogger(__name__)


@dataclass
class Chain:
    """The cause in hand: what parcours emits now is its consequence (its chain + 1). `cut`: how many were not
    emitted because the chain reached CHAIN_LIMIT (the caller counts them in a metric)."""

    depth: int
    cut: int = 0


_cause: ContextVar[Chain | None] = ContextVar("cause", default=None)


@contextmanager
def caused_by(depth: int) -> Iterator[Chain]:
    """While processing an event (or running a step of an execution it started) of chain `depth`: every event
    parcours emits is one link further, and none past CHAIN_LIMIT is emitted."""
    chain = Chain(max(0, depth))
    token = _cause.set(chain)
    try:
        yield chain
    finally:
        _cause.reset(token)


def _linked(event: Event) -> Event | None:
    """The event as the consequence of the cause in hand; None when its chain would pass the limit."""
    cause = _cause.get()
    if cause is None or event.source != "parcours":
        return event
    linked = replace(event, chain=max(event.chain, cause.depth + 1))
    if linked.chain > CHAIN_LIMIT:
        cause.cut += 1
        # No personal data: the type, the chain's length and the topic (a scenario/step or "scoring")
        logger.warning(
            "event not emitted: its causal chain reached %d events (%s, topic %s)",
            CHAIN_LIMIT,
            event.type,
            event.topic,
        )
        return None
    return linked


@contextmanager
def held() -> Iterator[list[Event]]:
    """The events parcours emits while it processes one event, kept in the list it yields and not queued: the
    processing stores them with the event's mark and queues them once its transaction is written (shared.writes),
    after its own scenarios start."""
    kept: list[Event] = []
    token = _held.set(kept)
    try:
        yield kept
    finally:
        _held.reset(token)


def enqueue(event: Event, settings: Settings, body: str | None = None) -> str:
    """Sends to the FIFO queue; SQS drops a redelivery within its 5-minute window. Inside `held`, kept
    for the processing to queue after its transaction (answers no message id then). `body`: the event's JSON
    (`to_json`) when in hand already, sent as it is unless linking changed the event."""
    linked = _linked(event)
    if linked is None:
        return ""
    held = _held.get()
    if held is not None:
        held.append(linked)
        return ""
    try:
        group, dedup = group_and_dedup_ids(linked)
        answer = clients.sqs(settings.region).send_message(
            QueueUrl=settings.queue_url,
            MessageBody=body if body is not None and linked is event else linked.to_json(),
            MessageGroupId=group,
            MessageDeduplicationId=dedup,
        )
    except (ClientError, BotoCoreError) as error:
        raise QueueUnavailable(type(error).__name__) from error
    return answer["MessageId"]


SQS_BATCH = 10  # SendMessageBatch's limits: 10 messages, 256 KiB in all
SQS_BATCH_BYTES = 256 * 1024


def enqueue_all(events: list[Event], settings: Settings) -> None:
    """Sends events in SendMessageBatch calls; QueueUnavailable if SQS refused any of them. The sender then
    retries the whole request: those already queued are dropped by SQS's deduplication (and by the processor's
    idempotency after its 5-minute window)."""
    chunks: list[list[SendMessageBatchRequestEntryTypeDef]] = [[]]
    size = 0
    for index, event in enumerate(events):
        group, dedup = group_and_dedup_ids(event)
        body = event.to_json()
        length = len(body.encode("utf-8"))
        if len(chunks[-1]) == SQS_BATCH or (chunks[-1] and size + length > SQS_BATCH_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(
            {"Id": str(index), "MessageBody": body, "MessageGroupId": group, "MessageDeduplicationId": dedup}
        )
        size += length
    sqs = clients.sqs(settings.region)
    for entries in chunks:
        if not entries:
            continue
        try:
            answer = sqs.send_message_batch(QueueUrl=settings.queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            raise QueueUnavailable(type(error).__name__) from error
        failed = answer.get("Failed") or []
        if failed:
            raise QueueUnavailable(f"{len(failed)} of {len(entries)} messages refused: {failed[0].get('Code')}")


def receive_start_request(
    scenario: str, raw_body: bytes, known: set[str], clock: Clock, wall_time: float | None = None
) -> Event:
    """An explicit start (`POST /v1/scenarios/{scenario}/start`): who, with which properties, consent if given.

    Body: {"email": ..., "first_name", "last_name", "locale", "properties": {...},
           "attributes": {"birthday": "1990-03-15", "timezone": "Europe/Paris", ...},
           "consent": {"state": "granted", "level": "confirmed_opt_in", "at": ISO 8601}, "request_id": ...}
    """
    from shared.sources import products, validation

    if scenario not in known:
        raise Rejected(
            404,
            f"no scenario {scenario!r} can be started through the API; such scenarios: "
            f"{', '.join(sorted(known)) or 'none'}",
        )
    if len(raw_body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = validation.loads(raw_body or b"{}")
    except PayloadError as error:
        raise Rejected(400, str(error)) from None
    if not isinstance(body, dict):
        raise Rejected(400, "body must be a JSON object")
    current = clock.now()
    latest = validation.horizon(current, wall_time)
    try:
        email = validation.valid_email(body.get("email"), "email")
    except PayloadError as error:
        raise Rejected(400, str(error)) from None
    if email is None:
        raise Rejected(400, "field email is missing or not an email address")
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise Rejected(400, "field properties must be an object")
    try:
        properties = products.clean(properties)
    except products.ProductError as error:
        raise Rejected(400, f"field {error}") from None
    attributes = body.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise Rejected(400, "field attributes must be an object of custom attributes, e.g. {birthday: YYYY-MM-DD}")
    now = current.isoformat()
    consent = None
    try:
        if attributes:
            validation.limit_attributes(attributes, "attributes.")
        if "consent" in body:
            given = body["consent"]
            if not isinstance(given, dict) or given.get("state") not in ("granted", "denied"):
                raise Rejected(400, "field consent must be {state: granted|denied, level, at}")
            level = given.get("level")
            if level not in (None, "single_opt_in", "confirmed_opt_in"):
                raise Rejected(400, "field consent.level must be single_opt_in or confirmed_opt_in")
            given_at = given.get("at")
            at = (
                now
                if given_at is None or given_at == ""
                else validation.instant(given_at, "consent.at", latest).isoformat()
            )
            consent = ConsentFacts(given["state"], level, at, "api:scenario-start", explicit=bool(given_at))
    except PayloadError as error:
        raise Rejected(400, str(error)) from None
    texts = {}
    for name in ("first_name", "last_name", "locale", "request_id"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise Rejected(400, f"field {name} must be text")
        texts[name] = value.strip() or None if isinstance(value, str) else None
    request_id = texts["request_id"] or uuid.uuid4().hex
    event = Event(
        event_id=f"api#{scenario}#{request_id}",
        type=SCENARIO_REQUESTED,
        source="api",
        topic=f"scenarios/{scenario}/start",
        occurred_at=now,
        received_at=now,
        contact=ContactFacts(
            email=email,
            first_name=texts["first_name"],
            last_name=texts["last_name"],
            locale=texts["locale"],
            email_consent=consent,
            attributes=attributes or None,
        ),
        properties={**properties, "scenario": scenario},
    )
    try:
        return validation.checked(event, latest)
    except PayloadError as error:
        raise Rejected(400, str(error)) from None
