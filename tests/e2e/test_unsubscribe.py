"""RFC 8058 over HTTP: the link from a received email's header, one click, and the series stops."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_shopify_webhook import at_a_whole_second, customer, unique_email


def fetch(url: str, body: bytes | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def consent_state(local: RunningLocal, email: str) -> str:
    dynamodb = local.client("dynamodb")
    ids = local.physical_ids()
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    contact_id = identity["Item"]["contact_id"]
    contact = dynamodb.get_item(TableName=ids["ContactsTable"], Key={"contact_id": contact_id}, ConsistentRead=True)
    return str(contact["Item"]["email_consent"]["M"]["state"]["S"])


def test_one_click_from_the_email_header_stops_the_rest_of_the_series(local: RunningLocal) -> None:
    # Given a subscriber who received the first welcome email
    email = unique_email("leaving")
    subscribed = at_a_whole_second(local)
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the welcome series, started by the signup, sends its first email
    [first] = local.outbox(to=email)
    url = re.match(r"<([^>]+)>", first["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert first["html"].count(url.replace("&", "&amp;")) >= 1  # the same link is visible in the body

    # When a link scanner fetches it, nothing changes: the page only offers a button
    status, page = fetch(url)
    assert status == 200
    assert '<form method="post"' in page
    assert consent_state(local, email) == "granted"

    # When the mail client sends the one-click POST (twice: a repeat is harmless)
    assert fetch(url, b"List-Unsubscribe=One-Click")[0] == 200
    status, page = fetch(url, b"List-Unsubscribe=One-Click")
    assert status == 200
    assert "ne recevrez plus" in page

    # Then consent is withdrawn and no later email of the series goes out
    assert consent_state(local, email) == "denied"
    local.advance(to=subscribed + timedelta(days=2))  # J+2, the series' second email's moment
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]


def test_a_forged_or_tampered_token_is_refused(local: RunningLocal) -> None:
    email = unique_email("victim")
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the welcome series sends its first email
    [first] = local.outbox(to=email)
    url = re.match(r"<([^>]+)>", first["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    contact_id, scope, mac = url.split("t=", 1)[1].rsplit(".", 2)  # contact_id: with its key id
    for forged in (f"{contact_id}.{scope}.{mac[:-2]}AA", f"{uuid.uuid4().hex}.{scope}.{mac}", "nonsense", ""):
        status, page = fetch(f"{local.api_url}/unsubscribe?t={forged}", b"List-Unsubscribe=One-Click")
        assert status == 403
        assert "pas valide" in page
    assert consent_state(local, email) == "granted"
