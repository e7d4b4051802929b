"""Lead scoring: points for what a contact does, by the rules of `scenarios/scoring.yaml`, and the lifecycle stage
(subscriber -> lead -> mql -> sql -> customer) its score and orders reach.

`parcours compile` validates the file and writes `scenarios/compiled/scoring.json`, read here once per container.
Every change is one DynamoDB transaction of two writes:
- a claim keyed by what caused it (the event id, or an add_score step's execution and step), in the events table
  under `_scored#<contact>`: a redelivered or re-processed event finds it and scores nothing twice; it keeps the
  events the change emitted, so a retry after a failed enqueue emits them again (same ids: deduplicated downstream);
- the contact's update: `ADD score`, each capped rule's counter for its period (`score_caps`, "rule@period" ->
  times) and the stage, under a condition on the score, the counters and the stage as read. Two concurrent events
  cannot both pass a cap nor both move the stage: the second fails its condition, reads the contact again and
  decides again.
Then `score.changed` {old, new, points, reason} per rule that scored, `stage.changed` {old, new, score} when the stage
moved forward, and `contact.qualified` {score, stage, qualified_at} when it became `sql` go on the events queue like
any event (recorded in the contact's history: why a lead is hot stays readable for 3 years).

Stages only move forward: decay and negative rules lower the score, never the stage. parcours' own events
(score.changed, stage.changed, contact.qualified, list.*) never score: no rule can loop on its own output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from shared import writes
from shared.events import (
    CONTACT_INACTIVE,
    CONTACT_QUALIFIED,
    LIST_JOINED,
    LIST_LEFT,
    ORDER_PLACED,
    SCORE_CHANGED,
    STAGE_CHANGED,
    ContactFacts,
    Event,
)
from shared.people.conditions import matches, whole
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import (
    Conflict,
    ContactModel,
    EventModel,
    StorageError,
    Tables,
    get_or_none,
    tables,
    write_together,
)

SCORING = Path(__file__).resolve().parents[2] / "scenarios" / "compiled" / "scoring.json"
STAGES = ("subscriber", "lead", "mql", "sql", "customer")  # in the order a contact goes through them
THRESHOLDS = ("lead", "mql", "sql")  # reached by points; customer by a first order
STAGE = "lifecycle_stage"  # the custom attributes the scoring keeps
QUALIFIED_AT = "qualified_at"
DECAY = "decay"  # the reason of a decay's score.changed
OWN_EVENTS = (SCORE_CHANGED, STAGE_CHANGED, CONTACT_QUALIFIED, LIST_JOINED, LIST_LEFT)
CLAIMS = "_scored#"  # the events table's owner of a contact's claims (contact ids never start with `_`)
CLAIM_KEPT = timedelta(days=14)  # the dead-letter queue's retention: a redrive finds the claim still there
PERIODS_FROM = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: 7d periods are weeks from Monday 00:00 UTC
ATTEMPTS = 5  # reads and conditional writes before giving up (the message is then retried by SQS)


@dataclass(frozen=True)
class Cap:
    times: int  # at most this many scorings of the rule ...
    per: int  # ... per period of this many seconds (fixed periods counted from PERIODS_FROM)


@dataclass(frozen=True)
class Rule:
    id: str
    event: str
    points: int
    where: dict[str, Any] | None = None
    cap: Cap | None = None


@dataclass(frozen=True)
class Decay:
    percent: int  # the share of its points a score loses (rounded up to a whole point) ...
    days: tuple[int, ...]  # ... on each of these days of silence (contact.inactive)


@dataclass(frozen=True)
class Config:
    rules: tuple[Rule, ...] = ()
    decay: Decay | None = None
    stages: tuple[int, int, int] | None = None  # the lead, mql and sql thresholds; None: no lifecycle stages

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [
                {
                    "id": rule.id,
                    "event": rule.event,
                    "points": rule.points,
                    **({"where": rule.where} if rule.where is not None else {}),
                    **({"cap": {"times": rule.cap.times, "per": rule.cap.per}} if rule.cap is not None else {}),
                }
                for rule in self.rules
            ],
            "decay": {"percent": self.decay.percent, "days": list(self.decay.days)} if self.decay else None,
            "stages": dict(zip(THRESHOLDS, self.stages, strict=True)) if self.stages else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        decay, stages = data.get("decay"), data.get("stages")
        return cls(
            rules=tuple(
                Rule(
                    id=rule["id"],
                    event=rule["event"],
                    points=int(rule["points"]),
                    where=rule.get("where"),
                    cap=Cap(int(rule["cap"]["times"]), int(rule["cap"]["per"])) if "cap" in rule else None,
                )
                for rule in data.get("rules", [])
            ),
            decay=Decay(int(decay["percent"]), tuple(int(d) for d in decay["days"])) if decay else None,
            stages=(int(stages["lead"]), int(stages["mql"]), int(stages["sql"])) if stages else None,
        )

    def inactive_days(self) -> tuple[int, ...]:
        """The days of silence the daily run must report (contact.inactive) for these rules and the decay."""
        days = {int(rule.where["days"]) for rule in self.rules if rule.event == CONTACT_INACTIVE and rule.where}
        return tuple(sorted(days | set(self.decay.days if self.decay else ())))


@lru_cache(maxsize=2)
def config(path: Path = SCORING) -> Config:
    """The compiled rules; none when the deployment has no scoring file."""
    if not path.exists():
        return Config()
    return Config.from_dict(json.loads(path.read_text(encoding="utf-8")))


def period(now: datetime, seconds: int) -> int:
    """The number of the cap's period `now` falls in: 1d periods are UTC days, 7d ones weeks from Monday."""
    return int((now - PERIODS_FROM).total_seconds() // seconds)


def stage_of(contact: ContactModel) -> str:
    """The contact's lifecycle stage; one never set (or set to something else by hand) counts as subscriber."""
    value = _attributes(contact).get(STAGE)
    return value if value in STAGES else STAGES[0]


def stage_for(score: int, ordered: bool, thresholds: tuple[int, int, int]) -> str:
    if ordered:
        return "customer"
    reached = STAGES[0]
    for name, threshold in zip(THRESHOLDS, thresholds, strict=True):
        if score >= threshold:
            reached = name
    return reached


@dataclass(frozen=True)
class Points:
    reason: str  # the rule's id, `decay`, or the add_score step
    points: int
    counter: str | None = None  # a capped rule's counter for this period, "rule@period"


def _attributes(contact: ContactModel) -> dict[str, Any]:
    return dict(contact.attributes.as_dict()) if contact.attributes is not None else {}


def _counters(contact: ContactModel) -> dict[str, int]:
    return {k: int(v) for k, v in contact.score_caps.as_dict().items()} if contact.score_caps is not None else {}


def _score(contact: ContactModel) -> int:
    return int(contact.score or 0)


def rule_points(event: Event, contact: ContactModel, rules: Config, now: datetime) -> list[Points]:
    """What each matching rule gives, in the file's order, on the contact as it is: capped rules that reached their
    cap give nothing; negative points never take the score below 0; the decay comes last."""
    running, counters, found = _score(contact), _counters(contact), []
    for rule in rules.rules:
        if rule.event != event.type or not matches(rule.where, event.properties):
            continue
        counter = None
        if rule.cap is not None:
            counter = f"{rule.id}@{period(now, rule.cap.per)}"
            if counters.get(counter, 0) >= rule.cap.times:
                continue
        points = rule.points if rule.points > 0 else max(rule.points, -running)
        if points:
            running += points
            found.append(Points(rule.id, points, counter))
    days = whole(event.properties.get("days"))
    if rules.decay is not None and event.type == CONTACT_INACTIVE and days in rules.decay.days and running > 0:
        found.append(Points(DECAY, -math.ceil(running * rules.decay.percent / 100)))
    return found


def apply(event: Event, contact: ContactModel, settings: Settings, now: datetime) -> None:
    """Scores one processed event and moves the stage; `contact` is refreshed in hand. Idempotent on the event."""
    rules = config()
    if event.source == "parcours" or event.type in OWN_EVENTS or rules == Config():
        return
    matched = any(rule.event == event.type and matches(rule.where, event.properties) for rule in rules.rules)
    days = whole(event.properties.get("days"))
    decays = event.type == CONTACT_INACTIVE and rules.decay is not None and days in rules.decay.days
    commit(
        contact,
        key=event.event_id,
        topic="scoring",
        planned=lambda c: rule_points(event, c, rules, now),
        ordered=lambda c: event.type == ORDER_PLACED or int(c.orders_count or 0) >= 1,
        score_id=lambda reason: f"parcours#{SCORE_CHANGED}#{reason}#{event.event_id}",
        settings=settings,
        now=now,
        # a retry may find nothing left to do after a change this event made: read its claim then
        may_have_scored=matched or decays or event.type == ORDER_PLACED,
    )


def add(contact_id: str, points: int, step: str, key: str, topic: str, settings: Settings, now: datetime) -> int | None:
    """An add_score step's points (reason: the step), once per `key` (its execution and step), through the same
    stages; the score after it, or None when the contact no longer exists."""
    contact = get_or_none(tables(settings).contacts, contact_id, consistent=True)
    if contact is None:
        return None
    done = commit(
        contact,
        key=key,
        topic=topic,
        planned=lambda _: [Points(step, points)],
        ordered=lambda c: int(c.orders_count or 0) >= 1,
        score_id=lambda _: f"parcours#{SCORE_CHANGED}#{key}",
        settings=settings,
        now=now,
    )
    return _score(contact) if done is not None else None


def commit(
    contact: ContactModel,
    key: str,
    topic: str,
    planned: Callable[[ContactModel], list[Points]],
    ordered: Callable[[ContactModel], bool],
    score_id: Callable[[str], str],
    settings: Settings,
    now: datetime,
    may_have_scored: bool = True,
) -> list[Event] | None:
    """Writes the points `planned` gives on the contact and the stage they reach, once per `key`, and emits what
    changed; answers the events emitted (or emitted again, for a key already claimed), None when the contact is
    gone. `contact` is kept current in hand. `may_have_scored`: whether an earlier attempt may have made a change
    that leaves nothing to do now (then its claim is read, once, to emit its events again)."""
    t = tables(settings)
    thresholds = config().stages
    gathered = writes.current()
    if gathered is not None:
        return _gather(gathered, contact, key, topic, planned, ordered, score_id, settings, now)
    for attempt in range(ATTEMPTS):
        if attempt:
            try:
                contact.refresh(consistent_read=True)
            except DoesNotExist:
                return None
            except PynamoDBException as error:
                raise StorageError(str(error)) from error
        points = planned(contact)
        old = _score(contact)
        new = old + sum(p.points for p in points)
        stage = stage_of(contact)
        target = stage_for(new, ordered(contact), thresholds) if thresholds is not None else stage
        moves = STAGES.index(target) > STAGES.index(stage)
        if not points and not moves:
            # Nothing (more) to do; but if this is a retry of the change made then (a capped rule, a stage reached),
            # its events may never have been queued: emit them again
            return _again(t, contact.contact_id, key, settings, now) if may_have_scored else []
        events = _events(contact.contact_id, key, topic, points, old, (stage, target) if moves else None, score_id, now)
        actions, condition, counters = _update(contact, points, old, target if moves else None, now)
        claim = t.events(
            contact_id=CLAIMS + contact.contact_id,
            at_id=key,
            type="scored",
            source="parcours",
            properties={"events": [_stored(e) for e in events]},
            expires_at=now + CLAIM_KEPT,
        )
        try:
            failed = write_together(
                [(claim, EventModel.contact_id.does_not_exist())],
                [(t.contacts(contact_id=contact.contact_id), actions, condition)],
            )
        except Conflict:
            continue  # another transaction on the contact at the same moment: read again
        if failed is None:
            contact.score = new
            if counters is not None:
                contact.score_caps = counters
            if moves:
                changed = {STAGE: target, **({QUALIFIED_AT: now.isoformat()} if target == "sql" else {})}
                contact.attributes = {**_attributes(contact), **changed}
            _enqueue(events, settings)
            return events
        if failed == 0:  # scored already (a redelivery, or a retry after a failure further on): emit it again
            again = _again(t, contact.contact_id, key, settings, now)
            try:
                contact.refresh(consistent_read=True)
            except DoesNotExist:
                return None
            return again
        # failed == 1: the contact changed since it was read (another event scored, or it was erased): read again
    raise StorageError(f"the contact kept changing while being scored ({ATTEMPTS} attempts); the event is retried")


def _gather(
    gathered: writes.Writes,
    contact: ContactModel,
    key: str,
    topic: str,
    planned: Callable[[ContactModel], list[Points]],
    ordered: Callable[[ContactModel], bool],
    score_id: Callable[[str], str],
    settings: Settings,
    now: datetime,
) -> list[Event]:
    """The change in hand, for the event's one transaction (shared.writes), under the same condition as `commit`'s
    (the score, the counters and the stage as read): the event's mark is its claim, and keeps the events it emits."""
    thresholds = config().stages
    points = planned(contact)
    old = _score(contact)
    new = old + sum(p.points for p in points)
    stage = stage_of(contact)
    target = stage_for(new, ordered(contact), thresholds) if thresholds is not None else stage
    moves = STAGES.index(target) > STAGES.index(stage)
    if not points and not moves:
        return []
    events = _events(contact.contact_id, key, topic, points, old, (stage, target) if moves else None, score_id, now)
    _, condition, counters = _update(contact, points, old, target if moves else None, now)
    gathered.condition(condition)
    contact.score = new
    if counters is not None:
        contact.score_caps = counters
    if moves:
        changed = {STAGE: target, **({QUALIFIED_AT: now.isoformat()} if target == "sql" else {})}
        contact.attributes = {**_attributes(contact), **changed}
    _enqueue(events, settings)
    return events


def _again(t: Tables, contact_id: str, key: str, settings: Settings, now: datetime) -> list[Event]:
    """The events a change claimed under `key` emitted, queued again (the same ids: dropped if they were queued)."""
    done = get_or_none(t.events, CLAIMS + contact_id, range_key=key, consistent=True)
    again = [_restored(e, contact_id, now) for e in (done.properties or {}).get("events", [])] if done else []
    _enqueue(again, settings)
    return again


def _update(
    contact: ContactModel, points: list[Points], old: int, stage: str | None, now: datetime
) -> tuple[list[Any], Any, dict[str, int] | None]:
    """The contact's update and its condition: the score, the counters and the stage still as read."""
    score = ContactModel.score
    condition = ContactModel.contact_id.exists() & ((score == old) if old else (score.does_not_exist() | (score == 0)))
    total = sum(p.points for p in points)
    actions: list[Any] = [score.add(total)] if total else []
    counters: dict[str, int] | None = None
    capped = [p.counter for p in points if p.counter is not None]
    if capped:
        held = _counters(contact)
        counters = {k: v for k, v in held.items() if not any(_same_rule(k, c) for c in capped)}
        counters.update({c: held.get(c, 0) + 1 for c in capped})
        if contact.score_caps is None:
            actions.append(ContactModel.score_caps.set(counters))
            condition &= ContactModel.score_caps.does_not_exist()
        else:
            for counter in capped:
                path = ContactModel.score_caps[counter]
                had = held.get(counter, 0)
                condition &= path.does_not_exist() if had == 0 else (path == had)
                actions.append(path.set(had + 1))
                # the rule's counters of past periods go: the contact keeps one per capped rule
                actions += [
                    ContactModel.score_caps[k].remove() for k in held if k != counter and _same_rule(k, counter)
                ]
    if stage is not None:
        path = ContactModel.attributes[STAGE]
        current = _attributes(contact).get(STAGE)
        condition &= path.does_not_exist() if current is None else (path == current)
        actions.append(path.set(stage))
        if stage == "sql":
            actions.append(ContactModel.attributes[QUALIFIED_AT].set(now.isoformat()))
    return actions, condition, counters


def _same_rule(counter: str, other: str) -> bool:
    return counter.rpartition("@")[0] == other.rpartition("@")[0]


def _events(
    contact_id: str,
    key: str,
    topic: str,
    points: list[Points],
    old: int,
    stage: tuple[str, str] | None,
    score_id: Callable[[str], str],
    now: datetime,
) -> list[Event]:
    """What the change emits, named after its cause: a retry emits the same events, which the queue and the
    processing drop."""
    found, running = [], old
    for change in points:
        properties = {"old": running, "new": running + change.points, "points": change.points, "reason": change.reason}
        found.append(_event(score_id(change.reason), SCORE_CHANGED, topic, contact_id, properties, now))
        running += change.points
    if stage is not None:
        moved = {"old": stage[0], "new": stage[1], "score": running}
        found.append(_event(f"parcours#{STAGE_CHANGED}#{stage[1]}#{key}", STAGE_CHANGED, topic, contact_id, moved, now))
        if stage[1] == "sql":
            qualified = {"score": running, "stage": "sql", "qualified_at": now.isoformat()}
            event_id = f"parcours#{CONTACT_QUALIFIED}#{key}"
            found.append(_event(event_id, CONTACT_QUALIFIED, topic, contact_id, qualified, now))
    return found


def _event(
    event_id: str, event_type: str, topic: str, contact_id: str, properties: dict[str, Any], now: datetime
) -> Event:
    return Event(
        event_id=event_id,
        type=event_type,
        source="parcours",
        topic=topic,
        occurred_at=now.isoformat(),
        received_at=now.isoformat(),
        contact=ContactFacts(contact_id=contact_id),
        properties=properties,
    )


def _stored(event: Event) -> dict[str, Any]:
    return {"event_id": event.event_id, "type": event.type, "topic": event.topic, "properties": event.properties}


def _restored(stored: dict[str, Any], contact_id: str, now: datetime) -> Event:
    return _event(stored["event_id"], stored["type"], stored["topic"], contact_id, stored["properties"], now)


def _enqueue(events: list[Event], settings: Settings) -> None:
    for event in events:
        ingestion.enqueue(event, settings)
