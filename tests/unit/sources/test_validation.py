"""Nothing accepted can poison: each kind of input a handler would choke on is a 400 naming the field, at every
source (shared.sources.validation), and a malformed signature header is a 401, never a 500."""

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import Clock
from shared.sources import ingestion, tracking, validation
from shared.sources.signatures import shopify_signature, timestamped_signature, verify_timestamped
from tests.conftest import sample, sample_json

NOW = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)  # the form sample's consent is at 09:12:30
KEY = "wk_live_123"
GENERIC = "generic-secret"
SHOPIFY = "shopify-secret"


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW


def track(call: str, body: Any, raw: bytes | None = None, **headers: str) -> list[Any]:
    raw = raw if raw is not None else json.dumps(body).encode()
    auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    return tracking.receive(call, raw, {"content-type": "application/json", "authorization": auth, **headers}, KEY, NOW)


def generic(payload: Any, raw: bytes | None = None, signature: str | None = None) -> Any:
    raw = raw if raw is not None else json.dumps(payload).encode()
    header = signature if signature is not None else timestamped_signature(raw, GENERIC, int(NOW.timestamp()))
    headers = {"content-type": "application/json", "x-parcours-signature": header}
    return ingestion.receive_generic(raw, headers, [GENERIC], FixedClock(), NOW.timestamp())


def shopify(payload: Any, topic: str = "orders/create", **extra: str) -> Any:
    raw = json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-event-id": "evt-1",
        "x-shopify-hmac-sha256": shopify_signature(raw, SHOPIFY),
        **extra,
    }
    return ingestion.receive_shopify(raw, headers, SHOPIFY, FixedClock())


def start(body: Any, raw: bytes | None = None) -> Any:
    raw = raw if raw is not None else json.dumps(body).encode()
    return ingestion.receive_start_request("welcome", raw, {"welcome"}, FixedClock())


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ingestion.Rejected) as rejected:
        call(*args, **kwargs)
    return rejected.value.status, rejected.value.reason


def order() -> dict[str, Any]:
    lines = [{"name": "Stylo plume", "quantity": 1, "price": "29.90"}]
    return {"id": "order-1042", "type": "order.placed", "contact": {"email": "lea@example.com"},
            "properties": {"order_id": "1042", "total": "29.90", "currency": "EUR", "lines": lines}}  # fmt: skip


# ---- numbers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "raw"),
    [(-5, None), ("-12.50", None), ("NaN", None), ("Infinity", None), ("1e400", None), (None, b"1e400")],
    ids=["negative", "negative-text", "nan-text", "infinity-text", "huge-text", "huge-number"],
)
def test_a_total_that_is_not_a_finite_number_at_least_0_is_400(total: Any, raw: bytes | None) -> None:
    properties = {"order_id": "1042", "currency": "EUR", "total": total}
    body = json.dumps({"userId": "u1", "event": "Order Completed", "properties": properties}).encode()
    if raw is not None:
        body = body.replace(b'"total": null', b'"total": ' + raw)
        assert body != json.dumps({"userId": "u1", "event": "Order Completed", "properties": properties}).encode()
    status, reason = refused(track, "track", None, raw=body)
    assert status == 400
    assert reason.startswith("properties.total: must be a finite number >= 0"), reason


def test_a_shop_order_with_a_nan_or_negative_total_is_400() -> None:
    payload = sample_json("shopify/orders-create.json")
    for total in ("NaN", "-3.00"):
        status, reason = refused(shopify, {**payload, "total_price": total})
        assert (status, reason.split(":")[0]) == (400, "properties.total")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_not_json(literal: bytes) -> None:
    raw = b'{"userId": "u1", "event": "Ebook Downloaded", "properties": {"score": ' + literal + b"}}"
    status, reason = refused(track, "track", None, raw=raw)
    assert status == 400
    assert "not a JSON number" in reason


def test_a_number_out_of_range_anywhere_in_the_properties_is_400_naming_it() -> None:
    raw = b'{"userId": "u1", "event": "Ebook Downloaded", "properties": {"deep": {"n": 1e400}}}'
    assert refused(track, "track", None, raw=raw) == (400, "properties.deep.n: must be a finite number")
    raw = b'{"userId": "u1", "event": "Ebook Downloaded", "properties": {"n": ' + b"9" * 40 + b"}}"
    status, reason = refused(track, "track", None, raw=raw)
    assert (status, reason.split(":")[0]) == (400, "properties.n")


def test_an_integer_python_cannot_read_is_400_not_500() -> None:
    raw = b'{"userId": "u1", "event": "E", "properties": {"n": ' + b"9" * 5000 + b"}}"
    status, reason = refused(track, "track", None, raw=raw)
    assert status == 400
    assert reason.startswith("body:")


@pytest.mark.parametrize("quantity", [-1, -0.5, 10**9])
def test_a_negative_or_absurd_quantity_is_400(quantity: int) -> None:
    payload = order()
    payload["properties"]["lines"][0]["quantity"] = quantity
    status, reason = refused(generic, payload)
    assert status == 400
    assert "properties.lines[0].quantity: must be a whole number" in reason
    shop = sample_json("shopify/orders-create.json")
    shop["line_items"][0]["quantity"] = quantity
    status, reason = refused(shopify, shop)
    assert (status, reason.split(":")[0]) == (400, "line_items[0].quantity")


# ---- timestamps ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "rule"),
    [
        ("2026-11-24T09:00:00", "with a zone offset"),
        ("yesterday", "ISO 8601"),
        ("1999-12-31T23:00:00Z", "after 2000-01-01"),
        ("2026-11-25T09:15:01Z", "at most a day after now"),
        (17, "ISO 8601"),
    ],
    ids=["naive", "unparsable", "before-2000", "a-day-ahead", "a-number"],
)
def test_a_consent_time_that_is_naive_unparsable_or_implausible_is_400(at: Any, rule: str) -> None:
    payload = sample_json("generic/form-submitted.json")
    payload["contact"]["email_consent"]["at"] = at
    status, reason = refused(generic, payload)
    assert status == 400
    assert reason.startswith("contact.email_consent.at:") or "field contact.email_consent.at" in reason, reason
    if not reason.startswith("field"):
        assert rule in reason


def test_a_consent_time_a_little_ahead_of_now_is_accepted() -> None:
    payload = sample_json("generic/form-submitted.json")
    payload["contact"]["email_consent"]["at"] = "2026-11-24T09:05:00+01:00"
    event = generic(payload)
    assert event.contact.email_consent.at == "2026-11-24T09:05:00+01:00"


@pytest.mark.parametrize("occurred", ["2026-11-24T09:00:00", "1970-01-01T00:00:00Z", "2030-01-01T00:00:00Z"])
def test_an_event_time_that_is_naive_or_implausible_is_400(occurred: str) -> None:
    status, reason = refused(generic, {**sample_json("generic/form-submitted.json"), "occurred_at": occurred})
    assert (status, reason.split(":")[0]) == (400, "occurred_at")
    status, reason = refused(start, {"email": "lea@example.com", "consent": {"state": "granted", "at": occurred}})
    assert (status, reason.split(":")[0]) == (400, "consent.at")
    status, reason = refused(shopify, sample_json("shopify/orders-create.json"), **{"x-shopify-triggered-at": occurred})
    assert (status, reason.split(":")[0]) == (400, "occurred_at")


def test_a_sender_s_time_is_compared_with_the_wall_clock_when_it_is_later_than_parcours_clock() -> None:
    """The local runtime's clock may start days behind the wall clock that senders' times come from."""
    sent = "2026-12-04T09:00:00Z"
    with pytest.raises(validation.InputError):
        validation.instant(sent, "at", NOW)
    wall = (NOW + timedelta(days=10)).timestamp()
    assert validation.instant(sent, "at", validation.horizon(NOW, wall)).day == 4
    assert validation.horizon(NOW, (NOW - timedelta(days=3)).timestamp()) == NOW


def test_a_tracking_timestamp_far_in_the_future_is_400_naming_the_message() -> None:
    batch = {"batch": [{"type": "page", "anonymousId": "a1"}, {"type": "page", "anonymousId": "a1"}]}
    batch["batch"][1]["timestamp"] = "2031-01-01T00:00:00Z"
    status, reason = refused(track, "batch", batch)
    assert (status, reason.split(":")[0]) == (400, "batch[1].occurred_at")
    batch["batch"][1] = {"type": "page", "anonymousId": "a1", "originalTimestamp": "0001-01-01T00:00:00Z",
                         "sentAt": "9999-12-31T23:59:59Z"}  # fmt: skip
    assert refused(track, "batch", batch)[0] == 400


# ---- emails, names, keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["lea@", "lea@@example.com", "lea..d@example.com", "lea@example", "a@b.test", 42])
def test_a_malformed_email_is_400_naming_the_trait(email: Any) -> None:
    messages = [{"type": "identify", "userId": "u1"}, {"type": "identify", "userId": "u2", "traits": {"email": email}}]
    status, reason = refused(track, "batch", {"batch": messages})
    assert (status, reason) == (400, "batch[1].traits.email: not a valid email address" + (
        " (must be text)" if not isinstance(email, str) else ""
    ))  # fmt: skip
    assert refused(start, {"email": email})[0] == 400
    payload = sample_json("generic/form-submitted.json")
    payload["contact"]["email"] = email
    assert refused(generic, payload)[0] == 400


def test_a_shop_s_malformed_email_is_dropped_and_its_event_kept() -> None:
    event = shopify({**sample_json("shopify/customers-create.json"), "email": "not@an@address"}, "customers/create")
    assert event.contact.email is None
    assert event.contact.source_id is not None


def test_names_lose_their_control_characters_and_bidi_overrides() -> None:
    traits = {"email": "lea@example.com", "firstName": "Léa\r\nBcc: x@evil.example\x00", "lastName": "\u202eduBois"}
    [event] = track("identify", {"userId": "u1", "traits": traits})
    assert event.contact.first_name == "Léa Bcc: x@evil.example"
    assert event.contact.last_name == "duBois"
    [event] = track("identify", {"userId": "u1", "traits": {"firstName": "\r\n\u2066"}})
    assert event.contact.first_name is None
    event = shopify({**sample_json("shopify/customers-create.json"), "first_name": "A" * 500}, "customers/create")
    assert event.contact.first_name == "A" * validation.MAX_NAME


def test_a_shop_event_id_too_long_for_a_key_is_400() -> None:
    status, reason = refused(shopify, sample_json("shopify/orders-create.json"), **{"x-shopify-event-id": "e" * 600})
    assert (status, reason.split(":")[0]) == (400, "id")


def test_a_lone_surrogate_is_400_not_500() -> None:
    raw = b'{"userId": "u1", "event": "E", "properties": {"x": "\\ud800"}}'
    assert refused(track, "track", None, raw=raw) == (400, "properties.x: is not valid Unicode text (a lone surrogate)")


# ---- nesting ---------------------------------------------------------------------------------------------------


def test_json_nested_10000_deep_is_400_also_gzipped() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    assert refused(track, "track", None, raw=deep) == (400, "body: nests deeper than 32 levels of objects and lists")
    squeezed = gzip.compress(deep, 9)
    assert len(squeezed) < 200
    status, reason = refused(track, "track", None, raw=squeezed, **{"content-encoding": "gzip"})
    assert (status, reason.split(":")[0]) == (400, "body")
    assert refused(generic, None, raw=deep)[0] == 400
    assert refused(start, None, raw=deep)[0] == 400


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert validation.nesting_depth(b'{"a": "[[[[[[\\"{{{{"}') == 1
    [event] = track("track", {"userId": "u1", "event": "E", "properties": {"text": "[" * 100}})
    assert event.properties["text"] == "[" * 100


# ---- custom attributes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "field", "limit"),
    [
        ({f"a{n}": n for n in range(51)}, "contact.attributes.a50", "at most 50 custom attributes"),
        ({"Plan Type": "pro"}, "contact.attributes.Plan Type", "attribute names are lower-case"),
        ({"a" * 65: 1}, "contact.attributes." + "a" * 65, "at most 64 characters"),
        ({"bio": "x" * 1025}, "contact.attributes.bio", "at most 1024 bytes"),
        ({f"t{n}": "x" * 1000 for n in range(17)}, "contact.attributes.t16", "at most 16384 bytes in all"),
        ({"tags": ["a", "b"]}, "contact.attributes.tags", "text, a number, true/false or null"),
        ({"n": 10**40}, "contact.attributes.n", "a number between"),
    ],
    ids=["count", "name", "name-length", "value", "total", "nested", "number"],
)
def test_custom_attributes_over_a_limit_are_400_naming_it(attributes: dict[str, Any], field: str, limit: str) -> None:
    payload = sample_json("generic/form-submitted.json")
    payload["contact"]["attributes"] = attributes
    status, reason = refused(generic, payload)
    assert status == 400
    assert reason.startswith(field + ":"), reason
    assert limit in reason


def test_tracking_traits_over_a_limit_are_400_naming_the_trait() -> None:
    status, reason = refused(track, "identify", {"userId": "u1", "traits": {"planType": "x" * 2000}})
    assert (status, reason.split(":")[0]) == (400, "traits.planType")
    status, reason = refused(track, "identify", {"userId": "u1", "traits": {f"t{n}": n for n in range(60)}})
    assert (status, reason.split(":")[0]) == (400, "traits.t50")
    status, reason = refused(start, {"email": "lea@example.com", "attributes": {"x" * 70: 1}})
    assert (status, reason.split(":")[0]) == (400, "attributes." + "x" * 70)


def test_the_limit_check_can_drop_instead_of_refusing() -> None:
    given = {"plan": "pro", "Bad Name": 1, "bio": "x" * 2000, **{f"a{n}": n for n in range(60)}}
    kept, dropped = validation.limit_attributes(given, "traits.", drop=True)
    assert "plan" in kept
    assert len(kept) == validation.MAX_ATTRIBUTES
    assert {name for name, _ in dropped} >= {"Bad Name", "bio", "a59"}
    assert all(reason for _, reason in dropped)


def test_within_the_limits_everything_is_kept() -> None:
    payload = sample_json("generic/form-submitted.json")
    attributes = {f"a{n}": "x" * 200 for n in range(50)}
    payload["contact"]["attributes"] = attributes
    assert generic(payload).contact.attributes == attributes


# ---- signatures and bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["t=²,v1=ab", "t=١٢٣,v1=ab", "t=,v1=", "v1=é", "t=1,t=2,v1=ab", "=,=,=", "t=99999999999999999999,v1=ab", "\ud800"],
)
def test_a_malformed_generic_signature_header_is_401(header: str) -> None:
    status, _ = refused(generic, {"id": "e1", "type": "track"}, signature=header)
    assert status == 401
    assert not verify_timestamped(b"{}", header, [GENERIC], NOW.timestamp())


@pytest.mark.parametrize("header", ["é", "\ud800", "  ", "x" * 10_000])
def test_a_malformed_shopify_signature_header_is_401(header: str) -> None:
    raw = sample("shopify/customers-create.json")
    headers = {"content-type": "application/json", "x-shopify-topic": "customers/create",
               "x-shopify-event-id": "e1", "x-shopify-hmac-sha256": header}  # fmt: skip
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(raw, headers, SHOPIFY, FixedClock())
    assert rejected.value.status == 401
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_woocommerce(raw, {**headers, "x-wc-webhook-signature": header}, SHOPIFY, FixedClock())
    assert rejected.value.status == 401
