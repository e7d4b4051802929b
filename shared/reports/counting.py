"""What counts, read from the tables' streams, off the event path: each fact once, however often its record comes.

A batch of stream records (the enrolments, sends and events tables; Lambda hands them over in order per item)
becomes facts, each an increment of one counter item (shared.reports.store: a scenario, UTC day, step, variant):
- enrolments: a new one -> `entered`; its status becoming `converted` (a goal stopped it) -> `converted`, `finished`
  -> `completed` (the scenario's own item, step `-`), on the day it started or ended;
- sends: a send reaching `sent` -> `sent` (email) or `sms_sent`; the outcomes the act function records only when
  they happen (shared.outbox.record_outcome) -> `deferred`, `capped`, `failed` / `sms_failed`;
- events: `email.delivered`, `.opened`, `.clicked` (unique per send: the SES message id), `.bounced` (a permanent
  bounce), `.complained`, `.rejected` and `.rendering_failed` (`failed`), `email.unsubscribed` (through that email's
  link), on the step and variant the email's tags name; `order.*` go to revenue attribution
  (shared.reports.attribution), clicks and opens too (the last one of each per contact).

Once: each fact has a marker item (its digest, with a TTL) written in the same transaction as the counters it adds
to, only if absent. A batch's facts are grouped into transactions of at most 100 writes, each counter item written
once per transaction with the sum of its increments; when a transaction is cancelled because some markers exist
(a redelivered record), those facts are dropped and the rest is written again. So a batch costs about one
transactional write per fact plus one per counter item it touches, and nothing on the event path.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.events import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINED,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    EMAIL_REJECTED,
    EMAIL_RENDERING_FAILED,
    EMAIL_UNSUBSCRIBED,
    ORDER_CANCELLED,
    ORDER_PLACED,
    ORDER_REFUNDED,
)
from shared.reports import attribution, store, writes
from shared.settings import Settings

logger = logging.getLogger(__name__)

EVENT_COUNTERS = {
    EMAIL_DELIVERED: "delivered",
    EMAIL_OPENED: "opened",
    EMAIL_CLICKED: "clicked",
    EMAIL_BOUNCED: "bounced",
    EMAIL_COMPLAINED: "complained",
    EMAIL_REJECTED: "failed",
    EMAIL_RENDERING_FAILED: "failed",
    EMAIL_UNSUBSCRIBED: "unsubscribed",
}
ORDER_EVENTS = (ORDER_PLACED, ORDER_REFUNDED, ORDER_CANCELLED)
ENROLMENT_COUNTERS = {"converted": "converted", "finished": "completed"}
SEND_OUTCOMES = ("deferred", "capped", "failed")  # the act function's records beside a send (shared.outbox)
# A marker lives as long as its fact may come again: an email is opened or clicked (again) for as long as it is
# read, so those are kept as long as a send's record; any other fact comes again only by a stream's redelivery
# (records live 24 hours in a stream), kept a week.
UNIQUE_KEEP = timedelta(days=400)
REDELIVERY_KEEP = timedelta(days=7)
# The scenario metrics the handler emits per scenario (CloudWatch dimension `scenario`), from these counters.
METRICS = {
    "entered": "ScenarioEntered",
    "sent": "ScenarioSent",
    "sms_sent": "ScenarioSent",
    "opened": "ScenarioOpened",
    "clicked": "ScenarioClicked",
    "converted": "ScenarioConverted",
}


@dataclass(frozen=True)
class Fact:
    """One increment of one counter, counted once under `marker`."""

    marker: str  # what the fact is: `opened#<message id>`, `sent#<send id>` ... (stored as a digest)
    keep: timedelta
    scenario: str
    day: str  # YYYY-MM-DD, UTC
    step: str | None
    variant: str | None
    counter: str

    def item(self) -> tuple[str, str]:
        return store.report_id(self.scenario), store.counter_key(self.day, self.step, self.variant)


Read = Fact | attribution.Engagement | attribution.Order


@dataclass
class Outcome:
    counted: Counter[tuple[str, str]] = field(default_factory=Counter)  # (scenario, counter) -> facts counted
    repeated: int = 0  # facts already counted (a redelivered record, a second open of the same email)
    failed_at: str | None = None  # the sequence number of the first record not counted (the batch's failure)


# ---- records -> facts ------------------------------------------------------------------------------------------
def _plain(value: Mapping[str, Any] | None) -> Any:
    """A DynamoDB JSON value as Python (strings, Decimals, lists, dicts, booleans, None)."""
    if not value:
        return None
    ((kind, raw),) = value.items()
    if kind in ("S", "BOOL"):
        return raw
    if kind == "N":
        return Decimal(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in raw.items()}
    if kind == "L":
        return [_plain(v) for v in raw]
    if kind in ("SS", "NS"):
        return list(raw)
    return raw


def _image(record: Mapping[str, Any], which: str) -> dict[str, Any]:
    image = (record.get("dynamodb") or {}).get(which) or {}
    return {name: _plain(value) for name, value in image.items()}


def _table(record: Mapping[str, Any]) -> str:
    """The table a record comes from: its stream ARN is `arn:...:table/<name>/stream/<label>`."""
    arn = str(record.get("eventSourceARN") or "")
    return arn.split(":table/", 1)[-1].split("/stream/", 1)[0]


def _day(value: Any) -> str | None:
    text = value if isinstance(value, str) else ""
    return text[:10] if len(text) >= 10 and text[4] == "-" and text[7] == "-" else None


def _contact(value: Any) -> str | None:
    """A contact's own partition (never `_claims#...`, `_anonymous#...`, `_erasure` ...)."""
    return value if isinstance(value, str) and value and not value.startswith("_") and "#" not in value else None


def facts(record: Mapping[str, Any], settings: Settings) -> list[Read]:
    """What one stream record counts (nothing, for most records: the filter in the template lets few through)."""
    table = _table(record)
    name = record.get("eventName")
    new, old = _image(record, "NewImage"), _image(record, "OldImage")
    if table == settings.enrolments_table and name in ("INSERT", "MODIFY"):
        return _enrolment(new, old)
    if table == settings.sends_table and name in ("INSERT", "MODIFY"):
        return _send(new, old)
    if table == settings.events_table and name == "INSERT":
        return _event(new)
    return []


def _enrolment(new: dict[str, Any], old: dict[str, Any]) -> list[Read]:
    contact, scenario, key = _contact(new.get("contact_id")), new.get("scenario"), new.get("key")
    if contact is None or not isinstance(scenario, str) or not isinstance(key, str):
        return []  # a capped scenario's place counter lives in that table too
    status, before = new.get("status"), old.get("status") if old else None
    found: list[Read] = []
    if not old and (day := _day(new.get("started_at"))):
        found.append(Fact(f"entered#{contact}#{key}", REDELIVERY_KEEP, scenario, day, None, None, "entered"))
    counter = ENROLMENT_COUNTERS.get(str(status))
    if counter is not None and status != before and (day := _day(new.get("ended_at") or new.get("started_at"))):
        found.append(Fact(f"{counter}#{contact}#{key}", REDELIVERY_KEEP, scenario, day, None, None, counter))
    return found


def _send(new: dict[str, Any], old: dict[str, Any]) -> list[Read]:
    scenario, step, send_id = new.get("scenario"), new.get("step"), new.get("send_id")
    if not isinstance(scenario, str) or not isinstance(step, str) or not isinstance(send_id, str):
        return []
    variant = new.get("variant") if isinstance(new.get("variant"), str) else None
    sms = new.get("channel") == "sms"
    status = new.get("status")
    if status == "sent" and (old or {}).get("status") != "sent" and (day := _day(new.get("sent_at"))):
        counter = "sms_sent" if sms else "sent"
        return [Fact(f"sent#{send_id}", REDELIVERY_KEEP, scenario, day, step, variant, counter)]
    if status in SEND_OUTCOMES and not old and (day := _day(new.get("claimed_at"))):
        counter = "sms_failed" if sms and status == "failed" else str(status)
        return [Fact(f"{status}#{send_id}", REDELIVERY_KEEP, scenario, day, step, variant, counter)]
    return []


def _event(new: dict[str, Any]) -> list[Read]:
    kind, contact, at_id = new.get("type"), _contact(new.get("contact_id")), new.get("at_id")
    if contact is None or not isinstance(at_id, str) or (kind not in EVENT_COUNTERS and kind not in ORDER_EVENTS):
        return []
    try:
        properties = json.loads(new.get("properties") or "{}")
    except (TypeError, ValueError):
        return []
    if not isinstance(properties, dict):
        return []
    at = at_id.partition("#")[0]
    day = _day(at)
    if day is None:
        return []
    if kind in ORDER_EVENTS:
        order = attribution.Order.of(str(kind), contact, str(new.get("source") or ""), properties, at)
        return [order] if order is not None else []
    scenario, step = properties.get("scenario"), properties.get("step")
    if not isinstance(scenario, str) or not scenario or not isinstance(step, str) or not step:
        return []  # an email parcours did not send from a scenario's step
    variant = properties.get("variant") if isinstance(properties.get("variant"), str) else None
    counter = EVENT_COUNTERS[str(kind)]
    if kind == EMAIL_BOUNCED and properties.get("bounce_type") != "Permanent":
        return []  # a soft bounce: SES tries again, and counts only hard bounces in its bounce rate
    message = properties.get("message_id")
    if kind == EMAIL_UNSUBSCRIBED or not isinstance(message, str):
        marker, keep = f"{counter}#{contact}#{at_id}", REDELIVERY_KEEP  # the record is the fact
    else:
        marker, keep = f"{counter}#{message}", UNIQUE_KEEP  # once per email: its first open, its first click
    found: list[Read] = [Fact(marker, keep, scenario, day, step, variant, counter)]
    if kind in (EMAIL_CLICKED, EMAIL_OPENED):
        found.append(attribution.Engagement(contact, counter, scenario, step, variant, at))
    return found


# ---- facts -> counters, once --------------------------------------------------------------------------------------
def _chunks(batch: Sequence[Fact]) -> Iterable[list[Fact]]:
    """Facts in groups whose markers and counter items fit one transaction."""
    chunk: list[Fact] = []
    items: set[tuple[str, str]] = set()
    for fact in batch:
        grows = 1 + (fact.item() not in items)
        if chunk and len(chunk) + len(items) + grows > writes.TRANSACTION_LIMIT:
            yield chunk
            chunk, items = [], set()
        chunk.append(fact)
        items.add(fact.item())
    if chunk:
        yield chunk


def _write(chunk: list[Fact], settings: Settings, now: datetime, outcome: Outcome) -> None:
    """Markers and summed counters in one transaction; the facts already counted are dropped and the rest written."""
    todo = list(chunk)
    while todo:
        sums: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for fact in todo:
            sums[fact.item()][fact.counter] += 1
        markers = [
            writes.Write(writes.marker_id(fact.marker), store.NONE, put={"expires_at": writes.epoch(now + fact.keep)})
            for fact in todo
        ]
        counters = [writes.Write(report, key, add=dict(added)) for (report, key), added in sums.items()]
        failed = writes.transact(settings.reports_table, settings.region, markers + counters)
        if not failed:
            for fact in todo:
                outcome.counted[(fact.scenario, fact.counter)] += 1
            return
        if any(index >= len(markers) for index in failed):  # pragma: no cover (counter updates have no condition)
            raise writes.ReportsError("a counter update's condition failed")
        outcome.repeated += len(failed)
        todo = [fact for index, fact in enumerate(todo) if index not in set(failed)]


def count(records: Sequence[Mapping[str, Any]], settings: Settings, now: datetime) -> Outcome:
    """Counts a batch of stream records, in order. A failure (DynamoDB busy) stops the batch at the first record not
    counted, whose sequence number the outcome names: the stream hands it and the following ones over again, and
    what was counted already is not counted twice."""
    outcome = Outcome()
    pending: list[tuple[int, Fact]] = []  # (record index, fact) not written yet
    engagements: dict[tuple[str, str], attribution.Engagement] = {}  # the batch's last click and open per contact
    seen: set[str] = set()
    done = 0  # every record before this index is counted

    def flush(upto: int) -> None:
        nonlocal done, pending
        for engagement in engagements.values():
            attribution.remember(engagement, settings)
        engagements.clear()
        for chunk in _chunks([fact for _, fact in pending]):
            _write(chunk, settings, now, outcome)
        pending, done = [], upto

    try:
        for index, record in enumerate(records):
            for read in facts(record, settings):
                if isinstance(read, Fact):
                    if read.marker not in seen:  # one transaction may not write the same marker twice
                        seen.add(read.marker)
                        pending.append((index, read))
                    else:
                        outcome.repeated += 1
                elif isinstance(read, attribution.Engagement):
                    engagements[(read.contact_id, read.kind)] = read  # the later one wins
                else:  # an order, refund or cancellation reads what the clicks and opens before it left
                    flush(index)
                    attribution.apply(read, settings, now, outcome.counted)
            if not pending and not engagements:
                done = index + 1
        flush(len(records))
    except writes.ReportsError as error:
        first = records[done] if done < len(records) else None
        outcome.failed_at = str(((first or {}).get("dynamodb") or {}).get("SequenceNumber") or "") or None
        logger.warning("reports: batch stopped", extra={"reason": type(error).__name__, "records_counted": done})
        if outcome.failed_at is None:
            raise
    return outcome
