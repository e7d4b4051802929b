"""The attacks of issue 14 with the tracking API's keys, over real HTTP against `parcours local`: each now fails
safely (README, "Consent rules" and "The browser key")."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, post_tracking
from tests.conftest import BROWSER_KEY, SHOPIFY_SECRET, WRITE_KEY, sample
from tests.crm_receiver import CrmReceiver
from tests.e2e.test_shopify_webhook import at_a_whole_second, customer, sent_at, unique_email
from tests.e2e.test_tracking_api import contact_of, history
from tests.e2e.test_unsubscribe import consent_state, fetch

SUBSCRIBED = {"state": "subscribed", "opt_in_level": "confirmed_opt_in"}


def contact_item(local: RunningLocal, identity: str) -> dict[str, Any]:
    contact_id = contact_of(local, identity)
    assert contact_id is not None
    table = local.physical_ids()["ContactsTable"]
    item = local.client("dynamodb").get_item(
        TableName=table, Key={"contact_id": {"S": contact_id}}, ConsistentRead=True
    )
    return dict(item["Item"])


def subscribed_customer(local: RunningLocal, prefix: str) -> tuple[str, str]:
    """A Shopify customer with marketing consent, also identified on the site as a tracking user: (email, user id)."""
    email, user = unique_email(prefix), uuid.uuid4().hex
    assert (
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    )
    assert (
        post_tracking(local.api_url, "/v1/identify", {"userId": user, "traits": {"email": email}}, WRITE_KEY).status
        == 200
    )
    return email, user


def test_an_unsubscribe_sticks_against_re_sent_traits_and_undoes_only_by_a_newer_explicit_opt_in(
    local: RunningLocal,
) -> None:
    # Given a subscriber who got the first welcome email and unsubscribed in one click
    subscribed = at_a_whole_second(local)
    email, user = subscribed_customer(local, "sticky")
    local.advance(seconds=0)
    [first] = local.outbox(to=email)
    url = re.match(r"<([^>]+)>", first["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert fetch(url, b"List-Unsubscribe=One-Click")[0] == 200
    assert consent_state(local, email) == "denied"

    # When analytics.js re-sends the cached traits with the browser key, and a server re-sends them without a time
    traits = {"email": email, "email_marketing_consent": SUBSCRIBED}
    assert post_tracking(local.api_url, "/v1/identify", {"userId": user, "traits": traits}, BROWSER_KEY).status == 200
    assert post_tracking(local.api_url, "/v1/identify", {"userId": user, "traits": traits}, WRITE_KEY).status == 200

    # Then consent stays withdrawn and the series sends nothing more
    assert consent_state(local, email) == "denied"
    local.advance(to=subscribed + timedelta(days=2))  # J+2, the second email's moment
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]

    # When the person opts in again, the server stating when (a newer, explicit opt-in): consent is granted
    again = {**SUBSCRIBED, "consent_updated_at": local.now().isoformat(), "wording": "newsletter form v3"}
    body = {"userId": user, "traits": {"email": email, "email_marketing_consent": again}}
    assert post_tracking(local.api_url, "/v1/identify", body, WRITE_KEY).status == 200
    assert consent_state(local, email) == "granted"
    proof = contact_item(local, f"email#{email}")["consent_history"]["L"][-1]["M"]
    assert (proof["source"]["S"], proof["wording"]["S"]) == ("tracking:identify", "newsletter form v3")


def test_a_consent_dated_in_the_future_is_refused_so_a_later_unsubscribe_still_wins(local: RunningLocal) -> None:
    email, user = subscribed_customer(local, "future")
    future = {**SUBSCRIBED, "consent_updated_at": "2099-01-01T00:00:00Z"}
    body = {"userId": user, "traits": {"email": email, "email_marketing_consent": future}}
    answer = post_tracking(local.api_url, "/v1/identify", body, WRITE_KEY)
    assert answer.status == 400
    assert answer.body["error"] == "contact.email_consent.at: must be after 2000-01-01 and at most a day after now"

    # The shop's own webhook with such a time is refused too (a signature proves the sender, not its clock)
    payload = json.loads(customer(email))
    payload["email_marketing_consent"]["consent_updated_at"] = "2099-01-01T00:00:00Z"
    raw = json.dumps(payload).encode()
    assert post_shopify(local.api_url, "customers/update", raw, SHOPIFY_SECRET, uuid.uuid4().hex).status == 400

    # And the shop's unsubscribe, dated now, applies
    payload["email_marketing_consent"] = {"state": "unsubscribed", "consent_updated_at": local.now().isoformat()}
    raw = json.dumps(payload).encode()
    assert post_shopify(local.api_url, "customers/update", raw, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    assert consent_state(local, email) == "denied"


def test_the_browser_key_cannot_take_a_contact_over(local: RunningLocal) -> None:
    # Given a subscriber known on the site by a user id
    subscribed = at_a_whole_second(local)
    email, user = subscribed_customer(local, "victim")
    attacker = unique_email("attacker")

    # When the public key says this user's email is the attacker's
    body = {"userId": user, "traits": {"email": attacker, "firstName": "Mallory"}}
    assert post_tracking(local.api_url, "/v1/identify", body, BROWSER_KEY).status == 200

    # Then the contact keeps its address, the attacker's leads to no one, and the series goes to the subscriber only
    assert contact_item(local, f"segment#{user}")["email"]["S"] == email
    assert contact_of(local, f"email#{attacker}") is None
    local.advance(to=subscribed + timedelta(days=2))
    assert local.outbox(to=attacker) == []
    assert len(local.outbox(to=email)) == 2  # J+0 and J+2 of the welcome series


def test_the_browser_key_cannot_place_an_order_nor_forge_a_stage(local: RunningLocal) -> None:
    # Given a subscriber with no order
    email, user = subscribed_customer(local, "shopper")
    local.advance(seconds=0)
    sent_before = len(local.outbox(to=email))

    # When the public key reports an order and sets the lead's stage
    order = {"userId": user, "event": "Order Completed", "properties": {"total": 999, "order_id": "forged-1"}}
    assert post_tracking(local.api_url, "/v1/track", order, BROWSER_KEY).status == 200
    stage = {"userId": user, "traits": {"lifecycleStage": "sql", "score": 500}}
    assert post_tracking(local.api_url, "/v1/identify", stage, BROWSER_KEY).status == 200

    # Then no order is counted, no post-purchase email goes out three days later, and the stage is unset
    local.advance(seconds=3 * 86400)
    contact = contact_item(local, f"email#{email}")
    assert "orders_count" not in contact or contact["orders_count"]["N"] == "0"
    assert "lifecycle_stage" not in contact.get("attributes", {}).get("M", {})
    assert {m["scenario"] for m in local.outbox(to=email)[sent_before:]} <= {"welcome"}  # no post-purchase, no loyalty
    # The refused order is kept with its reason, acting on no one
    assert ("unrecognised", "Order Completed") in history(local, "_unattributed#tracking")


def test_a_shop_and_a_site_announcing_one_new_person_at_once_make_one_contact(local: RunningLocal) -> None:
    # Given new addresses, each announced at the same moment by the shop's webhook and the site's identify (two
    # FIFO groups: the address, and the visitor's anonymous id)
    emails = [unique_email("twice") for _ in range(6)]

    def shop(email: str) -> int:
        return post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex).status

    def site(email: str) -> int:
        body = {"anonymousId": uuid.uuid4().hex, "traits": {"email": email, "firstName": "Sacha"}}
        return post_tracking(local.api_url, "/v1/identify", body, WRITE_KEY).status

    # When both are sent at once, for each address
    with ThreadPoolExecutor(max_workers=len(emails) * 2) as pool:
        answers = list(pool.map(lambda call: call[0](call[1]), [(f, e) for e in emails for f in (shop, site)]))
    assert sorted(set(answers)) == [200, 202]
    local.advance(seconds=0)

    # Then each address is one contact (before, 12 pairs in 12 made two), with the shop's consent
    pages = (
        local.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=local.physical_ids()["ContactsTable"],
            FilterExpression="email IN (" + ", ".join(f":e{i}" for i in range(len(emails))) + ")",
            ExpressionAttributeValues={f":e{i}": {"S": email} for i, email in enumerate(emails)},
        )
    )
    found = [item for page in pages for item in page["Items"]]  # every page: the session's table is large
    assert sorted(item["email"]["S"] for item in found) == sorted(emails)
    assert {item["email_consent"]["M"]["state"]["S"] for item in found} == {"granted"}


def test_an_order_whose_scenario_start_failed_is_counted_once_when_sqs_delivers_it_again(local: RunningLocal) -> None:
    # Given a customer, and Step Functions throttling StartExecution through boto3's own retries (5 attempts): after
    # the contact and its history are written, the process function fails the record
    email = unique_email("buyer")
    signup = post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    assert signup.status == 202
    local.advance(seconds=0)
    order = json.loads(sample("shopify/orders-create.json"))
    order["email"], order["customer"]["email"] = email, email
    local.fail_next("stepfunctions.StartExecution", times=5)

    # When the order comes and fails, and SQS delivers it again once it is visible again (at the queue's next
    # message, here another visitor's page view, as the runtime's poller takes it)
    raw = json.dumps(order).encode()
    assert post_shopify(local.api_url, "orders/create", raw, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    assert local.faults_armed()["stepfunctions.StartExecution"] == 0  # every attempt of the start failed
    assert [m for m in local.outbox(to=email) if m["scenario"] == "post-purchase"] == []
    local.advance(seconds=3600)  # past the queue's visibility timeout
    page = {"anonymousId": uuid.uuid4().hex, "properties": {"path": "/"}}
    assert post_tracking(local.api_url, "/v1/page", page, WRITE_KEY).status == 200
    local.advance(seconds=0)

    # Then the order counts once, its history once, and the post-purchase series started (its first email sent)
    contact = contact_item(local, f"email#{email}")
    assert contact["orders_count"]["N"] == "1"
    orders = [seen for seen in history(local, contact["contact_id"]["S"]) if seen[0] == "order.placed"]
    assert len(orders) == 1
    assert [m["step"] for m in local.outbox(to=email) if m["scenario"] == "post-purchase"] == ["e1-thanks"]


def test_a_send_throttled_by_ses_is_retried_and_the_series_goes_on(local: RunningLocal) -> None:
    # Given SES refusing the next 40 sends as too many (boto3 retries some itself; the send Task's Retry waits and
    # asks again for the rest)
    email = unique_email("throttled")
    local.fail_next("sesv2.SendEmail", times=40)

    # When a subscriber's welcome series starts, and the hours pass (each wait at most an hour: full jitter)
    signup = post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    assert signup.status == 202
    local.advance(seconds=12 * 3600)

    # Then the Task asked again until SES took the email, sent once; and the series goes on where it was: the second
    # email two days after the first went out
    assert local.faults_armed()["sesv2.SendEmail"] == 0
    [first] = local.outbox(to=email)
    assert first["step"] == "e1-welcome"
    local.advance(to=sent_at(first) + timedelta(days=2, minutes=1))
    assert [(m["step"], sent_at(m)) for m in local.outbox(to=email)] == [
        ("e1-welcome", sent_at(first)),
        ("e2-value", sent_at(first) + timedelta(days=2)),
    ]


def test_a_lead_made_up_with_the_browser_key_is_not_handed_to_sales(local: RunningLocal, crm: CrmReceiver) -> None:
    # Given someone with only the public key, who names a person's address and reports what makes a lead: two
    # pricing page views, an ebook and a demo form (15 + 15 + 10 + 25 points: past 50, sales-qualified)
    now = local.now()
    local.advance(to=now.replace(second=0, microsecond=0) + timedelta(minutes=1))  # one scoring week, a second apart
    victim, user = unique_email("made-up"), uuid.uuid4().hex
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/v1/identify", {"userId": user, "traits": {"email": victim}}),
        ("/v1/page", {"userId": user, "messageId": uuid.uuid4().hex, "properties": {"path": "/pricing"}}),
        ("/v1/page", {"userId": user, "messageId": uuid.uuid4().hex, "properties": {"path": "/pricing"}}),
        ("/v1/track", {"userId": user, "event": "Ebook Downloaded"}),
        ("/v1/track", {"userId": user, "event": "Form Submitted", "properties": {"form": "demo"}}),
    ]
    for path, body in calls:
        assert post_tracking(local.api_url, path, body, BROWSER_KEY).status == 200
        local.advance(seconds=1)
    local.advance(seconds=60)

    # Then the behaviour is scored (it is what a page reports), but no lead reaches the CRM in that person's name
    contact = contact_item(local, f"email#{victim}")
    assert contact["attributes"]["M"]["lifecycle_stage"] == {"S": "sql"}
    assert contact["email_unverified"] == {"BOOL": True}
    assert [r for r in list(crm.received) if r.json().get("contact", {}).get("email") == victim] == []


def test_a_contact_fed_attributes_without_end_can_still_unsubscribe(local: RunningLocal) -> None:
    # Given a subscriber with the first welcome email, and a key holder who sends attribute after attribute about
    # them (before, a contact grew to DynamoDB's 400 KB and refused every later write, the unsubscribe included)
    email, user = subscribed_customer(local, "fed")
    local.advance(seconds=0)
    [first] = local.outbox(to=email)
    for batch in range(12):
        traits = {f"note_{batch}_{i}": "x" * 1000 for i in range(15)}  # 15 KB: within one event's 16 KB
        assert post_tracking(local.api_url, "/v1/identify", {"userId": user, "traits": traits}, WRITE_KEY).status == 200
    too_much = {f"huge_{i}": "x" * 1000 for i in range(20)}  # 20 KB in one event: refused, naming the limit
    answer = post_tracking(local.api_url, "/v1/identify", {"userId": user, "traits": too_much}, WRITE_KEY)
    assert (answer.status, answer.body["error"].split(":")[0]) == (400, "traits.huge_16")

    # Then the contact stayed bounded, and one click still unsubscribes
    contact = contact_item(local, f"email#{email}")
    assert len(contact["attributes"]["M"]) <= 100
    assert len(json.dumps(contact["attributes"])) < 40_000
    url = re.match(r"<([^>]+)>", first["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert fetch(url, b"List-Unsubscribe=One-Click")[0] == 200
    assert consent_state(local, email) == "denied"
