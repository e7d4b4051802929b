"""Segment's HTTP tracking API (`identify`, `track`, `page`, `batch`) mapped into the event catalogue.

The key is the HTTP Basic user (empty password), as Segment's libraries send it. The write key is the secret,
server-side one; the browser key is public (it sits in a web page's analytics.js), so what it sends may only report
behaviour (README, "The browser key"): it never changes consent, never changes a known contact's email or phone,
never sends commerce facts and never sets attributes parcours keeps. What it may not do is dropped, and the reason
kept with the event (`ignored`), never shown to the browser as an error. A batch is validated whole
before anything is queued: one bad message refuses the batch (400 naming it, e.g. `batch[3].type`), so nothing is
ever half-accepted. Each message's `messageId` is its idempotency key (`segment#<messageId>`); without one, a digest
of the message stands in, so a library's retry of the same request is still processed once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from shared.events import (
    CHECKOUT_STARTED,
    CONTACT_SUBSCRIBED,
    CONTACT_UPDATED,
    FORM_SUBMITTED,
    ORDER_PLACED,
    PAGE_VIEWED,
    TRACK,
    UNRECOGNISED,
    ConsentFacts,
    ContactFacts,
    Event,
    PayloadError,
    normalise_phone,
)
from shared.sources import products, validation
from shared.sources.ingestion import MAX_BODY_BYTES, Rejected, check_body

SOURCE = "tracking"
CALLS = ("identify", "track", "page")
UNMAPPED_CALLS = ("screen", "group", "alias")  # Segment calls parcours does not act on: recorded, no effect
# Segment's semantic event names that have a place in the catalogue; any other name is a custom `track` event.
SPEC_EVENTS = {
    "Checkout Started": CHECKOUT_STARTED,
    "Order Completed": ORDER_PLACED,
    "Form Submitted": FORM_SUBMITTED,
    "Signed Up": CONTACT_SUBSCRIBED,
}
MAX_BATCH = 500  # messages per batch: the ingest function queues them within its timeout
MAX_LINES = 20  # as for Shopify: enough for any email's product block
# Traits mapped to the contact's own fields, or never kept (full name, postal address, ids).
RESERVED_TRAITS = frozenset(
    {
        "email",
        "phone",
        "firstName",
        "first_name",
        "lastName",
        "last_name",
        "name",
        "locale",
        "timezone",
        "birthday",
        "email_marketing_consent",
        "sms_marketing_consent",
        "id",
        "userId",
        "anonymousId",
        "address",
        "avatar",
        "createdAt",
        "created_at",
    }
)
CONSENT_STATES = {"subscribed": "granted", "unsubscribed": "denied"}
OPT_IN_LEVELS = (None, "single_opt_in", "confirmed_opt_in", "unknown")
MAX_ID = 200
SERVER, BROWSER = "server", "browser"  # which key authorised a request
# Commerce facts come from signed webhooks or the server key: from a public key anyone could buy in a victim's name.
COMMERCE_EVENTS = frozenset(
    {
        "Checkout Started",
        "Checkout Step Viewed",
        "Checkout Step Completed",
        "Payment Info Entered",
        "Order Completed",
        "Order Updated",
        "Order Refunded",
        "Order Cancelled",
        "Coupon Applied",
    }
)
# Attributes parcours keeps itself (the scoring's stage, the counters, consent and suppression): never from a browser.
BROWSER_RESERVED = frozenset(
    {"score", "lifecycle_stage", "stage", "qualified_at", "orders_count", "total_spent", "suppressed"}
)


class TrackingError(ValueError):
    """A message that is not Segment's spec; the text names the field (`batch[3].type`, `userId or anonymousId`)."""


def authorised(authorization: str | None, write_key: str, browser_key: str | None = None) -> str | None:
    """Which key the request carries as the HTTP Basic user (SERVER or BROWSER), or None; compared in constant
    time. The password is not read (Segment's libraries send it empty)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user = decoded.partition(b":")[0]
    server = hmac.compare_digest(user, write_key.encode("utf-8"))
    browser = browser_key is not None and hmac.compare_digest(user, browser_key.encode("utf-8"))
    return SERVER if server else BROWSER if browser else None


def receive(
    call: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    write_key: str,
    now: datetime,
    browser_key: str | None = None,
    wall_time: float | None = None,
) -> list[Event]:
    """One request to `/v1/<call>` -> its events, all valid, or Rejected (401, 400, 413, 415) and none. Each event
    passes shared.sources.validation (its times compared with `now`, or `wall_time` when later)."""
    check_body(raw_body, headers)
    key = authorised(headers.get("authorization"), write_key, browser_key)
    if key is None:
        raise Rejected(401, "missing or wrong write key: send it as the HTTP Basic user, with an empty password")
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        raw_body = _gunzip(raw_body)
    elif encoding not in ("", "identity"):
        raise Rejected(415, f"Content-Encoding must be gzip or none, got {encoding!r}")
    try:
        payload = validation.loads(raw_body)
        latest = validation.horizon(now, wall_time)
        if call == "batch":
            events = parse_batch(payload, now, key)
            return [validation.checked(event, latest, f"batch[{index}].") for index, event in enumerate(events)]
        return [validation.checked(to_event(call, payload, now, key=key), latest)]
    except (TrackingError, PayloadError) as error:
        raise Rejected(400, str(error)) from None


def _gunzip(raw_body: bytes) -> bytes:
    """A gzip body (Segment's libraries may compress), inflated to at most 256 KiB: a bigger one is 413."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw_body, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise Rejected(400, f"body is not valid gzip: {error}") from None
    if len(body) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise Rejected(413, f"body is larger than {MAX_BODY_BYTES} bytes once decompressed")
    return body


def parse_batch(payload: Any, now: datetime, key: str = SERVER) -> list[Event]:
    """`{"batch": [...], "context"?, "sentAt"?}`: every message valid, or TrackingError naming the first bad one."""
    if not isinstance(payload, dict):
        raise TrackingError('body must be a JSON object {"batch": [...]}')
    messages = payload.get("batch")
    if not isinstance(messages, list) or not messages:
        raise TrackingError("batch must be a non-empty list of messages")
    if len(messages) > MAX_BATCH:
        raise TrackingError(f"batch holds {len(messages)} messages; send at most {MAX_BATCH} per request")
    shared_context = _object(payload, "context", "")
    sent_at = payload.get("sentAt")
    events = []
    for index, message in enumerate(messages):
        where = f"batch[{index}]."
        if not isinstance(message, dict):
            raise TrackingError(f"batch[{index}] must be an object")
        call = message.get("type")
        if not isinstance(call, str) or call not in CALLS + UNMAPPED_CALLS:
            raise TrackingError(f"{where}type must be one of identify, track, page (or screen, group, alias)")
        own_context = message.get("context") or {}
        if shared_context and isinstance(own_context, dict):
            message = {**message, "context": {**shared_context, **own_context}}
        if sent_at is not None and "sentAt" not in message:
            message = {**message, "sentAt": sent_at}
        events.append(to_event(call, message, now, where, key))
    return events


def to_event(call: str, message: Any, now: datetime, where: str = "", key: str = SERVER) -> Event:
    """One identify, track or page message (or screen, group, alias: kept, no effect) -> a catalogue event; from the
    browser key, without what that key may not say (`_as_browser`)."""
    if not isinstance(message, dict):
        raise TrackingError(f"{where.rstrip('.') or 'body'} must be a JSON object")
    user_id = _identifier(message, "userId", where)
    anonymous_id = _identifier(message, "anonymousId", where)
    if user_id is None and anonymous_id is None:
        raise TrackingError(f"{where}userId or anonymousId is required")
    context = _object(message, "context", where)
    received = now.astimezone(UTC)
    try:
        occurred = _occurred(message, received, where)
    except OverflowError:  # e.g. an originalTimestamp in year 1 corrected by a sentAt in year 9999
        raise TrackingError(f"{where}timestamp is out of range") from None
    event_id = "segment#" + _message_id(call, message, where)
    facts: ContactFacts | None
    properties: dict[str, Any]
    if call == "identify":
        event_type = CONTACT_UPDATED
        facts, dropped = _identify_facts(message, context, user_id, anonymous_id, occurred, where, key == BROWSER)
        properties = {"ignored": dropped} if dropped else {}
    elif call == "track":
        event_type, properties = _track(message, where)
        facts = _visitor(context, user_id, anonymous_id, where)
    elif call == "page":
        event_type, properties = PAGE_VIEWED, _page(message, context, where)
        facts = _visitor(context, user_id, anonymous_id, where)
    else:
        event_type, properties, facts = UNRECOGNISED, {"call": call}, None
    if key == BROWSER:
        event_type, properties, facts = _as_browser(event_type, properties, facts, where)
    event = Event(
        event_id=event_id,
        type=event_type,
        source=SOURCE,
        topic=call,
        occurred_at=occurred,
        received_at=received.isoformat(),
        contact=facts,
        properties=properties,
    )
    if len(event.to_json().encode("utf-8")) > MAX_BODY_BYTES:
        raise TrackingError(f"{where.rstrip('.') or 'message'} is too large for the queue; send fewer properties")
    return event


def _as_browser(
    event_type: str, properties: dict[str, Any], facts: ContactFacts | None, where: str
) -> tuple[str, dict[str, Any], ContactFacts | None]:
    """What the public browser key may say: behaviour, and profile fields that are not identity nor consent. The rest
    is dropped, each with its reason in the event's `ignored` (kept in the history, never an error to the page)."""
    ignored: list[str] = list(properties.get("ignored", []))
    name = properties.get("event")
    if name in COMMERCE_EVENTS:
        ignored.append(f"{where}event: {name} comes from a signed webhook or the server key, not the browser key")
        return UNRECOGNISED, {"call": "track", "event": name, "ignored": ignored}, None
    if facts is None:
        return event_type, properties, facts
    attributes = dict(facts.attributes or {})
    for attribute in sorted(attributes):
        if attribute in BROWSER_RESERVED or "consent" in attribute:
            del attributes[attribute]
            ignored.append(f"{where}traits.{attribute}: parcours keeps it; the browser key never sets it")
    facts = replace(facts, attributes=attributes or None, identity_trusted=False)  # consent: never read (identify)
    return event_type, {**properties, "ignored": ignored} if ignored else properties, facts


def _identifier(message: dict[str, Any], name: str, where: str) -> str | None:
    """userId and anonymousId: text (numbers as Segment's libraries may send them); empty means absent."""
    value = message.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TrackingError(f"{where}{name} must be text")
    text = str(value).strip()
    if len(text) > MAX_ID:
        raise TrackingError(f"{where}{name} is longer than {MAX_ID} characters")
    return text or None


def _object(message: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = message.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TrackingError(f"{where}{name} must be an object")
    return value


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _instant(value: object, name: str) -> datetime:
    """ISO 8601, as Segment's libraries write it; without a zone, UTC."""
    if not isinstance(value, str):
        raise TrackingError(f"{name} must be an ISO 8601 time, e.g. 2026-11-24T09:00:00Z")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TrackingError(f"{name} must be an ISO 8601 time, e.g. 2026-11-24T09:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _occurred(message: dict[str, Any], received: datetime, where: str) -> str:
    """`timestamp` as given; else `originalTimestamp` corrected for the device's clock by `sentAt`, as Segment
    does (received - (sentAt - originalTimestamp)); else when it arrived."""
    if message.get("timestamp") is not None:
        return _instant(message["timestamp"], f"{where}timestamp").astimezone(UTC).isoformat()
    if message.get("originalTimestamp") is not None:
        original = _instant(message["originalTimestamp"], f"{where}originalTimestamp")
        if message.get("sentAt") is not None:
            sent = _instant(message["sentAt"], f"{where}sentAt")
            return (received - (sent - original)).astimezone(UTC).isoformat()
        return original.astimezone(UTC).isoformat()
    return received.isoformat()


def _message_id(call: str, message: dict[str, Any], where: str) -> str:
    """The message's own id, else a digest of its content without `sentAt` (which a retry may change)."""
    given = message.get("messageId")
    if given is not None and given != "":
        if not isinstance(given, str) or len(given) > MAX_ID:
            raise TrackingError(f"{where}messageId must be text of at most {MAX_ID} characters")
        return given
    content = {name: value for name, value in message.items() if name != "sentAt"}
    canonical = json.dumps([call, content], sort_keys=True, separators=(",", ":"), default=str)
    return "sha256-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def _locale(value: object) -> str | None:
    """`fr`, `fr-FR`, `en_GB` -> the language; parcours writes in fr and en."""
    text = _text(value)
    return re.split(r"[-_]", text)[0].lower()[:2] if text else None


def _visitor(context: dict[str, Any], user_id: str | None, anonymous_id: str | None, where: str) -> ContactFacts:
    """Who did a track or page: the userId, or an email or phone in `context.traits`; else the anonymous visitor,
    who becomes a contact only through an identify."""
    traits = _object(context, "traits", f"{where}context.")
    email = validation.valid_email(traits.get("email"), f"{where}context.traits.email")
    phone = normalise_phone(traits.get("phone"))
    source_id = f"segment#{user_id}" if user_id else None
    identified = email is not None or phone is not None or source_id is not None
    return ContactFacts(
        email=email,
        phone=phone,
        source_id=source_id,
        anonymous_id=None if identified else anonymous_id,
    )


def _identify_facts(
    message: dict[str, Any],
    context: dict[str, Any],
    user_id: str | None,
    anonymous_id: str | None,
    occurred: str,
    where: str,
    browser: bool = False,
) -> tuple[ContactFacts, list[str]]:
    """The identify's facts, and what was dropped from a browser's (its consent, attributes over a limit), each
    with its reason: from the public key they are ignored, never a 400 the page would show."""
    traits = _object(message, "traits", where)
    context_traits = _object(context, "traits", f"{where}context.")
    dropped: list[str] = []
    if browser:
        for name in ("email_marketing_consent", "sms_marketing_consent"):
            if traits.get(name) is not None:
                dropped.append(f"{where}traits.{name}: the browser key never changes consent")
    attributes, over = _attributes(traits, context, where, drop=browser)
    dropped += [f"{where}traits.{name}: {rule}" for name, rule in over]
    facts = ContactFacts(
        email=validation.valid_email(traits.get("email"), f"{where}traits.email")
        or validation.valid_email(context_traits.get("email"), f"{where}context.traits.email"),
        first_name=_text(traits.get("firstName")) or _text(traits.get("first_name")),
        last_name=_text(traits.get("lastName")) or _text(traits.get("last_name")),
        locale=_locale(traits.get("locale")) or _locale(context.get("locale")),
        source_id=f"segment#{user_id}" if user_id else None,
        email_consent=None if browser else _consent(traits, "email_marketing_consent", occurred, where),
        # No updated_at: a device's clock must not decide which source's facts are stale (nor freeze the contact
        # for the shops' webhooks); a visitor's messages are applied in the order its FIFO group keeps.
        updated_at=None,
        phone=normalise_phone(traits.get("phone")) or normalise_phone(context_traits.get("phone")),
        sms_consent=None if browser else _consent(traits, "sms_marketing_consent", occurred, where),
        attributes=attributes or None,
        anonymous_id=anonymous_id,
    )
    return facts, dropped


def _consent(traits: dict[str, Any], name: str, occurred: str, where: str) -> ConsentFacts | None:
    """The one consent shape the tracking API reads (Shopify's): {state: subscribed|unsubscribed, opt_in_level,
    consent_updated_at, wording}. Any other trait (`newsletter: true`, ...) grants nothing. Without its own
    consent_updated_at (the message's time stands in), a grant never undoes a denial (README, "Consent rules")."""
    block = traits.get(name)
    if block is None:
        return None
    field = f"{where}traits.{name}"
    if not isinstance(block, dict):
        raise TrackingError(
            f"{field} must be an object {{state: subscribed|unsubscribed, opt_in_level, consent_updated_at}}"
        )
    state = block.get("state")
    if state not in CONSENT_STATES:
        raise TrackingError(f"{field}.state must be subscribed or unsubscribed")
    level = block.get("opt_in_level")
    if level not in OPT_IN_LEVELS:
        raise TrackingError(f"{field}.opt_in_level must be single_opt_in, confirmed_opt_in or unknown")
    given = block.get("consent_updated_at")
    at = occurred if given is None else _instant(given, f"{field}.consent_updated_at").astimezone(UTC).isoformat()
    wording = block.get("wording")
    if wording is not None and (not isinstance(wording, str) or not wording.strip()):
        raise TrackingError(f"{field}.wording must be the text or version of the form the person agreed to")
    return ConsentFacts(
        CONSENT_STATES[state], level, at, "tracking:identify", wording and wording.strip(), explicit=given is not None
    )


def _snake(name: str) -> str:
    """planType -> plan_type: Segment's traits are camelCase, parcours' attributes snake_case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def _attributes(
    traits: dict[str, Any], context: dict[str, Any], where: str = "", drop: bool = False
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Custom attributes: the time zone, the birthday (an ISO date), and every other plain trait (text, number,
    true/false), snake_cased, within the limits of shared.sources.validation.limit_attributes (a trait over one is
    a 400 naming it: `traits.planType`; with `drop`, left out and returned with its reason); the contact keeps
    those named like plan_type
    (shared.people.contacts.custom_attributes)."""
    fields: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for name, value in traits.items():
        if name not in RESERVED_TRAITS and _scalar(value):
            attributes[_snake(name)] = value.strip() if isinstance(value, str) else value
            fields[_snake(name)] = f"{where}traits.{name}"
    timezone = _text(traits.get("timezone")) or _text(context.get("timezone"))
    if timezone is not None:
        attributes["timezone"] = timezone
    birthday = _day(traits.get("birthday"))
    if birthday is not None:
        attributes["birthday"] = birthday
    fields.setdefault("timezone", f"{where}traits.timezone")
    return validation.limit_attributes(attributes, f"{where}traits.", drop=drop, fields=fields)


def _day(value: object) -> str | None:
    """A birthday as YYYY-MM-DD (Segment sends a date or a full ISO time); anything else is dropped."""
    text = _text(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def _track(message: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """Segment's spec names -> their catalogue event; any other name -> `track`, with the name in `event`."""
    name = _text(message.get("event"))
    if name is None:
        raise TrackingError(f"{where}event is required: the event's name, e.g. Order Completed")
    try:  # recommended products (or lines) a shop passes with any track: cleaned as every source's
        given = products.clean(_object(message, "properties", where), f"{where}properties.")
    except products.ProductError as error:
        raise TrackingError(str(error)) from None
    event_type = SPEC_EVENTS.get(name, TRACK)
    if event_type in (ORDER_PLACED, CHECKOUT_STARTED):
        kept = {key: value for key, value in given.items() if key != "products"}
        try:
            purchase = _purchase(given, event_type, where)
        except products.ProductError as error:
            raise TrackingError(str(error)) from None
        return event_type, {**kept, **purchase, "event": name}
    return event_type, {**given, "event": name}


def _amount(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return _text(str(value))


def _purchase(given: dict[str, Any], event_type: str, where: str = "") -> dict[str, Any]:
    """The e-commerce spec's properties in the shape the Shopify mapping gives (templates read `lines`, `total`)."""
    lines: list[dict[str, Any]] = []
    for index, product in enumerate(products.items(given.get("products"))):
        if isinstance(product, dict) and len(lines) < MAX_LINES:
            products.check_quantity(product.get("quantity"), f"{where}properties.products[{index}].quantity")
            lines.append(
                products.line(
                    name=product.get("name"),
                    variant=product.get("variant"),
                    quantity=product.get("quantity"),
                    price=product.get("price"),
                    product_id=product.get("product_id") or product.get("sku"),
                    image=product.get("image_url"),  # the e-commerce spec's names
                    url=product.get("url"),
                )
            )
    total = next((given[name] for name in ("total", "revenue", "value") if given.get(name) is not None), None)
    properties: dict[str, Any] = {"total": _amount(total), "currency": _text(given.get("currency")), "lines": lines}
    if event_type == CHECKOUT_STARTED:
        properties["checkout_token"] = _amount(given.get("checkout_id")) or _amount(given.get("order_id"))
        properties["recovery_url"] = _text(given.get("recovery_url"))
        properties["completed"] = False
    else:
        order_id = given.get("order_id")
        properties["order_id"] = order_id
        properties["order_name"] = _text(given.get("order_name")) or _amount(order_id)
        properties["status_url"] = _text(given.get("status_url"))
        properties["discount_code"] = products.discount_code([given.get("discount_code") or given.get("coupon")])
    return properties


def _page(message: dict[str, Any], context: dict[str, Any], where: str) -> dict[str, Any]:
    """url, path, title and referrer from the properties, else from `context.page` (analytics.js fills both);
    `path` from the url when neither gives it: behaviour conditions filter on it."""
    given = _object(message, "properties", where)
    page = _object(context, "page", f"{where}context.")
    url = _text(given.get("url")) or _text(page.get("url"))
    path = _text(given.get("path")) or _text(page.get("path"))
    if path is None and url is not None:
        path = urlsplit(url).path or "/"
    named = {
        "url": url,
        "path": path,
        "title": _text(given.get("title")) or _text(page.get("title")),
        "referrer": _text(given.get("referrer")) or _text(page.get("referrer")),
    }
    name = _text(message.get("name"))
    if name is not None:
        named["name"] = name
    return {**given, **named}
