"""A person's file and erasure over real HTTP against `parcours local`: the admin routes (SigV4-signed) and Shopify's
compliance webhooks; what is left afterwards is read by scanning every table of the emulated account."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from infra.localprocess import RunningLocal
from infra.webhook_client import Answer, post_shopify, signed
from tests.conftest import SHOPIFY_SECRET, address_hash, sample
from tests.e2e.test_shopify_webhook import at_a_whole_second, unique_email


def shopify_customer(email: str, phone: str) -> tuple[int, bytes]:
    payload: dict[str, Any] = json.loads(sample("shopify/customers-create.json"))
    customer_id = uuid.uuid4().int % 10**13
    payload.update(email=email, phone=phone, id=customer_id)
    return customer_id, json.dumps(payload).encode()


def unique_phone() -> str:
    return f"+3361{uuid.uuid4().int % 10**8:08d}"


def everything_stored(local: RunningLocal) -> str:
    """Every item of every table of the emulated account, as one text to search."""
    dynamodb = local.client("dynamodb")
    found = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            found += page["Items"]
    return json.dumps(found)


def export(local: RunningLocal, **who: str) -> Answer:
    query = "&".join(f"{name}={quote(value)}" for name, value in who.items())
    return signed("GET", f"{local.api_url}/v1/contacts/export?{query}")


def erase(local: RunningLocal, **who: str) -> Answer:
    return signed("POST", f"{local.api_url}/v1/contacts/erase", json.dumps(who).encode())


def welcomed(local: RunningLocal, email: str, phone: str) -> tuple[int, str]:
    """A Shopify customer with marketing consent, past the welcome email (J+0) and into the series' first wait."""
    customer_id, body = shopify_customer(email, phone)
    assert post_shopify(local.api_url, "customers/create", body, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    local.advance(seconds=3600)
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    contact_id = export(local, email=email).body["people"][0]["contact_id"]
    return customer_id, contact_id


def test_a_persons_file_then_their_erasure_leaves_only_the_hashed_suppression(local: RunningLocal) -> None:
    email, phone = unique_email("erase.me"), unique_phone()
    start = at_a_whole_second(local)
    welcomed(local, email, phone)

    # The file: everything about them, grouped by store
    answer = export(local, email=email.upper())  # an address is found whatever its case
    assert answer.status == 200, answer.body
    (person,) = answer.body["people"]
    stores = person["stores"]
    (contact,) = stores["contacts"]
    assert (contact["email"], contact["phone"], contact["email_consent"]["state"]) == (email, phone, "granted")
    assert contact["consent_history"][0]["source"] == "shopify:customers/create"  # the proof
    assert {i["identity"] for i in stores["identities"]} >= {f"email#{email}", f"phone#{phone}"}
    assert [e["type"] for e in stores["events"]] == ["contact.subscribed"]
    assert [(s["step"], s["subject"]) for s in stores["sends"]] == [("e1-welcome", "Bienvenue, Camille !")]
    assert [(e["scenario"], e["status"]) for e in stores["enrolments"]] == [("welcome", "active")]
    assert [d["key"].partition("#")[0] for d in stores["dates"]] == ["created_at"]
    assert "suppressions" not in stores
    assert export(local, phone=phone).body == answer.body | {"exported_at": answer.body["exported_at"]}
    contact_id = person["contact_id"]

    # The erasure: counts per store, and a repeat removes nothing
    erased = erase(local, email=email)
    assert erased.status == 200, erased.body
    assert erased.body["erased"] is True
    assert erased.body["executions_stopped"] == 1
    assert erased.body["removed"] == {
        "contacts": 1,
        "identities": len(stores["identities"]),
        "events": 1,
        "sends": 1,
        "enrolments": 1,
        "dates": 1,  # the contact's created_at in the dates index
        "marks": 1,  # its event's processed mark: the welcome it started names the contact
    }
    again = erase(local, email=email)
    assert (again.status, again.body["erased"], again.body["removed"]) == (200, False, {})

    # Nothing in any table holds the email, the phone or the contact id
    stored = everything_stored(local)
    assert [value for value in (email, phone, contact_id) if value in stored] == []
    # ... but the tombstone, under the address's keyed hash (the runtime's PARCOURS_SUPPRESSION_KEY), not its plain
    # SHA-256, which anyone holding the address could compute
    assert str(address_hash(email)) in stored
    assert hashlib.sha256(email.encode()).hexdigest() not in stored
    assert export(local, email=email).status == 404
    assert export(local, contact_id=contact_id).status == 404

    # The rest of the welcome series never comes
    local.advance(to=start + timedelta(days=9))
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]

    # The same address signing up again makes a new contact, never mailed: the address stays suppressed
    _, body = shopify_customer(email, phone)
    assert post_shopify(local.api_url, "customers/create", body, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    local.advance(seconds=2 * 86400)
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    (new,) = export(local, email=email).body["people"]
    assert new["contact_id"] != contact_id
    assert new["stores"]["suppressions"][0]["reason"] == "erased"


def test_shopify_customers_redact_erases_the_customer_by_itself(local: RunningLocal) -> None:
    email, phone = unique_email("redact.me"), unique_phone()
    start = at_a_whole_second(local)
    customer_id, contact_id = welcomed(local, email, phone)

    request: dict[str, Any] = json.loads(sample("shopify/customers-redact.json"))
    request["customer"] = {"id": customer_id, "email": email, "phone": phone}
    answer = post_shopify(
        local.api_url, "customers/redact", json.dumps(request).encode(), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    assert answer.status == 202
    local.advance(seconds=60)

    stored = everything_stored(local)
    assert [value for value in (email, phone, contact_id) if value in stored] == []
    local.advance(to=start + timedelta(days=9))
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]


def test_the_person_routes_answer_only_signed_calls_and_name_bad_input(local: RunningLocal) -> None:
    from botocore.credentials import Credentials

    url = f"{local.api_url}/v1/contacts/erase"
    body = json.dumps({"email": unique_email("nobody")}).encode()
    assert signed("POST", url, body, Credentials("local", "not-the-secret")).status == 403
    for bad, named in [
        ({}, "exactly one of email"),
        ({"email": "a@b.example", "phone": "+33612345678"}, "exactly one of email"),
        ({"email": "not an address"}, "email"),
        ({"phone": "06 12 34 56 78"}, "phone"),
        ({"contact_id": "../x"}, "contact_id"),
    ]:
        refused = signed("POST", url, json.dumps(bad).encode())
        assert (refused.status, named in refused.body["error"]) == (400, True), (bad, refused.body)
    assert signed("POST", url, b"[not json").status == 400
    assert export(local, email=unique_email("unknown")).status == 404


def test_shopify_customers_data_request_puts_the_customers_file_in_the_bucket_and_tells_the_operator(
    local: RunningLocal,
) -> None:
    email, phone = unique_email("data.request"), unique_phone()
    customer_id, contact_id = welcomed(local, email, phone)
    # What the operator reads: a queue subscribed to the stack's alarm topic
    ids = local.physical_ids()
    sqs, sns = local.client("sqs"), local.client("sns")
    url = sqs.create_queue(QueueName=f"operator-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = ids["AlarmTopic"]
    subscription = sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )

    request: dict[str, Any] = json.loads(sample("shopify/customers-data_request.json"))
    request_id = uuid.uuid4().int % 10**9
    request.update(customer={"id": customer_id, "email": email, "phone": phone}, data_request={"id": request_id})
    answer = post_shopify(
        local.api_url, "customers/data_request", json.dumps(request).encode(), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    assert answer.status == 202
    local.advance(seconds=60)

    bucket = ids["DataRequestsBucket"]
    s3 = local.client("s3")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if str(request_id) in o["Key"]]
    assert email not in key
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    (person,) = document["people"]
    assert person["contact_id"] == contact_id
    stores = person["stores"]
    assert (stores["contacts"][0]["email"], stores["contacts"][0]["phone"]) == (email, phone)
    assert [e["type"] for e in stores["events"]] == ["contact.subscribed"]
    assert [s["step"] for s in stores["sends"]] == ["e1-welcome"]

    notices = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    (notice,) = [n for n in notices if str(request_id) in n]
    assert f"aws s3 presign s3://{bucket}/{key} --expires-in 3600" in notice
    assert [value for value in (email, phone, contact_id, "X-Amz-Signature") if value in notice] == []
