"""The daily run (EventBridge Scheduler, once a day, shortly after 00:00 UTC).

It queues, as ordinary events that dispatch matches like any trigger:
- `date.reached` for every date trigger (attribute, offset, time of day) and every contact whose local moment
  falls in the 24 hours from the run's scheduled time: the execution then waits for that moment, so 10:00 is
  10:00 where the contact lives, in zones ahead of UTC as well as behind. Runs a day apart tile time, so each
  moment belongs to one run only.
- `contact.inactive` for every inactivity trigger, scoring rule and decay (N days) and every contact whose
  engagement day (last open, click or signup, a UTC day) was exactly N days before the run's UTC day.

- retention (REQUIREMENTS.md, Privacy): every prospect (no order) whose last contact (a signup, form, order or
  click; never an open: `contacted_on`, shared.people.contacts) is older than the period
  (`Settings.prospect_retention_days`) is erased through the person's erasure (shared.journeys.privacy, origin
  `retention`): the run reads the contacted_on index's day the period ended on, and the CATCH_UP days before it
  (a run missed, a day late; erased contacts leave the index, so a day read again costs one empty read).

It reads the dates table and the contacts' engaged_on index, never the whole contacts table, and fans out: the
scheduled invocation only plans (`plan`: one `Page` per index key to read) and puts on the schedule queue the
pages of the keys that hold anything (one item read per key: most keys of a day, such as the decay days, are
empty); a page worker (`work_page`) reads ONE page of one key (at most PAGE items), queues its events
in batches of ten, then puts the next page (the cursor) back on the queue. Keys are read in parallel, each key's
pages one after the other, and no invocation grows with the number of contacts. Event ids name (trigger,
contact, day): a second run of the same day, or a page delivered twice, changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients
from shared.events import CONTACT_INACTIVE, DATE_REACHED, ContactFacts, Event
from shared.journeys import dispatch, privacy
from shared.people import dates, lists, moments, scoring
from shared.settings import ConfigurationError, Settings
from shared.sources.ingestion import QueueUnavailable, group_and_dedup_ids
from shared.storage import get_or_none, tables

BATCH = 10  # SQS SendMessageBatch's maximum
PAGE = 1000  # items per page: one Query (well under DynamoDB's 1 MB), 100 batches of events
SENDERS = 8  # a page's batches in flight at once (boto3 clients are thread-safe)
RETENTION_PAGE = 50  # contacts per retention page: each erasure is a dozen requests, well within the worker's 60 s
CATCH_UP = 7  # retention: the days before the period's last day read again, in case a run was missed
RETENTION = "retention"  # the erasure's origin, in its `_erasure` record


@dataclass(frozen=True)
class Work:
    """What the deployed scenarios ask of the daily run, read from the compiled catalogue."""

    dates: dict[tuple[str, int], tuple[str, ...]]  # (attribute, offset in days) -> local times of day
    inactive_days: tuple[int, ...]
    lists: bool = False  # a dynamic list has an event window: the day's re-checks are read (shared.people.lists)


def work(entries: Iterable[dispatch.Entry] | None = None) -> Work:
    """The deployment's (None): the catalogue's triggers, the silences the scoring rules and decay act on
    (shared.people.scoring) and the dynamic lists' re-checks (shared.people.lists); or only these entries' triggers."""
    windowed = entries is None and any(rule.events for rule in lists.rules())
    found: dict[tuple[str, int], set[str]] = {}
    inactive: set[int] = set(scoring.config().inactive_days() if entries is None else ())
    entries = dispatch.catalogue() if entries is None else entries
    for entry in entries:
        where = entry.where or {}
        if entry.trigger_event == DATE_REACHED:
            key = (str(where["attribute"]), int(where.get("offset_days", 0)))
            found.setdefault(key, set()).add(str(where["time"]))
        elif entry.trigger_event == CONTACT_INACTIVE:
            inactive.add(int(where["days"]))
    dated = {key: tuple(sorted(times)) for key, times in sorted(found.items())}
    return Work(dated, tuple(sorted(inactive)), lists=windowed)


@dataclass
class Report:
    day: str
    pages: int = 0
    items_read: int = 0
    date_events: int = 0
    inactive_events: int = 0
    prospects_purged: int = 0


@dataclass
class _Outbox:
    """Events waiting to be queued, sent ten at a time: as they come, or (`hold`, the page worker) a whole page's
    batches at once, SENDERS in flight, so a page of a thousand costs ten round trips, not a hundred."""

    settings: Settings
    hold: bool = False
    pending: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> None:
        self.pending.append(event)
        if len(self.pending) == BATCH and not self.hold:
            self.flush()

    def flush(self) -> None:
        batches = [self.pending[first : first + BATCH] for first in range(0, len(self.pending), BATCH)]
        if len(batches) > 1:
            with ThreadPoolExecutor(max_workers=min(SENDERS, len(batches))) as pool:
                list(pool.map(self._send, batches))  # the first failure raises here
        elif batches:
            self._send(batches[0])
        self.pending = []

    def _send(self, batch: list[Event]) -> None:
        entries = []
        for index, event in enumerate(batch):
            group, dedup = group_and_dedup_ids(event)
            entries.append(
                {
                    "Id": str(index),
                    "MessageBody": event.to_json(),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": dedup,
                }
            )
        _send(self.settings, self.settings.queue_url, entries)


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


@dataclass(frozen=True)
class Page:
    """One page to read of one index key of one run: a message of the schedule queue, self-contained (the
    worker reads neither the catalogue nor the clock, so a redelivered page queues the very same events)."""

    kind: str  # "date" (the dates table), "inactive" (engaged_on), "lists" or "retention" (contacted_on)
    key: str  # the dates table's key (attribute#MM-DD) or the index's day (YYYY-MM-DD)
    start: str  # the run's window, ISO instants: a date moment is this run's if start <= moment < end
    end: str
    now: str  # when the run was planned: the events' occurred_at
    limit: int  # items per page
    attribute: str = ""  # date pages: the trigger's attribute, offset and times of day, and the days it is for
    offset: int = 0
    times: tuple[str, ...] = ()
    local_day: str = ""
    anniversary_day: str = ""
    days: int = 0  # inactive pages: the inactivity the key stands for
    before: str = ""  # retention pages: a prospect whose last contact is before this instant is erased
    cursor: dict[str, Any] | None = None  # DynamoDB's LastEvaluatedKey: where this page starts (None: the first)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "times": list(self.times)}, sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> Page:
        try:
            fields = json.loads(body)
            if not isinstance(fields, dict) or fields.get("kind") not in ("date", "inactive", "lists", RETENTION):
                raise ValueError("kind must be date, inactive, lists or retention")
            return cls(**{**fields, "times": tuple(fields.get("times") or ())})
        except (ValueError, TypeError) as error:
            raise InvalidPage(f"not a page of the daily run: {error}") from None


class InvalidPage(ValueError):
    """A message of the schedule queue that is not a page (the DLQ keeps it)."""


def plan(
    todo: Work, moment: datetime, now: datetime, page_size: int | None = None, retention_days: int | None = None
) -> tuple[str, list[Page]]:
    """The run's day and the first page of every index key it reads, without reading: planning a run for a
    million contacts costs what it costs for ten. With `retention_days`, the retention's pages too."""
    start, end = moments.daily_window(moment)
    window: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "now": now.isoformat(),
        "limit": page_size or PAGE,
    }
    pages = []
    for (attribute, offset), times in todo.dates.items():
        for local_day in moments.local_days(start, end):
            anniversary_day = local_day - timedelta(days=offset)
            for month_day in moments.month_days(anniversary_day):
                pages.append(
                    Page(
                        kind="date",
                        key=f"{attribute}#{month_day}",
                        attribute=attribute,
                        offset=offset,
                        times=times,
                        local_day=local_day.isoformat(),
                        anniversary_day=anniversary_day.isoformat(),
                        **window,
                    )
                )
    for days in todo.inactive_days:
        since = moments.inactive_since(start.date(), days).isoformat()
        pages.append(Page(kind="inactive", key=since, days=days, **window))
    if todo.lists:  # the contacts a dynamic list's window passes for, noted under this run's day
        pages.append(Page(kind="lists", key=start.date().isoformat(), **window))
    if retention_days:  # last contact before the run's day minus the period: the day before it, and CATCH_UP more
        before = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=retention_days
        )
        for back in range(1, CATCH_UP + 2):
            day = (before.date() - timedelta(days=back)).isoformat()
            limit = min(int(window["limit"]), RETENTION_PAGE)
            pages.append(Page(kind=RETENTION, key=day, before=before.isoformat(), **{**window, "limit": limit}))
    return start.date().isoformat(), pages


def read_page(settings: Settings, page: Page, outbox: _Outbox, report: Report) -> Page | None:
    """Reads one page of the page's key (at most `page.limit` items, from its cursor), adds its events to the
    outbox; the next page if DynamoDB says there is more."""
    now = datetime.fromisoformat(page.now)
    report.pages += 1
    found = _query(settings, page, page.limit)
    if page.kind == "date":
        for item in found:
            report.items_read += 1
            _date_events(settings, page, item, now, outbox, report)
    elif page.kind == "lists":
        for contact in found:  # each re-evaluated: its joins and leaves are queued by shared.people.lists
            report.items_read += 1
            lists.recheck_contact(settings, contact.contact_id, page.key, now)
    elif page.kind == RETENTION:
        for contact in found:
            report.items_read += 1
            report.prospects_purged += _purge(settings, contact.contact_id, datetime.fromisoformat(page.before), now)
    else:
        for contact in found:
            report.items_read += 1
            key = f"{page.days}#{contact.contact_id}#{page.key}"
            properties = {"days": page.days, "since": page.key}
            outbox.add(_event(CONTACT_INACTIVE, key, contact.contact_id, properties, now))
            report.inactive_events += 1
    cursor = found.last_evaluated_key
    return replace(page, cursor=cursor) if cursor else None


def _query(settings: Settings, page: Page, limit: int) -> Any:
    """The page's key read from its cursor, at most `limit` items: the dates table, or one of the contacts'
    keys-only indexes (engaged_on, lists_recheck_on)."""
    t = tables(settings)
    index: Any = {
        "date": t.dates,
        "lists": t.contacts.by_lists_recheck,
        RETENTION: t.contacts.by_contact_day,
    }.get(page.kind, t.contacts.by_engagement)
    return index.query(page.key, limit=limit, page_size=limit, last_evaluated_key=page.cursor)


def _purge(settings: Settings, contact_id: str, before: datetime, now: datetime) -> int:
    """Erases the contact if it is a prospect (no order) whose last contact is before `before`, read again
    (consistently: the index lags, and a click may have come since): 1 when erased. A customer is never purged."""
    contact = get_or_none(tables(settings).contacts, contact_id, consistent=True)
    if contact is None or (contact.orders_count or 0) > 0 or contact.last_order_at is not None:
        return 0
    if contact.last_contact_at is None or contact.last_contact_at >= before:
        return 0
    answer = privacy.erase(settings, privacy.Who(contact_id=contact_id), now, RETENTION)
    return 1 if answer["erased"] else 0


def _holds_items(settings: Settings, page: Page) -> bool:
    """Whether the key holds anything: one item read at most, so that the run queues no page (and invokes no
    worker) for the many keys of a day that hold nothing (most decay days, most month-days of a small base)."""
    return any(True for _ in _query(settings, page, 1))


def _date_events(settings: Settings, page: Page, item: Any, now: datetime, outbox: _Outbox, report: Report) -> None:
    start, end = datetime.fromisoformat(page.start), datetime.fromisoformat(page.end)
    local_day, anniversary_day = date.fromisoformat(page.local_day), date.fromisoformat(page.anniversary_day)
    original = moments.parse_date(item.date)
    if original is None or moments.anniversary(original, anniversary_day.year) != anniversary_day:
        return
    years = anniversary_day.year - original.year
    if years < (1 if page.attribute == dates.CREATED_AT else 0):
        return  # before the date itself; a signup's first anniversary is a year later
    tz = moments.zone(item.timezone, settings.default_timezone)
    for at in page.times:
        local = moments.on_day(local_day, time.fromisoformat(at), tz)
        if start <= local < end:
            properties = {
                "attribute": page.attribute,
                "offset_days": page.offset,
                "time": at,
                "date": local_day.isoformat(),
                "anniversary": anniversary_day.isoformat(),
                "years": years,
                "moment": local.astimezone(UTC).isoformat(),
            }
            key = f"{page.attribute}#{page.offset:+d}#{at}#{item.contact_id}#{local_day.isoformat()}"
            outbox.add(_event(DATE_REACHED, key, item.contact_id, properties, now))
            report.date_events += 1


def run(
    settings: Settings,
    moment: datetime,
    now: datetime,
    entries: Iterable[dispatch.Entry] | None = None,
    page_size: int | None = None,
) -> Report:
    """The whole run in this process (tests, `POST /_local/schedule`): the plan, each key's pages one after the
    other. Queues the date.reached events of the 24 hours from `moment` (the scheduled time) and the
    contact.inactive events of its UTC day; with the deployment's catalogue (no `entries`), the retention's
    purge too."""
    day, pages = plan(work(entries), moment, now, page_size, _retention(settings, entries))
    report = Report(day=day)
    outbox = _Outbox(settings)
    for first in pages:
        page: Page | None = first
        while page is not None:
            page = read_page(settings, page, outbox, report)
    outbox.flush()
    return report


@dataclass
class Planned:
    day: str
    pages: int = 0


def fan_out(
    settings: Settings, moment: datetime, now: datetime, entries: Iterable[dispatch.Entry] | None = None
) -> Planned:
    """The scheduled invocation: the first page of every key that holds something onto the schedule queue, for
    the page workers."""
    day, planned = plan(work(entries), moment, now, retention_days=_retention(settings, entries))
    pages = [page for page in planned if _holds_items(settings, page)]
    url = _schedule_queue(settings)
    for first in range(0, len(pages), BATCH):
        batch = pages[first : first + BATCH]
        _send(settings, url, [{"Id": str(i), "MessageBody": page.to_json()} for i, page in enumerate(batch)])
    return Planned(day=day, pages=len(pages))


def _retention(settings: Settings, entries: Iterable[dispatch.Entry] | None) -> int | None:
    """The retention period the deployment's run purges by (none when a test names its own entries)."""
    return settings.prospect_retention_days if entries is None else None


def work_page(settings: Settings, body: str) -> Report:
    """The page worker: one page read, its events queued, then the next page put back on the schedule queue.
    Events before the cursor: a worker failing in between is retried on the same page, which queues the same
    event ids again (the FIFO queue drops them) and only then moves on."""
    page = Page.from_json(body)
    report = Report(day=datetime.fromisoformat(page.start).date().isoformat())
    outbox = _Outbox(settings, hold=True)
    following = read_page(settings, page, outbox, report)
    outbox.flush()
    if following is not None:
        _send(settings, _schedule_queue(settings), [{"Id": "0", "MessageBody": following.to_json()}])
    return report


def _schedule_queue(settings: Settings) -> str:
    if not settings.schedule_queue_url:
        raise ConfigurationError("environment variable PARCOURS_SCHEDULE_QUEUE_URL is required by the daily run")
    return settings.schedule_queue_url


def _send(settings: Settings, url: str, entries: list[dict[str, Any]]) -> None:
    """SendMessageBatch, its refused entries sent again (twice at most)."""
    sqs = clients.sqs(settings.region)
    for _attempt in range(3):
        try:
            answer: Any = sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as error:
            raise QueueUnavailable(type(error).__name__) from error
        failed = {item["Id"] for item in answer.get("Failed", [])}
        entries = [entry for entry in entries if entry["Id"] in failed]
        if not entries:
            return
    raise QueueUnavailable(f"{len(entries)} message(s) refused by SQS after retries")


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
