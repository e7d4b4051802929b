"""Journey tests (`parcours test`): given a contact and events at simulated times, expect which messages go out,
when, and how the contact leaves the scenario. They run the real state machines in the local runtime.

A file `scenarios/tests/<scenario>.test.yaml`:

    scenario: abandoned-cart
    cases:
      - name: an order stops the reminders
        contact: {first_name: Camille, locale: fr, consent: granted}   # consent: granted | denied | none
        # optional, for send_sms steps: phone: "+33612345678", sms_consent: granted (the default)
        # attributes: {birthday: J+2, timezone: Asia/Tokyo}   # J+N: the date N days after the start, locally
        events:
          - {at: 0h, event: checkout.started}                        # properties: default samples, or yours
          - {at: 30h, event: order.placed}
        expect:
          sent: [{step: e1-reminder, at: 1h}, {step: e2-help, at: 24h}]
          not_sent: [e3-offer]
          ends: converted                     # completed | converted | running | not_entered
          lists: [clients-fideles]            # the contact's lists at the end (optional)
          consent: granted                    # the contact's marketing consent at the end (optional)

A send can also be expected at a local time on a day: `{step: e1, day: J+2, time: "10:00"}` (J+0 is the day of
the first event in the contact's `timezone` attribute, else Europe/Paris). The local runtime's daily schedule
runs during the journey (once per simulated day at 00:05 UTC), so date and inactivity triggers play out too.

`sent` and `not_sent` name send steps, email or SMS. Times are simulated and count from the first event. The
journeys run on skipped time (`parcours local --skip-time`): every case of every file starts at the same instant
(`--start`, by default 2026-11-24 09:00 UTC, a Tuesday: the same results on any day), its events are sent at their
moments, and each timer (a Wait, a wait_for timeout, a daily run) fires at its moment exactly, so a send is expected
at its time to the second, on an idle machine or a loaded one. A file's `time_scale` (older files) is ignored.
Cases run side by side on one clock, so each case that gives a phone number gives its own: SMS are told apart by
number.
"""

from __future__ import annotations

import heapq
import json
import re
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import yaml

from shared.events import CATALOGUE, ConsentFacts, ContactFacts, Event, normalise_phone
from shared.journeys.scenario import parse_duration
from shared.people import moments
from shared.sources.ingestion import group_and_dedup_ids

TESTS = Path(__file__).resolve().parent.parent / "scenarios" / "tests"
ENDINGS = ("completed", "converted", "running", "not_entered")
CONSENTS = ("granted", "denied", "none")
ENDING_CONSENTS = ("granted", "denied")  # `expect: consent:`, the contact's marketing consent at the end
DEFAULT_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # J+0 of every case unless `parcours test --start`
DEFAULT_TIMEZONE = "Europe/Paris"  # the deployment's default in `parcours local`
RELATIVE_DAY = re.compile(r"^J([+-]\d+)$")


class JourneyFileError(ValueError):
    """A journey test file that cannot be read; the message names the file and the case."""


@dataclass(frozen=True)
class Expected:
    step: str | tuple[str, ...]  # or one of these: the variants of a split (which one depends on the contact)
    at: int | None  # simulated seconds after the first event
    on_day: int | None = None  # or: on the local day J+N ...
    local_time: str | None = None  # ... at this local time of day

    @property
    def steps(self) -> tuple[str, ...]:
        return (self.step,) if isinstance(self.step, str) else self.step

    def offset(self, start: datetime, day_zero: datetime, tz_name: str | None) -> int | None:
        """Seconds after `start` this send is expected at; J+0 is the local day of `day_zero`."""
        if self.on_day is None or self.local_time is None:
            return self.at
        tz = moments.zone(tz_name, DEFAULT_TIMEZONE)
        day = day_zero.astimezone(tz).date() + timedelta(days=self.on_day)
        return round((moments.on_day(day, dtime.fromisoformat(self.local_time), tz) - start).total_seconds())


@dataclass(frozen=True)
class Case:
    file: str
    scenario: str
    name: str
    contact: dict[str, Any]
    events: tuple[tuple[int, str, dict[str, Any] | None], ...]
    sent: tuple[Expected, ...]
    not_sent: tuple[str, ...]
    ends: str | None
    lists: tuple[str, ...] | None = None
    consent: str | None = None

    def horizon(self) -> int:
        """How long (simulated) to watch: a day past the last event and the last expected send."""
        times = [at for at, _, _ in self.events]
        times += [(e.on_day + 1) * 86400 if e.on_day is not None else e.at or 0 for e in self.sent]
        return max(times) + 86400

    def timezone(self) -> str | None:
        zone = (self.contact.get("attributes") or {}).get("timezone")
        return zone if isinstance(zone, str) else None


@dataclass
class Outcome:
    case: Case
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _duration(value: Any, where: str) -> int:
    seconds = parse_duration(str(value)) if not isinstance(value, int) else value
    if seconds is None or seconds < 0:
        raise JourneyFileError(f"{where}: {value!r} is not a duration such as 0h, 90m, 2d")
    return seconds


def load(path: Path, scenarios: dict[str, Any]) -> list[Case]:
    where = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise JourneyFileError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or set(data) - {"scenario", "cases", "time_scale"} or "cases" not in data:
        raise JourneyFileError(f"{where}: a journey file has `scenario`, `cases` and optionally `time_scale`")
    scenario = data.get("scenario")
    if scenario not in scenarios:
        raise JourneyFileError(f"{where}: unknown scenario {scenario!r}; known: {', '.join(sorted(scenarios))}")
    steps = _send_ids(scenarios[scenario].steps)
    cases = []
    for index, raw in enumerate(data["cases"] or []):
        here = f"{where}, case {index + 1}"
        if not isinstance(raw, dict) or set(raw) - {"name", "contact", "events", "expect"} or "name" not in raw:
            raise JourneyFileError(f"{here}: a case has name, contact, events and expect")
        here = f"{where}, case {raw['name']!r}"
        contact = raw.get("contact") or {}
        if not isinstance(contact, dict):
            raise JourneyFileError(f"{here}: contact is a mapping, e.g. {{first_name: Camille, consent: granted}}")
        for key in ("consent", "sms_consent"):
            if contact.get(key, "granted") not in CONSENTS:
                raise JourneyFileError(f"{here}: contact {key} is one of {', '.join(CONSENTS)}")
        if "phone" in contact and not isinstance(contact["phone"], str):
            raise JourneyFileError(f'{here}: contact phone is a text in E.164, e.g. "+33612345678" (quoted)')
        events = []
        for event in raw.get("events") or []:
            if not isinstance(event, dict) or event.get("event") not in CATALOGUE:
                raise JourneyFileError(f"{here}: each event needs `event`, one of {', '.join(CATALOGUE)}")
            events.append((_duration(event.get("at", 0), here), event["event"], event.get("properties")))
        if not events:
            raise JourneyFileError(f"{here}: no events: what happens to the contact?")
        expect = raw.get("expect") or {}
        sent = tuple(_expected(item, here) for item in expect.get("sent") or [])
        attributes = (raw.get("contact") or {}).get("attributes")
        if attributes is not None and not (
            isinstance(attributes, dict) and all(isinstance(k, str) for k in attributes)
        ):
            raise JourneyFileError(f"{here}: contact attributes map names to values, e.g. {{birthday: J+2}}")
        for step in [step for e in sent for step in e.steps] + list(expect.get("not_sent") or []):
            if step not in steps:
                raise JourneyFileError(f"{here}: {scenario} has no send step {step!r}; it has {', '.join(steps)}")
        ends = expect.get("ends")
        if ends is not None and ends not in ENDINGS:
            raise JourneyFileError(f"{here}: ends is one of {', '.join(ENDINGS)}")
        lists = expect.get("lists")
        if lists is not None and not (isinstance(lists, list) and all(isinstance(n, str) for n in lists)):
            raise JourneyFileError(f"{here}: lists is a list of list names")
        consent = expect.get("consent")
        if consent is not None and consent not in ENDING_CONSENTS:
            raise JourneyFileError(f"{here}: consent is one of {', '.join(ENDING_CONSENTS)}")
        unknown = set(expect) - {"sent", "not_sent", "ends", "lists", "consent"}
        if unknown:
            raise JourneyFileError(f"{here}: unknown expectation {', '.join(sorted(unknown))}")
        cases.append(
            Case(
                where,
                scenario,
                str(raw["name"]),
                dict(contact),
                tuple(sorted(events)),
                sent,
                tuple(expect.get("not_sent") or []),
                ends,
                tuple(sorted(lists)) if lists is not None else None,
                consent,
            )
        )
    return cases


def _expected(item: Any, here: str) -> Expected:
    if not isinstance(item, dict) or "step" not in item or set(item) - {"step", "at", "day", "time"}:
        raise JourneyFileError(f"{here}: each expected send is {{step, at}} or {{step, day: J+N, time: HH:MM}}")
    step = item["step"]
    if isinstance(step, list):  # one of a split's variants
        if len(step) < 2 or not all(isinstance(one, str) for one in step):
            raise JourneyFileError(f"{here}: step is a step id, or a list of two or more (one of a split's variants)")
        step = tuple(step)
    elif not isinstance(step, str):
        raise JourneyFileError(f"{here}: step is a step id, or a list of two or more (one of a split's variants)")
    if "day" not in item:
        return Expected(step, _duration(item["at"], here) if "at" in item else None)
    day = RELATIVE_DAY.match(str(item["day"]))
    local_time = item.get("time")
    if day is None or not isinstance(local_time, str) or not re.match(r"^\d{2}:\d{2}$", local_time):
        raise JourneyFileError(f'{here}: write `day: J+2, time: "10:00"` (a local day and time of day)')
    return Expected(step, None, int(day.group(1)), local_time)


def resolve_attributes(attributes: dict[str, Any], start: datetime) -> dict[str, Any]:
    """`J+N` values become the ISO date N days after `start`, in the contact's time zone."""
    zone = attributes.get("timezone")
    tz = moments.zone(zone if isinstance(zone, str) else None, DEFAULT_TIMEZONE)
    resolved = {}
    for name, value in attributes.items():
        day = RELATIVE_DAY.match(value) if isinstance(value, str) else None
        resolved[name] = (start.astimezone(tz).date() + timedelta(days=int(day.group(1)))).isoformat() if day else value
    return resolved


def _send_ids(steps: Any) -> list[str]:
    found: list[str] = []
    for step in steps:
        if hasattr(step, "template"):
            found.append(step.id)
        for attribute in ("then", "otherwise", "on_event", "on_timeout"):
            found += _send_ids(getattr(step, attribute, ()))
        for branch in (*getattr(step, "variants", ()), *getattr(step, "cases", ())):
            found += _send_ids(branch.steps)
    return found


@dataclass(frozen=True)
class Target:
    """A running local runtime on skipped time: its API, its AWS endpoint, the clock a client moves."""

    api_url: str
    client: Callable[[str], Any]  # boto3 client factory for the runtime's AWS endpoint
    advance: Callable[[datetime], dict[str, Any]]  # moves the runtime's clock to a moment, answers once nothing runs
    sample_properties: dict[str, Any]


def run_all(cases: list[Case], sample_properties: dict[str, Any], start: datetime = DEFAULT_START) -> list[Outcome]:
    """Starts one `parcours local --skip-time` at `start` and runs every case there; outcomes in the cases' order."""
    from infra.localprocess import RunningLocal

    phones: dict[str, Case] = {}
    for case in cases:
        phone = case.contact.get("phone")
        if phone is None:
            continue
        other = phones.setdefault(normalise_phone(phone) or str(phone), case)
        if other is not case:
            raise JourneyFileError(
                f"{case.file}, case {case.name!r}: phone {phone} is also the phone of {other.file}, case "
                f"{other.name!r}; cases run side by side and their SMS are told apart by number: give each its own"
            )
    local = RunningLocal(time_scale=None, secret=uuid.uuid4().hex, start_at=start.isoformat())
    local.start()
    try:
        return run(
            cases, Target(local.api_url, local.client, lambda moment: local.advance(to=moment), sample_properties)
        )
    finally:
        local.stop()


def run(cases: list[Case], target: Target) -> list[Outcome]:
    """Plays every case on one timeline from the runtime's now: each event at its moment (time advanced to it),
    each case checked a day after its last event or expected send. A case expected to end `completed` or
    `converted` whose execution still waits then is checked again when that wait ends (so an expectation is met
    at the moment it can be, never at some arbitrary horizon)."""
    outcomes = [Outcome(case) for case in cases]
    ids = _physical(target)
    start = _simulated_now(target)
    plays = [_Play(outcome, start) for outcome in outcomes]
    SEND, CHECK = 0, 1  # at one moment, a case's events before any check
    actions = [
        (start + timedelta(seconds=at), SEND, n, index)
        for n, play in enumerate(plays)
        for index, (at, _, _) in enumerate(play.outcome.case.events)
    ]
    actions += [(start + timedelta(seconds=play.outcome.case.horizon()), CHECK, n, 0) for n, play in enumerate(plays)]
    heapq.heapify(actions)
    while actions:
        moment, kind, n, index = heapq.heappop(actions)
        answer = target.advance(moment)
        if kind == SEND:
            plays[n].send(target, ids, index)
            continue
        later = plays[n].waiting_until(target, ids, answer.get("pending") or [])
        if later is not None and index < 50:
            heapq.heappush(actions, (later, CHECK, n, index + 1))
        else:
            plays[n].check(target, ids)
    return outcomes


def _physical(target: Target) -> dict[str, str]:
    resources = target.client("cloudformation").describe_stack_resources(StackName="parcours")["StackResources"]
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources if r.get("LogicalResourceId")}


class _Play:
    """One case on the shared timeline: its contact, the events sent at their moments, what it expects."""

    def __init__(self, outcome: Outcome, start: datetime) -> None:
        case = outcome.case
        self.outcome, self.start = outcome, start  # J+0 and the instant every offset counts from
        self.email = f"journey.{uuid.uuid4().hex[:12]}@example.com"
        self.phone = normalise_phone(case.contact.get("phone"))  # as a source maps it: not E.164 is dropped
        self.attributes = resolve_attributes(dict(case.contact.get("attributes") or {}), start) or None

    def send(self, target: Target, ids: dict[str, str], index: int) -> None:
        case = self.outcome.case
        if self.outcome.problems:
            return  # a case that broke sends nothing more
        try:
            at, event_type, properties = case.events[index]
            self._send(target, ids, event_type, properties, self.start + timedelta(seconds=at))
        except Exception as error:  # a broken case is reported, the others go on
            self.outcome.problems.append(f"could not run: {type(error).__name__}: {error}")

    def _send(self, target: Target, ids: dict[str, str], event_type: str, properties: Any, moment: datetime) -> None:
        case = self.outcome.case
        consent = case.contact.get("consent", "granted")
        sms_consent = case.contact.get("sms_consent", "granted")
        now = moment.isoformat()
        facts = ContactFacts(
            email=self.email,
            first_name=case.contact.get("first_name"),
            last_name=case.contact.get("last_name"),
            locale=case.contact.get("locale"),
            email_consent=None if consent == "none" else ConsentFacts(consent, "single_opt_in", now, "journey"),
            phone=self.phone,
            sms_consent=(
                None
                if sms_consent == "none" or self.phone is None
                else ConsentFacts(sms_consent, "single_opt_in", now, "journey")
            ),
            attributes=self.attributes,
        )
        event = Event(
            event_id=f"journey#{uuid.uuid4().hex}",
            type=event_type,
            source="journey",
            topic="journey",
            occurred_at=now,
            received_at=now,
            contact=facts,
            properties=properties if properties is not None else dict(target.sample_properties),
        )
        group, dedup = group_and_dedup_ids(event)
        target.client("sqs").send_message(
            QueueUrl=ids["EventsQueue"], MessageBody=event.to_json(), MessageGroupId=group, MessageDeduplicationId=dedup
        )

    def waiting_until(self, target: Target, ids: dict[str, str], pending: list[dict[str, Any]]) -> datetime | None:
        """When the case's execution next moves, if it is expected to end and still waits for a moment."""
        case = self.outcome.case
        if case.ends not in ("completed", "converted") or self.outcome.problems:
            return None
        execution = _latest_execution(target, ids, self.email, case.scenario)
        due = [p["due"] for p in pending if execution is not None and p.get("execution") == execution and p["due"]]
        return datetime.fromisoformat(due[0]) if due else None

    def check(self, target: Target, ids: dict[str, str]) -> None:
        case, problems = self.outcome.case, self.outcome.problems
        try:
            if not problems:
                self._check(target, ids)
        except Exception as error:
            problems.append(f"could not check: {type(error).__name__}: {error}")
        if problems:
            problems.insert(0, f"{case.file}: {case.name}")

    def _check(self, target: Target, ids: dict[str, str]) -> None:
        case, problems, email = self.outcome.case, self.outcome.problems, self.email
        first = self.start + timedelta(seconds=case.events[0][0])  # offsets count from the first event
        messages = [m for m in _outbox(target, email, self.phone) if m["scenario"] == case.scenario]
        sent = {m["step"]: datetime.fromisoformat(m["sent_at"]) for m in messages}
        for expected in case.sent:
            expected_at = expected.offset(first, self.start, case.timezone())
            found = [step for step in expected.steps if step in sent]
            named = " or ".join(expected.steps)
            if not found:
                problems.append(f"expected {named} to be sent; sent: {', '.join(sent) or 'nothing'}")
            elif len(found) > 1:
                problems.append(f"expected one of {named} to be sent (a split's variants), sent: {', '.join(found)}")
            elif expected_at is not None:
                offset = (sent[found[0]] - first).total_seconds()
                if offset != expected_at:
                    problems.append(f"{found[0]} sent at {_human(offset)}, expected at {_human(expected_at)}")
        for step in case.not_sent:
            if step in sent:
                problems.append(f"{step} was sent, expected not to be")
        if case.ends is not None:
            ending = _ending(target, ids, email, case.scenario)
            if ending.partition(" ")[0] != case.ends:
                problems.append(f"expected the contact to end {case.ends}, it is {ending}")
        if case.consent is not None:
            state = _consent(target, ids, email)
            if state != case.consent:
                problems.append(f"expected marketing consent {case.consent}, it is {state}")
        if case.lists is not None:
            lists = _lists(target, ids, email)
            if lists != case.lists:
                problems.append(f"expected lists {list(case.lists)}, the contact is in {list(lists)}")


def _simulated_now(target: Target) -> datetime:
    """The runtime's simulated now, read from the clock the handlers use (same epoch and scale)."""
    with urllib.request.urlopen(f"{target.api_url}/_local/clock", timeout=10) as response:
        return datetime.fromisoformat(json.loads(response.read())["now"])


def _outbox(target: Target, email: str, phone: str | None) -> list[dict[str, Any]]:
    """The case's messages: emails to its address, SMS to its number."""
    with urllib.request.urlopen(f"{target.api_url}/_local/outbox", timeout=10) as response:
        return [m for m in json.loads(response.read()) if (m["channel"], m["to"]) in (("email", email), ("sms", phone))]


def _enrolment(target: Target, ids: dict[str, str], email: str, scenario: str) -> dict[str, Any] | None:
    """The contact's latest enrolment in the scenario, as stored, or None."""
    contact_id = _contact_id(target, ids, email)
    if contact_id is None:
        return None
    items = target.client("dynamodb").query(
        TableName=ids["EnrolmentsTable"],
        KeyConditionExpression="contact_id = :c AND begins_with(#k, :s)",
        ExpressionAttributeNames={"#k": "key"},
        ExpressionAttributeValues={":c": contact_id, ":s": {"S": f"{scenario}#"}},
    )["Items"]
    return items[-1] if items else None


def _latest_execution(target: Target, ids: dict[str, str], email: str, scenario: str) -> str | None:
    enrolment = _enrolment(target, ids, email, scenario)
    return None if enrolment is None else str(enrolment["execution_arn"]["S"])


def _ending(target: Target, ids: dict[str, str], email: str, scenario: str) -> str:
    enrolment = _enrolment(target, ids, email, scenario)
    if enrolment is None:
        return "not_entered"
    if enrolment["status"]["S"] == "converted":
        return "converted"
    sfn = target.client("stepfunctions")
    execution = enrolment["execution_arn"]["S"]
    status = sfn.describe_execution(executionArn=execution)["status"]
    ending = {"SUCCEEDED": "completed", "RUNNING": "running"}.get(status, str(status).lower())
    if ending in ("running", "failed"):  # say where it is or where it broke, to tell a slow run from a bug
        events = sfn.get_execution_history(executionArn=execution, reverseOrder=True)["events"]
        entered = next((e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e), "")
        ending += f" (last state entered: {entered})" if entered else ""
    return ending


def _contact_id(target: Target, ids: dict[str, str], email: str) -> dict[str, str] | None:
    """The contact's id (as DynamoDB returns it) found by its email's identity, or None."""
    identity = target.client("dynamodb").get_item(
        TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}}
    )
    return identity["Item"]["contact_id"] if "Item" in identity else None


def _contact(target: Target, ids: dict[str, str], email: str) -> dict[str, Any]:
    """The contact's item as stored (consistent read), or {} when no contact has that email."""
    contact_id = _contact_id(target, ids, email)
    if contact_id is None:
        return {}
    item: dict[str, Any] = target.client("dynamodb").get_item(
        TableName=ids["ContactsTable"], Key={"contact_id": contact_id}, ConsistentRead=True
    )["Item"]
    return item


def _lists(target: Target, ids: dict[str, str], email: str) -> tuple[str, ...]:
    return tuple(sorted(_contact(target, ids, email).get("lists", {}).get("SS", [])))


def _consent(target: Target, ids: dict[str, str], email: str) -> str | None:
    state = _contact(target, ids, email).get("email_consent", {}).get("M", {}).get("state", {}).get("S")
    return str(state) if state is not None else None


def _human(seconds: float) -> str:
    delta = timedelta(seconds=round(seconds))
    hours, rest = divmod(delta.seconds, 3600)
    return f"{delta.days}d {hours}h{rest // 60:02d}" if delta.days else f"{hours}h{rest // 60:02d}"
