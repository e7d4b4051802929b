"""The attacks of issue 14 on what goes out and what links carry, over real HTTP against `parcours local`: each now
fails safely (subjects, link keys, bearer links)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import timedelta

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from shared.people import links
from tests.conftest import LINK_SECRETS, SHOPIFY_SECRET
from tests.e2e.test_cart_to_order import with_email
from tests.e2e.test_generic_webhook import stored_contact
from tests.e2e.test_scenario_start import start
from tests.e2e.test_shopify_webhook import customer, unique_email
from tests.e2e.test_unsubscribe import consent_state, fetch


def onboarding(local: RunningLocal, email: str, **person: object) -> dict[str, object]:
    """Starts onboarding for the person (an app's signup) and answers its first email."""
    consent = {"state": "granted", "level": "confirmed_opt_in", "at": local.now().isoformat()}
    body = {"email": email, "locale": "en", "consent": consent, "request_id": uuid.uuid4().hex, **person}
    assert start(local, "onboarding", body)[0] == 202
    local.advance(seconds=0)
    [first] = [m for m in local.outbox(to=email) if m["scenario"] == "onboarding"]
    return first


def test_a_name_with_an_apostrophe_and_an_ampersand_reads_as_written_in_the_subject(local: RunningLocal) -> None:
    email = unique_email("obrien")
    message = onboarding(local, email, first_name="O'Brien & Co")
    assert message["subject"] == "Welcome, O'Brien & Co: your account is ready"  # not O&#39;Brien &amp; Co
    assert "O'Brien &amp; Co" in str(message["html"])  # the body stays escaped
    assert "&amp;amp;" not in str(message["html"])
    assert "O'Brien & Co" in str(message["text"])


def test_a_stored_name_with_a_line_break_cannot_add_a_header(local: RunningLocal) -> None:
    # Given a contact whose first name holds a CR/LF (stored before ingest refused control characters)
    email = unique_email("injected")
    assert (
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    )
    local.advance(seconds=0)
    contact_id = stored_contact(local, email)["contact_id"]["S"]
    local.client("dynamodb").update_item(
        TableName=local.physical_ids()["ContactsTable"],
        Key={"contact_id": {"S": contact_id}},
        UpdateExpression="SET first_name = :name, locale = :locale",
        ExpressionAttributeValues={":name": {"S": "Lou\r\nBcc: victim@example.com"}, ":locale": {"S": "en"}},
    )

    # When an email greets them by name
    message = onboarding(local, email)

    # Then it goes out, with one plain subject line and no other recipient
    assert message["subject"] == "Welcome, Lou Bcc: victim@example.com: your account is ready"
    headers = message["headers"]
    assert isinstance(headers, dict)
    assert "Bcc" not in headers
    assert message["to"] == email


def test_links_survive_a_rotation_of_the_link_secret_until_the_old_key_is_removed(local: RunningLocal) -> None:
    # Given a runtime whose link secret is being rotated ("new,old") and a subscriber's first email
    new, old = LINK_SECRETS
    email = unique_email("rotating")
    assert (
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    )
    local.advance(seconds=0)
    [welcome] = local.outbox(to=email)
    header = re.match(r"<([^>]+)>", str(welcome["headers"]["List-Unsubscribe"]))
    assert header is not None
    sent = header.group(1).split("t=", 1)[1]
    contact_id = stored_contact(local, email)["contact_id"]["S"]

    # Then the email's links are signed with the new key and name it
    assert sent.startswith(f"{links.key_id(new)}.{contact_id}.all.")

    # A link signed with the old key, or one sent before tokens named their key, still opens its page
    legacy_mac = hmac.new(old.encode(), f"{contact_id}:all".encode(), hashlib.sha256).digest()[:18]
    legacy = f"{contact_id}.all.{base64.urlsafe_b64encode(legacy_mac).decode()}"
    for accepted in (links.token(contact_id, "all", old), legacy):
        status, page = fetch(f"{local.api_url}/unsubscribe?t={accepted}")
        assert (status, '<form method="post"' in page) == (200, True)

    # A link signed with a key no longer listed, or with its key id swapped, is refused and changes nothing
    removed = "test-link-secret-older"
    swapped = links.key_id(old) + sent[len(links.key_id(new)) :]
    for refused in (
        links.token(contact_id, "all", removed),
        links.token(contact_id, "all", f"{removed},{new}"),
        swapped,
    ):
        status, page = fetch(f"{local.api_url}/unsubscribe?t={refused}", b"List-Unsubscribe=One-Click")
        assert (status, "pas valide" in page) == (403, True)
    assert consent_state(local, email) == "granted"

    # And the one-click POST of the old key's link still unsubscribes (the grace period is for exactly this)
    status, _ = fetch(
        f"{local.api_url}/unsubscribe?t={links.token(contact_id, 'all', old)}", b"List-Unsubscribe=One-Click"
    )
    assert status == 200
    assert consent_state(local, email) == "denied"


def test_a_checkout_s_recovery_link_stays_out_of_the_execution_and_still_reaches_the_reminder(
    local: RunningLocal,
) -> None:
    # Given a subscribed customer who leaves a checkout unfinished (its recovery link opens the checkout: a bearer link)
    email = unique_email("bearer")
    left = local.now()
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    checkout = with_email("checkouts-create.json", email)
    link = json.loads(checkout)["abandoned_checkout_url"]
    assert post_shopify(local.api_url, "checkouts/create", checkout, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    local.advance(seconds=0)

    # Then the abandoned-cart execution's input and history do not hold the link
    sfn = local.client("stepfunctions")
    contact_id = stored_contact(local, email)["contact_id"]["S"]
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("abandoned-cart"))
    [execution] = [
        e
        for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        if contact_id in e["name"]
    ]
    assert "recover?key=" not in sfn.describe_execution(executionArn=execution["executionArn"])["input"]

    # And an hour later the reminder still carries the way back to the cart, read when it was sent
    local.advance(to=left + timedelta(hours=1, seconds=1))
    [reminder] = [m for m in local.outbox(to=email) if m["step"] == "e1-reminder"]
    assert link.replace("&", "&amp;") in str(reminder["html"])
    history = json.dumps(sfn.get_execution_history(executionArn=execution["executionArn"])["events"], default=str)
    assert "e1-reminder" in history  # the send step ran ...
    assert "recover?key=" not in history  # ... and the link appears nowhere in the execution
