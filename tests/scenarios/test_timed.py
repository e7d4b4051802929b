"""wait_until: the act function plans the seconds to the contact's local time, the Wait state waits them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from infra import validation
from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, entered_states, finished, start


@pytest.fixture(scope="module")
def timed(local: RunningLocal) -> str:
    return deploy_fixture(local, "timed")


@pytest.mark.parametrize("timezone", [None, "America/Montreal"])
def test_the_email_waits_for_ten_oclock_on_a_weekday_where_the_contact_lives(
    local: RunningLocal, store: Tables, timed: str, timezone: str | None
) -> None:
    email = f"timed.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, attributes={"timezone": timezone} if timezone else {})
    execution = start(local, timed, contact_id, trigger=validation.SAMPLE_CONTEXT["trigger"])
    result = finished(local, execution, seconds=30)  # at most a week away: 14 s at a day in 2 s
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Plan morning",
        "Wait until 10:00 mon,tue,wed,thu,fri (morning)",
        "Send email hello",
        "Done",
    ]
    until = datetime.fromisoformat(json.loads(result["output"])["plan"]["until"])
    local_until = until.astimezone(ZoneInfo(timezone or "Europe/Paris"))
    assert (local_until.hour, local_until.minute) == (10, 0)
    assert local_until.weekday() < 5
    [message] = local.outbox(to=email)
    sent = datetime.fromisoformat(message["sent_at"])
    assert abs((sent - until).total_seconds()) < local.time_scale * 1.0  # within a real second of the plan
