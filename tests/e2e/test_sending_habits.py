"""Sending habits over HTTP against `parcours local`: a capped email waits for its moment, and a marketing SMS to
a French number outside Monday-Saturday 08:00-20:00 goes out at 08:00 on the next allowed day (simulated)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from infra.localprocess import RunningLocal
from infra.webhook_client import post_generic, post_shopify
from shared.journeys.pacing import french_holidays
from tests.conftest import GENERIC_SECRETS, SHOPIFY_SECRET, sample
from tests.e2e.test_cart_to_order import with_email
from tests.e2e.test_generic_webhook import signup
from tests.e2e.test_shopify_webhook import at_a_whole_second, sent_at, unique_email
from tests.e2e.test_unsubscribe import fetch

PARIS = ZoneInfo("Europe/Paris")


def test_an_email_held_back_by_the_contact_s_weekly_choice_goes_out_a_week_after_the_last(
    local: RunningLocal,
) -> None:
    # Given a site signup, welcomed at once (J+0)
    email = unique_email("weekly")
    signed_up = at_a_whole_second(local)
    assert post_generic(local.api_url, signup(email), GENERIC_SECRETS[0]).status == 202
    local.advance(seconds=0)  # the welcome series sends its first email
    [first] = local.outbox(to=email)
    assert (first["step"], sent_at(first)) == ("e1-welcome", signed_up)

    # When the person chooses one email a week in the preference centre linked from that email
    found = re.search(r'href="([^"]*/preferences\?t=[^"]+)"', first["html"])
    assert found is not None
    form = b"do=save&topic=newsletter&topic=promotions&topic=cart-reminders&topic=tips&frequency=weekly"
    assert fetch(found.group(1), form)[0] == 200

    # Then the series' J+2 email is held back, and goes out as soon as a week has passed since the first
    local.advance(to=signed_up + timedelta(days=7) - timedelta(seconds=1))
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    local.advance(seconds=1)
    [_, second] = local.outbox(to=email)
    assert (second["step"], sent_at(second)) == ("e2-value", signed_up + timedelta(days=7))


def sms_customer(email: str, phone: str) -> bytes:
    payload: dict[str, Any] = json.loads(sample("shopify/customers-create-sms.json"))
    payload.update({"email": email, "phone": phone, "id": uuid.uuid4().int % 10**13})
    return json.dumps(payload).encode()


def next_thursday_evening(now: datetime) -> datetime:
    """The first Thursday 19:00 in Paris after `now` whose Monday is not a public holiday: the cart's last SMS (H+50)
    then falls on Saturday night, outside the French SMS hours, and Monday 08:00 is the next opening."""
    thursday = now.astimezone(PARIS).date() + timedelta(days=1)
    while thursday.weekday() != 3 or (monday := thursday + timedelta(days=4)) in french_holidays(monday.year):
        thursday += timedelta(days=1)
    return datetime.combine(thursday, time(19), tzinfo=PARIS)


def test_a_marketing_sms_due_on_saturday_night_goes_out_on_monday_at_8(local: RunningLocal) -> None:
    thursday_evening = next_thursday_evening(local.now())
    monday_8 = datetime.combine(thursday_evening.date() + timedelta(days=4), time(8), tzinfo=PARIS)
    local.advance(to=thursday_evening)
    # Given a Shopify customer who agreed to marketing emails and SMS, with a French mobile number
    email, phone = unique_email("sms"), f"+336{uuid.uuid4().int % 10**7:07d}1"
    assert post_shopify(
        local.api_url, "customers/create", sms_customer(email, phone), SHOPIFY_SECRET, uuid.uuid4().hex
    ).status
    # When they leave a checkout on Thursday evening
    checkout = with_email("checkouts-create.json", email)
    assert post_shopify(local.api_url, "checkouts/create", checkout, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202

    # Then the three cart emails go out on their days, and the SMS due at H+50 (Saturday 21:00) waits for Monday
    # 08:00 Paris time: not Saturday night, not Sunday
    local.advance(to=monday_8 - timedelta(seconds=1))
    assert local.outbox(to=phone) == []
    local.advance(to=monday_8)
    cart = [(m["step"], sent_at(m)) for m in local.outbox(to=email) if m["scenario"] == "abandoned-cart"]
    assert cart == [
        ("e1-reminder", thursday_evening + timedelta(hours=1)),
        ("e2-help", thursday_evening + timedelta(hours=24)),
        ("e3-offer", thursday_evening + timedelta(hours=48)),
    ]
    [sms] = local.outbox(to=phone)
    assert (sms["step"], sent_at(sms)) == ("s1-last-call", monday_8)
    assert sms["text"].endswith("STOP : répondez STOP")
