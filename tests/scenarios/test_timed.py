"""wait_until: the act function plans the seconds to the contact's local time, the Wait state waits them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from infra import validation
from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start


@pytest.fixture(scope="module")
def timed(local: RunningLocal) -> str:
    return deploy_fixture(local, "timed")


def next_weekday_ten_oclock(now: datetime, tz: ZoneInfo) -> datetime:
    """The first 10:00 in `tz`, Monday to Friday, not before `now`."""
    today = now.astimezone(tz).date()
    days = (today + timedelta(days=n) for n in range(8))
    return min(
        moment for day in days if day.weekday() < 5 and (moment := datetime.combine(day, time(10), tzinfo=tz)) >= now
    )


@pytest.mark.parametrize("timezone", [None, "America/Montreal"])
def test_the_email_waits_for_ten_oclock_on_a_weekday_where_the_contact_lives(
    local: RunningLocal, store: Tables, timed: str, timezone: str | None
) -> None:
    # Given a contact living in Montreal, or nowhere said (the deployment's Paris)
    email = f"timed.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"timezone": timezone} if timezone else {})
    began = local.now()
    due = next_weekday_ten_oclock(began, ZoneInfo(timezone or "Europe/Paris"))

    # When they enter the scenario, and time runs on to their next weekday at ten
    execution = start(local, timed, contact_id, trigger=validation.SAMPLE_CONTEXT["trigger"])
    local.advance(to=due)

    # Then the execution planned that moment, waited for it, and the email went out then
    result = described(local, execution)
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Plan morning",
        "Wait until 10:00 mon,tue,wed,thu,fri (morning)",
        "Send email hello",
    ]
    assert datetime.fromisoformat(json.loads(result["output"])["plan"]["until"]) == due
    [message] = local.outbox(to=email)
    assert datetime.fromisoformat(message["sent_at"]) == due
