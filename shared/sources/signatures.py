"""Webhook signatures, checked over the exact raw bytes before anything parses them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re


def shopify_signature(raw_body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(raw body, app secret))."""
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _ascii(text: str) -> bytes | None:
    """A header's value as bytes to compare; None when it holds anything a signature never does (a malformed header
    is a 401 like a wrong one, never a 500)."""
    try:
        return text.strip().encode("ascii")
    except UnicodeEncodeError:
        return None


def verify_shopify(raw_body: bytes, header: str | None, secret: str) -> bool:
    if not header or not secret or not isinstance(header, str):
        return False
    given = _ascii(header)
    expected = shopify_signature(raw_body, secret)
    return given is not None and hmac.compare_digest(expected.encode(), given)


def woocommerce_signature(raw_body: bytes, secret: str) -> str:
    """X-WC-Webhook-Signature: base64(HMAC-SHA256(raw body, the webhook's secret)), as Shopify's."""
    return shopify_signature(raw_body, secret)


def verify_woocommerce(raw_body: bytes, header: str | None, secret: str) -> bool:
    return verify_shopify(raw_body, header, secret)


_TIMESTAMP = re.compile(r"[0-9]{1,12}")
TOLERANCE = 300  # seconds between the signature's timestamp and the receiver's clock (replays are refused)


def timestamped_signature(raw_body: bytes, secret: str, timestamp: int) -> str:
    """The Stripe pattern: `t=<unix>,v1=<hex HMAC-SHA256 over "{t}.{raw body}">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_timestamped(
    raw_body: bytes, header: str | None, secrets: list[str], now: float, tolerance: int = TOLERANCE
) -> bool:
    """True when a `v1` matches one of the secrets (rotation: old and new) and `t` is within the tolerance."""
    if not header or not isinstance(header, str) or not any(secrets):
        return False
    parts = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    given = [candidate for key, _, value in parts if key == "v1" and (candidate := _ascii(value)) is not None]
    # ASCII digits only: `str.isdigit` also accepts `²`, which int() refuses (a 500 once).
    if len(stamps) != 1 or _TIMESTAMP.fullmatch(stamps[0]) is None or not given:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    for secret in filter(None, secrets):
        expected = timestamped_signature(raw_body, secret, timestamp).rpartition("v1=")[2]
        if any(hmac.compare_digest(expected.encode(), candidate) for candidate in given):
            return True
    return False
