"""The daily run, the dates index and the engagement day it reads, and the Tasks of date waits and unsubscribe."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra import samtemplate
from shared import clients
from shared.clock import Clock
from shared.events import ConsentFacts, ContactFacts, Event
from shared.journeys import dispatch, processing, schedule
from shared.messages import actions
from shared.people import contacts
from shared.settings import ConfigurationError, Settings
from shared.storage import Tables, tables
from tests.conftest import drain_events

RUN = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)  # the daily run of Tuesday 24 November 2026
BIRTHDAY = dispatch.Entry(
    "birthday", "date.reached", "email", "always", None, {"attribute": "birthday", "offset_days": 0, "time": "10:00"}
)
SIGNUP = dispatch.Entry(
    "signup", "date.reached", "email", "always", None, {"attribute": "created_at", "offset_days": 0, "time": "09:00"}
)
INACTIVE = dispatch.Entry("re-engagement", "contact.inactive", "email", "always", None, {"days": 90})


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})


def queued(settings: Settings) -> list[dict[str, Any]]:
    """The events queued since the last look, each once, by id."""
    found = {event["event_id"]: event for event in drain_events(settings.queue_url)}
    return sorted(found.values(), key=lambda event: event["event_id"])


def person(t: Tables, email: str, at: datetime, **attributes: Any) -> str:
    consent = ConsentFacts("granted", "single_opt_in", at.isoformat(), "test")
    contact = contacts.upsert(ContactFacts(email=email, email_consent=consent, attributes=attributes), t, at)
    assert contact is not None
    return str(contact.contact_id)


class Calls:
    """Every DynamoDB request, with how many items each answer held."""

    def __init__(self, requests: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        self.requests = requests

    @property
    def made(self) -> list[tuple[str, int]]:
        return [
            (operation, len(answer.get("Items", [])) + ("Item" in answer)) for operation, _, answer in self.requests
        ]

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.made]

    def items(self) -> int:
        return sum(count for _, count in self.made)


@pytest.fixture
def calls(dynamodb_requests: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> Calls:
    return Calls(dynamodb_requests)


@dataclass(frozen=True)
class Stopped(Clock):
    """The one clock, stopped at an instant."""

    at: datetime = RUN

    def now(self) -> datetime:
        return self.at


# ---- the indexes the run reads ------------------------------------------------------------------------------------
def test_a_contact_is_indexed_by_its_dates_and_its_signup_is_its_first_engagement(settings: Settings) -> None:
    t = tables(settings)
    signup = datetime(2025, 3, 10, 15, tzinfo=UTC)
    contact_id = person(t, "lou@example.com", signup, birthday="1992-02-29", timezone="Asia/Tokyo", plan="pro")
    entries = {(item.key, item.date, item.timezone) for item in t.dates.scan()}
    assert entries == {
        ("birthday#02-29", "1992-02-29", "Asia/Tokyo"),
        ("created_at#03-10", "2025-03-10", "Asia/Tokyo"),
    }
    contact = t.contacts.get(contact_id)
    assert (contact.engaged_on, contact.last_engaged_at) == ("2025-03-10", signup)
    assert contact.attributes.as_dict() == {"birthday": "1992-02-29", "timezone": "Asia/Tokyo", "plan": "pro"}


def test_a_source_changing_a_birthday_moves_its_entry_and_keeps_other_attributes(settings: Settings) -> None:
    t = tables(settings)
    at = datetime(2025, 3, 10, tzinfo=UTC)
    contact_id = person(t, "lou@example.com", at, birthday="1990-05-01", plan="pro")
    contacts.upsert(ContactFacts(email="lou@example.com", attributes={"birthday": "1990-06-02"}), t, at)
    assert {item.key for item in t.dates.scan()} == {"birthday#06-02", "created_at#03-10"}
    assert t.contacts.get(contact_id).attributes.as_dict() == {"birthday": "1990-06-02", "plan": "pro"}
    # names a source may not set are left out: profile fields, counters, malformed names
    contacts.upsert(ContactFacts(email="lou@example.com", attributes={"email": "x", "score": 99, "Bad Name": 1}), t, at)
    assert t.contacts.get(contact_id).attributes.as_dict() == {"birthday": "1990-06-02", "plan": "pro"}


def test_set_attribute_keeps_the_dates_index(settings: Settings) -> None:
    t = tables(settings)
    contact_id = person(t, "lou@example.com", datetime(2025, 3, 10, tzinfo=UTC), birthday="1990-05-01")
    step = {"scenario": "s", "step": "x", "contact_id": contact_id, "execution": "arn:x"}
    actions.set_attribute({**step, "name": "renewal_date", "value": "2027-01-15"}, settings)
    actions.set_attribute({**step, "name": "birthday", "value": "unknown"}, settings)
    actions.set_attribute({**step, "name": "timezone", "value": "America/Montreal"}, settings)
    entries = {(item.key, item.timezone) for item in t.dates.scan()}
    assert entries == {("renewal_date#01-15", "America/Montreal"), ("created_at#03-10", "America/Montreal")}
    assert set(t.contacts.get(contact_id).date_keys) == {"renewal_date#01-15", "created_at#03-10"}


def test_an_open_or_a_click_moves_the_engagement_day_never_back(settings: Settings) -> None:
    t = tables(settings)
    contact_id = person(t, "lou@example.com", datetime(2026, 1, 5, tzinfo=UTC))

    def engagement(kind: str, at: datetime) -> None:
        event = Event(
            f"ses#{kind}#{at.isoformat()}",
            kind,
            "ses",
            "feedback",
            at.isoformat(),
            at.isoformat(),
            ContactFacts(email="lou@example.com"),
        )
        processing.process(event, settings, Stopped(at=at))

    engagement("email.opened", datetime(2026, 3, 1, 8, tzinfo=UTC))
    assert t.contacts.get(contact_id).engaged_on == "2026-03-01"
    engagement("email.clicked", datetime(2026, 4, 2, 8, tzinfo=UTC))
    assert t.contacts.get(contact_id).engaged_on == "2026-04-02"
    engagement("email.opened", datetime(2026, 3, 20, 8, tzinfo=UTC))  # an older open, delivered late
    assert t.contacts.get(contact_id).engaged_on == "2026-04-02"


# ---- the daily run ------------------------------------------------------------------------------------------------
def test_the_run_reads_only_the_contacts_whose_day_it_is(settings: Settings, calls: Calls) -> None:
    """200 contacts, birthdays spread over the year and signups over 200 days: the run queries a few index keys,
    reads the handful of matching items, never scans and never reads a contact."""
    t = tables(settings)
    rng = random.Random(7)  # noqa: S311 (test data)
    far = [date(1990, 1, 1) + timedelta(days=rng.randrange(300)) for _ in range(200)]  # never near 24 November
    for index, birthday in enumerate(far):
        signup = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=index % 150)  # 90 days ago: 26 August
        person(t, f"p{index}@example.com", signup, birthday=birthday.isoformat())
    paris = person(t, "paris@example.com", datetime(2026, 5, 1, tzinfo=UTC), birthday="1990-11-24")
    may = datetime(2026, 5, 1, tzinfo=UTC)
    tokyo = person(t, "tokyo@example.com", may, birthday="1985-11-24", timezone="Asia/Tokyo")
    # Los Angeles' 25 November at 10:00 is 18:00 UTC on the 25th: read (a candidate) but tomorrow's run's.
    person(t, "la@example.com", may, birthday="1985-11-25", timezone="America/Los_Angeles")
    silent = person(t, "silent@example.com", datetime(2026, 8, 26, 17, tzinfo=UTC))
    calls.requests.clear()

    report = schedule.run(settings, RUN, RUN, (BIRTHDAY, INACTIVE))

    assert "Scan" not in calls.operations()
    assert set(calls.operations()) == {"Query"}
    assert len(calls.operations()) == 4  # birthday on 23, 24 and 25 November, and the engaged_on day 90 days ago
    events = queued(settings)
    assert {(e["type"], e["contact"]["contact_id"]) for e in events} == {
        ("date.reached", paris),
        ("date.reached", tokyo),  # 10:00 in Tokyo on the 24th is 01:00 UTC: this run's
        ("contact.inactive", silent),
    }
    assert len(events) == 3
    assert (report.date_events, report.inactive_events) == (2, 1)
    assert calls.items() == report.items_read == 4  # the three, and Los Angeles' candidate
    by_contact = {e["contact"]["contact_id"]: e["properties"] for e in events}
    assert by_contact[paris] == {
        "attribute": "birthday",
        "offset_days": 0,
        "time": "10:00",
        "date": "2026-11-24",
        "anniversary": "2026-11-24",
        "years": 36,
        "moment": "2026-11-24T09:00:00+00:00",
    }
    assert by_contact[silent] == {"days": 90, "since": "2026-08-26"}


def test_each_moment_is_emitted_by_one_run_whatever_the_time_zone(settings: Settings) -> None:
    t = tables(settings)
    signup = datetime(2026, 5, 1, tzinfo=UTC)
    ids = {
        zone: person(t, f"{zone.replace('/', '.').lower()}@example.com", signup, birthday="1990-11-25", timezone=zone)
        for zone in ("Asia/Tokyo", "Europe/Paris", "America/Los_Angeles", "Pacific/Kiritimati")
    }
    emitted: dict[str, list[tuple[str, str]]] = {}
    for day in (23, 24, 25, 26):
        run = datetime(2026, 11, day, 0, 5, tzinfo=UTC)
        schedule.run(settings, run, run, (BIRTHDAY,))
        for event in queued(settings):
            emitted.setdefault(event["contact"]["contact_id"], []).append(
                (run.date().isoformat(), event["properties"]["moment"])
            )
    assert emitted == {
        ids["Pacific/Kiritimati"]: [("2026-11-24", "2026-11-24T20:00:00+00:00")],  # UTC+14: the day before in UTC
        ids["Asia/Tokyo"]: [("2026-11-25", "2026-11-25T01:00:00+00:00")],  # ahead: an hour after the run
        ids["Europe/Paris"]: [("2026-11-25", "2026-11-25T09:00:00+00:00")],
        ids["America/Los_Angeles"]: [("2026-11-25", "2026-11-25T18:00:00+00:00")],  # behind: late in the UTC day
    }


def test_a_leap_day_birthday_is_celebrated_on_28_february_and_signups_from_the_first_year(settings: Settings) -> None:
    t = tables(settings)
    leap = person(t, "leap@example.com", datetime(2026, 1, 10, tzinfo=UTC), birthday="2000-02-29")
    old = person(t, "old@example.com", datetime(2025, 2, 28, 12, tzinfo=UTC))
    person(t, "new@example.com", datetime(2027, 2, 28, 12, tzinfo=UTC))  # signed up that very day: not yet a year
    run = datetime(2027, 2, 28, 0, 5, tzinfo=UTC)
    schedule.run(settings, run, run, (BIRTHDAY, SIGNUP))
    events = {
        (e["contact"]["contact_id"], e["properties"]["attribute"], e["properties"]["years"]) for e in queued(settings)
    }
    assert events == {(leap, "birthday", 27), (old, "created_at", 2)}


def test_a_retried_or_extra_run_queues_the_same_event_ids(settings: Settings) -> None:
    t = tables(settings)
    person(t, "paris@example.com", datetime(2026, 5, 1, tzinfo=UTC), birthday="1990-11-24")
    schedule.run(settings, RUN, RUN, (BIRTHDAY,))
    first = [e["event_id"] for e in queued(settings)]
    assert len(first) == 1
    schedule.run(settings, RUN, RUN + timedelta(hours=3), (BIRTHDAY,))  # the scheduler's retry: same scheduled time
    assert [e["event_id"] for e in queued(settings)] == first
    extra = RUN + timedelta(hours=2)  # a run on demand: its window overlaps; the event is the same one
    schedule.run(settings, extra, extra, (BIRTHDAY,))
    assert [e["event_id"] for e in queued(settings)] == first


def test_the_scheduler_time_picks_the_day_and_events_go_in_batches_of_ten(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tables(settings)
    for index in range(23):
        person(t, f"p{index}@example.com", datetime(2026, 5, 1, tzinfo=UTC), birthday="1990-11-24")
    sqs = boto3.client("sqs", region_name="eu-west-3")
    sent: list[int] = []

    class Counting:
        def send_message_batch(self, **kwargs: Any) -> Any:
            sent.append(len(kwargs["Entries"]))
            return sqs.send_message_batch(**kwargs)

    monkeypatch.setattr(clients, "sqs", lambda region: Counting())
    moment = schedule.scheduled_time({"time": "2026-11-24T00:05:00Z"}, datetime(2026, 11, 30, tzinfo=UTC))
    report = schedule.run(settings, moment, moment, (BIRTHDAY,))
    assert moment == RUN
    assert report.day == "2026-11-24"
    assert sent == [10, 10, 3]
    assert len(queued(settings)) == 23
    assert schedule.scheduled_time({}, RUN) == RUN
    assert schedule.scheduled_time({"time": "yesterday"}, RUN) == RUN


def schedule_queue(settings: Settings) -> Settings:
    url = boto3.client("sqs", region_name="eu-west-3").create_queue(QueueName="parcours-schedule")["QueueUrl"]
    return replace(settings, schedule_queue_url=url)


def pages_on(settings: Settings) -> list[str]:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    assert settings.schedule_queue_url is not None
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=settings.schedule_queue_url, MaxNumberOfMessages=10).get("Messages")
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=settings.schedule_queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_the_scheduled_run_plans_one_page_per_key_and_a_worker_reads_one_page_then_puts_the_next(
    settings: Settings, calls: Calls
) -> None:
    settings = schedule_queue(settings)
    t = tables(settings)
    for index in range(23):
        person(t, f"p{index}@example.com", datetime(2026, 5, 1, tzinfo=UTC), birthday="1990-11-24")
    calls.requests.clear()

    planned = schedule.fan_out(settings, RUN, RUN, (BIRTHDAY, INACTIVE))

    # planning peeks at each key, one item at most, and plans a page only for the keys holding something
    assert calls.made == [("Query", 0), ("Query", 1), ("Query", 0), ("Query", 0)]
    assert (planned.day, planned.pages) == ("2026-11-24", 1)
    plans = [schedule.Page.from_json(body) for body in pages_on(settings)]
    assert [(p.kind, p.key, p.cursor) for p in plans] == [("date", "birthday#11-24", None)]
    calls.requests.clear()
    [today] = [replace(p, limit=10) for p in plans if p.key == "birthday#11-24"]

    first = schedule.work_page(settings, today.to_json())
    assert (first.pages, first.items_read, first.date_events) == (1, 10, 10)
    assert calls.operations() == ["Query"]
    [following] = [schedule.Page.from_json(body) for body in pages_on(settings)]
    assert following.cursor is not None
    assert following.key == today.key
    ids = [e["event_id"] for e in queued(settings)]
    assert len(ids) == 10
    # SQS delivers the first page again (a standard queue may): the same ten event ids, which the FIFO queue drops
    # within its 5 minutes and the process function's idempotency after
    again = schedule.work_page(settings, today.to_json())
    assert again.date_events == 10
    assert [e["event_id"] for e in queued(settings)] == ids
    assert [schedule.Page.from_json(body) for body in pages_on(settings)] == [following]
    second = schedule.work_page(settings, following.to_json())
    third = [schedule.Page.from_json(body) for body in pages_on(settings)]
    assert second.date_events == 10
    assert len(third) == 1
    last = schedule.work_page(settings, third[0].to_json())
    assert last.date_events == 3
    assert pages_on(settings) == []
    assert len(queued(settings)) == 13
    assert calls.operations() == ["Query"] * 4  # a page, its redelivery, the two next ones


def test_a_message_that_is_not_a_page_fails_alone_and_the_run_needs_its_queue(settings: Settings) -> None:
    for body in ("not json", "[]", '{"kind": "weekly"}', '{"kind": "date", "key": "x", "colour": 1}'):
        with pytest.raises(schedule.InvalidPage, match="not a page of the daily run"):
            schedule.work_page(settings, body)
    with pytest.raises(ConfigurationError, match="PARCOURS_SCHEDULE_QUEUE_URL"):
        schedule.fan_out(settings, RUN, RUN, (BIRTHDAY,))


# ---- the Tasks: date waits and unsubscribe -----------------------------------------------------------------------
def plan(settings: Settings, contact_id: str, now: datetime, **fields: Any) -> dict[str, Any]:
    payload = {"action": "plan_wait", "scenario": "s", "step": "w", "contact_id": contact_id, "time": "10:00"}
    return actions.plan_wait({**payload, **fields}, settings, now)


def test_a_date_wait_goes_to_the_day_plus_the_offset_at_the_local_time(settings: Settings) -> None:
    t = tables(settings)
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    montreal = person(t, "m@example.com", now, renewal_date="2026-12-08", timezone="America/Montreal")
    answer = plan(settings, montreal, now, attribute="renewal_date", yearly=False, offset_days=-7)
    assert answer["until"] == "2026-12-01T10:00:00-05:00"
    assert answer["seconds"] == int((datetime(2026, 12, 1, 15, tzinfo=UTC) - now).total_seconds())
    # already past: continue at once
    late = plan(settings, montreal, now, attribute="renewal_date", yearly=False, offset_days=-30)
    assert late["seconds"] == 0
    # no such date on the contact: nothing to wait for
    assert plan(settings, montreal, now, attribute="contract_end", yearly=False, offset_days=0)["seconds"] == 0


def test_an_anniversary_wait_goes_to_the_next_one_and_a_trigger_day_to_that_day(settings: Settings) -> None:
    t = tables(settings)
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    tokyo = person(t, "t@example.com", datetime(2025, 1, 10, tzinfo=UTC), birthday="1992-02-29", timezone="Asia/Tokyo")
    assert plan(settings, tokyo, now, attribute="birthday", yearly=True)["until"] == "2027-02-28T10:00:00+09:00"
    assert plan(settings, tokyo, now, attribute="created_at", yearly=True)["until"] == "2027-01-10T10:00:00+09:00"
    assert plan(settings, tokyo, now, date="2026-11-25")["until"] == "2026-11-25T10:00:00+09:00"


def test_a_date_wait_past_the_executions_year_fails_the_step(settings: Settings) -> None:
    t = tables(settings)
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    far = person(t, "f@example.com", now, renewal_date="2028-01-15")
    with pytest.raises(actions.MomentBeyondExecution, match="a year or more after the execution started"):
        plan(settings, far, now, attribute="renewal_date", yearly=False, offset_days=0, started=now.isoformat())
    with pytest.raises(actions.InvalidAction, match="not YYYY-MM-DD"):
        plan(settings, far, now, date="soon")


def test_unsubscribe_withdraws_consent_with_the_scenario_as_its_proof_once(settings: Settings) -> None:
    t = tables(settings)
    contact_id = person(t, "lou@example.com", datetime(2026, 1, 5, tzinfo=UTC))
    payload = {"action": "unsubscribe", "scenario": "re-engagement", "step": "goodbye", "contact_id": contact_id}
    now = datetime(2026, 4, 20, 10, tzinfo=UTC)
    assert actions.unsubscribe({**payload, "channel": "email"}, settings, now) == {"status": "done"}
    contact = t.contacts.get(contact_id)
    assert (contact.email_consent.state, contact.email_consent.source) == ("denied", "scenario:re-engagement/goodbye")
    assert contact.email_consent.at == now
    assert [c.state for c in contact.consent_history] == ["granted", "denied"]
    again = actions.unsubscribe({**payload, "channel": "email"}, settings, now + timedelta(hours=1))
    assert again["status"] == "unchanged"
    assert len(t.contacts.get(contact_id).consent_history) == 2
    with pytest.raises(actions.InvalidAction, match="unknown channel"):
        actions.unsubscribe({**payload, "channel": "sms"}, settings, now)
    assert (
        actions.unsubscribe({**payload, "contact_id": "gone", "channel": "email"}, settings, now)["status"] == "skipped"
    )


def test_the_local_runtime_plays_the_templates_daily_schedule() -> None:
    template = samtemplate.load()
    assert samtemplate.daily_schedules(template) == [samtemplate.DailySchedule("ScheduleFunction", 0, 5)]
    daily = template["Resources"]["ScheduleFunction"]["Properties"]["Events"]["Daily"]["Properties"]
    daily["ScheduleExpression"] = "rate(1 hour)"
    with pytest.raises(ValueError, match=r"daily cron\(M H \* \* \? \*\) in UTC only"):
        samtemplate.daily_schedules(template)


def test_the_schedule_queue_outlasts_a_page_and_its_dead_letters_raise_an_alarm() -> None:
    resources = samtemplate.load()["Resources"]
    queue = resources["ScheduleQueue"]["Properties"]
    worker = resources["SchedulePagesFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]  # Lambda's advice: no page read twice at once
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
    assert worker["Events"]["Pages"]["Properties"]["Queue"] == {"Fn::GetAtt": ["ScheduleQueue", "Arn"]}
    alarm = resources["ScheduleDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}
    # the planner only reads (one item of each key): no write in its policies
    planner = resources["ScheduleFunction"]["Properties"]["Policies"]
    assert [name for policy in planner for name in policy if name.startswith("DynamoDB")] == ["DynamoDBReadPolicy"] * 2
