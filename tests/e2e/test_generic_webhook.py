"""A site's own signed events over real HTTP against `parcours local` (`POST /webhooks/generic`)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import post, post_generic
from shared.sources.signatures import timestamped_signature
from tests.conftest import GENERIC_SECRETS, sample_json
from tests.e2e.test_shopify_webhook import identity_exists, unique_email

NEW, OLD = GENERIC_SECRETS


def signup(email: str, **changes: Any) -> bytes:
    payload: dict[str, Any] = sample_json("generic/form-submitted.json")
    payload.update({"id": uuid.uuid4().hex, "type": "contact.subscribed", **changes})
    payload["contact"] = {**payload["contact"], "email": email, "id": uuid.uuid4().hex}
    return json.dumps(payload).encode()


def stored_contact(local: RunningLocal, email: str) -> dict[str, Any]:
    ids = local.physical_ids()
    dynamodb = local.client("dynamodb")
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    contact_id = identity["Item"]["contact_id"]["S"]
    item: dict[str, Any] = dynamodb.get_item(TableName=ids["ContactsTable"], Key={"contact_id": {"S": contact_id}})[
        "Item"
    ]
    return item


def test_a_signup_from_the_site_is_welcomed_once_with_its_consent_proof_kept(local: RunningLocal) -> None:
    # Given a signup form that posts to parcours, signed with the old secret while a rotation is in progress
    email = unique_email("lea")
    body = signup(email)
    signed_up = local.now()

    # When it is delivered twice
    first = post_generic(local.api_url, body, OLD)
    again = post_generic(local.api_url, body, NEW)

    # Then both are acknowledged, the welcome series starts once, and the consent's wording is kept as proof
    assert (first.status, again.status) == (202, 202)
    assert first.body["type"] == "contact.subscribed"
    local.advance(seconds=86400)  # a day: a duplicate (or a redelivery) would show by now, e2 is due at J+2
    [welcome] = local.outbox(to=email)
    assert welcome["step"] == "e1-welcome"
    assert datetime.fromisoformat(welcome["sent_at"]) == signed_up.replace(microsecond=0)
    contact = stored_contact(local, email)
    proof = contact["email_consent"]["M"]
    assert proof["source"]["S"] == "generic:contact.subscribed"
    assert proof["wording"]["S"].startswith("newsletter-form v3")
    assert contact["phone"]["S"] == "+33612345678"


@pytest.mark.parametrize("secret", ["not-our-secret", ""], ids=["forged", "empty"])
def test_a_forged_signature_is_401_and_nothing_is_recorded(local: RunningLocal, secret: str) -> None:
    email = unique_email("forged")
    answer = post_generic(local.api_url, signup(email), secret)
    assert answer.status == 401
    assert "X-Parcours-Signature" in answer.body["error"]
    local.advance(seconds=0)  # whatever the request set going has run
    assert not identity_exists(local, email)


def test_a_replay_of_a_signed_request_after_300_seconds_is_401(local: RunningLocal) -> None:
    email = unique_email("replay")
    # The sender signs with its wall clock, and the receiver checks the window on its own (not the simulated one)
    answer = post_generic(local.api_url, signup(email), NEW, at=time.time() - 301)
    assert answer.status == 401
    local.advance(seconds=0)
    assert not identity_exists(local, email)


def test_bad_bodies_are_refused_with_the_reason(local: RunningLocal) -> None:
    too_big = b'{"id": "' + b"x" * (256 * 1024) + b'"}'
    assert post_generic(local.api_url, too_big, NEW).status == 413
    assert post_generic(local.api_url, b"{not json", NEW).status == 400
    missing_id = post_generic(local.api_url, json.dumps({"type": "contact.subscribed"}).encode(), NEW)
    assert (missing_id.status, missing_id.body["error"]) == (400, "field id must be a non-empty text")
    raw = signup(unique_email("form"))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Parcours-Signature": timestamped_signature(raw, NEW, int(time.time())),
    }
    assert post(f"{local.api_url}/webhooks/generic", raw, headers).status == 415


def test_an_unknown_type_is_accepted_and_recorded_without_effect(local: RunningLocal) -> None:
    email = unique_email("invoice")
    event_id = uuid.uuid4().hex
    answer = post_generic(local.api_url, signup(email, id=event_id, type="invoice.sent"), NEW)
    assert (answer.status, answer.body["type"]) == (202, "unrecognised")

    def recorded() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = local.client("dynamodb").query(
            TableName=local.physical_ids()["EventsTable"],
            KeyConditionExpression="contact_id = :k",
            ExpressionAttributeValues={":k": {"S": "_unattributed#generic"}},
        )["Items"]
        return [item for item in items if item["at_id"]["S"].endswith(f"#generic#{event_id}")]

    local.advance(seconds=0)  # the queued event is processed
    assert len(recorded()) == 1
    assert not identity_exists(local, email)
