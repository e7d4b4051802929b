"""Signed links in emails: an HMAC over the contact and the scope, so a forged or edited token is refused.

A token names the key that signed it, `<key id>.<contact id>.<scope>.<mac>`, so the link secret can rotate: the
setting holds the current key first, then the previous ones still accepted during a grace period (`new,old`, as
the generic webhooks' secrets). New links are signed with the first; a link is accepted while its key is listed.
A token from before key ids (`<contact id>.<scope>.<mac>`, in emails already sent) is checked against every listed
key, so it keeps working as long as the key that signed it is listed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from shared.settings import ConfigurationError


def keys(secret: str) -> tuple[str, ...]:
    """The keys of the link secret setting, current first: one secret, or a rotation `new,old[,older]`."""
    listed = tuple(key.strip() for key in secret.split(",") if key.strip())
    if not listed:
        raise ConfigurationError("the link secret setting lists no key")
    return listed


def key_id(key: str) -> str:
    """A key's public name in tokens: `k` and 8 hex characters of an HMAC under the key (names it, reveals nothing
    a token's own MAC does not)."""
    return "k" + hmac.new(key.encode(), b"parcours link key id", hashlib.sha256).hexdigest()[:8]


def _mac(contact_id: str, scope: str, key: str, kid: str | None = None) -> str:
    # With a key id, it is signed too (another message than a token without one: neither passes for the other).
    message = f"{contact_id}:{scope}" if kid is None else f"link/2\n{kid}\n{contact_id}\n{scope}"
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def token(contact_id: str, scope: str, secret: str) -> str:
    """A token signed with the current key (the first the link secret setting lists)."""
    current = keys(secret)[0]
    kid = key_id(current)
    return f"{kid}.{contact_id}.{scope}.{_mac(contact_id, scope, current, kid)}"


def verify(value: str, secret: str) -> tuple[str, str] | None:
    """(contact id, scope) of a genuine token signed with a key the setting lists, None for anything else."""
    parts = value.split(".")
    if not all(parts):
        return None
    listed = keys(secret)
    if len(parts) == 4:
        kid: str | None = parts[0]
        contact_id, scope, mac = parts[1:]
        candidates = [key for key in listed if key_id(key) == kid]  # none when its key was removed
    elif len(parts) == 3:  # signed before tokens named their key: any listed key may have signed it
        kid = None
        contact_id, scope, mac = parts
        candidates = list(listed)
    else:
        return None
    for key in candidates:
        if hmac.compare_digest(mac.encode(), _mac(contact_id, scope, key, kid).encode()):
            return contact_id, scope
    return None


def url(base_url: str, path: str, contact_id: str, scope: str, secret: str) -> str:
    """A signed link to one of the public subscription routes (/unsubscribe, /preferences, /confirm)."""
    return f"{base_url}{path}?t={quote(token(contact_id, scope, secret))}"
