"""Input that would poison processing, over real HTTP against `parcours local`: refused with a 400 naming the field
(or a 401 for a malformed signature), never a 5xx; and a name with CR/LF accepted, stripped."""

from __future__ import annotations

import gzip
import json
import uuid

from infra.localprocess import RunningLocal
from infra.webhook_client import post, post_tracking, tracking_headers
from tests.conftest import WRITE_KEY
from tests.e2e.test_shopify_webhook import unique_email
from tests.e2e.test_tracking_api import contact_of


def test_a_nan_total_a_naive_time_and_a_deep_gzip_are_400_and_queue_nothing(local: RunningLocal) -> None:
    user = uuid.uuid4().hex
    raw = json.dumps({"userId": user, "event": "Order Completed", "properties": {"total": "NaN"}}).encode()
    answer = post_tracking(local.api_url, "/v1/track", raw, WRITE_KEY)
    assert answer.status == 400
    assert answer.body["error"].startswith("properties.total: must be a finite number >= 0")

    consent = {"state": "subscribed", "consent_updated_at": "2026-11-24T09:00:00+00:00"}
    batch = {"batch": [{"type": "identify", "userId": user, "traits": {"email": unique_email("ok")}},
                       {"type": "identify", "userId": user, "timestamp": "1999-01-01T00:00:00Z",
                        "traits": {"email_marketing_consent": consent}}]}  # fmt: skip
    answer = post_tracking(local.api_url, "/v1/batch", batch, WRITE_KEY)
    assert (answer.status, answer.body["error"].split(":")[0]) == (400, "batch[1].occurred_at")

    deep = gzip.compress(b"[" * 10_000 + b"]" * 10_000, 9)
    answer = post(f"{local.api_url}/v1/batch", deep, {**tracking_headers(WRITE_KEY), "Content-Encoding": "gzip"})
    assert answer.status == 400
    assert "nests deeper than 32 levels" in answer.body["error"]
    assert contact_of(local, f"segment#{user}") is None  # nothing of the refused batch was queued


def test_a_malformed_generic_signature_is_401(local: RunningLocal) -> None:
    body = json.dumps({"id": uuid.uuid4().hex, "type": "track"}).encode()
    for signature in ("t=²,v1=00", "t=1,v1=é"):
        headers = {"Content-Type": "application/json", "X-Parcours-Signature": signature}
        assert post(f"{local.api_url}/webhooks/generic", body, headers).status == 401


def test_a_name_with_cr_lf_is_stripped_and_the_contact_processed(local: RunningLocal) -> None:
    user, email = uuid.uuid4().hex, unique_email("crlf")
    identify = {
        "userId": user,
        "traits": {"email": email, "firstName": "Léa\r\nBcc: x@evil.example", "lastName": "\u202eD"},
    }
    assert post_tracking(local.api_url, "/v1/identify", identify, WRITE_KEY).status == 200
    contact_id = contact_of(local, f"segment#{user}")
    assert contact_id is not None
    table = local.physical_ids()["ContactsTable"]
    item = local.client("dynamodb").get_item(TableName=table, Key={"contact_id": {"S": contact_id}})["Item"]
    assert (item["first_name"]["S"], item["last_name"]["S"]) == ("Léa Bcc: x@evil.example", "D")
