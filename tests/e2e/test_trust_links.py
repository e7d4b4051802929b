"""The attacks of issue 14 on what goes out and what links carry, over real HTTP against `parcours local`: each now
fails safely (subjects, link keys, bearer links)."""

from __future__ import annotations

import uuid

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_generic_webhook import stored_contact
from tests.e2e.test_scenario_start import start
from tests.e2e.test_shopify_webhook import customer, unique_email


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
