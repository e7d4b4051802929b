"""Property-based: arbitrary JSON and bytes sent to every ingest route and every subscription route, through the
functions' own handlers in-process (moto). Never a 5xx; and every event a 2xx queued is processed without error
(shared.journeys.processing.process, what the process function runs), so nothing accepted can poison a contact's
FIFO group. The example counts are bounded: the whole module runs in well under a minute."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local import InvocationContext
from shared import clock
from shared.events import Event
from shared.journeys import dispatch, processing
from shared.people import links
from shared.settings import Settings, get_settings
from shared.sources.signatures import shopify_signature, timestamped_signature, woocommerce_signature
from shared.storage import Consent, tables
from tests.conftest import drain_events, sample_json

# A page view or a refusal publishes no metric: Powertools says so, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

NOW = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)  # the form sample's consent is at 09:12:30
SHOPIFY, WOO, GENERIC, WRITE_KEY, LINK = "shop-secret", "woo-secret", "generic-secret", "write-key", "link-secret"
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples at every run: a failure is reproduced by running again
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- strategies ------------------------------------------------------------------------------------------------

# Field names every source reads, so arbitrary payloads reach the mappings rather than stopping at the first check.
VOCABULARY = [
    *("type", "userId", "anonymousId", "messageId", "event", "name", "traits", "context", "properties", "batch"),
    *("timestamp", "originalTimestamp", "sentAt", "email", "phone", "firstName", "first_name", "lastName"),
    *("last_name", "locale", "timezone", "birthday", "plan", "planType", "email_marketing_consent"),
    *("sms_marketing_consent", "state", "opt_in_level", "consent_updated_at", "total", "revenue", "value"),
    *("products", "lines", "recommendations", "quantity", "price", "currency", "order_id", "recovery_url"),
    *("checkout_id", "path", "url", "title", "id", "contact", "occurred_at", "updated_at", "attributes"),
    *("email_consent", "sms_consent", "level", "at", "wording", "consent", "request_id", "image", "product_id"),
    *("coupon", "discount_code", "page", "referrer", "status_url", "sku", "variant"),
]
INTERESTING = [
    *("identify", "track", "page", "screen", "Order Completed", "Checkout Started", "Signed Up", "Form Submitted"),
    *("subscribed", "unsubscribed", "granted", "denied", "single_opt_in", "confirmed_opt_in", "unknown"),
    *("lea@example.com", "Lea@Example.COM", "lea@", "a@b.test", "x" * 300 + "@example.com", "+33612345678"),
    *("2026-11-24T09:00:00Z", "2026-11-24T09:00:00", "1999-01-01T00:00:00Z", "2031-01-01T00:00:00+02:00"),
    *("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "yesterday", "1990-03-15", "Europe/Paris"),
    *("NaN", "-1", "1e400", "-0", "29.90", "Léa\r\nBcc: x", "\u202eevil", "\x00", "https://boutique.example/p"),
    *("order.placed", "order.paid", "checkout.started", "contact.subscribed", "page.viewed", "form.submitted"),
    *("fr-FR", "/ressources", "javascript:alert(1)"),
]
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(INTERESTING),
)
keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=12))
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=25,
)
objects = st.dictionaries(keys, json_values, max_size=8)
replacements = st.one_of(st.sampled_from(INTERESTING), leaves, json_values)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """A documented payload with one to three of its values (at any depth) replaced by arbitrary JSON."""
    payload = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        node = payload
        while True:
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                key = draw(st.integers(0, len(node) - 1))
            else:
                break
            if not isinstance(node[key], dict | list) or not node[key] or draw(st.booleans()):
                node[key] = draw(replacements)
                break
            node = node[key]
    return payload


def encode(value: Any, data: st.DataObject) -> bytes:
    """JSON text, where a non-finite float becomes `NaN`, `Infinity`, or an overflowing literal such as 1e400."""
    text = json.dumps(value, allow_nan=True)
    if data.draw(st.booleans(), label="overflowing literal"):
        text = text.replace("Infinity", "1e400")
    return text.encode("utf-8", "surrogatepass")


# ---- the handlers, in-process ----------------------------------------------------------------------------------


def http(method: str, path: str, body: bytes, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    """An HTTP API (payload 2.0) request, as API Gateway sends it: a body that is not UTF-8 in base64."""
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(part.split("=", 1) for part in query.split("&") if "=" in part) or None,
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": text,
        "isBase64Encoded": encoded,
    }


@pytest.fixture
def env(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """moto with the events queue and a state machine per scenario; the handlers' environment; the clock fixed."""
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(
        QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    )["QueueUrl"]
    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    for entry in dispatch.catalogue():
        sfn.create_state_machine(
            name=f"parcours-{entry.scenario}", definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn"
        )
    monkeypatch.setattr(clock, "wall_time", lambda: NOW.timestamp())
    for name, value in {
        **aws,
        "PARCOURS_QUEUE_URL": url,
        "PARCOURS_SHOPIFY_SECRET": SHOPIFY,
        "PARCOURS_WOOCOMMERCE_SECRET": WOO,
        "PARCOURS_GENERIC_SECRET": GENERIC,
        "PARCOURS_WRITE_KEY": WRITE_KEY,
        "PARCOURS_LINK_SECRET": LINK,
        "POWERTOOLS_METRICS_NAMESPACE": "parcours",
        "POWERTOOLS_SERVICE_NAME": "parcours",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def ingest(path: str, body: bytes, headers: dict[str, str], settings_: Settings) -> int:
    """The ingest function's answer; on a 2xx, every event it queued is processed, which must not fail."""
    from functions.ingest import app

    answer = app.lambda_handler(
        http("POST", path, body, {"content-type": "application/json", **headers}),
        InvocationContext.of("parcours-IngestFunction", timeout=10),
    )
    status = int(answer["statusCode"])
    assert status < 500, (path, answer["body"])
    queued = drain_events(settings_.queue_url)
    if status >= 300:
        assert queued == [], "a refused request queued an event"
    for event in queued:
        processing.process(Event.from_dict(event), settings_, settings_.clock())
        drain_events(settings_.queue_url)  # what the processing emitted (score.changed, ...)
    return status


def tracking_headers(data: st.DataObject) -> dict[str, str]:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    return {"authorization": data.draw(st.sampled_from([auth] * 8 + ["Basic !!", ""]), label="authorization")}


# Documented messages, mutated: most examples get past the first checks and reach the mappings and the processing.
TRACKING: dict[str, Any] = {
    "identify": {
        "type": "identify", "userId": "u-1", "anonymousId": "a-1", "timestamp": "2026-11-24T08:59:00Z",
        "traits": {"email": "lea@example.com", "firstName": "Léa", "plan": "pro", "birthday": "1990-03-15",
                   "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                               "consent_updated_at": "2026-11-24T08:00:00Z"}},
    },
    "track": {
        "type": "track", "userId": "u-1", "event": "Order Completed",
        "properties": {"total": 27.5, "currency": "EUR", "order_id": "1042",
                       "products": [{"name": "Stylo", "quantity": 1, "price": "29.90", "url": "https://b.example/p"}],
                       "recommendations": [{"name": "Encre", "price": "6.50"}]},
    },
    "page": {"type": "page", "anonymousId": "a-1", "properties": {"url": "https://boutique.example/p", "path": "/p"}},
}  # fmt: skip
TRACKING["batch"] = {
    "batch": [TRACKING["identify"], TRACKING["track"], TRACKING["page"]],
    "sentAt": "2026-11-24T09:00:00Z",
}


# ---- ingest routes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["identify", "track", "page", "batch"])
@EXAMPLES
@given(data=st.data())
def test_the_tracking_api_never_answers_5xx_nor_accepts_poison(env: Settings, call: str, data: st.DataObject) -> None:
    if call == "batch":
        arbitrary: Any = st.builds(lambda messages: {"batch": messages}, st.lists(objects, min_size=1, max_size=4))
    else:
        arbitrary = objects | json_values
    payload = data.draw(st.one_of(mutated(TRACKING[call]), mutated(TRACKING[call]), arbitrary), label="payload")
    if isinstance(payload, dict) and data.draw(st.booleans()):  # mostly addressed to someone, so it gets through
        payload.setdefault("userId", "u-1")
    ingest(f"/v1/{call}", encode(payload, data), tracking_headers(data), env)


@EXAMPLES
@given(body=st.binary(max_size=300), gzipped=st.booleans())
def test_arbitrary_bytes_to_the_tracking_api_never_answer_5xx(env: Settings, body: bytes, gzipped: bool) -> None:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"authorization": auth, **({"content-encoding": "gzip"} if gzipped else {})}
    ingest("/v1/batch", body, headers, env)


@pytest.mark.parametrize(
    ("topic", "sample"),
    [("customers/create", "customers-create.json"), ("orders/create", "orders-create.json"),
     ("checkouts/update", "checkouts-update.json"), ("customers/redact", "customers-redact.json")],
)  # fmt: skip
@EXAMPLES
@given(data=st.data())
def test_shopify_webhooks_never_answer_5xx_nor_accept_poison(
    env: Settings, topic: str, sample: str, data: st.DataObject
) -> None:
    payload = data.draw(mutated(sample_json(f"shopify/{sample}")) | objects)
    body = encode(payload, data)
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-event-id": data.draw(st.sampled_from(["evt-1", "e" * 600, "évt\r\n"]) | st.text(max_size=20)),
        "x-shopify-hmac-sha256": data.draw(st.sampled_from([shopify_signature(body, SHOPIFY)] * 4 + ["é", ""])),
    }
    if data.draw(st.booleans()):
        headers["x-shopify-triggered-at"] = data.draw(st.sampled_from(INTERESTING) | st.text(max_size=30))
    ingest("/webhooks/shopify", body, headers, env)


@pytest.mark.parametrize(
    ("topic", "sample"),
    [("customer.created", "customer-created.json"), ("order.created", "order-created.json"),
     ("order.updated", "order-updated-paid.json")],
)  # fmt: skip
@EXAMPLES
@given(data=st.data())
def test_woocommerce_webhooks_never_answer_5xx_nor_accept_poison(
    env: Settings, topic: str, sample: str, data: st.DataObject
) -> None:
    payload = data.draw(mutated(sample_json(f"woocommerce/{sample}")) | objects)
    body = encode(payload, data)
    headers = {
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-id": data.draw(st.sampled_from(["7", "x" * 600]) | st.text(max_size=10)),
        "x-wc-webhook-delivery-id": "d-1",
        "x-wc-webhook-signature": data.draw(st.sampled_from([woocommerce_signature(body, WOO)] * 4 + ["é", ""])),
    }
    ingest("/webhooks/woocommerce", body, headers, env)


@EXAMPLES
@given(data=st.data())
def test_generic_webhooks_never_answer_5xx_nor_accept_poison(env: Settings, data: st.DataObject) -> None:
    order = {
        "id": "o-1",
        "type": "order.placed",
        "occurred_at": "2026-11-24T08:00:00Z",
        "contact": {"email": "lea@example.com", "id": "u-1", "attributes": {"plan": "pro"}},
        "properties": {"total": "29.90", "currency": "EUR", "lines": [{"name": "Stylo", "quantity": 2}]},
    }
    payload = data.draw(
        st.one_of(mutated(sample_json("generic/form-submitted.json")), mutated(order), objects), label="payload"
    )
    body = encode(payload, data)
    stamp = int(NOW.timestamp())
    signature = data.draw(
        st.sampled_from([timestamped_signature(body, GENERIC, stamp)] * 8 + ["t=²,v1=ab", f"t={stamp},v1=é", "\ud800"]),
        label="signature",
    )
    ingest("/webhooks/generic", body, {"x-parcours-signature": signature}, env)


@EXAMPLES
@given(data=st.data())
def test_arbitrary_bytes_to_the_signed_webhooks_never_answer_5xx(env: Settings, data: st.DataObject) -> None:
    body = data.draw(st.binary(max_size=300))
    stamp = int(NOW.timestamp())
    ingest("/webhooks/generic", body, {"x-parcours-signature": timestamped_signature(body, GENERIC, stamp)}, env)
    shop = {"x-shopify-topic": "orders/create", "x-shopify-event-id": "e"}
    ingest("/webhooks/shopify", body, {**shop, "x-shopify-hmac-sha256": shopify_signature(body, SHOPIFY)}, env)
    woo = {"x-wc-webhook-topic": "order.created", "x-wc-webhook-id": "1"}
    ingest("/webhooks/woocommerce", body, {**woo, "x-wc-webhook-signature": woocommerce_signature(body, WOO)}, env)


@EXAMPLES
@given(data=st.data())
def test_the_scenario_start_route_never_answers_5xx_nor_accepts_poison(env: Settings, data: st.DataObject) -> None:
    base = {"email": "lea@example.com", "first_name": "Léa", "attributes": {"plan": "pro"},
            "consent": {"state": "granted", "level": "single_opt_in", "at": "2026-11-24T08:00:00Z"},
            "properties": {"source": "crm"}}  # fmt: skip
    payload = data.draw(st.one_of(mutated(base), mutated(base), objects, json_values), label="payload")
    encoded = encode(payload, data)
    body = data.draw(st.one_of(st.just(encoded), st.just(encoded), st.just(encoded), st.binary(max_size=100)))
    ingest("/v1/scenarios/onboarding/start", body, {}, env)


# ---- subscription routes ---------------------------------------------------------------------------------------


def subscription(method: str, path: str, body: bytes, token: str, content_type: str) -> int:
    from functions.subscription import app

    answer = app.lambda_handler(
        http(method, path, body, {"content-type": content_type}, f"t={quote(token, safe='')}"),
        InvocationContext.of("parcours-SubscriptionFunction", timeout=10),
    )
    status = int(answer["statusCode"])
    assert status < 500, (path, status)
    return status


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [("POST", "/unsubscribe", "all"), ("GET", "/unsubscribe", "all"), ("POST", "/preferences", "preferences"),
     ("GET", "/preferences", "preferences"), ("GET", "/confirm", "confirm")],
)  # fmt: skip
@EXAMPLES
@given(data=st.data())
def test_the_subscription_routes_never_answer_5xx(
    env: Settings, method: str, path: str, scope: str, data: st.DataObject
) -> None:
    contacts = tables(env).contacts
    if contacts.count("c1") == 0:
        contact = contacts(contact_id="c1", email="lou@example.com", locale="fr", created_at=NOW, updated_at=NOW)
        contact.email_consent = Consent(state="granted", level="single_opt_in", source="generic:x", at=NOW)
        contact.save()
    genuine = links.token(data.draw(st.sampled_from(["c1", "gone"])), scope, LINK)
    token = data.draw(st.just(genuine) | st.text(max_size=60), label="token")
    form = data.draw(
        st.sampled_from([b"List-Unsubscribe=One-Click", b"do=unsubscribe", b"do=save&topic=tips&frequency=weekly",
                         b"do=resubscribe&consent=yes", b"do=%ff%fe", b"topic=" + b"x" * 300])
        | st.binary(max_size=200),
        label="form",
    )  # fmt: skip
    content_type = data.draw(st.sampled_from(["application/x-www-form-urlencoded", "application/json", ""]))
    subscription(method, path, form, token, content_type)


def test_a_route_without_a_body_or_with_bad_base64_is_400_not_500(env: Settings) -> None:
    from functions.ingest import app

    event = http("POST", "/v1/track", b"", {"content-type": "application/json"})
    event.update(body="%%% not base64", isBase64Encoded=True)
    answer = app.lambda_handler(event, InvocationContext.of("parcours-IngestFunction", timeout=10))
    assert answer["statusCode"] == 400
    assert re.search("base64", answer["body"])
