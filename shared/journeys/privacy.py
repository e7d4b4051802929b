"""A person's rights over their data (REQUIREMENTS.md, Privacy): their whole file (access) and its erasure.

Both walk the same map of where a person is stored, grouped by store (table), found without a scan: the contact;
its identities (email, phone, source ids); the items of the orders it placed (who placed them, what refunds took
back: shared.people.orders, named by its order events); its events, enrolments and sends (queried by contact id,
the sends through their `by_contact` index); its entries in the dates index and the list members (named on the
contact); the discount codes it got (named on its sends); the suppression entry of its address; the emails it last
clicked and opened, kept for revenue attribution in the reports table (its `attribution#<contact id>` partition);
its outcome in each campaign (the campaigns table's `<id>#r#<contact id>` items, found by its `by_contact` index, where
the function is given that table). The reports' counters and a campaign's counters name no one and stay.

The erasure stops the person's running executions first (a Wait ends at once; a pending wait_for ends by its
timeout locally, and its act step then finds no contact and an address suppressed), deletes every item, and keeps
one thing: the suppression entry of the address, keyed by its hash (HMAC-SHA-256 under the deployment's
suppression key, shared.people.suppression), with the erasure's time (`erased_at`). That entry keeps the address
from ever being mailed again, and is the tombstone processing reads: an event received before the erasure (in
flight on the queue) brings nobody back (`received_before`, the tombstone read with the event's mark). The erasure
is recorded under `_erasure` in the events table with counts only, and answers the same counts: idempotent, a
repeat removes nothing. Without the suppression
key, an export or an erasure fails before it reads or deletes anything (ConfigurationError naming the parameter):
an erasure that could not write its tombstone would let the address be mailed again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from shared import clients
from shared.events import Event, normalise_email, normalise_phone
from shared.journeys import dispatch, enrolments
from shared.people import orders, suppression
from shared.settings import Settings
from shared.storage import (
    MARK_PREFIX,
    REPORTS_ATTRIBUTION,
    ContactModel,
    EnrolmentModel,
    StorageBusy,
    StorageError,
    SuppressionModel,
    Tables,
    busy,
    failure,
    get_or_none,
    tables,
)

ERASURE_OWNER = "_erasure"  # the events table's partition of erasure records (counts, never who)
ERASED = "erased"  # the suppression reason of an address erased without a bounce or complaint before
STORES = (
    "contacts",
    "identities",
    "orders",
    "events",
    "sends",
    "enrolments",
    "dates",
    "list_members",
    "discount_codes",
    "reports",
    "suppressions",
    "marks",
)


class PersonError(ValueError):
    """A request that names nobody, or names them badly; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Who:
    """Whom a request names: an email, a phone (E.164), a contact id or a source's id (`shopify#123`)."""

    email: str | None = None
    phone: str | None = None
    contact_id: str | None = None
    source_id: str | None = None

    @classmethod
    def from_request(cls, given: Mapping[str, Any]) -> Who:
        """From a query string or a JSON body: exactly one of email, phone, contact_id; PersonError naming it."""
        names = ("email", "phone", "contact_id", "shopify_id")
        named = {name: given.get(name) for name in names if given.get(name) not in (None, "")}
        if len(named) != 1:
            raise PersonError("name the person by exactly one of email, phone, contact_id or shopify_id")
        ((name, value),) = named.items()
        if not isinstance(value, str):
            raise PersonError(f"{name} must be a string")
        if name == "shopify_id":
            if not value.isdigit():
                raise PersonError("shopify_id must be a Shopify customer id (digits)")
            return cls(source_id=f"shopify#{value}")
        if name == "email":
            email = normalise_email(value)
            if email is None:
                raise PersonError("email is not an email address")
            return cls(email=email)
        if name == "phone":
            phone = normalise_phone(value)
            if phone is None:
                raise PersonError("phone must be an E.164 number (+ country code)")
            return cls(phone=phone)
        if not value.isalnum() or len(value) > 64:
            raise PersonError("contact_id is not a contact id")
        return cls(contact_id=value)

    def identity_keys(self) -> list[str]:
        keys = [f"email#{self.email}"] if self.email else []
        keys += [f"phone#{self.phone}"] if self.phone else []
        return keys + ([self.source_id] if self.source_id else [])


def contact_ids(t: Tables, who: Who) -> list[str]:
    """The contacts the request names (one, or none; a source id and an email may name two)."""
    found = [who.contact_id] if who.contact_id else []
    for key in who.identity_keys():
        identity = get_or_none(t.identities, key, consistent=True)
        if identity is not None and identity.contact_id not in found:
            found.append(identity.contact_id)
    return found


@dataclass
class Holdings:
    """Every item stored about one contact, per store (the items themselves, to show or delete)."""

    contact_id: str
    contact: ContactModel | None = None
    enrolments: list[EnrolmentModel] = field(default_factory=list)
    items: dict[str, list[Model]] = field(default_factory=lambda: {store: [] for store in STORES})

    def counts(self) -> dict[str, int]:
        return {store: len(found) for store, found in self.items.items() if found}


def holdings(t: Tables, key: suppression.HashKey, contact_id: str) -> Holdings:
    """Reads, without a scan, everything stored about the contact."""
    try:
        contact = get_or_none(t.contacts, contact_id, consistent=True)
        held = Holdings(contact_id, contact, list(t.enrolments.query(contact_id)))
        held.items["contacts"] = [contact] if contact is not None else []
        held.items["enrolments"] = list(held.enrolments)
        keys = _identity_keys(contact)
        held.items["identities"] = (
            [identity for identity in t.identities.batch_get(keys) if identity.contact_id == contact_id] if keys else []
        )
        history = list(t.events.query(contact_id))
        held.items["events"] = list(history)
        # the processed marks of their events (shared.writes): what those did outside DynamoDB names the contact
        marks = [MARK_PREFIX + record.at_id.partition("#")[2] for record in history]
        held.items["marks"] = list(t.marks.batch_get(list(dict.fromkeys(marks)))) if marks else []
        placed = orders.order_keys(history)
        held.items["orders"] = (
            [order for order in t.orders.batch_get(placed) if order.contact_id == contact_id] if placed else []
        )
        send_ids = [send.send_id for send in t.sends.by_contact.query(contact_id)]
        sends = sorted(t.sends.batch_get(send_ids), key=lambda s: s.claimed_at) if send_ids else []
        held.items["sends"] = list(sends)
        if contact is not None:
            held.items["dates"] = list(t.dates.batch_get([(key, contact_id) for key in contact.date_keys or ()]))
            held.items["list_members"] = list(
                t.list_members.batch_get([(name, contact_id) for name in sorted(contact.lists or ())])
            )
        codes: list[tuple[str, str]] = []
        for send in sends:
            if send.discount_pool and send.discount_code:
                codes += [
                    (send.discount_pool, f"contact#{contact_id}"),
                    (send.discount_pool, f"code#{send.discount_code}"),
                ]
        held.items["discount_codes"] = (
            [code for code in t.discount_codes.batch_get(list(dict.fromkeys(codes))) if code.contact_id == contact_id]
            if codes
            else []
        )
        # the scenario emails they last clicked and opened, kept for revenue attribution (shared.reports)
        held.items["reports"] = list(t.reports.query(REPORTS_ATTRIBUTION + contact_id))
        hashed = suppression.address_hash(key, contact.email) if contact is not None else None
        entry = get_or_none(t.suppressions, hashed) if hashed else None
        held.items["suppressions"] = [entry] if entry is not None else []
    except PynamoDBException as error:
        raise failure(error) from error
    return held


def _identity_keys(contact: ContactModel | None) -> list[str]:
    if contact is None:
        return []
    keys = [f"email#{contact.email}"] if contact.email else []
    keys += [f"phone#{contact.phone}"] if contact.phone else []
    sources = contact.source_ids.as_dict() if contact.source_ids is not None else {}
    return keys + [f"{source}#{native}" for source, native in sorted(sources.items())]


CAMPAIGN_INDEX = "by_contact"


def campaign_outcomes(settings: Settings, contact_id: str) -> list[dict[str, str]]:
    """The person's outcome in each campaign (shared.campaigns.store), by the campaigns table's sparse index: only
    those items carry a contact id. None where the function is not given the table."""
    if not settings.campaigns_table:
        return []
    client = clients.dynamodb(settings.region)
    query: dict[str, Any] = {
        "TableName": settings.campaigns_table,
        "IndexName": CAMPAIGN_INDEX,
        "KeyConditionExpression": "contact_id = :c",
        "ExpressionAttributeValues": {":c": {"S": contact_id}},
    }
    found: list[dict[str, str]] = []
    try:
        while True:
            answer = client.query(**query)
            found += [
                {name: value["S"] for name, value in item.items() if "S" in value} for item in answer.get("Items", [])
            ]
            if "LastEvaluatedKey" not in answer:
                return found
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as error:
        raise StorageBusy(str(error)) if busy(error) else StorageError(str(error)) from error


def _erase_campaign_outcomes(settings: Settings, outcomes: list[dict[str, str]]) -> None:
    client = clients.dynamodb(settings.region)
    try:
        for item in outcomes:
            key = {"campaign_id": {"S": item["campaign_id"]}, "item": {"S": item["item"]}}
            client.delete_item(TableName=str(settings.campaigns_table), Key=key)
    except (ClientError, BotoCoreError) as error:
        raise StorageBusy(str(error)) if busy(error) else StorageError(str(error)) from error


# ---- access: the person's file ---------------------------------------------------------------------------------


def export(settings: Settings, who: Who, now: datetime) -> dict[str, Any]:
    """One JSON document with everything stored about the person, grouped by store; PersonError 404 if unknown."""
    t = tables(settings)
    key = suppression.hash_key(settings)
    found = [
        (held, outcomes)
        for held, outcomes in ((holdings(t, key, c), campaign_outcomes(settings, c)) for c in contact_ids(t, who))
        if held.counts() or outcomes
    ]
    if not found:
        raise PersonError("no one is stored under this name", status=404)
    people = []
    for held, outcomes in found:
        stores = {store: [_plain(item) for item in items] for store, items in held.items.items() if items}
        if outcomes:
            stores["campaigns"] = [
                {"campaign": o.get("campaign"), "outcome": o.get("outcome"), "at": o.get("at")} for o in outcomes
            ]
        if "suppressions" in stores:  # the hash names nobody; why the address is not mailed is what matters here
            stores["suppressions"] = [
                {"suppressed": True, **{k: v for k, v in stores["suppressions"][0].items() if k != "address_hash"}}
            ]
        people.append({"contact_id": held.contact_id, "stores": stores})
    return {"exported_at": now.isoformat(), "people": people}


def _plain(item: Model) -> dict[str, Any]:
    """An item as JSON: dates in ISO 8601, sets as sorted lists, nested maps as dicts."""
    return {name: _value(getattr(item, name)) for name in item.get_attributes() if getattr(item, name) is not None}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, MapAttribute):
        return {k: _value(v) for k, v in value.as_dict().items()}
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return value


# ---- erasure ---------------------------------------------------------------------------------------------------


def erase(settings: Settings, who: Who, now: datetime, origin: str) -> dict[str, Any]:
    """Erases the person (every contact the request names): stops their executions, deletes every item, keeps the
    hashed suppression entry of each address with the erasure's time. Answers the counts removed per store.
    The suppression key is read first: without it nothing is touched (ConfigurationError naming the parameter)."""
    key = suppression.hash_key(settings)
    t = tables(settings)
    removed: dict[str, int] = {}
    addresses = {who.email} if who.email else set()
    stopped = 0
    for contact_id in contact_ids(t, who):
        held = holdings(t, key, contact_id)
        if held.contact is not None and held.contact.email:
            addresses.add(held.contact.email)
        stopped += _stop_executions(settings, t, held)
        for store, items in held.items.items():
            if store == "suppressions" or not items:
                continue
            _delete(items)
            removed[store] = removed.get(store, 0) + len(items)
        outcomes = campaign_outcomes(settings, contact_id)
        if outcomes:
            _erase_campaign_outcomes(settings, outcomes)
            removed["campaigns"] = removed.get("campaigns", 0) + len(outcomes)
    for address in sorted(addresses):
        _tombstone(t, key, address, now)
    answer = {
        "erased": bool(removed),
        "removed": removed,
        "executions_stopped": stopped,
        "suppressed_addresses": len(addresses),
    }
    t.events(
        contact_id=ERASURE_OWNER,
        at_id=f"{now.isoformat()}#{uuid.uuid4().hex}",
        type="person.erased",
        source=origin,
        properties=answer,  # counts only: nothing in it names the person
        expires_at=now + timedelta(days=settings.event_retention_days),
    ).save()
    return answer


def _stop_executions(settings: Settings, t: Tables, held: Holdings) -> int:
    """Stops every running execution of the contact; a capped scenario's place is given back."""
    sfn = clients.stepfunctions(settings.region)
    capped = {entry.scenario for entry in dispatch.catalogue() if entry.cap is not None}
    stopped = 0
    for enrolment in held.enrolments:
        if enrolment.status != "active":
            continue
        try:
            sfn.stop_execution(executionArn=enrolment.execution_arn, error="PersonErased", cause="erasure")
            stopped += 1
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("ExecutionDoesNotExist", "ResourceNotFound"):
                raise
        if enrolment.scenario in capped:
            enrolments.give_place_back(t, enrolment.scenario)
    return stopped


def _delete(items: list[Model]) -> None:
    model = type(items[0])
    try:
        with model.batch_write() as batch:
            for item in items:
                batch.delete(item)
    except PynamoDBException as error:
        raise failure(error) from error


def _tombstone(t: Tables, key: suppression.HashKey, address: str, now: datetime) -> None:
    """The address's suppression entry, kept (or made) with the erasure's time; an earlier reason stays."""
    hashed = suppression.address_hash(key, address)
    if hashed is None:
        return
    entry = t.suppressions(address_hash=hashed)
    try:
        entry.update(
            actions=[
                SuppressionModel.reason.set(SuppressionModel.reason | ERASED),
                SuppressionModel.suppressed_at.set(SuppressionModel.suppressed_at | now),
                SuppressionModel.erased_at.set(now),
            ]
        )
    except PynamoDBException as error:
        raise failure(error) from error


def erased_before(t: Tables, key: suppression.HashKey, email: str | None, received_at: str) -> bool:
    """Whether this address was erased after the event was received: the event (in flight meanwhile) is dropped.
    A new event, received after the erasure, may create a new contact (whose address stays suppressed)."""
    hashed = suppression.address_hash(key, email)
    entry = get_or_none(t.suppressions, hashed, consistent=True) if hashed else None
    return entry is not None and received_before(received_at, entry.erased_at)


def received_before(received_at: str, erased_at: datetime | None) -> bool:
    """Whether an event received then was in flight when its address was erased (an unreadable time: it was)."""
    if erased_at is None:
        return False
    try:
        received = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return True
    return received <= erased_at


# ---- Shopify's mandatory compliance webhooks ------------------------------------------------------------------


def comply(event: Event, settings: Settings, now: datetime) -> bool:
    """Answers a shop's GDPR request by itself where it can: `customers/redact` erases the customer (by email,
    phone and Shopify id), `shop/redact` every contact the shop gave, `customers/data_request` writes the customer's
    file to the data requests bucket and tells the operator on the alarm topic (`answer_data_request`). True when
    the operator must act (a data request that could not be answered: `parcours contacts export --shopify-id ID`,
    README), which the handler alarms."""
    if event.topic == "customers/redact" and event.contact is not None:
        facts = event.contact
        erase(
            settings,
            Who(email=facts.email, phone=facts.phone, source_id=facts.source_id),
            now,
            f"shopify:{event.topic}",
        )
        return False
    if event.topic == "shop/redact":
        t = tables(settings)
        try:
            shop_contacts = [c.contact_id for c in t.contacts.scan(ContactModel.source_ids["shopify"].exists())]
        except PynamoDBException as error:
            raise failure(error) from error
        for contact_id in shop_contacts:
            erase(settings, Who(contact_id=contact_id), now, f"shopify:{event.topic}")
        return False
    if event.topic == "customers/data_request":
        return not answer_data_request(event, settings, now)
    return True


DATA_REQUEST_DAYS = 30  # the shop answers its customer within 30 days; the bucket's objects expire then too
PRESIGN_SECONDS = 3600  # the link the operator makes lives an hour
NOTHING_STORED = "nothing: parcours stores nothing about this customer (by their email, phone or Shopify id)"


@dataclass(frozen=True)
class DataRequestAnswer:
    """Where a data request's file was written, and what the operator was told (ids only)."""

    bucket: str
    key: str
    found: bool
    notice: str


def data_request_key(event: Event) -> str:
    """The file's key, from ids only (the shop, Shopify's request id or the delivery's), never the person's."""
    properties = event.properties
    shop = _key_part(properties.get("shop")) or _key_part(properties.get("shop_id")) or "unknown-shop"
    request = _key_part(properties.get("data_request_id"))
    name = f"data-request-{request}" if request else f"delivery-{_key_part(event.event_id.partition('#')[2])}"
    return f"shopify/{shop}/{name}.json"


def _key_part(value: Any) -> str:
    text = str(value).strip().lower() if value not in (None, "") else ""
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text)[:100]


def answer_data_request(event: Event, settings: Settings, now: datetime) -> DataRequestAnswer | None:
    """A Shopify `customers/data_request`: the person's file (as `export`) written as JSON to the data requests
    bucket, a file that says nothing is stored if parcours knows no one by the request's email, phone or Shopify id
    (the shop answers anyway), and a notice on the alarm topic with ids only and the command that makes a link.
    No link in the notice: a forwarded email would carry it. None when it cannot be answered here (no bucket or
    topic configured, no one named, S3 or SNS refused): the operator's job, alarmed."""
    if not settings.data_requests_bucket or not settings.alarm_topic_arn or event.contact is None:
        return None
    facts = event.contact
    who = Who(email=facts.email, phone=facts.phone, source_id=facts.source_id)
    try:
        document = export(settings, who, now)
    except PersonError:
        document = {"exported_at": now.isoformat(), "people": []}
    found = bool(document["people"])
    ids = {name: event.properties.get(name) for name in ("shop", "shop_id", "customer_id", "data_request_id")}
    document = {
        "request": {"source": "shopify", "topic": event.topic, **ids, "orders": event.properties.get("orders", [])},
        "stored": found,
        **({} if found else {"note": NOTHING_STORED}),
        **document,
    }
    key = data_request_key(event)
    bucket = settings.data_requests_bucket
    deadline = (now + timedelta(days=DATA_REQUEST_DAYS)).date().isoformat()
    notice = "\n".join(
        [
            "A shop sent a GDPR data request (Shopify customers/data_request); parcours wrote the customer's file.",
            "",
            *(f"{name}: {value}" for name, value in ids.items() if value not in (None, "")),
            "stored: " + ("yes, the file holds everything parcours keeps about them" if found else NOTHING_STORED),
            f"file: s3://{bucket}/{key} (deleted after {DATA_REQUEST_DAYS} days)",
            "",
            f"Send it to the shop owner by {deadline}, with a link valid {PRESIGN_SECONDS // 60} minutes made then:",
            f"  aws s3 presign s3://{bucket}/{key} --expires-in {PRESIGN_SECONDS}",
            "(README, People's data: Shopify's compliance webhooks)",
        ]
    )
    try:
        clients.s3(settings.region).put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode(),
            ContentType="application/json",
        )
        clients.sns(settings.region).publish(
            TopicArn=settings.alarm_topic_arn,
            Subject="parcours: Shopify data request answered, file to send on",
            Message=notice,
        )
    except (ClientError, BotoCoreError):
        return None
    return DataRequestAnswer(bucket, key, found, notice)
