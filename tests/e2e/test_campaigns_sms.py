"""SMS campaigns over the local runtime (skipped time): created with POST /v1/campaigns (`sms:` in place of `email:`),
sent to the list's members who agreed to marketing SMS, each SMS naming the sender and ending with the stop mention;
started on a Sunday, they go out on Monday at 08:00 Paris time, the first moment the French rule allows."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, signed
from shared.journeys.pacing import french_holidays
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_campaigns import campaign
from tests.e2e.test_sending_habits import sms_customer
from tests.e2e.test_shopify_webhook import sent_at, unique_email

PARIS = ZoneInfo("Europe/Paris")
STOP = "STOP : répondez STOP"  # the template's SmsStopText default


def texter(local: RunningLocal, members_of: str, sms_consent: bool = True) -> str:
    """A Shopify customer with a French mobile number (who agreed to marketing SMS, or only to emails), on a list;
    answers the number."""
    return customer(local, members_of, sms_consent)[1]


def customer(local: RunningLocal, members_of: str, sms_consent: bool = True) -> tuple[str, str]:
    """The same customer's email and number."""
    email, phone = unique_email("sms"), f"+336{uuid.uuid4().int % 10**7:07d}1"
    body: dict[str, Any] = json.loads(sms_customer(email, phone))
    if not sms_consent:
        body["sms_marketing_consent"] = {"state": "not_subscribed", "opt_in_level": None}
    assert post_shopify(
        local.api_url, "customers/create", json.dumps(body).encode(), SHOPIFY_SECRET, uuid.uuid4().hex
    ).status in (200, 202)
    local.advance(seconds=0)
    added = signed("POST", f"{local.api_url}/v1/lists/{members_of}/add", json.dumps({"email": email}).encode())
    assert added.status == 200, added.body
    return email, phone


def campaign_sms(local: RunningLocal, campaign_id: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["scenario"] == f"campaign.{campaign_id}" and m["channel"] == "sms"]


def next_day(local: RunningLocal, weekday: int, hour: int) -> datetime:
    """The next such weekday at that hour in Paris, neither it nor the day after a public holiday."""
    day: date = local.now().astimezone(PARIS).date() + timedelta(days=1)
    while day.weekday() != weekday or {day, day + timedelta(days=1)} & french_holidays(day.year):
        day += timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=PARIS)


def send(local: RunningLocal, document: dict[str, Any]) -> None:
    created = campaign(local, document)
    assert created.status == 201, created.body
    started = signed("POST", f"{local.api_url}/v1/campaigns/{document['id']}/send", b"")
    assert started.status == 202, started.body


def test_an_sms_campaign_texts_the_two_who_agreed_with_the_stop_mention_and_counts_the_third(
    local: RunningLocal,
) -> None:
    # Given, on a Tuesday morning in Paris, three customers with mobile numbers on a list, one who agreed to emails
    # only
    local.advance(to=next_day(local, 1, 10))
    members = f"sms-{uuid.uuid4().hex[:8]}"
    agreed = [texter(local, members), texter(local, members)]
    emails_only = texter(local, members, sms_consent=False)

    # When an SMS campaign to the list is created and sent
    campaign_id = f"flash-{uuid.uuid4().hex[:8]}"
    send(
        local,
        {"id": campaign_id, "sms": "promotions/black-friday", "topic": "promotions", "audience": {"list": members}},
    )
    local.advance(seconds=60)

    # Then the two who agreed get one SMS each, naming the sender and saying how to stop; the third gets none
    sent = campaign_sms(local, campaign_id)
    assert sorted(m["to"] for m in sent) == sorted(agreed)
    for message in sent:
        assert "Black Friday" in message["text"]
        assert message["text"].endswith(f"\n{STOP}")
        assert message["segments"] == 1
    assert local.outbox(to=emails_only) == []

    # And the status says so: 2 sent, the third skipped for want of SMS consent, done
    status = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}")
    assert status.status == 200, status.body
    assert (status.body["channel"], status.body["sms"]) == ("sms", "promotions/black-friday")
    assert (status.body["audience"], status.body["sent"], status.body["failed"]) == (3, 2, 0)
    assert status.body["skipped"] == {"total": 1, "no_consent": 1}
    assert (status.body["status"], status.body["progress"]) == ("sent", 1.0)

    # And sending it again is refused and sends nothing more
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 409
    local.advance(seconds=60)
    assert len(campaign_sms(local, campaign_id)) == 2


def test_an_sms_campaign_started_on_a_sunday_goes_out_on_monday_at_8_paris_time(local: RunningLocal) -> None:
    # Given a customer who agreed to marketing SMS, on a list, on a Sunday at 11:00 in Paris
    sunday = next_day(local, 6, 11)
    monday_8 = datetime.combine(sunday.date() + timedelta(days=1), time(8), tzinfo=PARIS)
    local.advance(to=sunday)
    members = f"sun-{uuid.uuid4().hex[:8]}"
    phone = texter(local, members)

    # When an SMS campaign to the list is sent on that Sunday
    campaign_id = f"sunday-{uuid.uuid4().hex[:8]}"
    send(
        local,
        {"id": campaign_id, "sms": "promotions/black-friday", "topic": "promotions", "audience": {"list": members}},
    )

    # Then nothing goes on Sunday nor before 08:00 on Monday, and the status shows it waiting, not skipped
    local.advance(to=monday_8 - timedelta(seconds=1))
    assert campaign_sms(local, campaign_id) == []
    waiting = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}").body
    assert (waiting["status"], waiting["audience"], waiting["done"], waiting["skipped"]) == (
        "sending",
        1,
        0,
        {"total": 0},
    )

    # And it goes out on Monday at 08:00 Paris time
    local.advance(to=monday_8 + timedelta(minutes=1))
    [message] = campaign_sms(local, campaign_id)
    assert message["to"] == phone
    assert sent_at(message) == monday_8
    assert signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}").body["sent"] == 1


def test_an_sms_campaign_previews_as_the_text_a_contact_would_get_and_tests_go_to_given_numbers_only(
    local: RunningLocal, local_credentials: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given an SMS campaign to a list of one customer with a mobile number, on a Tuesday morning in Paris
    local.advance(to=next_day(local, 1, 10))
    members = f"smspv-{uuid.uuid4().hex[:8]}"
    email, phone = customer(local, members)
    campaign_id = f"smspv-{uuid.uuid4().hex[:8]}"
    document = {"id": campaign_id, "sms": "promotions/black-friday", "topic": "promotions"}
    assert campaign(local, {**document, "audience": {"list": members}}).status == 201
    api = ["--api", local.api_url, "--region", "eu-west-3"]

    # When it is previewed for the customer
    assert cli.main(["campaigns", "preview", campaign_id, "--contact", email, "--output", str(tmp_path), *api]) == 0

    # Then the text she would get is in a file, with the stop mention, and its size is said; no HTML is written
    said = capsys.readouterr().out
    assert f"SMS to {phone}: GSM-7, 1 segment(s)" in said
    text = (tmp_path / f"{campaign_id}.preview.txt").read_text(encoding="utf-8")
    assert "Black Friday" in text
    assert text.endswith(f"{STOP}\n")
    assert not (tmp_path / f"{campaign_id}.preview.html").exists()

    # When a test goes to a colleague's number
    test = signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/test", b'{"to": ["+33 7 00 00 00 01"]}')

    # Then it went to that number only, marked as a test, and the campaign is still an unsent draft
    assert test.status == 200, test.body
    [sent] = test.body["sent"]
    assert sent["to"] == "+33700000001"
    assert sent["text"].startswith("[TEST] ")
    assert sent["text"].endswith(STOP)
    assert campaign_sms(local, campaign_id) == []
    status = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}").body
    assert (status["status"], status["sent"]) == ("draft", 0)
    refused = signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/test", b'{"to": "07 00 00 00 01"}')
    assert (refused.status, refused.body["field"]) == (400, "to[0]")
