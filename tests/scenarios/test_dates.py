"""Date-triggered scenarios and date waits, executed by moto's Step Functions interpreter in `parcours local`:
the leading wait of a date trigger lands on 10:00 where the contact lives; a date wait goes to the day plus its
offset; the daily schedule, run on demand, starts the birthday scenario."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import datetime, time, timedelta
from time import monotonic, sleep
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.localprocess import RunningLocal
from shared import dates, moments
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, entered_states, finished, start


def simulated_now(local: RunningLocal) -> datetime:
    with urllib.request.urlopen(f"{local.api_url}/_local/clock", timeout=10) as response:
        return datetime.fromisoformat(json.loads(response.read())["now"])


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_the_birthday_waits_for_ten_oclock_on_the_day_where_the_contact_lives(
    local: RunningLocal, store: Tables, timezone: str
) -> None:
    zone = ZoneInfo(timezone)
    tomorrow = (simulated_now(local).astimezone(zone) + timedelta(days=1)).date()
    email = f"birthday.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"timezone": timezone, "birthday": "1990-01-01"})
    trigger: dict[str, Any] = {
        "type": "date.reached",
        "event_id": f"test#{uuid.uuid4().hex}",
        "properties": {"attribute": "birthday", "date": tomorrow.isoformat(), "time": "10:00", "offset_days": 0},
    }
    execution = start(local, local.physical_ids()["BirthdayStateMachine"], contact_id, trigger=trigger)
    result = finished(local, execution, seconds=30)  # at most two simulated days: 4 s at a day in 2 s
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Plan on-the-day",
        "Wait until 10:00 on the trigger's day (on-the-day)",
        "Send email e1-birthday-offer",
        "Done",
    ]
    until = datetime.fromisoformat(json.loads(result["output"])["plan"]["until"])
    assert until == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=zone)
    [message] = local.outbox(to=email)
    assert message["step"] == "e1-birthday-offer"
    assert abs((datetime.fromisoformat(message["sent_at"]) - until).total_seconds()) < local.time_scale * 1.0


@pytest.fixture(scope="module")
def dated(local: RunningLocal) -> str:
    return deploy_fixture(local, "dated")


@pytest.mark.parametrize(("days_ahead", "waits"), [(8, True), (3, False)])
def test_a_date_wait_goes_to_a_week_before_the_date_then_unsubscribes(
    local: RunningLocal, store: Tables, dated: str, days_ahead: int, waits: bool
) -> None:
    zone = ZoneInfo("Europe/Paris")
    renewal = (simulated_now(local).astimezone(zone) + timedelta(days=days_ahead)).date()
    email = f"dated.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"renewal_date": renewal.isoformat()})
    execution = start(local, dated, contact_id)
    result = finished(local, execution, seconds=30)
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Plan before-renewal",
        "Wait until 10:00 on renewal_date -7d (before-renewal)",
        "Send email reminder",
        "Unsubscribe from email (goodbye)",
        "Done",
    ]
    plan = json.loads(result["output"])["plan"]
    if waits:  # a day ahead: 10:00 on the renewal date minus 7 days
        week_before = renewal - timedelta(days=7)
        assert datetime.fromisoformat(plan["until"]) == datetime(
            week_before.year, week_before.month, week_before.day, 10, tzinfo=zone
        )
        assert plan["seconds"] > 0
    else:  # already past: at once
        assert plan["seconds"] == 0
    contact = store.contacts.get(contact_id, consistent_read=True)
    assert (contact.email_consent.state, contact.email_consent.source) == ("denied", "scenario:dated/goodbye")
    assert [m["step"] for m in local.outbox(to=email)] == ["reminder"]


def test_the_daily_schedule_run_now_starts_the_birthdays_of_the_day(local: RunningLocal, store: Tables) -> None:
    """POST /_local/schedule plays EventBridge Scheduler now: it reads the dates index and queues date.reached."""
    tokyo = ZoneInfo("Asia/Tokyo")
    # A birthday at 10:00 in Tokyo two days ahead; the run is asked for once that moment is 12 to 13 simulated hours
    # away, so that it lies in the run's 24 hours however long (up to a real second) the request takes to arrive.
    moment = moments.next_moment(simulated_now(local) + timedelta(days=2), time(10), (), tokyo)
    birthday = moments.anniversary(moment.date(), 1992)  # 1992 is a leap year: any day exists
    email = f"schedule.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"timezone": "Asia/Tokyo", "birthday": birthday.isoformat()})
    contact = store.contacts.get(contact_id)
    dates.keep_keys(contact, dates.reindex(contact, store))  # as contacts.upsert does when it creates one
    contact.save()
    deadline = monotonic() + 30
    while moment - simulated_now(local) > timedelta(hours=13) and monotonic() < deadline:
        sleep(0.02)  # 15 simulated minutes
    request = urllib.request.Request(f"{local.api_url}/_local/schedule", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        [report] = json.loads(response.read())
    assert report["date_events"] >= 1
    sfn = local.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=local.physical_ids()["BirthdayStateMachine"])["executions"]
    started = [e for e in executions if contact_id in e["name"]]
    assert len(started) == 1
    described = sfn.describe_execution(executionArn=started[0]["executionArn"])
    properties = json.loads(described["input"])["trigger"]["properties"]
    assert properties["date"] == moment.date().isoformat()
    assert datetime.fromisoformat(properties["moment"]) == moment
