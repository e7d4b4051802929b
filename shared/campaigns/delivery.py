"""Sending a campaign: pages of its audience read one at a time, the people of each page put in chunks, each chunk
sent at its moment by a worker of the campaign queue, through the scenarios' own send (shared.messages.sending:
consent, topic, suppression, caps, quiet hours, RFC 8058 headers, links, postal address).

- `start` (the admin route) moves the campaign from draft to sending and queues its first page.
- A page message reads ONE page of the audience (the list's members, or a page of the contacts meeting the
  condition), counts it once, splits it into chunks, gives each chunk its moment from the sending rate (`reserve`:
  one counter per instant the sends start from, so every worker of the campaign draws from the same line), queues
  the chunks with that delay, then queues the next page: at once while the line is short, later when it reaches
  LOOKAHEAD seconds, so the reading keeps ahead of the sending without running through a million people at once.
- A chunk message waits on the queue until its moment (SQS delays of at most 15 minutes, put back until due),
  then sends to each of its people and records the outcome once per person (shared.campaigns.store).
- At a local time: each person's moment is the time of day in their own zone; the chunks of a page are grouped by
  that moment, and each moment has its own line.
No invocation grows with the audience; a retried or redelivered message mails no one twice (the send's claim) and
counts no one twice (the person's outcome item).
An SMS campaign (shared.campaigns.sms) goes the same way at its own rate; a person the SMS hours hold back is put
back on the line at the moment they allow, in a chunk of its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from shared import clients, secrets
from shared.campaigns import ab, document
from shared.campaigns import sms as texting
from shared.campaigns.errors import CampaignRequestError
from shared.campaigns.store import Conflict, Store, number, text
from shared.messages import mailer, sending, sms
from shared.messages.templates import DEFAULT_ROOT
from shared.people import conditions, dates, moments, suppression
from shared.settings import ConfigurationError, Settings
from shared.storage import ContactModel, StorageError, get_or_none, tables

PAGE = 500  # people read per page message
CHUNK = 50  # people per chunk message, at most (fewer at a low rate: a chunk is about a second of sending)
LOOKAHEAD = 300  # seconds of sends queued ahead of the clock before the next page is read
MAX_DELAY = 900  # SQS's longest delay: a message due later is put back until it is due
COMPILED = Path(__file__).resolve().parents[2] / "scenarios" / "compiled" / "campaigns.json"
STEP = "email"
REST = "rest:"  # a chunk of the rest of an A/B test: `rest:<winner>`
REASONS = (
    "no_consent",
    "unsubscribed",
    "unsubscribed_topic",
    "suppressed",
    "frequency_cap",
    "preference",
    "no_email",
    "no_phone",
    "invalid_phone",
    "not_found",
    "other",
)
KINDS = ("page", "chunk", "decide", "rest")  # decide, rest: an A/B test's decision, and a page of the rest


class InvalidMessage(ValueError):
    """A message of the campaign queue that is none of its messages (the DLQ keeps it)."""


@dataclass(frozen=True)
class Message:
    kind: str  # page | chunk | decide | rest
    campaign: str
    index: int = 0  # page: its number
    cursor: dict[str, Any] | None = None  # page: DynamoDB's LastEvaluatedKey, where it starts
    contacts: tuple[str, ...] = ()  # chunk: its people
    due: str = ""  # chunk: when it is sent (ISO); page: not before (a campaign `at` an instant)
    variant: str = ""  # chunk, rest: the A/B variant its people get (rest: the winner)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "contacts": list(self.contacts)}, sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> Message:
        try:
            fields = json.loads(body)
            if not isinstance(fields, dict) or fields.get("kind") not in KINDS:
                raise ValueError(f"kind must be one of {', '.join(KINDS)}")
            return cls(**{**fields, "contacts": tuple(fields.get("contacts") or ())})
        except (ValueError, TypeError) as error:
            raise InvalidMessage(f"not a campaign message: {error}") from None


@dataclass
class Report:
    """What one message did (for the logs and metrics: counts only)."""

    kind: str
    read: int = 0
    chunks: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    postponed: bool = False


@lru_cache(maxsize=2)
def compiled(path: Path = COMPILED) -> dict[str, Any]:
    """The lists something fills and the sending habits per topic, as `parcours compile` wrote them."""
    if not path.exists():
        return {"lists": [], "pacing": {}}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _store(settings: Settings) -> Store:
    if not settings.campaigns_table:
        raise ConfigurationError("environment variable PARCOURS_CAMPAIGNS_TABLE is required by campaigns")
    return Store(settings.campaigns_table, settings.region)


def template_exists(name: str, root: Path = DEFAULT_ROOT) -> bool:
    return any((root / "email").glob(f"{name}.*.html"))


def known(settings: Settings) -> document.Known:
    """At run time: a list is known when something fills it (compiled) or it has members (one item read); an SMS
    template when it renders short enough with the deployment's stop mention."""

    def list_known(name: str) -> bool:
        if name in compiled().get("lists", ()):
            return True
        try:
            return any(True for _ in tables(settings).list_members.query(name, limit=1))
        except PynamoDBException as error:
            raise StorageError(str(error)) from error

    def sms_refusal(name: str) -> str | None:
        return texting.template_refusal(name, settings.sms_stop_text, settings.sender_name)

    return document.Known(template=template_exists, list=list_known, sms=sms_refusal)


def parse_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise CampaignRequestError(400, "the body must be a JSON campaign document") from None


def save(settings: Settings, body: bytes, now: datetime) -> dict[str, Any]:
    """POST /v1/campaigns: the document checked as `parcours validate` checks a file, then created or updated."""
    data = parse_body(body)
    try:
        campaign = document.read(document.from_json(data), known(settings))
    except document.CampaignError as error:
        raise CampaignRequestError(400, str(error), error.field) from None
    try:
        status = _store(settings).save(campaign.id, campaign.to_dict(), now)
    except Conflict:
        raise CampaignRequestError(
            409, f"campaign {campaign.id!r} was sent or cancelled: it is not changed; save it under another id"
        ) from None
    return {"id": campaign.id, "status": status, "campaign": campaign.to_dict()}


def _campaign_of(item: dict[str, Any], store: Store) -> document.Campaign:
    return document.read(document.from_json(store.document(item)), document.Known())  # checked when saved


def _existing(store: Store, campaign_id: str) -> dict[str, Any]:
    if not document.ID.match(campaign_id):
        raise CampaignRequestError(400, "a campaign id is lower-case letters, digits and dashes (at most 40)")
    item = store.get(campaign_id)
    if item is None:
        raise CampaignRequestError(404, f"no campaign {campaign_id!r}: create it with POST /v1/campaigns")
    return item


def start(settings: Settings, campaign_id: str, now: datetime) -> dict[str, Any]:
    """POST /v1/campaigns/{id}/send: from draft to sending once, its first page queued (at its instant, if any)."""
    store = _store(settings)
    item = _existing(store, campaign_id)
    state = text(item, "status")
    if state != "draft":
        raise CampaignRequestError(
            409, f"campaign {campaign_id!r} is {state} already: a campaign goes out once (GET it for its progress)"
        )
    campaign = _campaign_of(item, store)
    try:
        store.start(campaign_id, now)
    except Conflict:
        raise CampaignRequestError(409, f"campaign {campaign_id!r} was started or cancelled meanwhile") from None
    store.list_started(campaign_id, campaign.name, now, campaign.ab.to_dict() if campaign.ab else None)  # reports
    first = Message("page", campaign_id, due=campaign.when.at.isoformat() if campaign.when.at else "")
    _queue(settings, [(first, _delay(campaign.when.at, now) if campaign.when.at else 0)])
    return {"id": campaign_id, "status": "sending", "started_at": now.isoformat(), "when": _when(campaign)}


def cancel(settings: Settings, campaign_id: str, now: datetime) -> dict[str, Any]:
    """POST /v1/campaigns/{id}/cancel: what has not gone does not go (each chunk reads the status first)."""
    store = _store(settings)
    item = _existing(store, campaign_id)
    try:
        store.cancel(campaign_id, now)
    except Conflict:
        state = text(store.get(campaign_id) or item, "status")
        raise CampaignRequestError(409, f"campaign {campaign_id!r} is {state}: nothing to cancel") from None
    return status(settings, campaign_id)


def status(settings: Settings, campaign_id: str) -> dict[str, Any]:
    """GET /v1/campaigns/{id}: audience, sent, skipped by reason, failed, excluded and progress."""
    store = _store(settings)
    item = _existing(store, campaign_id)
    campaign = _campaign_of(item, store)
    counts = store.counters(campaign_id)
    skipped = {reason: counts.get(f"skipped_{reason}", 0) for reason in REASONS}
    skipped = {reason: n for reason, n in skipped.items() if n}
    done = counts.get("sent", 0) + counts.get("failed", 0) + counts.get("excluded", 0) + sum(skipped.values())
    audience = number(item, "audience")
    read_done = bool(item.get("read_done", {}).get("BOOL"))
    state = text(item, "status") or "draft"
    if state == "sending" and read_done and done >= audience:
        state = "sent"
    return {
        "id": campaign_id,
        "name": campaign.name,
        "email": campaign.email,
        **({"sms": campaign.sms} if campaign.sms else {}),
        "channel": campaign.channel,
        "topic": campaign.topic,
        "status": state,
        "when": _when(campaign),
        "created_at": text(item, "created_at"),
        "started_at": text(item, "started_at"),
        "cancelled_at": text(item, "cancelled_at"),
        "audience": audience,
        "audience_complete": read_done,  # every page of the audience read (the audience is counted as it is read)
        "sent": counts.get("sent", 0),
        "failed": counts.get("failed", 0),
        "excluded": counts.get("excluded", 0),
        "skipped": {"total": sum(skipped.values()), **skipped},
        "done": done,
        "progress": round(done / audience, 4) if audience else (1.0 if read_done else 0.0),
        **({"ab": _ab_status(settings, campaign, item)} if campaign.ab is not None else {}),
        "campaign": campaign.to_dict(),
    }


def _ab_status(settings: Settings, campaign: document.Campaign, item: dict[str, Any]) -> dict[str, Any]:
    """The A/B test: each variant's sends, opens and clicks (the reports' counts), the phase, and once decided the
    winner, whether it was significant, and why."""
    test = campaign.ab
    assert test is not None
    started = text(item, "started_at")
    decided = json.loads(text(item, "ab_decision") or "null")
    until = text(item, "sample_until")
    now = settings.clock().now()
    live: dict[str, Any] = {}
    if started:
        from shared.reports import queries  # with the reports' modules, only where an A/B test is read

        first = datetime.fromisoformat(started).astimezone(UTC).date()
        try:
            live = ab.measured(
                settings.region, settings.reports_table, campaign.id, test, first, now.astimezone(UTC).date()
            )
        except queries.ReportsUnavailable:  # the rest of the status still answers; the counts say they are missing
            live = {"verdict": "the variants' counts cannot be read now (the reports table), retry later"}
    decide_at = (
        (datetime.fromisoformat(until) + timedelta(seconds=test.wait)).isoformat()
        if until and item.get("read_done", {}).get("BOOL")
        else None
    )
    shown = ("sent", "delivered", "opened", "clicked", "open", "click")
    counted = {w["name"]: {k: w[k] for k in shown} for w in live.get("variants", [])}
    phase = "draft" if not started else "decided" if decided else "waiting" if decide_at else "sampling"
    answer: dict[str, Any] = {
        **test.to_dict(),
        "phase": phase,
        "held": number(item, "held"),
        "decide_at": decide_at,
        "variants": [{**v.to_dict(), **counted.get(v.name, {})} for v in test.variants],
        "verdict_now": live.get("verdict"),
        "winner": decided["winner"] if decided else None,
        "significant": decided["significant"] if decided else None,
    }
    if decided:
        answer["decision"] = decided
    return answer


def _when(campaign: document.Campaign) -> dict[str, Any]:
    when = campaign.when
    if when.at is not None:
        return {"kind": "at", "at": when.at.isoformat()}
    if when.local_time is not None:
        local: dict[str, Any] = {"kind": "local_time", "local_time": when.local_time}
        if when.date is not None:
            local["date"] = when.date.isoformat()
        return local
    return {"kind": "now"}


def _delay(due: datetime, now: datetime) -> int:
    return max(0, min(MAX_DELAY, math.ceil((due - now).total_seconds())))


def _queue(settings: Settings, messages: list[tuple[Message, int]]) -> None:
    """SendMessageBatch ten at a time, each message with its delay; refused entries sent again (twice at most)."""
    if not settings.campaign_queue_url:
        raise ConfigurationError("environment variable PARCOURS_CAMPAIGN_QUEUE_URL is required by campaigns")
    sqs = clients.sqs(settings.region)
    for first in range(0, len(messages), 10):
        entries = [
            {"Id": str(n), "MessageBody": message.to_json(), "DelaySeconds": delay}
            for n, (message, delay) in enumerate(messages[first : first + 10])
        ]
        for _attempt in range(3):
            try:
                answer: Any = sqs.send_message_batch(QueueUrl=settings.campaign_queue_url, Entries=entries)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as error:
                raise StorageError(f"campaign queue: {type(error).__name__}") from error
            failed = {entry["Id"] for entry in answer.get("Failed", [])}
            entries = [entry for entry in entries if entry["Id"] in failed]
            if not entries:
                break
        if entries:
            raise StorageError(f"campaign queue: {len(entries)} message(s) refused after retries")


def work(settings: Settings, body: str) -> Report:
    """One message of the campaign queue: a page read, or a chunk sent."""
    message = Message.from_json(body)
    now = settings.clock().now()
    store = _store(settings)
    item = store.get(message.campaign)
    if item is None or text(item, "status") != "sending":  # cancelled (or gone): what has not gone stays
        return Report(message.kind)
    if message.due:
        due = datetime.fromisoformat(message.due)
        if due - now > timedelta(seconds=1):  # not yet: back on the queue until its moment
            _queue(settings, [(message, _delay(due, now))])
            return Report(message.kind, postponed=True)
    campaign = _campaign_of(item, store)
    if message.kind == "page":
        return _page(settings, store, campaign, item, message, now)
    if message.kind == "decide":
        return _decide(settings, store, campaign, item, now)
    if message.kind == "rest":
        return _rest(settings, store, campaign, item, message, now)
    return _chunk(settings, store, campaign, message, now)


def _rate(settings: Settings, campaign: document.Campaign) -> float:
    return settings.campaign_sms_rate if campaign.channel == "sms" else settings.campaign_rate


def _page(
    settings: Settings, store: Store, campaign: document.Campaign, item: dict[str, Any], message: Message, now: datetime
) -> Report:
    report = Report("page")
    if store.page_continued(campaign.id, message.index):  # a redelivery of a page already handled
        return report
    ids, cursor = _read(settings, campaign, message.cursor, now)
    report.read = len(ids)
    store.page_read(campaign.id, message.index, len(ids), last=cursor is None)
    started = datetime.fromisoformat(text(item, "started_at") or now.isoformat())
    lots: dict[str, list[str]] = {"": ids}
    if campaign.ab is not None:  # the sample gets the variants; the rest is held until the decision
        lots = {v.name: [] for v in campaign.ab.variants}
        held: list[str] = []
        for contact_id in ids:
            name = ab.assign(campaign.id, campaign.ab, contact_id)
            (held if name is None else lots[name]).append(contact_id)
        store.hold(campaign.id, message.index, held)
    queued, latest = _scheduled(settings, store, campaign, lots, started, now)
    report.chunks = len(queued)
    if campaign.ab is not None:
        store.sample_until(campaign.id, latest)
        if cursor is None:  # the last page: the decision `wait` after the sample's last send
            until = max(latest, datetime.fromisoformat(text(item, "sample_until") or latest.isoformat()))
            decide_at = until + timedelta(seconds=campaign.ab.wait)
            queued.append((Message("decide", campaign.id, due=decide_at.isoformat()), _delay(decide_at, now)))
    if cursor is not None:
        # Local times: every page read now (its people's moments are spread over a day); else keep LOOKAHEAD ahead
        ahead = 0 if campaign.when.local_time is not None else (latest - now).total_seconds() - LOOKAHEAD
        delay = max(0, min(MAX_DELAY, math.ceil(ahead)))
        queued.append((Message("page", campaign.id, index=message.index + 1, cursor=cursor), delay))
    _queue(settings, queued)
    store.mark_continued(campaign.id, message.index)
    return report


def _scheduled(
    settings: Settings,
    store: Store,
    campaign: document.Campaign,
    lots: dict[str, list[str]],
    started: datetime,
    now: datetime,
) -> tuple[list[tuple[Message, int]], datetime]:
    """The chunks of a page's people (per variant, for an A/B test) on the sending line; and when the last ends."""
    queued: list[tuple[Message, int]] = []
    latest = now
    for name, ids in lots.items():
        chunks, last = _in_line(settings, store, campaign, _moments(settings, campaign, ids, started), now, name)
        queued += chunks
        latest = max(latest, last)
    return queued, latest


def _in_line(
    settings: Settings,
    store: Store,
    campaign: document.Campaign,
    groups: dict[datetime, list[str]],
    now: datetime,
    variant: str = "",
) -> tuple[list[tuple[Message, int]], datetime]:
    """The chunks of these people, each given its moment on the line of its group's instant at the sending rate; and
    when the last of them is done."""
    rate = _rate(settings, campaign)
    size = max(1, min(CHUNK, math.floor(rate)))
    queued: list[tuple[Message, int]] = []
    latest = now
    for due, people in sorted(groups.items()):
        for first in range(0, len(people), size):
            chunk = tuple(people[first : first + size])
            place = store.reserve(campaign.id, due, len(chunk))
            at = max(due + timedelta(seconds=place / rate), now)
            latest = max(latest, at + timedelta(seconds=len(chunk) / rate))
            message = Message("chunk", campaign.id, contacts=chunk, due=at.isoformat(), variant=variant)
            queued.append((message, _delay(at, now)))
    return queued, latest


def _decide(
    settings: Settings, store: Store, campaign: document.Campaign, item: dict[str, Any], now: datetime
) -> Report:
    """The A/B decision, once: the variants measured as the reports count them, the winner kept, the rest queued."""
    report = Report("decide")
    if campaign.ab is None:
        return report
    kept = json.loads(text(item, "ab_decision") or "null")
    if kept is None:
        first = datetime.fromisoformat(text(item, "started_at") or now.isoformat()).astimezone(UTC).date()
        result = ab.measured(
            settings.region, settings.reports_table, campaign.id, campaign.ab, first, now.astimezone(UTC).date()
        )
        kept = store.decide(campaign.id, ab.decision(campaign.ab, result, now))
    _queue(settings, [(Message("rest", campaign.id, index=0, variant=str(kept["winner"])), 0)])
    report.chunks = 1
    return report


def _rest(
    settings: Settings, store: Store, campaign: document.Campaign, item: dict[str, Any], message: Message, now: datetime
) -> Report:
    """One page of the people held back: the winner for each, at the sending rate from the decision on."""
    report = Report("rest")
    found = store.held(campaign.id, message.index)
    if found is None or found[1]:  # no such page (the last one was done), or released already (a redelivery)
        return report
    people, _released = found
    report.read = len(people)
    decided = json.loads(text(item, "ab_decision") or "{}")
    since = datetime.fromisoformat(str(decided.get("decided_at") or now.isoformat()))
    # The rest's line starts at the decision (not at the campaign's `at`, long past: its sends would all be due at once)
    unscheduled = replace(campaign, when=document.When())
    queued, latest = _scheduled(settings, store, unscheduled, {f"{REST}{message.variant}": people}, since, now)
    report.chunks = len(queued)
    ahead = (latest - now).total_seconds() - LOOKAHEAD
    following = Message("rest", campaign.id, index=message.index + 1, variant=message.variant)
    queued.append((following, max(0, min(MAX_DELAY, math.ceil(ahead)))))
    _queue(settings, queued)
    store.release(campaign.id, message.index)
    return report


def _read(
    settings: Settings, campaign: document.Campaign, cursor: dict[str, Any] | None, now: datetime
) -> tuple[list[str], dict[str, Any] | None]:
    """One page of the audience: (contact ids, the next page's cursor or None)."""
    t = tables(settings)
    try:
        if campaign.audience.list is not None:
            found: Any = t.list_members.query(
                campaign.audience.list, limit=PAGE, page_size=PAGE, last_evaluated_key=cursor
            )
            ids = [member.contact_id for member in found]
        else:
            condition = campaign.audience.condition or {}
            found = t.contacts.scan(limit=PAGE, page_size=PAGE, last_evaluated_key=cursor)
            ids = [contact.contact_id for contact in found if _holds(settings, condition, contact, now)]
        return ids, found.last_evaluated_key or None
    except PynamoDBException as error:
        raise StorageError(str(error)) from error


def _holds(settings: Settings, condition: dict[str, Any], contact: ContactModel, now: datetime) -> bool:
    history = conditions.history_of(tables(settings).events, contact.contact_id)
    facts = conditions.Facts(now=now, default_timezone=settings.default_timezone, history=history)
    return conditions.holds(condition, contact, facts)


def _moments(
    settings: Settings, campaign: document.Campaign, ids: list[str], started: datetime
) -> dict[datetime, list[str]]:
    """The people of a page grouped by the instant their sending starts from."""
    when = campaign.when
    if when.local_time is None:
        return {when.at or started: list(ids)} if ids else {}
    at = time.fromisoformat(when.local_time)
    default = when.timezone or settings.default_timezone
    groups: dict[datetime, list[str]] = {}
    for contact_id, contact in _contacts(settings, ids).items():
        zone_name = conditions.attribute(contact, dates.TIMEZONE) if contact is not None else None
        tz = moments.zone(zone_name if isinstance(zone_name, str) else None, default)
        due = moments.on_day(when.date, at, tz) if when.date is not None else moments.next_moment(started, at, (), tz)
        groups.setdefault(due.astimezone(started.tzinfo), []).append(contact_id)
    return groups


def _contacts(settings: Settings, ids: Iterable[str]) -> dict[str, ContactModel | None]:
    """The contacts by id, in the given order, a batch of reads per hundred (None: no longer there)."""
    wanted = list(ids)
    found: dict[str, ContactModel] = {}
    try:
        for first in range(0, len(wanted), 100):
            found |= {c.contact_id: c for c in tables(settings).contacts.batch_get(wanted[first : first + 100])}
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    return {contact_id: found.get(contact_id) for contact_id in wanted}


def request(campaign: document.Campaign, contact_id: str, variant: str = "") -> sending.SendRequest:
    """The scenario send's request for this person: the campaign as its scenario (`campaign.<id>`, in the SES tags
    and the unsubscribe link's origin), one execution per person (the send's claim: once per person). `variant`:
    an A/B variant's subject or template, tagged with its name in the sample; `rest:<name>` the winner's, untagged
    (the rest is not part of the test's figures)."""
    chosen = ab.variant(campaign.ab, variant.removeprefix(REST)) if campaign.ab is not None and variant else None
    return sending.SendRequest(
        scenario=f"campaign.{campaign.id}",
        step=STEP,
        template=(chosen.email if chosen is not None and chosen.email else campaign.email),
        variant=variant if chosen is not None and not variant.startswith(REST) else None,
        subject=chosen.subject if chosen is not None else None,
        category="marketing",
        execution=f"campaign.{campaign.id}#{contact_id}",
        contact_id=contact_id,
        trigger={},
        topic=campaign.topic,
        pacing=compiled().get("pacing", {}).get(campaign.topic) or {"caps": [], "when_capped": "defer"},
        has_goal=False,
    )


def _chunk(settings: Settings, store: Store, campaign: document.Campaign, message: Message, now: datetime) -> Report:
    report = Report("chunk")
    suppression_key = suppression.hash_key(settings)
    link_secret = secrets.resolve(settings.link_secret, settings.link_secret_parameter, "link signing secret")
    # Held back by quiet hours (or an SMS's French hours): back on the line at their moment
    later: dict[datetime, list[str]] = {}
    for contact_id, contact in _contacts(settings, message.contacts).items():
        if campaign.channel == "sms":
            outcome = _deliver_sms(settings, campaign, contact_id, contact, now)
        else:
            outcome = _deliver(
                settings, campaign, contact_id, contact, now, link_secret, suppression_key, message.variant
            )
        if isinstance(outcome, datetime):
            later.setdefault(outcome, []).append(contact_id)
            continue
        if store.record(campaign.id, contact_id, outcome, settings.clock().now()):
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    if later:
        report.outcomes["deferred"] = sum(len(people) for people in later.values())
        _queue(settings, _in_line(settings, store, campaign, later, now, message.variant)[0])
    return report


def _deliver(
    settings: Settings,
    campaign: document.Campaign,
    contact_id: str,
    contact: ContactModel | None,
    now: datetime,
    link_secret: str,
    suppression_key: suppression.HashKey,
    variant: str = "",
) -> str | datetime:
    """One person's outcome: sent, failed, excluded or skipped_<reason>; or, in their quiet hours, when these end
    (the email waits, as a scenario's does). A cap or the contact's frequency skips: a campaign does not wait days
    for room. SES busy: SendDeferred goes up (the chunk comes back later; who was served is not served again)."""
    if contact is not None and excluded(settings, campaign.audience, contact, now):
        return "excluded"
    try:
        answer = sending.send_email(
            request(campaign, contact_id, variant), settings, settings.clock(), link_secret, suppression_key
        )
    except mailer.SendRefused:
        return "failed"
    if answer.get("status") in ("sent", "duplicate"):  # duplicate: claimed by an earlier attempt, which sent it
        return "sent"
    if answer.get("status") == "deferred":
        reasons = str(answer.get("reason") or "").split("; ")
        habits = [reason for reason in reasons if not reason.startswith("quiet hours")]
        if not habits and answer.get("until"):
            return datetime.fromisoformat(str(answer["until"]))
        return f"skipped_{reason_of(habits[0] if habits else reasons[0], contact)}"
    fresh = (
        get_or_none(tables(settings).contacts, contact_id)
        if answer.get("reason") == "no marketing consent"
        else contact
    )
    return f"skipped_{reason_of(str(answer.get('reason') or ''), fresh)}"


def _deliver_sms(
    settings: Settings, campaign: document.Campaign, contact_id: str, contact: ContactModel | None, now: datetime
) -> str | datetime:
    """One person's outcome, as `_deliver`, or the moment the SMS hours let their SMS go (they are not counted yet)."""
    if contact is None:
        return "skipped_not_found"
    if excluded(settings, campaign.audience, contact, now):
        return "excluded"
    rules = compiled().get("sms_pacing", {}).get(campaign.topic)
    request = texting.request(campaign.id, campaign.sms, campaign.topic, contact_id, rules)
    refusal = texting.early_refusal(contact, campaign.topic)
    if refusal is None:
        moment = texting.next_moment(request, contact, settings, now)
        if moment is not None:
            return moment
        try:
            answer = sms.send_sms(request, settings, settings.clock())
        except mailer.SendRefused:
            return "failed"
        if answer.get("status") in ("sent", "duplicate"):
            return "sent"
        if answer.get("status") == "deferred":  # the hours closed between the look and the send
            return datetime.fromisoformat(str(answer["until"]))
        refusal = str(answer.get("reason") or "")
    return f"skipped_{texting.reason_of(refusal, contact) or reason_of(refusal, contact)}"


def excluded(settings: Settings, audience: document.Audience, contact: ContactModel, now: datetime) -> bool:
    if set(audience.exclude_lists) & set(contact.lists or ()):
        return True
    return audience.exclude_if is not None and _holds(settings, audience.exclude_if, contact, now)


def reason_of(reason: str, contact: ContactModel | None) -> str:
    """The status's name for why the send's re-check held a person back (shared.messages.sending's reasons)."""
    if reason == "no marketing consent":
        consent = contact.email_consent if contact is not None else None
        return "unsubscribed" if consent is not None and consent.state == "denied" else "no_consent"
    if reason.startswith("objected") or reason.startswith("no marketing consent"):
        return "no_consent"
    prefixes = {
        "topic ": "unsubscribed_topic",
        "address suppressed": "suppressed",
        "frequency cap": "frequency_cap",
        "the contact chose": "preference",
        "no email address": "no_email",
        "contact not found": "not_found",
    }
    return next((name for prefix, name in prefixes.items() if reason.startswith(prefix)), "other")
