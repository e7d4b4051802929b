"""Campaigns over the local runtime: created with POST /v1/campaigns, sent to a list once per person under the
scenarios' rules (an unsubscribed person skipped, the RFC 8058 headers on each email), at 10:00 in each person's
own time zone, and cancelled before what has not gone goes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import Answer, post_shopify, post_tracking, signed
from tests.conftest import SHOPIFY_SECRET, WRITE_KEY
from tests.e2e.test_preferences import link
from tests.e2e.test_shopify_webhook import customer, unique_email
from tests.e2e.test_unsubscribe import fetch


def subscriber(local: RunningLocal, prefix: str, members_of: str, timezone: str | None = None) -> str:
    """A subscribed Shopify customer on a static list (and in a time zone)."""
    email = unique_email(prefix)
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    if timezone is not None:  # the site tells where they live
        identify = {"userId": email, "traits": {"email": email, "timezone": timezone}}
        assert post_tracking(local.api_url, "/v1/identify", identify, WRITE_KEY).status == 200
    local.advance(seconds=0)
    added = signed("POST", f"{local.api_url}/v1/lists/{members_of}/add", json.dumps({"email": email}).encode())
    assert added.status == 200, added.body
    return email


def campaign(local: RunningLocal, document: dict[str, Any]) -> Answer:
    return signed("POST", f"{local.api_url}/v1/campaigns", json.dumps(document).encode())


def campaign_mail(local: RunningLocal, campaign_id: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["scenario"] == f"campaign.{campaign_id}"]


def test_a_campaign_to_a_list_mails_each_consenting_member_once_and_counts_the_unsubscribed(
    local: RunningLocal,
) -> None:
    # Given three subscribers on a list, one of whom unsubscribed with the one-click link of their welcome email
    members = f"nl-{uuid.uuid4().hex[:8]}"
    staying = [subscriber(local, "stays", members), subscriber(local, "stays", members)]
    leaving = subscriber(local, "leaves", members)
    [welcome] = local.outbox(to=leaving)
    url = re.match(r"<([^>]+)>", welcome["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert fetch(url, b"List-Unsubscribe=One-Click")[0] == 200

    # When a campaign to the list is created and sent
    campaign_id = f"promo-{uuid.uuid4().hex[:8]}"
    created = campaign(
        local,
        {"id": campaign_id, "email": "promotions/black-friday", "topic": "promotions", "audience": {"list": members}},
    )
    assert created.status == 201, created.body
    started = signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"")
    assert started.status == 202, started.body
    local.advance(seconds=60)

    # Then the two others get it, with the RFC 8058 headers, the links and the postal address
    sent = campaign_mail(local, campaign_id)
    assert sorted(m["to"] for m in sent) == sorted(staying)
    for message in sent:
        assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["headers"]["List-Unsubscribe"].startswith("<http")
        assert "/preferences?t=" in message["html"]
        assert "12 rue des Artisans" in message["html"]  # the runtime's PostalAddress, in the layout's footer
        assert message["subject"].endswith("aujourd'hui seulement")

    # And sending it again sends nothing more
    again = signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"")
    assert again.status == 409, again.body
    local.advance(seconds=60)
    assert len(campaign_mail(local, campaign_id)) == 2

    # And the status says so: 2 sent, the unsubscribed one skipped as such, done
    status = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}")
    assert status.status == 200, status.body
    assert status.body["sent"] == 2
    assert status.body["audience"] == 3
    assert status.body["skipped"] == {"total": 1, "unsubscribed": 1}
    assert status.body["failed"] == 0
    assert status.body["progress"] == 1.0
    assert status.body["status"] == "sent"


def test_a_campaign_at_ten_local_time_reaches_paris_and_tokyo_each_at_their_own_ten(local: RunningLocal) -> None:
    # Given a subscriber in Paris and one in Tokyo on a list
    members = f"tz-{uuid.uuid4().hex[:8]}"
    paris = subscriber(local, "paris", members, "Europe/Paris")
    tokyo = subscriber(local, "tokyo", members, "Asia/Tokyo")
    day = (local.now() + timedelta(days=2)).date()

    # When a campaign at 10:00 local time on that day is sent now
    campaign_id = f"morning-{uuid.uuid4().hex[:8]}"
    document = {
        "id": campaign_id,
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": members},
        "when": {"local_time": "10:00", "date": day.isoformat()},
    }
    assert campaign(local, document).status == 201
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 202
    local.advance(seconds=60)
    assert campaign_mail(local, campaign_id) == []  # nobody's 10:00 yet

    # Then each gets it at 10:00 where they live
    local.advance(to=datetime.combine(day, datetime.min.time(), ZoneInfo("Europe/Paris")) + timedelta(hours=12))
    sent = {m["to"]: datetime.fromisoformat(m["sent_at"]) for m in campaign_mail(local, campaign_id)}
    assert set(sent) == {paris, tokyo}
    assert sent[tokyo].astimezone(ZoneInfo("Asia/Tokyo")).replace(tzinfo=None) == datetime.combine(
        day, datetime.min.time()
    ) + timedelta(hours=10)
    assert sent[paris].astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None) == datetime.combine(
        day, datetime.min.time()
    ) + timedelta(hours=10)


def test_a_cancelled_campaign_sends_nothing_more(local: RunningLocal) -> None:
    # Given a campaign to a list, due tomorrow at an instant
    members = f"cx-{uuid.uuid4().hex[:8]}"
    subscriber(local, "cancelled", members)
    campaign_id = f"cancel-{uuid.uuid4().hex[:8]}"
    due = local.now() + timedelta(days=1)
    document = {
        "id": campaign_id,
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": members},
        "when": {"at": due.isoformat()},
    }
    assert campaign(local, document).status == 201
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 202

    # When it is cancelled before its moment
    cancelled = signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/cancel", b"")
    assert cancelled.status == 200, cancelled.body
    assert cancelled.body["status"] == "cancelled"

    # Then nothing goes out at the moment, and a second cancel or a send is refused
    local.advance(to=due + timedelta(minutes=30))
    assert campaign_mail(local, campaign_id) == []
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/cancel", b"").status == 409
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 409


def test_a_campaign_document_is_refused_naming_the_field(local: RunningLocal) -> None:
    base = {"id": "bad-one", "email": "promotions/black-friday", "topic": "promotions", "audience": {"list": "nope"}}
    cases = [
        ({**base, "colour": "red"}, "colour"),
        ({k: v for k, v in base.items() if k != "id"}, "id"),
        ({**base, "email": "promotions/none"}, "email"),
        (base, "audience.list"),
        ({**base, "audience": {"list": "newsletter"}, "topic": "sport"}, "topic"),
        ({**base, "audience": {"list": "newsletter"}, "when": {"local_time": "25:00"}}, "when.local_time"),
    ]
    for document, field in cases:
        answer = campaign(local, document)
        assert answer.status == 400, (document, answer.body)
        assert answer.body["field"] == field, answer.body
    assert signed("GET", f"{local.api_url}/v1/campaigns/never-made").status == 404
    unsigned = fetch_unsigned(f"{local.api_url}/v1/campaigns/never-made")
    assert unsigned == 403


def fetch_unsigned(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_parcours_campaigns_sends_a_file_and_shows_its_status(
    local: RunningLocal, local_credentials: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a subscriber on a list and a campaign file for it
    members = f"cli-{uuid.uuid4().hex[:8]}"
    email = subscriber(local, "cli", members)
    campaign_id = f"cli-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{campaign_id}.yaml"
    path.write_text(
        f"id: {campaign_id}\nemail: promotions/black-friday\ntopic: promotions\naudience:\n  list: {members}\n"
    )
    api = ["--api", local.api_url, "--region", "eu-west-3"]

    # When `parcours campaigns send` is given the file
    assert cli.main(["campaigns", "send", campaign_id, "--file", str(path), *api]) == 0
    assert f"campaign {campaign_id} created" in capsys.readouterr().out
    local.advance(seconds=60)

    # Then the email went, and `status` says so
    assert [m["to"] for m in campaign_mail(local, campaign_id)] == [email]
    assert cli.main(["campaigns", "status", campaign_id, *api]) == 0
    shown = capsys.readouterr().out
    assert "sent       1" in shown
    assert "progress   100.0 %" in shown
    # And sending it again is refused, naming why
    assert cli.main(["campaigns", "send", campaign_id, "--file", str(path), *api]) == 1
    assert "goes out once" in capsys.readouterr().err


def test_a_preview_renders_for_one_contact_and_a_test_goes_only_to_the_given_addresses(
    local: RunningLocal, local_credentials: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a campaign to a list of one subscriber
    members = f"pv-{uuid.uuid4().hex[:8]}"
    email = subscriber(local, "preview", members)
    campaign_id = f"pv-{uuid.uuid4().hex[:8]}"
    document = {"id": campaign_id, "email": "promotions/black-friday", "topic": "promotions"}
    assert campaign(local, {**document, "audience": {"list": members}}).status == 201
    api = ["--api", local.api_url, "--region", "eu-west-3"]

    # When it is previewed for the subscriber
    assert cli.main(["campaigns", "preview", campaign_id, "--contact", email, "--output", str(tmp_path), *api]) == 0
    assert "aujourd'hui seulement" in capsys.readouterr().out

    # Then its HTML and text are in files, with the postal address, and its links unsubscribe nobody
    html = (tmp_path / f"{campaign_id}.preview.html").read_text()
    text = (tmp_path / f"{campaign_id}.preview.txt").read_text()
    assert "12 rue des Artisans" in html
    assert text.startswith("Subject: ")
    assert "unsubscribe?t=preview" in html
    assert fetch(f"{local.api_url}/unsubscribe?t=preview", b"List-Unsubscribe=One-Click")[0] == 403

    # When a test goes to two colleagues
    assert (
        cli.main(["campaigns", "test", campaign_id, "--to", "ana@agency.example", "--to", "bo@agency.example", *api])
        == 0
    )
    capsys.readouterr()

    # Then only they get it, marked as a test, and the campaign is still an unsent draft
    mail = campaign_mail(local, campaign_id)
    assert sorted(m["to"] for m in mail) == ["ana@agency.example", "bo@agency.example"]
    assert all(m["subject"].startswith("[TEST] ") and m["step"] == "test" for m in mail)
    status = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}").body
    assert (status["status"], status["sent"]) == ("draft", 0)
    assert (
        signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/preview", b'{"email": "no@x.example"}').status
        == 404
    )
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/test", b'{"to": "not an address"}').status == 400


def test_a_member_who_turned_the_topic_off_in_the_preference_centre_is_skipped_as_such(local: RunningLocal) -> None:
    # Given two subscribers on a list, one of whom turned promotions off in the preference centre of their welcome
    members = f"tp-{uuid.uuid4().hex[:8]}"
    keeps = subscriber(local, "keeps", members)
    picky = subscriber(local, "picky", members)
    [welcome] = local.outbox(to=picky)
    preferences = link(welcome, "/preferences").replace("&amp;", "&")
    kept = b"do=save&topic=newsletter&topic=cart-reminders&topic=tips&frequency=all"
    assert fetch(preferences, kept)[0] == 200

    # When a promotions campaign goes to the list
    campaign_id = f"topic-{uuid.uuid4().hex[:8]}"
    document = {"id": campaign_id, "email": "promotions/black-friday", "topic": "promotions"}
    assert campaign(local, {**document, "audience": {"list": members}}).status == 201
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 202
    local.advance(seconds=60)

    # Then only the other gets it, and the status names why
    assert [m["to"] for m in campaign_mail(local, campaign_id)] == [keeps]
    status = signed("GET", f"{local.api_url}/v1/campaigns/{campaign_id}").body
    assert (status["sent"], status["skipped"]) == (1, {"total": 1, "unsubscribed_topic": 1})
