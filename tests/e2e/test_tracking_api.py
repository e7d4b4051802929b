"""The Segment-compatible tracking API over real HTTP against `parcours local`, read back from the tables."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import post, post_tracking, tracking_headers
from tests.conftest import WRITE_KEY
from tests.e2e.test_shopify_webhook import at_a_whole_second, sent_at, unique_email

Seen = list[tuple[str, str | None]]


def contact_of(local: RunningLocal, identity: str) -> str | None:
    table = local.physical_ids()["IdentitiesTable"]
    item = local.client("dynamodb").get_item(TableName=table, Key={"identity": {"S": identity}}).get("Item")
    return item["contact_id"]["S"] if item else None


def history(local: RunningLocal, owner: str | None) -> Seen:
    """(type, what) of the owner's recorded events, oldest first: what is a page's path or a track's name. parcours'
    own events (the scoring's score.changed, stage.changed, ...: tests/e2e/test_scoring.py) are left out."""
    if owner is None:
        return []
    items = local.client("dynamodb").query(
        TableName=local.physical_ids()["EventsTable"],
        KeyConditionExpression="contact_id = :k",
        ExpressionAttributeValues={":k": {"S": owner}},
    )["Items"]
    seen: Seen = []
    for item in items:
        if item["source"]["S"] == "parcours":
            continue
        properties = json.loads(item["properties"]["S"]) if "properties" in item else {}
        seen.append((item["type"]["S"], properties.get("path") or properties.get("event")))
    return seen


def contact_history(local: RunningLocal, identity: str) -> Seen:
    """The history of the contact known by `identity`. A message is processed before the API answers it (moto hands
    the events queue's message to the process function within SendMessage): no waiting for it."""
    return history(local, contact_of(local, identity))


def test_identify_then_track_and_page_are_the_contacts_history(local: RunningLocal) -> None:
    email, user = unique_email("tracked"), uuid.uuid4().hex
    identify = {"userId": user, "traits": {"email": email, "firstName": "Camille", "planType": "pro"}}
    answer = post_tracking(local.api_url, "/v1/identify", identify, WRITE_KEY)
    assert answer.status == 200
    assert answer.body["success"] is True
    assert len(answer.body["event_ids"]) == 1
    assert contact_of(local, f"segment#{user}")

    track = {"userId": user, "event": "Ebook Downloaded", "properties": {"title": "Guide"}}
    page = {"userId": user, "name": "Pricing", "properties": {"url": "https://boutique.example/en/pricing"}}
    assert post_tracking(local.api_url, "/v1/track", track, WRITE_KEY).status == 200
    assert post_tracking(local.api_url, "/v1/page", page, WRITE_KEY).status == 200

    seen = contact_history(local, f"email#{email}")
    assert sorted(seen, key=str) == [
        ("contact.updated", None),
        ("page.viewed", "/en/pricing"),
        ("track", "Ebook Downloaded"),
    ]
    assert contact_of(local, f"email#{email}") == contact_of(local, f"segment#{user}")


def test_anonymous_page_views_join_the_contact_on_identify(local: RunningLocal) -> None:
    # Given a visitor who browses before saying who they are
    visitor, email = uuid.uuid4().hex, unique_email("visitor")
    for path in ("/en/home", "/en/pricing"):
        answer = post_tracking(
            local.api_url, "/v1/page", {"anonymousId": visitor, "properties": {"path": path}}, WRITE_KEY
        )
        assert answer.status == 200
        local.advance(seconds=1)  # a second apart: a history orders the events of one instant by their random ids
    pages = history(local, f"_anonymous#{visitor}")
    assert pages == [("page.viewed", "/en/home"), ("page.viewed", "/en/pricing")]
    assert contact_of(local, f"anonymous#{visitor}") is None  # no contact for an anonymous visitor

    # When they identify with their email
    identify = {"anonymousId": visitor, "traits": {"email": email}}
    assert post_tracking(local.api_url, "/v1/identify", identify, WRITE_KEY).status == 200

    # Then the page views are in the contact's history, and the next one goes straight there
    seen = contact_history(local, f"email#{email}")
    assert sorted(seen, key=str) == [
        ("contact.updated", None),
        ("page.viewed", "/en/home"),
        ("page.viewed", "/en/pricing"),
    ]
    assert contact_of(local, f"anonymous#{visitor}") == contact_of(local, f"email#{email}")
    later = {"anonymousId": visitor, "properties": {"path": "/en/checkout"}}
    assert post_tracking(local.api_url, "/v1/page", later, WRITE_KEY).status == 200
    assert ("page.viewed", "/en/checkout") in contact_history(local, f"email#{email}")


def test_a_batch_is_accepted_whole(local: RunningLocal) -> None:
    user, email = uuid.uuid4().hex, unique_email("batch")
    body = {
        "batch": [
            {"type": "identify", "userId": user, "traits": {"email": email}, "messageId": uuid.uuid4().hex},
            {"type": "track", "userId": user, "event": "Form Submitted", "properties": {"form": "contact"}},
            {"type": "page", "userId": user, "properties": {"path": "/contact"}},
            {"type": "screen", "userId": user, "name": "Home"},  # not acted on: recorded, no effect
        ]
    }
    answer = post_tracking(local.api_url, "/v1/batch", body, WRITE_KEY)
    assert answer.status == 200
    assert answer.body["success"] is True
    assert len(set(answer.body["event_ids"])) == 4
    seen = contact_history(local, f"segment#{user}")
    assert sorted(seen, key=str) == [
        ("contact.updated", None),
        ("form.submitted", "Form Submitted"),
        ("page.viewed", "/contact"),
    ]


def test_a_batch_with_a_bad_message_is_400_naming_it_and_nothing_is_recorded(local: RunningLocal) -> None:
    user = uuid.uuid4().hex
    body = {"batch": [{"type": "identify", "userId": user}, {"userId": user, "event": "Ebook Downloaded"}]}
    answer = post_tracking(local.api_url, "/v1/batch", body, WRITE_KEY)
    assert answer.status == 400
    assert "batch[1].type" in answer.body["error"]
    post_tracking(local.api_url, "/v1/identify", {"userId": "after-" + user}, WRITE_KEY)  # a later message...
    assert contact_of(local, f"segment#after-{user}")  # ...is processed
    assert contact_of(local, f"segment#{user}") is None  # ...and the refused batch never was


@pytest.mark.parametrize("write_key", [None, "", "not-the-write-key"], ids=["missing", "empty", "wrong"])
def test_a_missing_or_wrong_write_key_is_401_and_nothing_is_recorded(
    local: RunningLocal, write_key: str | None
) -> None:
    user = uuid.uuid4().hex
    answer = post_tracking(local.api_url, "/v1/identify", {"userId": user}, write_key)
    assert answer.status == 401
    assert "write key" in answer.body["error"]
    post_tracking(local.api_url, "/v1/identify", {"userId": "after-" + user}, WRITE_KEY)
    assert contact_of(local, f"segment#after-{user}")
    assert contact_of(local, f"segment#{user}") is None


def test_malformed_json_is_400(local: RunningLocal) -> None:
    answer = post_tracking(local.api_url, "/v1/track", b'{"userId": "u1", "event":', WRITE_KEY)
    assert answer.status == 400
    assert "not JSON" in answer.body["error"]


def test_a_message_without_user_or_anonymous_id_is_400(local: RunningLocal) -> None:
    answer = post_tracking(local.api_url, "/v1/track", {"event": "Ebook Downloaded"}, WRITE_KEY)
    assert answer.status == 400
    assert "userId or anonymousId" in answer.body["error"]


def test_a_body_over_256_kib_is_413(local: RunningLocal) -> None:
    body = {"userId": "u1", "event": "Big", "properties": {"padding": "x" * (256 * 1024)}}
    assert post_tracking(local.api_url, "/v1/track", body, WRITE_KEY).status == 413


def test_a_body_not_declared_as_json_is_415(local: RunningLocal) -> None:
    headers = {**tracking_headers(WRITE_KEY), "Content-Type": "text/plain"}
    answer = post(f"{local.api_url}/v1/track", b'{"userId": "u1", "event": "x"}', headers)
    assert answer.status == 415
    assert "application/json" in answer.body["error"]


def test_a_redelivered_message_is_processed_once(local: RunningLocal) -> None:
    user, message_id = uuid.uuid4().hex, uuid.uuid4().hex
    track = {"userId": user, "event": "Ebook Downloaded", "messageId": message_id}
    first = post_tracking(local.api_url, "/v1/track", track, WRITE_KEY)
    again = post_tracking(local.api_url, "/v1/track", {**track, "sentAt": "2026-11-24T10:00:00Z"}, WRITE_KEY)
    assert (first.status, again.status) == (200, 200)
    assert first.body["event_ids"] == again.body["event_ids"] == [f"segment#{message_id}"]
    # A later message of the same user, processed after both, shows the redelivery had its chance
    post_tracking(local.api_url, "/v1/page", {"userId": user, "properties": {"path": "/done"}}, WRITE_KEY)
    seen = contact_history(local, f"segment#{user}")
    assert ("page.viewed", "/done") in seen
    assert seen.count(("track", "Ebook Downloaded")) == 1


def test_a_tracked_signup_with_consent_starts_the_welcome_series(local: RunningLocal) -> None:
    # Given a visitor who signs up on the site and ticks the newsletter box (the documented consent shape)
    user, email = uuid.uuid4().hex, unique_email("signup")
    signed_up = at_a_whole_second(local)
    consent = {"state": "subscribed", "opt_in_level": "single_opt_in"}
    identify = {"userId": user, "traits": {"email": email, "firstName": "Camille", "email_marketing_consent": consent}}
    batch = {"batch": [{"type": "identify", **identify}, {"type": "track", "userId": user, "event": "Signed Up"}]}
    assert post_tracking(local.api_url, "/v1/batch", batch, WRITE_KEY).status == 200

    # Then the welcome series starts for them: its first email goes out at once
    local.advance(seconds=0)
    [welcome] = local.outbox(to=email)
    assert (welcome["scenario"], welcome["step"], sent_at(welcome)) == ("welcome", "e1-welcome", signed_up)
    assert welcome["subject"] == "Bienvenue, Camille !"


def test_a_tracked_signup_without_consent_gets_no_marketing_email(local: RunningLocal) -> None:
    user, email = uuid.uuid4().hex, unique_email("noconsent")
    identify = {"userId": user, "traits": {"email": email, "newsletter": True}}  # not the consent shape
    batch = {"batch": [{"type": "identify", **identify}, {"type": "track", "userId": user, "event": "Signed Up"}]}
    assert post_tracking(local.api_url, "/v1/batch", batch, WRITE_KEY).status == 200
    assert len(contact_history(local, f"segment#{user}")) == 2  # the contact is kept...
    local.advance(seconds=86400)  # a day, in which the welcome series would have sent its first email
    assert local.outbox(to=email) == []  # ...but not mailed


def test_a_gzip_batch_is_accepted(local: RunningLocal) -> None:
    user = uuid.uuid4().hex
    body = json.dumps({"batch": [{"type": "track", "userId": user, "event": "Compressed"}]}).encode()
    headers = {**tracking_headers(WRITE_KEY), "Content-Encoding": "gzip"}
    answer = post(f"{local.api_url}/v1/batch", gzip.compress(body), headers)
    assert answer.status == 200
    assert contact_history(local, f"segment#{user}") == [("track", "Compressed")]
