"""Events the process function cannot handle: sent to the dead-letter queue with their reason, never retried blind.

A message that can never be handled (not JSON, not an Event, a field of the wrong type) goes to the DLQ on its
first receive; any other failure (storage, throttling, a bug) is retried by SQS and, on the last receive the
queue allows, goes to the DLQ too. Either way the reason travels as message attributes (error type and message,
the event's id, type and source: no personal data) and the message is acknowledged, so its contact's later events
go on. `parcours dlq list` reads the reasons, `parcours dlq redrive` sends the events back (infra/deadletters.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cache
from typing import Any

from shared import clients
from shared.batches import Record
from shared.events import ConsentFacts, ContactFacts, Event
from shared.settings import Settings

UNPROCESSABLE = "unprocessable"  # will fail however often it is retried
RETRIES_EXHAUSTED = "retries-exhausted"  # failed on every receive the queue allows

# The message attributes a dead letter carries (SQS allows 10; these are 10).
KIND = "parcours.reason"
ERROR_TYPE = "parcours.error.type"
ERROR_MESSAGE = "parcours.error.message"
EVENT_ID = "parcours.event.id"
EVENT_TYPE = "parcours.event.type"
EVENT_SOURCE = "parcours.event.source"
FAILED_AT = "parcours.failed_at"  # when it went to the DLQ
FIRST_FAILED_AT = "parcours.first_failed_at"  # its first receive on the events queue, which failed too
RECEIVE_COUNT = "parcours.receive_count"
MESSAGE_ID = "parcours.message_id"  # the message's id on the events queue

_EMAIL = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")
_DIGITS = re.compile(r"\+?\d[\d .\-]{5,}\d")  # phone numbers, card-like numbers
_TEXT_FIELDS = ("event_id", "type", "source", "topic", "occurred_at", "received_at")


class Unprocessable(ValueError):
    """The queued message is not an event parcours can handle; retrying cannot change that."""


@dataclass(frozen=True)
class DeadLetter:
    kind: str
    error_type: str
    event_id: str | None
    event_type: str | None


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any] | None = None
    dead_letter: DeadLetter | None = None


def read(body: str) -> Event:
    """The queued body as an Event, checked field by field (the error names the field, never its value)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        raise Unprocessable(f"body is not JSON (line {error.lineno} column {error.colno}: {error.msg})") from None
    if not isinstance(data, dict):
        raise Unprocessable(f"body is a JSON {type(data).__name__}, not an event object")
    _known(data, _field_names(Event), "event")
    for name in _TEXT_FIELDS:
        if not isinstance(data.get(name), str) or not data[name]:
            raise Unprocessable(f"field {name} is {_kind(data.get(name))}, expected non-empty text")
    chain = data.get("chain", 0)
    if isinstance(chain, bool) or not isinstance(chain, int) or chain < 0:
        raise Unprocessable(f"field chain is {_kind(chain)}, expected a whole number >= 0")
    if not isinstance(data.get("properties", {}), dict):
        raise Unprocessable(f"field properties is {_kind(data['properties'])}, expected an object")
    contact = data.get("contact")
    if contact is not None:
        _contact(contact)
    try:
        return Event.from_dict(data)
    except (TypeError, ValueError) as error:  # anything the checks above missed
        raise Unprocessable(f"not an event: {type(error).__name__}") from None


def _contact(contact: object) -> None:
    if not isinstance(contact, dict):
        raise Unprocessable(f"field contact is {_kind(contact)}, expected an object")
    _known(contact, _field_names(ContactFacts), "contact")
    for name, value in contact.items():
        if name in ("email_consent", "sms_consent"):
            if value is not None:
                _consent(value, f"contact.{name}")
        elif name == "attributes":
            if value is not None and not isinstance(value, dict):
                raise Unprocessable(f"field contact.attributes is {_kind(value)}, expected an object")
        elif name == "identity_trusted":
            if not isinstance(value, bool):
                raise Unprocessable(f"field contact.identity_trusted is {_kind(value)}, expected true or false")
        elif value is not None and not isinstance(value, str):
            raise Unprocessable(f"field contact.{name} is {_kind(value)}, expected text")


def _consent(consent: object, where: str) -> None:
    if not isinstance(consent, dict):
        raise Unprocessable(f"field {where} is {_kind(consent)}, expected an object")
    _known(consent, _field_names(ConsentFacts), where)
    for name in ("state", "at", "source"):
        if not isinstance(consent.get(name), str):
            raise Unprocessable(f"field {where}.{name} is {_kind(consent.get(name))}, expected text")
    if consent.get("level") is not None and not isinstance(consent["level"], str):
        raise Unprocessable(f"field {where}.level is {_kind(consent['level'])}, expected text")
    if not isinstance(consent.get("explicit", True), bool):
        raise Unprocessable(f"field {where}.explicit is {_kind(consent['explicit'])}, expected true or false")


@cache
def _field_names(kind: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in fields(kind))


def _known(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(name) for name in data if name not in known)
    if unknown:
        raise Unprocessable(f"{where} has unknown field(s) {', '.join(unknown)[:200]}")


def _kind(value: object) -> str:
    return "missing" if value is None else f"a {type(value).__name__}"


def scrub(message: str) -> str:
    """An error's message without what could be personal data (addresses, numbers), short enough for SQS."""
    return _DIGITS.sub("…", _EMAIL.sub("…", message)).strip()[:500] or "(no message)"


def consume(record: Record, handle: Callable[[Event], dict[str, Any]], settings: Settings) -> Outcome:
    """Handles one queued event, or dead-letters it with its reason; raises only what SQS should retry."""
    try:
        event = read(record.body)
    except Unprocessable as error:
        if settings.dead_letter_queue_url is None:
            raise  # SQS moves it after maxReceiveCount receives, without its reason
        return Outcome(dead_letter=send(record, UNPROCESSABLE, error, None, settings))
    try:
        return Outcome(result=handle(event))
    except Exception as error:
        last = receives(record) >= settings.max_receive_count
        if not last or settings.dead_letter_queue_url is None:
            raise
        known = {"event_id": event.event_id, "type": event.type, "source": event.source}
        return Outcome(dead_letter=send(record, RETRIES_EXHAUSTED, error, known, settings))


def send(
    record: Record, kind: str, error: BaseException, known: dict[str, str] | None, settings: Settings
) -> DeadLetter:
    """The message, unchanged, on the DLQ with its reason (`known`: the event's id, type and source, read from its
    body if not given); deduplicated on its id if sent twice."""
    assert settings.dead_letter_queue_url is not None
    known = known if known is not None else best_effort(record.body)
    now: datetime = settings.clock().now()
    letter = DeadLetter(kind, type(error).__name__, known.get("event_id"), known.get("type"))
    attributes = {
        KIND: kind,
        ERROR_TYPE: letter.error_type,
        ERROR_MESSAGE: scrub(str(error)),
        EVENT_ID: letter.event_id,
        EVENT_TYPE: letter.event_type,
        EVENT_SOURCE: known.get("source"),
        FAILED_AT: now.isoformat(),
        FIRST_FAILED_AT: first_failure(record, now),
        RECEIVE_COUNT: str(receives(record)),
        MESSAGE_ID: record.message_id,
    }
    clients.sqs(settings.region).send_message(
        QueueUrl=settings.dead_letter_queue_url,
        MessageBody=record.body,
        MessageGroupId=record.group_id or "unknown",
        MessageDeduplicationId=record.message_id or "unknown",
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value[:1000]} for name, value in attributes.items() if value
        },
    )
    return letter


def receives(record: Record) -> int:
    """How many times SQS handed the message out (1 when it does not say)."""
    count = str(record.attributes.get("ApproximateReceiveCount") or "1")
    return int(count) if count.isdigit() else 1


def first_failure(record: Record, now: datetime) -> str:
    count = receives(record)
    first = str(record.attributes.get("ApproximateFirstReceiveTimestamp") or "")
    if count <= 1 or not first.isdigit():
        return now.isoformat()  # this receive was the first
    return datetime.fromtimestamp(int(first) / 1000, UTC).isoformat()


def best_effort(body: str) -> dict[str, str]:
    """The id, type and source of a message that is not a valid event, when they can be read at all."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: data[name][:200] for name in ("event_id", "type", "source") if isinstance(data.get(name), str)}
