"""Plays signed webhooks against an API, as a shop would: used by the demo and the end-to-end tests."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import clock
from shared.sources.signatures import shopify_signature, timestamped_signature, woocommerce_signature


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, _json(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, _json(error.read()))


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return {"raw": raw.decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"value": value}


def shopify_headers(
    body: bytes, topic: str, secret: str, event_id: str, shop: str = "boutique.myshopify.com"
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": shopify_signature(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": f"wh-{event_id}",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": datetime.fromtimestamp(clock.wall_time(), UTC).isoformat(),
        "X-Shopify-API-Version": "2026-10",
    }


def post_shopify(api_url: str, topic: str, body: bytes, secret: str, event_id: str) -> Answer:
    return post(f"{api_url}/webhooks/shopify", body, shopify_headers(body, topic, secret, event_id))


def tracking_headers(write_key: str | None) -> dict[str, str]:
    """What Segment's libraries send: JSON, and the write key as the HTTP Basic user with an empty password."""
    headers = {"Content-Type": "application/json"}
    if write_key is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    return headers


def post_tracking(api_url: str, path: str, body: dict[str, Any] | bytes, write_key: str | None) -> Answer:
    """POSTs to the tracking API, e.g. `post_tracking(url, "/v1/page", {"anonymousId": ...}, key)`."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return post(f"{api_url}{path}", raw, tracking_headers(write_key))


def woocommerce_headers(
    body: bytes, topic: str, secret: str, webhook_id: str = "14", source: str = "https://boutique.example/"
) -> dict[str, str]:
    """As WooCommerce sends them: the delivery id is new at every delivery."""
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": woocommerce_signature(body, secret),
        "X-WC-Webhook-ID": webhook_id,
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }


def post_woocommerce(api_url: str, topic: str, body: bytes, secret: str, webhook_id: str = "14") -> Answer:
    return post(f"{api_url}/webhooks/woocommerce", body, woocommerce_headers(body, topic, secret, webhook_id))


def post_woocommerce_ping(api_url: str, webhook_id: str = "14") -> Answer:
    """The activation ping: a form body, no signature."""
    body = f"webhook_id={webhook_id}".encode()
    return post(f"{api_url}/webhooks/woocommerce", body, {"Content-Type": "application/x-www-form-urlencoded"})


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def post_generic(api_url: str, body: bytes, secret: str, at: float | None = None) -> Answer:
    """A site's own event, signed the Stripe way (`X-Parcours-Signature: t=...,v1=...`) at `at` (default now)."""
    timestamp = int(clock.wall_time() if at is None else at)
    headers = {
        "Content-Type": "application/json",
        "X-Parcours-Signature": timestamped_signature(body, secret, timestamp),
    }
    return post(f"{api_url}/webhooks/generic", body, headers)


def signed(method: str, url: str, body: bytes = b"", credentials: Any = None) -> Answer:
    """An IAM-authorised call (the admin routes), signed with SigV4 as the AWS SDKs and `parcours lists` sign it;
    by default with the local runtime's credentials."""
    from infra import sigv4

    headers = sigv4.sign(method, url, body, credentials or sigv4.LOCAL_CREDENTIALS, sigv4.LOCAL_REGION, JSON)
    request = urllib.request.Request(url, data=body if method != "GET" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, _json(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, _json(error.read()))


JSON = {"content-type": "application/json"}
