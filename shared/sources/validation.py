"""What every source's event passes before it is queued: nothing accepted may fail its processing.

A 2xx means the event will be processed (REQUIREMENTS.md, Trust). Whatever a handler downstream would choke on is
refused here with an `InputError` (a 400) that names the field and the limit:

- bodies: at most MAX_DEPTH levels of nesting (checked before `json` parses, whose recursion would overflow), no
  `NaN` nor `Infinity` (not JSON), numbers Python can read;
- numbers anywhere in the event: finite and within ±1e38 (DynamoDB's range); `properties.total` of a
  checkout or an order a number (or numeric text) between 0 and MAX_TOTAL;
- timestamps (`occurred_at`, `contact.updated_at`, a consent's `at`): ISO 8601 with a zone offset, not before
  EARLIEST nor more than AHEAD after the clock's now;
- text: valid Unicode (no lone surrogate, which DynamoDB's UTF-8 cannot store); names (`first_name`, `last_name`)
  have their control characters (CR, LF, NUL, ...) and bidirectional overrides stripped, and are cut at MAX_NAME
  characters: a shop's webhook cannot be fixed by its sender, and a name only greets;
- emails: `valid_email` (the email-validator library, syntax only: no DNS, no network);
- ids that become DynamoDB keys (the event id, a source's own id): at most MAX_KEY bytes;
- custom attributes: `limit_attributes` (count, name, value, total size);
- a refund or a cancellation (`order.refunded`, `order.cancelled`): `properties.order_id` (and a refund's
  `properties.refund_id`) the shop's id (ORDER_REF), `properties.amount` a decimal between 0 and MAX_TOTAL,
  `properties.currency` an ISO 4217 code: what the contact's counters and the reports take back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.events import (
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    ORDER_CANCELLED,
    ORDER_PAID,
    ORDER_PLACED,
    ORDER_REFUNDED,
    ConsentFacts,
    ContactFacts,
    Event,
    PayloadError,
    normalise_email,
)

MAX_DEPTH = 32  # levels of objects and lists in a body: Segment's and the shops' payloads use fewer than 8
MAX_NUMBER = 10**38 - 1  # DynamoDB keeps 38 digits (a shop's 64-bit ids fit; JavaScript reads only 53 bits of them)
MIN_MAGNITUDE = 1e-100  # a non-zero number closer to 0 than DynamoDB's 1e-130 cannot be stored: refused before
MAX_TOTAL = 10**12  # an order's or a checkout's total, in the shop's currency
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)  # a sender's clock may run ahead of ours, not by more than this
MAX_NAME = 200  # characters of a first or last name (as of a product's name)
CONSENT_AHEAD = timedelta(minutes=5)  # a sender's clock may run a little ahead; more is forged or broken
MAX_WORDING = 2000  # characters of a consent's wording (kept with every statement, on the contact)
MAX_EMAIL = 254  # RFC 5321's path limit
MAX_KEY = 512  # bytes of an event id or a source's own id: DynamoDB keys (a sort key holds 1,024)
# Custom attributes (contact.attributes, a tracking identify's traits, the API start's attributes):
MAX_ATTRIBUTES = 50  # per event, and on a contact (shared.people.contacts keeps no more)
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # shared.people.conditions.NAME: what conditions can read
MAX_ATTRIBUTE_VALUE = 1024  # bytes of a value as UTF-8 text
MAX_ATTRIBUTES_SIZE = 16 * 1024  # bytes of all of them, as JSON

# Stripped from names: C0 and C1 controls (CR, LF, NUL, ...) and the invisible marks that reorder or hide text.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_LOCALE = re.compile(r"^[a-z]{2}$")
_PURCHASES = (CHECKOUT_STARTED, CHECKOUT_UPDATED, ORDER_PLACED, ORDER_PAID)
_TAKE_BACKS = (ORDER_REFUNDED, ORDER_CANCELLED)
# An order's or a refund's id as the shops write them; the reports key an order on it (shared.reports.attribution).
ORDER_REF = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217


class InputError(PayloadError):
    """Refused at ingest (400): `field` names what is wrong (`batch[3].traits.email`), the text the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


# ---------------------------------------------------------------------------------------------------------- body


def nesting_depth(raw: bytes) -> int:
    """How deep a JSON text nests (objects and lists), counted without parsing it: brackets inside strings are
    skipped. Linear, no recursion: a 134-byte gzip inflating to 10,000 `[` is answered at once."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise InputError("body", f"{name} is not a JSON number; numbers must be finite")


def loads(raw: bytes, field: str = "body") -> Any:
    """A request body as JSON, or InputError: not JSON (also NaN and Infinity), nested deeper than MAX_DEPTH, or a
    number Python refuses (an integer of more than 4,300 digits)."""
    if nesting_depth(raw) > MAX_DEPTH:
        raise InputError(field, f"nests deeper than {MAX_DEPTH} levels of objects and lists")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except InputError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(field, f"is not JSON: {error}") from None
    except (ValueError, RecursionError):  # int digits limit; recursion cannot happen below MAX_DEPTH
        raise InputError(field, "is not JSON this service can read (a number too long?)") from None


# -------------------------------------------------------------------------------------------------------- values


def email_or_none(raw: object) -> str | None:
    """A shop's address when valid, else None: a shop validated it already, and its webhook, refused, would be
    retried and then disabled for a field its sender cannot fix; the event keeps the customer's other ids."""
    try:
        return valid_email(raw, "email")
    except InputError:
        return None


def valid_email(raw: object, field: str) -> str | None:
    """The address as parcours keeps it (trimmed, lower-cased: `normalise_email`) when it is a valid one; None when
    absent (None or empty); InputError naming the field otherwise. Syntax only (the email-validator library,
    deliverability off: no DNS request at ingest); internationalised addresses are accepted."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise InputError(field, "not a valid email address (must be text)")
    email = normalise_email(raw)
    if email is None or len(email) > MAX_EMAIL:
        raise InputError(field, "not a valid email address")
    from email_validator import EmailNotValidError, validate_email  # ~20 ms: paid by the first email, not the import

    try:
        validate_email(email, check_deliverability=False)
    except (EmailNotValidError, UnicodeError):
        raise InputError(field, "not a valid email address") from None
    return email


def clean_name(value: str | None) -> str | None:
    """A display name without control characters (a CR or LF breaks an email's headers) nor bidirectional
    overrides, its whitespace collapsed, cut at MAX_NAME characters; None when nothing is left."""
    if value is None:
        return None
    kept = "".join(
        " " if char in "\t\n\r\x0b\x0c" else char
        for char in value
        if char in "\t\n\r\x0b\x0c" or (unicodedata.category(char) not in ("Cc", "Cs") and char not in _BIDI)
    )
    text = " ".join(kept.split())[:MAX_NAME].rstrip()
    return text or None


def instant(value: object, field: str, now: datetime) -> datetime:
    """An ISO 8601 time with its zone offset, between EARLIEST and now + AHEAD; InputError naming the field."""
    rule = "must be an ISO 8601 time with a zone offset, e.g. 2026-11-24T09:00:00Z"
    if not isinstance(value, str):
        raise InputError(field, rule)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(field, rule) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(field, f"{rule} (a time without an offset is ambiguous)")
    try:
        if moment < EARLIEST or moment > now + AHEAD:
            raise InputError(field, f"must be after {EARLIEST.date().isoformat()} and at most a day after now")
    except OverflowError:
        raise InputError(field, rule) from None
    return moment


def _number_rule(value: float | int) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if abs(value) > MAX_NUMBER:
        return "must be a number between -1e38 and 1e38"
    if isinstance(value, float) and value != 0 and abs(value) < MIN_MAGNITUDE:
        return f"must be 0 or a number at least {MIN_MAGNITUDE} away from 0"
    return None


def _walk(value: Any, field: str) -> None:
    """Every number finite and in range, every text valid Unicode, anywhere in a value (depth bounded by the
    body's)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        rule = _number_rule(value)
        if rule is not None:
            raise InputError(field, rule)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(field, "is not valid Unicode text (a lone surrogate)") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk(key, field)
            _walk(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{field}[{index}]")


def amount(value: object, field: str) -> None:
    """A total: absent (None), or a number (or numeric text, as shops write it) between 0 and MAX_TOTAL."""
    if value is None:
        return
    rule = f"must be a finite number >= 0 (at most {MAX_TOTAL})"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(field, rule)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputError(field, rule) from None
    if not number.is_finite() or number < 0 or number > MAX_TOTAL:
        raise InputError(field, rule)


def order_ref(value: object, field: str) -> str:
    """An order's or a refund's id (a number or text, as the shops write them) as text; InputError naming the
    field when absent or not an id."""
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not ORDER_REF.match(text):
        raise InputError(field, "must be the shop's id (letters, digits, '.', '_', ':' or '-', at most 128)")
    return text


def money(value: object, field: str) -> Decimal:
    """An amount given back or an order's total: a decimal (text, as shops write money, or a number) between 0 and
    MAX_TOTAL, exact; InputError naming the field otherwise (absent included)."""
    rule = f'must be a decimal amount >= 0 and at most {MAX_TOTAL}, e.g. "42.00"'
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(field, rule)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputError(field, rule) from None
    if not number.is_finite() or number < 0 or number > MAX_TOTAL:
        raise InputError(field, rule)
    return number


def currency(value: object, field: str) -> str:
    """An ISO 4217 code (`EUR`; `eur` is read as `EUR`); InputError naming the field otherwise (absent included)."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if not CURRENCY.match(code):
        raise InputError(field, "must be an ISO 4217 currency code, e.g. EUR")
    return code


# ---------------------------------------------------------------------------------------------------- attributes


def _attribute_rule(name: object, value: object) -> str | None:
    if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
        return "attribute names are lower-case letters, digits and _, starting with a letter, at most 64 characters"
    if value is not None and not isinstance(value, str | int | float | bool):
        return "an attribute's value must be text, a number, true/false or null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_rule(value)
    if isinstance(value, str):
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            return "is not valid Unicode text (a lone surrogate)"
        if size > MAX_ATTRIBUTE_VALUE:
            return f"an attribute's value must be at most {MAX_ATTRIBUTE_VALUE} bytes"
    return None


def size_of(attributes: Mapping[str, Any]) -> int:
    """The attributes' size as JSON (what the total limit counts)."""
    return len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def limit_attributes(
    attributes: Mapping[str, Any], where: str, *, drop: bool = False, fields: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Custom attributes within the limits: at most MAX_ATTRIBUTES, named like plan_type (ATTRIBUTE_NAME), each a
    text of at most MAX_ATTRIBUTE_VALUE bytes, a number (finite, within ±MAX_NUMBER), true/false or null, all of
    them at most MAX_ATTRIBUTES_SIZE bytes as JSON.

    Raises InputError naming the first attribute over a limit (`{where}{name}`, or `fields[name]`), or, with
    `drop`, keeps what fits (in the given order) and returns the dropped names with their reason (for a source
    that may not be refused, such as a browser's)."""
    kept: dict[str, Any] = {}
    dropped: list[tuple[str, str]] = []
    for name, value in attributes.items():
        field = (fields or {}).get(name, f"{where}{name}")
        rule = _attribute_rule(name, value)
        if rule is None and len(kept) >= MAX_ATTRIBUTES:
            rule = f"at most {MAX_ATTRIBUTES} custom attributes per event"
        if rule is None and size_of({**kept, name: value}) > MAX_ATTRIBUTES_SIZE:
            rule = f"custom attributes must be at most {MAX_ATTRIBUTES_SIZE} bytes in all, as JSON"
        if rule is None:
            kept[name] = value
        elif drop:
            dropped.append((str(name), rule))
        else:
            raise InputError(field, rule)
    return kept, dropped


# --------------------------------------------------------------------------------------------------------- event


def horizon(now: datetime, wall_time: float | None) -> datetime:
    """The instant a sender's time is compared with: parcours' clock, or the wall clock when it is later. In AWS
    they are one; the local runtime's clock may start days behind the wall clock the senders' times come from."""
    if wall_time is None:
        return now
    return max(now, datetime.fromtimestamp(wall_time, tz=UTC))


def _key(value: str | None, field: str) -> None:
    if value is not None and len(value.encode("utf-8", "surrogatepass")) > MAX_KEY:
        raise InputError(field, f"must be at most {MAX_KEY} bytes")


def _consent(facts: ConsentFacts | None, field: str, now: datetime) -> ConsentFacts | None:
    if facts is None:
        return None
    at = instant(facts.at, f"{field}.at", now)
    if at > now + CONSENT_AHEAD:  # kept, it would outrank every later statement, a person's unsubscribe included
        ahead = f"at most {CONSENT_AHEAD.seconds // 60} minutes ahead of now ({now.isoformat()})"
        raise InputError(f"{field}.at", f"must not be in the future, {ahead}: a consent is dated when it was given")
    if facts.wording is not None and len(facts.wording) > MAX_WORDING:
        raise InputError(f"{field}.wording", f"must be at most {MAX_WORDING} characters")
    return dataclasses.replace(facts, at=at.isoformat())


def _contact(facts: ContactFacts, where: str, now: datetime) -> ContactFacts:
    email = valid_email(facts.email, f"{where}contact.email") if facts.email is not None else None
    _key(facts.source_id, f"{where}contact.id")
    _key(facts.anonymous_id, f"{where}contact.anonymous_id")
    if facts.updated_at is not None:
        instant(facts.updated_at, f"{where}contact.updated_at", now)
    if facts.attributes:
        limit_attributes(facts.attributes, f"{where}contact.attributes.")
    language = re.split(r"[-_]", facts.locale.strip())[0].lower()[:2] if facts.locale is not None else None
    locale = language if language is not None and _LOCALE.match(language) else None
    return dataclasses.replace(
        facts,
        email=email,
        first_name=clean_name(facts.first_name),
        last_name=clean_name(facts.last_name),
        locale=locale,
        email_consent=_consent(facts.email_consent, f"{where}contact.email_consent", now),
        sms_consent=_consent(facts.sms_consent, f"{where}contact.sms_consent", now),
    )


def checked(event: Event, now: datetime, where: str = "") -> Event:
    """The event as it may be queued, or InputError naming its first field a handler would choke on (prefixed with
    `where`, e.g. `batch[3].`). Names are cleaned (`clean_name`) and an unusable locale dropped; nothing else is
    changed."""
    _key(event.event_id, f"{where}id")
    instant(event.occurred_at, f"{where}occurred_at", now)
    _walk(event.properties, f"{where}properties")
    if event.type in _PURCHASES:
        amount(event.properties.get("total"), f"{where}properties.total")
    if event.type in _TAKE_BACKS:
        order_ref(event.properties.get("order_id"), f"{where}properties.order_id")
        money(event.properties.get("amount"), f"{where}properties.amount")
        currency(event.properties.get("currency"), f"{where}properties.currency")
        if event.type == ORDER_REFUNDED:
            order_ref(event.properties.get("refund_id"), f"{where}properties.refund_id")
    contact = None
    if event.contact is not None:
        _walk(dataclasses.asdict(event.contact), f"{where}contact")
        contact = _contact(event.contact, where, now)
    _walk(event.event_id, f"{where}id")
    _walk(event.topic, f"{where}topic")
    return dataclasses.replace(event, contact=contact)
