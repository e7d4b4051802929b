"""Webhook signatures, checked over the exact raw bytes before anything parses them."""

from __future__ import annotations

import base64
import hashlib
import hmac


def shopify_signature(raw_body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(raw body, app secret))."""
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_shopify(raw_body: bytes, header: str | None, secret: str) -> bool:
    if not header or not secret:
        return False
    expected = shopify_signature(raw_body, secret)
    return hmac.compare_digest(expected.encode(), header.strip().encode())
