"""Signed links in emails: an HMAC over the contact and the scope, so a forged or edited token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote


def _mac(contact_id: str, scope: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{contact_id}:{scope}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def token(contact_id: str, scope: str, secret: str) -> str:
    return f"{contact_id}.{scope}.{_mac(contact_id, scope, secret)}"


def verify(value: str, secret: str) -> tuple[str, str] | None:
    """(contact id, scope) of a genuine token, None for anything else."""
    parts = value.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    contact_id, scope, mac = parts
    if not hmac.compare_digest(mac.encode(), _mac(contact_id, scope, secret).encode()):
        return None
    return contact_id, scope


def url(base_url: str, path: str, contact_id: str, scope: str, secret: str) -> str:
    """A signed link to one of the public subscription routes (/unsubscribe, /preferences, /confirm)."""
    return f"{base_url}{path}?t={quote(token(contact_id, scope, secret))}"
