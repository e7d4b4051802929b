"""The tracking API's public browser key (README, "The browser key"): one test per row of its permissions table.

What it may not say is dropped with the reason kept in the event (`ignored`); the request still answers 200, so a
web page never shows an error. The write key (server-side, secret) keeps every right."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import CONTACT_UPDATED, PAGE_VIEWED, TRACK, UNRECOGNISED, Event
from shared.sources import ingestion, tracking

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WRITE_KEY, BROWSER_KEY = "wk_live_secret", "pk_live_public_key"
CONSENT = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-24T08:59:00Z"}


def receive(call: str, body: dict[str, Any], key: str = BROWSER_KEY) -> list[Event]:
    headers = {
        "content-type": "application/json",
        "authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
    }
    return tracking.receive(call, json.dumps(body).encode(), headers, WRITE_KEY, NOW, BROWSER_KEY)


def test_which_key_a_request_carries() -> None:
    assert tracking.authorised("Basic " + base64.b64encode(b"pk_live_public_key:").decode(), WRITE_KEY, BROWSER_KEY)
    assert [
        tracking.authorised(f"Basic {base64.b64encode(k.encode()).decode()}", WRITE_KEY, BROWSER_KEY)
        for k in (
            f"{WRITE_KEY}:",
            f"{BROWSER_KEY}:",
            "other:",
        )
    ] == [tracking.SERVER, tracking.BROWSER, None]
    # Without a browser key configured, only the write key opens the API.
    with pytest.raises(ingestion.Rejected) as refused:
        tracking.receive(
            "page",
            b'{"anonymousId": "v1"}',
            {
                "content-type": "application/json",
                "authorization": "Basic " + base64.b64encode(f"{BROWSER_KEY}:".encode()).decode(),
            },
            WRITE_KEY,
            NOW,
        )
    assert refused.value.status == 401


def test_it_reports_page_views_and_behaviour() -> None:
    [page] = receive("page", {"anonymousId": "v1", "properties": {"path": "/pricing"}})
    [track] = receive("track", {"userId": "u1", "event": "Ebook Downloaded", "properties": {"title": "Guide"}})
    assert (page.type, page.properties["path"]) == (PAGE_VIEWED, "/pricing")
    assert (track.type, track.properties["event"]) == (TRACK, "Ebook Downloaded")
    assert "ignored" not in track.properties


def test_it_sets_profile_fields_and_custom_attributes() -> None:
    [event] = receive("identify", {"userId": "u1", "traits": {"firstName": "Camille", "planType": "pro"}})
    assert event.type == CONTACT_UPDATED
    assert event.contact is not None
    assert (event.contact.first_name, event.contact.attributes) == ("Camille", {"plan_type": "pro"})
    assert "ignored" not in event.properties


def test_it_never_changes_consent() -> None:
    traits = {"email": "a@example.com", "email_marketing_consent": CONSENT, "sms_marketing_consent": CONSENT}
    [event] = receive("identify", {"userId": "u1", "traits": traits})
    assert event.contact is not None
    assert (event.contact.email_consent, event.contact.sms_consent) == (None, None)
    assert event.properties["ignored"] == [
        "traits.email_marketing_consent: the browser key never changes consent",
        "traits.sms_marketing_consent: the browser key never changes consent",
    ]
    # The write key's consent goes through, with its own time: it may undo an unsubscribe (README, "Consent rules").
    [server] = receive("identify", {"userId": "u1", "traits": traits}, key=WRITE_KEY)
    assert server.contact is not None
    assert server.contact.email_consent is not None
    assert (server.contact.email_consent.state, server.contact.email_consent.explicit) == ("granted", True)


def test_its_email_and_phone_never_change_a_known_contacts() -> None:
    """The facts carry the mark; shared.people.contacts keeps a contact's own email and phone against them."""
    [event] = receive(
        "identify", {"userId": "u1", "traits": {"email": "attacker@example.com", "phone": "+33612345678"}}
    )
    assert event.contact is not None
    assert event.contact.identity_trusted is False
    [server] = receive("identify", {"userId": "u1", "traits": {"email": "new@example.com"}}, key=WRITE_KEY)
    assert server.contact is not None
    assert server.contact.identity_trusted is True


@pytest.mark.parametrize("name", ["Order Completed", "Checkout Started", "Order Refunded", "Order Cancelled"])
def test_it_never_sends_commerce_facts(name: str) -> None:
    body = {"userId": "u1", "event": name, "properties": {"total": 999, "products": [{"name": "Fake"}]}}
    [event] = receive("track", body)
    # Kept for the record (a source's own bucket), acting on no one: no contact, nothing a scenario triggers on.
    assert (event.type, event.contact) == (UNRECOGNISED, None)
    assert event.properties == {
        "call": "track",
        "event": name,
        "ignored": [f"event: {name} comes from a signed webhook or the server key, not the browser key"],
    }


@pytest.mark.parametrize(
    "trait", ["score", "lifecycleStage", "qualified_at", "orders_count", "total_spent", "newsletter_consent"]
)
def test_it_never_sets_what_parcours_keeps(trait: str) -> None:
    [event] = receive("identify", {"userId": "u1", "traits": {trait: 100, "planType": "pro"}})
    assert event.contact is not None
    assert event.contact.attributes == {"plan_type": "pro"}
    assert event.properties["ignored"] == [
        f"traits.{tracking._snake(trait)}: parcours keeps it; the browser key never sets it"
    ]


def test_in_a_batch_each_message_says_where_it_was_dropped() -> None:
    body = {
        "batch": [
            {"type": "page", "anonymousId": "v1", "properties": {"path": "/"}},
            {"type": "identify", "userId": "u1", "traits": {"email_marketing_consent": CONSENT}},
        ]
    }
    page, identify = receive("batch", body)
    assert "ignored" not in page.properties
    assert identify.properties["ignored"] == [
        "batch[1].traits.email_marketing_consent: the browser key never changes consent"
    ]


def test_a_consent_dated_in_the_future_is_400_naming_it() -> None:
    future = {**CONSENT, "consent_updated_at": "2099-01-01T00:00:00Z"}
    with pytest.raises(ingestion.Rejected) as refused:
        receive("identify", {"userId": "u1", "traits": {"email_marketing_consent": future}}, key=WRITE_KEY)
    assert refused.value.status == 400
    assert refused.value.reason == "contact.email_consent.at: must be after 2000-01-01 and at most a day after now"
    # An hour ahead: refused too (kept, it would outrank the person's unsubscribe made in that hour)
    hour = {**CONSENT, "consent_updated_at": "2026-11-24T10:00:00Z"}
    with pytest.raises(ingestion.Rejected) as refused:
        receive("identify", {"userId": "u1", "traits": {"email_marketing_consent": hour}}, key=WRITE_KEY)
    assert refused.value.reason.startswith("contact.email_consent.at: must not be in the future, at most 5 minutes")
    # A few minutes ahead is a clock's drift, not a forgery: accepted.
    drift = {**CONSENT, "consent_updated_at": "2026-11-24T09:04:00Z"}
    assert receive("identify", {"userId": "u1", "traits": {"email_marketing_consent": drift}}, key=WRITE_KEY)


def test_what_it_may_not_send_is_never_an_error_the_page_would_show() -> None:
    """A malformed consent block or traits over the limits: from the write key a 400 naming them; from the browser
    key, dropped with their reason (analytics.js re-sends whatever the site once set)."""
    traits: dict[str, Any] = {"email_marketing_consent": "yes please", "huge": "x" * 5000}
    traits.update({f"trait{i}": i for i in range(60)})
    [event] = receive("identify", {"userId": "u1", "traits": traits})
    assert event.contact is not None
    assert event.contact.email_consent is None
    assert event.contact.attributes is not None
    assert len(event.contact.attributes) == 50
    ignored = event.properties["ignored"]
    assert ignored[0] == "traits.email_marketing_consent: the browser key never changes consent"
    assert any(reason.startswith("traits.huge: ") for reason in ignored)
    assert any(reason.startswith("traits.trait59: at most 50 custom attributes") for reason in ignored)
    with pytest.raises(ingestion.Rejected) as refused:
        receive("identify", {"userId": "u1", "traits": traits}, key=WRITE_KEY)
    assert refused.value.status == 400
