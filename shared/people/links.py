"""Signed links in emails: an HMAC over the contact and the scope, so a forged or edited token is refused.

A token names the key that signed it, `<key id>.<contact id>.<scope>.<mac>`, so the link secret can rotate: the
setting holds the current key first, then the previous ones still accepted during a grace period (`new,old`, as
the generic webhooks' secrets). New links are signed with the first; a link is accepted while its key is listed.
A token from before key ids (`<contact id>.<scope>.<mac>`, in emails already sent) is checked against every listed
key, so it keeps working as long as the key that signed it is listed.

An unsubscribe link also names the email it is in, `<key id>.<contact id>.<scope>.<origin>.<mac>`: the origin is the
scenario, step and variant of the send (base64url), under the MAC, so the reports count the unsubscribe on that
email's step (shared.reports) and nobody can move it to another; the tokens without it stay valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import NamedTuple
from urllib.parse import quote

from shared.settings import ConfigurationError


class Origin(NamedTuple):
    """The email a link is in: the scenario, its step and the split variant (None outside a split)."""

    scenario: str
    step: str
    variant: str | None = None

    def encoded(self) -> str:
        text = "\n".join((self.scenario, self.step, self.variant or ""))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decoded(cls, value: str) -> Origin | None:
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        parts = text.split("\n")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            return None
        return cls(parts[0], parts[1], parts[2] or None)


class Link(NamedTuple):
    """What a genuine token says: whose link, which route it opens, and the email it is in (when it says)."""

    contact_id: str
    scope: str
    origin: Origin | None = None


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


def _mac(contact_id: str, scope: str, key: str, kid: str | None = None, origin: str | None = None) -> str:
    # With a key id, it is signed too (another message than a token without one: neither passes for the other); with
    # an origin, a third message.
    if origin is not None:
        message = f"link/3\n{kid}\n{contact_id}\n{scope}\n{origin}"
    else:
        message = f"{contact_id}:{scope}" if kid is None else f"link/2\n{kid}\n{contact_id}\n{scope}"
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def token(contact_id: str, scope: str, secret: str, origin: Origin | None = None) -> str:
    """A token signed with the current key (the first the link secret setting lists); naming its email if given."""
    current = keys(secret)[0]
    kid = key_id(current)
    if origin is not None:
        encoded = origin.encoded()
        return f"{kid}.{contact_id}.{scope}.{encoded}.{_mac(contact_id, scope, current, kid, encoded)}"
    return f"{kid}.{contact_id}.{scope}.{_mac(contact_id, scope, current, kid)}"


def verify(value: str, secret: str) -> tuple[str, str] | None:
    """(contact id, scope) of a genuine token signed with a key the setting lists, None for anything else."""
    link = read(value, secret)
    return (link.contact_id, link.scope) if link is not None else None


def read(value: str, secret: str) -> Link | None:
    """What a genuine token signed with a key the setting lists says, None for anything else."""
    parts = value.split(".")
    if not all(parts):
        return None
    listed = keys(secret)
    if len(parts) == 5:  # naming the email it is in
        signer, contact_id, scope, encoded, mac = parts
        origin = Origin.decoded(encoded)
        if origin is None:
            return None
        for key in (key for key in listed if key_id(key) == signer):
            if hmac.compare_digest(mac.encode(), _mac(contact_id, scope, key, signer, encoded).encode()):
                return Link(contact_id, scope, origin)
        return None
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
            return Link(contact_id, scope)
    return None


def url(base_url: str, path: str, contact_id: str, scope: str, secret: str) -> str:
    """A signed link to one of the public subscription routes (/unsubscribe, /preferences, /confirm)."""
    return f"{base_url}{path}?t={quote(token(contact_id, scope, secret))}"
