"""The daily run (EventBridge Scheduler, once a day, shortly after 00:00 UTC).

It queues, as ordinary events that dispatch matches like any trigger:
- `date.reached` for every date trigger (attribute, offset, time of day) and every contact whose local moment
  falls in the 24 hours from the run's scheduled time: the execution then waits for that moment, so 10:00 is
  10:00 where the contact lives, in zones ahead of UTC as well as behind. Runs a day apart tile time, so each
  moment belongs to one run only.
- `contact.inactive` for every inactivity trigger (N days) and every contact whose engagement day (last open,
  click or signup, a UTC day) was exactly N days before the run's UTC day.

It reads the dates table and the contacts' engaged_on index, page by page, never the whole contacts table, and
queues in batches of ten. Event ids name (trigger, contact, day): a second run of the same day changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients, dates, dispatch, moments
from shared.events import CONTACT_INACTIVE, DATE_REACHED, ContactFacts, Event
from shared.ingestion import QueueUnavailable, group_and_dedup_ids
from shared.settings import Settings
from shared.storage import tables

BATCH = 10  # SQS SendMessageBatch's maximum


@dataclass(frozen=True)
class Work:
    """What the deployed scenarios ask of the daily run, read from the compiled catalogue."""

    dates: dict[tuple[str, int], tuple[str, ...]]  # (attribute, offset in days) -> local times of day
    inactive_days: tuple[int, ...]


def work(entries: Iterable[dispatch.Entry]) -> Work:
    found: dict[tuple[str, int], set[str]] = {}
    inactive: set[int] = set()
    for entry in entries:
        where = entry.where or {}
        if entry.trigger_event == DATE_REACHED:
            key = (str(where["attribute"]), int(where.get("offset_days", 0)))
            found.setdefault(key, set()).add(str(where["time"]))
        elif entry.trigger_event == CONTACT_INACTIVE:
            inactive.add(int(where["days"]))
    return Work({key: tuple(sorted(times)) for key, times in sorted(found.items())}, tuple(sorted(inactive)))


@dataclass
class Report:
    day: str
    items_read: int = 0
    date_events: int = 0
    inactive_events: int = 0


@dataclass
class _Outbox:
    """Events waiting to be queued, sent ten at a time."""

    settings: Settings
    pending: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> None:
        self.pending.append(event)
        if len(self.pending) == BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        entries = []
        for index, event in enumerate(self.pending):
            group, dedup = group_and_dedup_ids(event)
            entries.append(
                {
                    "Id": str(index),
                    "MessageBody": event.to_json(),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": dedup,
                }
            )
        sqs = clients.sqs(self.settings.region)
        for _attempt in range(3):
            try:
                answer: Any = sqs.send_message_batch(QueueUrl=self.settings.queue_url, Entries=entries)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as error:
                raise QueueUnavailable(type(error).__name__) from error
            failed = {item["Id"] for item in answer.get("Failed", [])}
            entries = [entry for entry in entries if entry["Id"] in failed]
            if not entries:
                break
        if entries:
            raise QueueUnavailable(f"{len(entries)} event(s) refused by SQS after retries")
        self.pending = []


def scheduled_time(event: dict[str, Any], now: datetime) -> datetime:
    """The moment the run is for: the scheduler's `time` when given (a late or retried run still covers its own
    window), else now."""
    given = event.get("time")
    if isinstance(given, str):
        try:
            parsed = datetime.fromisoformat(given.replace("Z", "+00:00"))
        except ValueError:
            return now
        if parsed.tzinfo is not None:
            return parsed
    return now


def run(settings: Settings, moment: datetime, now: datetime, entries: Iterable[dispatch.Entry] | None = None) -> Report:
    """Queues the date.reached events of the 24 hours from `moment` (the scheduled time) and the contact.inactive
    events of its UTC day."""
    todo = work(dispatch.catalogue() if entries is None else entries)
    start, end = moments.daily_window(moment)
    report = Report(day=start.date().isoformat())
    outbox = _Outbox(settings)
    t = tables(settings)
    for (attribute, offset), times in todo.dates.items():
        for local_day in moments.local_days(start, end):
            anniversary_day = local_day - timedelta(days=offset)
            for month_day in moments.month_days(anniversary_day):
                for item in t.dates.query(f"{attribute}#{month_day}"):
                    report.items_read += 1
                    original = moments.parse_date(item.date)
                    if original is None or moments.anniversary(original, anniversary_day.year) != anniversary_day:
                        continue
                    years = anniversary_day.year - original.year
                    if years < (1 if attribute == dates.CREATED_AT else 0):
                        continue  # before the date itself; a signup's first anniversary is a year later
                    tz = moments.zone(item.timezone, settings.default_timezone)
                    for at in times:
                        local = moments.on_day(local_day, time.fromisoformat(at), tz)
                        if start <= local < end:
                            properties = {
                                "attribute": attribute,
                                "offset_days": offset,
                                "time": at,
                                "date": local_day.isoformat(),
                                "anniversary": anniversary_day.isoformat(),
                                "years": years,
                                "moment": local.astimezone(UTC).isoformat(),
                            }
                            key = f"{attribute}#{offset:+d}#{at}#{item.contact_id}#{local_day.isoformat()}"
                            outbox.add(_event(DATE_REACHED, key, item.contact_id, properties, now))
                            report.date_events += 1
    for days in todo.inactive_days:
        since = moments.inactive_since(start.date(), days).isoformat()
        for contact in t.contacts.by_engagement.query(since):
            report.items_read += 1
            key = f"{days}#{contact.contact_id}#{since}"
            outbox.add(_event(CONTACT_INACTIVE, key, contact.contact_id, {"days": days, "since": since}, now))
            report.inactive_events += 1
    outbox.flush()
    return report


def _event(event_type: str, key: str, contact_id: str, properties: dict[str, Any], now: datetime) -> Event:
    return Event(
        event_id=f"schedule#{event_type}#{key}",
        type=event_type,
        source="schedule",
        topic="daily",
        occurred_at=now.isoformat(),
        received_at=now.isoformat(),
        contact=ContactFacts(contact_id=contact_id),
        properties=properties,
    )
