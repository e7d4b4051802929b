"""The Segment-compatible tracking API: auth, validation, and the mapping of each call into the catalogue."""

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared import clients
from shared.events import Event
from shared.settings import Settings
from shared.sources import ingestion, tracking

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = "wk_live_123"


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def receive(call: str, body: Any, authorization: str | None = basic(KEY)) -> list[Event]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    return tracking.receive(call, raw, headers, KEY, NOW)


def refusal(call: str, body: Any, authorization: str | None = basic(KEY)) -> tuple[int, str]:
    with pytest.raises(ingestion.Rejected) as rejected:
        receive(call, body, authorization)
    return rejected.value.status, rejected.value.reason


# ---- auth ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", basic("wrong-key"), basic(""), "Bearer " + KEY, "Basic not-base64!", basic(KEY + "x"), basic("wk")],
    ids=["absent", "empty", "wrong", "empty-user", "bearer", "garbage", "longer", "prefix"],
)
def test_a_missing_or_wrong_write_key_is_401(authorization: str | None) -> None:
    status, reason = refusal("track", {"userId": "u1", "event": "Ebook Downloaded"}, authorization)
    assert status == 401
    assert "write key" in reason


def test_the_write_key_is_the_basic_user_and_the_password_is_not_read() -> None:
    assert tracking.authorised(basic(KEY), KEY)
    assert tracking.authorised(basic(KEY, "anything"), KEY)
    assert tracking.authorised("basic " + base64.b64encode(KEY.encode()).decode(), KEY)  # no colon at all


def test_the_write_key_is_checked_before_the_body_is_parsed() -> None:
    assert refusal("track", b"{not json", basic("wrong")) == (401, refusal("track", b"{}", None)[1])


def test_malformed_json_is_400() -> None:
    status, reason = refusal("track", b"{not json")
    assert status == 400
    assert "not JSON" in reason


def test_a_body_over_256_kib_is_413_and_a_body_not_declared_json_is_415() -> None:
    big = json.dumps({"userId": "u1", "event": "x", "properties": {"pad": "x" * 256 * 1024}}).encode()
    assert refusal("track", big)[0] == 413
    with pytest.raises(ingestion.Rejected) as rejected:
        tracking.receive("track", b"{}", {"content-type": "text/plain", "authorization": basic(KEY)}, KEY, NOW)
    assert rejected.value.status == 415


# ---- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "body", "named"),
    [
        ("track", [], "body must be a JSON object"),
        ("track", {"event": "Ebook Downloaded"}, "userId or anonymousId is required"),
        ("track", {"userId": "", "anonymousId": None, "event": "x"}, "userId or anonymousId is required"),
        ("track", {"userId": {"id": 1}, "event": "x"}, "userId must be text"),
        ("track", {"userId": True, "event": "x"}, "userId must be text"),
        ("track", {"userId": "u1"}, "event is required"),
        ("track", {"userId": "u1", "event": "  "}, "event is required"),
        ("track", {"userId": "u1", "event": "x", "properties": [1]}, "properties must be an object"),
        ("page", {"anonymousId": "a1", "context": "web"}, "context must be an object"),
        ("page", {"anonymousId": "a1", "context": {"page": "home"}}, "context.page must be an object"),
        ("page", {"anonymousId": "a1", "timestamp": "yesterday"}, "timestamp must be an ISO 8601 time"),
        ("page", {"anonymousId": "a1", "messageId": 12}, "messageId must be text"),
        ("identify", {"userId": "u1", "traits": "vip"}, "traits must be an object"),
        (
            "identify",
            {"userId": "u1", "traits": {"email_marketing_consent": True}},
            "traits.email_marketing_consent must be an object",
        ),
        (
            "identify",
            {"userId": "u1", "traits": {"email_marketing_consent": {"state": "granted"}}},
            "traits.email_marketing_consent.state must be subscribed or unsubscribed",
        ),
        (
            "identify",
            {"userId": "u1", "traits": {"email_marketing_consent": {"state": "subscribed", "opt_in_level": "double"}}},
            "traits.email_marketing_consent.opt_in_level must be",
        ),
        (
            "identify",
            {"userId": "u1", "traits": {"sms_marketing_consent": {"state": "subscribed", "consent_updated_at": 1}}},
            "traits.sms_marketing_consent.consent_updated_at must be an ISO 8601 time",
        ),
        ("batch", [], 'body must be a JSON object {"batch": [...]}'),
        ("batch", {"batch": []}, "batch must be a non-empty list"),
        ("batch", {"batch": {"type": "track"}}, "batch must be a non-empty list"),
        ("batch", {"batch": [{"type": "page", "anonymousId": "a"}] * 501}, "send at most 500"),
        ("batch", {"batch": [{"type": "page", "anonymousId": "a"}, "track"]}, "batch[1] must be an object"),
        ("batch", {"batch": [{"anonymousId": "a"}]}, "batch[0].type must be one of identify, track, page"),
        ("batch", {"batch": [{"type": "purchase", "anonymousId": "a"}]}, "batch[0].type must be one of"),
        (
            "batch",
            {"batch": [{"type": "page", "anonymousId": "a"}] * 3 + [{"type": "track", "anonymousId": "a"}]},
            "batch[3].event is required",
        ),
        ("batch", {"batch": [{"type": "identify", "traits": {}}]}, "batch[0].userId or anonymousId is required"),
    ],
)
def test_a_message_off_the_spec_is_400_naming_the_field(call: str, body: Any, named: str) -> None:
    status, reason = refusal(call, body)
    assert status == 400
    assert named in reason


def test_a_batch_with_one_bad_message_is_refused_whole() -> None:
    good = {"type": "track", "userId": "u1", "event": "Ebook Downloaded", "messageId": "m1"}
    with pytest.raises(ingestion.Rejected):
        receive("batch", {"batch": [good, {"type": "track", "userId": "u1"}]})
    assert [e.event_id for e in receive("batch", {"batch": [good]})] == ["segment#m1"]


# ---- mapping ---------------------------------------------------------------------------------------------------


def test_identify_maps_traits_to_the_contact() -> None:
    [event] = receive(
        "identify",
        {
            "userId": "user-42",
            "anonymousId": "anon-7",
            "messageId": "m-1",
            "timestamp": "2026-11-24T08:30:00.000Z",
            "context": {"locale": "fr-FR", "timezone": "Europe/Paris", "ip": "203.0.113.9"},
            "traits": {
                "email": " Camille.Martin@Example.com ",
                "phone": "+33 6 12 34 56 78",
                "firstName": "Camille",
                "last_name": "Martin",
                "birthday": "1990-03-15T00:00:00.000Z",
                "planType": "pro",
                "seats": 5,
                "address": {"city": "Paris"},
                "name": "Camille Martin",
                "newsletter": True,
            },
        },
    )
    assert (event.type, event.source, event.topic, event.event_id) == (
        "contact.updated",
        "tracking",
        "identify",
        "segment#m-1",
    )
    assert event.occurred_at == "2026-11-24T08:30:00+00:00"
    facts = event.contact
    assert facts is not None
    assert (facts.email, facts.phone, facts.first_name, facts.last_name, facts.locale) == (
        "camille.martin@example.com",
        "+33612345678",
        "Camille",
        "Martin",
        "fr",
    )
    assert (facts.source_id, facts.anonymous_id) == ("segment#user-42", "anon-7")
    assert facts.updated_at is None  # the device's clock never makes another source's facts stale
    assert facts.attributes == {
        "plan_type": "pro",
        "seats": 5,
        "newsletter": True,
        "timezone": "Europe/Paris",
        "birthday": "1990-03-15",
    }
    assert facts.email_consent is None
    assert facts.sms_consent is None
    assert "203.0.113.9" not in event.to_json()


def test_identify_reads_consent_only_in_its_documented_shape() -> None:
    [event] = receive(
        "identify",
        {
            "userId": "u1",
            "timestamp": "2026-11-24T08:30:00Z",
            "traits": {
                "email": "a@example.com",
                "email_marketing_consent": {
                    "state": "subscribed",
                    "opt_in_level": "confirmed_opt_in",
                    "consent_updated_at": "2026-11-20T10:00:00+01:00",
                },
                "sms_marketing_consent": {"state": "unsubscribed"},
            },
        },
    )
    assert event.contact is not None
    email, sms = event.contact.email_consent, event.contact.sms_consent
    assert email is not None
    assert sms is not None
    assert (email.state, email.level, email.at, email.source) == (
        "granted",
        "confirmed_opt_in",
        "2026-11-20T09:00:00+00:00",
        "tracking:identify",
    )
    assert (sms.state, sms.level, sms.at) == ("denied", None, "2026-11-24T08:30:00+00:00")


def test_a_page_view_keeps_url_path_title_and_referrer_from_the_properties_or_the_context() -> None:
    [event] = receive(
        "page",
        {
            "anonymousId": "anon-1",
            "name": "Pricing",
            "properties": {"title": "Our prices", "plan": "teams"},
            "context": {
                "page": {
                    "url": "https://boutique.example/en/pricing?utm=x",
                    "referrer": "https://search.example/",
                    "title": "ignored: the properties say it",
                }
            },
        },
    )
    assert event.type == "page.viewed"
    assert event.properties == {
        "url": "https://boutique.example/en/pricing?utm=x",
        "path": "/en/pricing",
        "title": "Our prices",
        "referrer": "https://search.example/",
        "name": "Pricing",
        "plan": "teams",
    }
    assert event.contact is not None
    assert (event.contact.anonymous_id, event.contact.source_id, event.contact.email) == ("anon-1", None, None)
    assert event.contact_key() == "anonymous#anon-1"


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("Checkout Started", "checkout.started"),
        ("Order Completed", "order.placed"),
        ("Form Submitted", "form.submitted"),
        ("Signed Up", "contact.subscribed"),
        ("Ebook Downloaded", "track"),
        ("order completed", "track"),  # Segment's names are exact
    ],
)
def test_track_maps_segment_spec_names_and_keeps_others_as_custom_events(name: str, event_type: str) -> None:
    [event] = receive("track", {"userId": "u1", "event": name, "properties": {"format": "pdf"}})
    assert event.type == event_type
    assert event.properties["event"] == name
    assert event.properties["format"] == "pdf"


def test_an_order_completed_carries_what_the_post_purchase_emails_read() -> None:
    [event] = receive(
        "track",
        {
            "userId": "u1",
            "event": "Order Completed",
            "properties": {
                "order_id": "50314b8e9bcf000000000000",
                "total": 27.5,
                "revenue": 25.0,
                "currency": "EUR",
                "products": [
                    {
                        "product_id": "p1",
                        "name": "Tote bag",
                        "price": 12.5,
                        "quantity": 1,
                        "variant": "blue",
                        "image_url": "https://cdn.boutique.example/tote.jpg",
                        "url": "https://boutique.example/products/tote",
                    },
                    {"sku": "s2", "name": "Mug", "price": 7.5, "quantity": 2, "url": "javascript:alert(1)"},
                ],
                "recommendations": [{"name": "Gourde", "image_url": "https://cdn.boutique.example/gourde.jpg"}],
            },
        },
    )
    assert event.type == "order.placed"
    assert event.properties["total"] == "27.5"
    assert event.properties["currency"] == "EUR"
    assert event.properties["order_name"] == "50314b8e9bcf000000000000"
    assert event.properties["lines"] == [
        {
            "name": "Tote bag",
            "variant": "blue",
            "quantity": 1,
            "price": "12.5",
            "product_id": "p1",
            "image": "https://cdn.boutique.example/tote.jpg",
            "url": "https://boutique.example/products/tote",
        },
        {"name": "Mug", "variant": None, "quantity": 2, "price": "7.5", "product_id": "s2", "image": None, "url": None},
    ]
    assert event.properties["recommendations"] == [
        {"name": "Gourde", "image": "https://cdn.boutique.example/gourde.jpg", "url": None, "price": None}
    ]
    assert "products" not in event.properties


def test_a_checkout_started_carries_its_recovery_url_and_lines() -> None:
    [event] = receive(
        "track",
        {
            "userId": "u1",
            "event": "Checkout Started",
            "properties": {
                "checkout_id": "c-9",
                "value": 30,
                "currency": "EUR",
                "recovery_url": "https://boutique.example/cart/c-9",
                "products": [{"name": "Mug", "price": 15, "quantity": 2}],
            },
        },
    )
    assert event.type == "checkout.started"
    props = event.properties
    assert (props["checkout_token"], props["total"], props["recovery_url"]) == (
        "c-9",
        "30",
        "https://boutique.example/cart/c-9",
    )
    assert props["lines"][0]["quantity"] == 2


def test_a_track_is_attributed_to_the_user_id_or_an_email_in_context_traits_else_left_anonymous() -> None:
    by_user, by_email, anonymous = receive(
        "batch",
        {
            "batch": [
                {"type": "track", "event": "x", "userId": 42, "anonymousId": "a1"},
                {"type": "track", "event": "x", "anonymousId": "a1", "context": {"traits": {"email": "B@Example.com"}}},
                {"type": "track", "event": "x", "anonymousId": "a1"},
            ]
        },
    )
    assert by_user.contact is not None
    assert by_email.contact is not None
    assert anonymous.contact is not None
    assert (by_user.contact.source_id, by_user.contact.anonymous_id) == ("segment#42", None)
    assert (by_email.contact.email, by_email.contact.anonymous_id) == ("b@example.com", None)
    assert (anonymous.contact.source_id, anonymous.contact.email, anonymous.contact.anonymous_id) == (None, None, "a1")


def test_screen_group_and_alias_are_accepted_and_have_no_effect() -> None:
    [event] = receive("batch", {"batch": [{"type": "group", "userId": "u1", "groupId": "g1"}]})
    assert (event.type, event.contact, event.properties) == ("unrecognised", None, {"call": "group"})


def test_times_come_from_timestamp_else_original_timestamp_corrected_by_sent_at_else_arrival() -> None:
    stamped, skewed, raw, arrived = receive(
        "batch",
        {
            "sentAt": "2026-11-24T10:00:05Z",  # the device's clock is one hour fast
            "batch": [
                {"type": "page", "anonymousId": "a", "timestamp": "2026-11-24T08:00:00+01:00"},
                {"type": "page", "anonymousId": "a", "originalTimestamp": "2026-11-24T10:00:00Z"},
                {"type": "page", "anonymousId": "a", "originalTimestamp": "2026-11-24T07:00:00", "sentAt": None},
                {"type": "page", "anonymousId": "a"},
            ],
        },
    )
    assert stamped.occurred_at == "2026-11-24T07:00:00+00:00"
    assert skewed.occurred_at == "2026-11-24T08:59:55+00:00"
    assert raw.occurred_at == "2026-11-24T07:00:00+00:00"
    assert arrived.occurred_at == NOW.isoformat()


def test_a_message_without_message_id_gets_a_stable_id_from_its_content() -> None:
    message = {"anonymousId": "a1", "name": "Home", "originalTimestamp": "2026-11-24T08:00:00Z"}
    first = receive("page", {**message, "sentAt": "2026-11-24T08:00:01Z"})[0].event_id
    retried = receive("page", {**message, "sentAt": "2026-11-24T08:05:00Z"})[0].event_id
    other = receive("page", {**message, "name": "About", "sentAt": "2026-11-24T08:00:01Z"})[0].event_id
    tracked = receive("track", {**message, "event": "Home"})[0].event_id
    assert first == retried
    assert first.startswith("segment#sha256-")
    assert len({first, other, tracked}) == 3


def test_a_batch_shares_its_context_with_every_message() -> None:
    [event] = receive(
        "batch",
        {
            "context": {"locale": "en-GB", "timezone": "Europe/London"},
            "batch": [{"type": "identify", "userId": "u1", "context": {"timezone": "Europe/Paris"}}],
        },
    )
    assert event.contact is not None
    assert event.contact.attributes is not None
    assert (event.contact.locale, event.contact.attributes["timezone"]) == ("en", "Europe/Paris")


# ---- queueing --------------------------------------------------------------------------------------------------


@mock_aws
def test_a_batch_is_queued_in_sqs_batches_and_a_repeat_is_deduplicated(
    aws_credentials: None, environ: dict[str, str]
) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = Settings.from_environ({**environ, "PARCOURS_QUEUE_URL": url})
    body = {"batch": [{"type": "page", "anonymousId": f"a{i}", "messageId": f"m{i}"} for i in range(23)]}
    events = receive("batch", body)

    ingestion.enqueue_all(events, settings)
    ingestion.enqueue_all(events, settings)  # the library retried the same request

    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"])["event_id"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    assert sorted(bodies) == sorted(f"segment#m{i}" for i in range(23))


class PartlyFailingSqs:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        if len(self.calls) == 2:
            return {
                "Successful": [],
                "Failed": [{"Id": Entries[0]["Id"], "Code": "InternalError", "SenderFault": False}],
            }
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_a_partial_failure_of_sqs_makes_the_whole_request_unavailable(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = PartlyFailingSqs()
    monkeypatch.setattr(clients, "sqs", lambda region: sqs)
    events = receive(
        "batch", {"batch": [{"type": "page", "anonymousId": "a", "messageId": f"m{i}"} for i in range(25)]}
    )
    with pytest.raises(ingestion.QueueUnavailable) as unavailable:
        ingestion.enqueue_all(events, Settings.from_environ(environ))
    assert "InternalError" in str(unavailable.value)
    assert sqs.calls == [10, 10]


def test_sqs_batches_stay_under_the_size_limit(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = PartlyFailingSqs()
    sqs.calls = [0, 0, 0]  # past the failing call
    monkeypatch.setattr(clients, "sqs", lambda region: sqs)
    monkeypatch.setattr(ingestion, "SQS_BATCH_BYTES", 100_000)
    big = {"type": "page", "anonymousId": "a", "properties": {"pad": "x" * 40_000}}
    events = receive("batch", {"batch": [{**big, "messageId": f"m{i}"} for i in range(5)]})
    ingestion.enqueue_all(events, Settings.from_environ(environ))
    assert sqs.calls[3:] == [2, 2, 1]


def test_a_gzip_body_is_read_and_bounded_once_inflated() -> None:
    message = json.dumps({"userId": "u1", "event": "Ebook Downloaded", "messageId": "m1"}).encode()
    headers = {"content-type": "application/json", "content-encoding": "gzip", "authorization": basic(KEY)}
    [event] = tracking.receive("track", gzip.compress(message), headers, KEY, NOW)
    assert event.event_id == "segment#m1"
    bomb = gzip.compress(json.dumps({"userId": "u1", "event": "x", "pad": "x" * 300_000}).encode())
    assert len(bomb) < 256 * 1024
    for body, status in ((bomb, 413), (b"not gzip", 400)):
        with pytest.raises(ingestion.Rejected) as rejected:
            tracking.receive("track", body, headers, KEY, NOW)
        assert rejected.value.status == status
    with pytest.raises(ingestion.Rejected) as rejected:
        tracking.receive("track", message, {**headers, "content-encoding": "br"}, KEY, NOW)
    assert rejected.value.status == 415


def test_recommendations_that_are_not_a_list_of_objects_refuse_the_message_naming_the_field() -> None:
    message = {"userId": "u1", "event": "Order Completed", "properties": {"recommendations": ["Gourde"]}}
    with pytest.raises(ingestion.Rejected, match=r"properties\.recommendations\[0\] must be an object"):
        receive("track", message)


def test_an_order_completed_names_its_coupon_as_its_discount_code() -> None:
    [plain] = receive("track", {"userId": "u1", "event": "Order Completed", "properties": {"total": 10}})
    assert plain.properties["discount_code"] is None
    body = {"userId": "u1", "event": "Order Completed", "properties": {"total": 10, "coupon": "ETE15"}}
    [coupon] = receive("track", body)
    assert coupon.properties["discount_code"] == "ETE15"
