"""Date-triggered scenarios and date waits, executed by moto's Step Functions interpreter in `parcours local`:
the leading wait of a date trigger lands on 10:00 where the contact lives; a date wait goes to the day plus its
offset; the daily schedule, run on demand, starts the birthday scenario."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.localprocess import RunningLocal
from shared.people import dates, moments
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_the_birthday_waits_for_ten_oclock_on_the_day_where_the_contact_lives(
    local: RunningLocal, store: Tables, timezone: str
) -> None:
    # Given a contact whose birthday is tomorrow where they live
    zone = ZoneInfo(timezone)
    tomorrow = (local.now().astimezone(zone) + timedelta(days=1)).date()
    ten = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=zone)
    email = f"birthday.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"timezone": timezone, "birthday": "1990-01-01"})
    trigger: dict[str, Any] = {
        "type": "date.reached",
        "event_id": f"test#{uuid.uuid4().hex}",
        "properties": {"attribute": "birthday", "date": tomorrow.isoformat(), "time": "10:00", "offset_days": 0},
    }
    # When the birthday scenario starts for it, and time goes to a second before 10:00 there
    execution = start(local, local.physical_ids()["BirthdayStateMachine"], contact_id, trigger=trigger)
    local.advance(to=ten - timedelta(seconds=1))
    # Then nothing has gone out yet ...
    assert described(local, execution)["status"] == "RUNNING"
    assert local.outbox(to=email) == []
    # ... and the offer goes out at 10:00 on the day, to the second
    local.advance(to=ten)
    result = described(local, execution)
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Plan on-the-day",
        "Wait until 10:00 on the trigger's day (on-the-day)",
        "Send email e1-birthday-offer",
    ]
    assert datetime.fromisoformat(json.loads(result["output"])["plan"]["until"]) == ten
    [message] = local.outbox(to=email)
    assert message["step"] == "e1-birthday-offer"
    assert datetime.fromisoformat(message["sent_at"]) == ten


@pytest.fixture(scope="module")
def dated(local: RunningLocal) -> str:
    return deploy_fixture(local, "dated")


@pytest.mark.parametrize(("days_ahead", "waits"), [(8, True), (3, False)])
def test_a_date_wait_goes_to_a_week_before_the_date_then_unsubscribes(
    local: RunningLocal, store: Tables, dated: str, days_ahead: int, waits: bool
) -> None:
    # Given a contact whose renewal is 8 (or 3) days ahead in Paris, the deployment's time zone
    zone = ZoneInfo("Europe/Paris")
    started = local.now()
    renewal = (started.astimezone(zone) + timedelta(days=days_ahead)).date()
    week_before = renewal - timedelta(days=7)
    # 10:00 on the renewal date minus 7 days (tomorrow), else at once: that day is already past
    expected = datetime(week_before.year, week_before.month, week_before.day, 10, tzinfo=zone) if waits else started
    email = f"dated.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"renewal_date": renewal.isoformat()})
    # When the scenario runs until that moment
    execution = start(local, dated, contact_id)
    local.advance(to=expected)
    # Then the reminder went out then, to the second, and the contact was unsubscribed
    result = described(local, execution)
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Plan before-renewal",
        "Wait until 10:00 on renewal_date -7d (before-renewal)",
        "Send email reminder",
        "Unsubscribe from email (goodbye)",
    ]
    plan = json.loads(result["output"])["plan"]
    if waits:
        assert datetime.fromisoformat(plan["until"]) == expected
        assert plan["seconds"] > 0
    else:
        assert plan["seconds"] == 0
    contact = store.contacts.get(contact_id, consistent_read=True)
    assert (contact.email_consent.state, contact.email_consent.source) == ("denied", "scenario:dated/goodbye")
    [message] = local.outbox(to=email)
    assert (message["step"], datetime.fromisoformat(message["sent_at"])) == ("reminder", expected)


def test_the_daily_schedule_run_now_starts_the_birthdays_of_the_day(local: RunningLocal, store: Tables) -> None:
    """POST /_local/schedule plays EventBridge Scheduler now: it reads the dates index and queues date.reached."""
    # Given a contact whose next 10:00 birthday in Tokyo falls in the 24 hours from now (the run's window)
    tokyo = ZoneInfo("Asia/Tokyo")
    now = local.now()
    moment = moments.next_moment(now, time(10), (), tokyo)
    assert now <= moment < now + timedelta(days=1)
    birthday = moments.anniversary(moment.date(), 1992)  # 1992 is a leap year: any day exists
    email = f"schedule.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"timezone": "Asia/Tokyo", "birthday": birthday.isoformat()})
    contact = store.contacts.get(contact_id)
    dates.keep_keys(contact, dates.reindex(contact, store))  # as contacts.upsert does when it creates one
    contact.save()
    # When the daily run is asked for now (the clock stands still: no scheduled run fires in between)
    request = urllib.request.Request(f"{local.api_url}/_local/schedule", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        [report] = json.loads(response.read())
    local.advance(seconds=0)  # the date.reached events it queued are processed
    # Then it queued the birthday, which started the birthday scenario once, for that moment
    assert report["date_events"] >= 1
    sfn = local.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=local.physical_ids()["BirthdayStateMachine"])["executions"]
    started = [e for e in executions if contact_id in e["name"]]
    assert len(started) == 1
    properties = json.loads(described(local, started[0]["executionArn"])["input"])["trigger"]["properties"]
    assert properties["date"] == moment.date().isoformat()
    assert datetime.fromisoformat(properties["moment"]) == moment
