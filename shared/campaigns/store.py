"""The campaigns table: DynamoDB's JSON through the low-level client (AWS errors become StorageError or StorageBusy
here, at the edge).

The campaign's own items share its partition (`campaign_id` = the id; sort key `item`):
- `campaign`: the document (JSON), its status (draft, sending, cancelled), when it was created, started, cancelled;
  `audience` (people read from the list or matched by the condition, counted once per page) and `read_done`.
- `page#<n>`: a page of the audience read, with its count (counted once) and whether its chunks and the next page
  were queued (`continued`: a page delivered twice queues nothing twice).
- `slot#<epoch>`: how many sends were given a moment from that instant on: the pacer of the sending rate.
- `held#<n>`: an A/B test's people of page n held back until the decision (below, with the decision).
What is written once per person has partitions of its own, so that a campaign sending hundreds a second does not
write one partition past DynamoDB's 1,000 write units a second:
- `<id>#r#<contact id>` / `outcome`: the person's outcome (`sent`, `failed`, `excluded`, `skipped_<reason>`),
  written once (a conditional put) in the same transaction as its counter: a person is counted once, and mailed
  once (the send's own claim, shared.outbox), whatever is retried. It names its `campaign` and `contact_id` (the
  sparse `by_contact` index: the person's file and erasure, shared.journeys.privacy).
- `<id>#count#<n>` / `count` (n < SHARDS): the outcome counters, spread over SHARDS partitions; a status reads them
  in one BatchGetItem and sums them.
Partition `_started`: one item per campaign started (its name and start), which the reports list.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients
from shared.storage import StorageBusy, StorageError, busy

CAMPAIGN = "campaign"
STARTED = "_started"  # the partition listing the campaigns started (no campaign id starts with `_`)
SHARDS = 10
KEEP = timedelta(days=400)  # a person's outcome: past any resend's question, then gone (TTL `expires_at`)


class Conflict(Exception):
    """A condition failed: the item exists already, or the campaign is not in the expected status."""


def _call(method: str, table: str, region: str, **kwargs: Any) -> Any:
    try:
        return getattr(clients.dynamodb(region), method)(TableName=table, **kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise Conflict(method) from None
        if busy(error):
            raise StorageBusy(f"campaigns table: {error.response['Error'].get('Code')}") from error
        raise StorageError(f"campaigns table: {error.response.get('Error', {}).get('Code')}") from error
    except BotoCoreError as error:
        raise StorageBusy(f"campaigns table: {type(error).__name__}") from error


def _key(campaign_id: str, item: str) -> dict[str, Any]:
    return {"campaign_id": {"S": campaign_id}, "item": {"S": item}}


def number(item: dict[str, Any], name: str) -> int:
    value = item.get(name, {})
    return int(value["N"]) if "N" in value else 0


def text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {})
    return str(value["S"]) if "S" in value else None


class Store:
    def __init__(self, table: str, region: str) -> None:
        self.table, self.region = table, region

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        answer = _call("get_item", self.table, self.region, Key=_key(campaign_id, CAMPAIGN), ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def document(self, item: dict[str, Any]) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(text(item, "document") or "{}")
        return loaded

    def save(self, campaign_id: str, document: dict[str, Any], now: datetime) -> str:
        """Creates the campaign, or replaces a draft's document: `created` or `updated`; Conflict once it was sent."""
        body = json.dumps(document, sort_keys=True)
        try:
            _call(
                "put_item",
                self.table,
                self.region,
                Item={
                    **_key(campaign_id, CAMPAIGN),
                    "document": {"S": body},
                    "status": {"S": "draft"},
                    "created_at": {"S": now.isoformat()},
                    "updated_at": {"S": now.isoformat()},
                },
                ConditionExpression="attribute_not_exists(campaign_id)",
            )
            return "created"
        except Conflict:
            _call(
                "update_item",
                self.table,
                self.region,
                Key=_key(campaign_id, CAMPAIGN),
                UpdateExpression="SET #d = :d, updated_at = :now",
                ConditionExpression="#s = :draft",
                ExpressionAttributeNames={"#d": "document", "#s": "status"},
                ExpressionAttributeValues={":d": {"S": body}, ":now": {"S": now.isoformat()}, ":draft": {"S": "draft"}},
            )
            return "updated"

    def start(self, campaign_id: str, now: datetime) -> None:
        """draft -> sending, once: Conflict if another call started it (or it is cancelled)."""
        _call(
            "update_item",
            self.table,
            self.region,
            Key=_key(campaign_id, CAMPAIGN),
            UpdateExpression="SET #s = :sending, started_at = :now",
            ConditionExpression="#s = :draft",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":sending": {"S": "sending"},
                ":draft": {"S": "draft"},
                ":now": {"S": now.isoformat()},
            },
        )

    def cancel(self, campaign_id: str, now: datetime) -> None:
        _call(
            "update_item",
            self.table,
            self.region,
            Key=_key(campaign_id, CAMPAIGN),
            UpdateExpression="SET #s = :cancelled, cancelled_at = :now",
            ConditionExpression="#s IN (:draft, :sending)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":cancelled": {"S": "cancelled"},
                ":draft": {"S": "draft"},
                ":sending": {"S": "sending"},
                ":now": {"S": now.isoformat()},
            },
        )

    def counters(self, campaign_id: str) -> dict[str, int]:
        """The outcome counters, summed over their shards (one BatchGetItem)."""
        keys = [_key(f"{campaign_id}#count#{shard}", "count") for shard in range(SHARDS)]
        try:
            answer = clients.dynamodb(self.region).batch_get_item(
                RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}}
            )
        except ClientError as error:
            raise StorageBusy("campaigns table") if busy(error) else StorageError("campaigns table") from error
        except BotoCoreError as error:
            raise StorageBusy(f"campaigns table: {type(error).__name__}") from error
        if answer.get("UnprocessedKeys"):
            raise StorageBusy("campaigns table: counters not all read (throttled)")
        totals: dict[str, int] = {}
        for item in answer.get("Responses", {}).get(self.table, []):
            for name, value in item.items():
                if "N" in value:
                    totals[name] = totals.get(name, 0) + int(value["N"])
        return totals

    def page_read(self, campaign_id: str, index: int, count: int, last: bool) -> bool:
        """Counts a page's audience once: False when the page was counted already (a redelivery)."""
        update = "ADD audience :n" + (" SET read_done = :t" if last else "")
        values: dict[str, Any] = {":n": {"N": str(count)}}
        if last:
            values[":t"] = {"BOOL": True}
        try:
            clients.dynamodb(self.region).transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {**_key(campaign_id, f"page#{index:08d}"), "count": {"N": str(count)}},
                            "ConditionExpression": "attribute_not_exists(campaign_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(campaign_id, CAMPAIGN),
                            "UpdateExpression": update,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise StorageBusy(f"campaigns table: {error.response.get('Error', {}).get('Code')}") from error
        return True

    def page_continued(self, campaign_id: str, index: int) -> bool:
        answer = _call(
            "get_item", self.table, self.region, Key=_key(campaign_id, f"page#{index:08d}"), ConsistentRead=True
        )
        return bool(answer.get("Item", {}).get("continued", {}).get("BOOL"))

    def mark_continued(self, campaign_id: str, index: int) -> None:
        _call(
            "update_item",
            self.table,
            self.region,
            Key=_key(campaign_id, f"page#{index:08d}"),
            UpdateExpression="SET continued = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def reserve(self, campaign_id: str, due: datetime, count: int) -> int:
        """Reserves `count` sends from the instant `due` on: answers how many were reserved before them (their
        place in the line, which the sending rate turns into a moment)."""
        answer = _call(
            "update_item",
            self.table,
            self.region,
            Key=_key(campaign_id, f"slot#{int(due.timestamp())}"),
            UpdateExpression="ADD reserved :n",
            ExpressionAttributeValues={":n": {"N": str(count)}},
            ReturnValues="UPDATED_NEW",
        )
        return number(answer.get("Attributes", {}), "reserved") - count

    def record(self, campaign_id: str, contact_id: str, outcome: str, now: datetime) -> bool:
        """The person's outcome (`sent`, `failed`, `excluded`, `skipped_<reason>`) and its counter, once: False when
        it was recorded already."""
        shard = int(hashlib.sha256(contact_id.encode()).hexdigest(), 16) % SHARDS
        try:
            clients.dynamodb(self.region).transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **_key(f"{campaign_id}#r#{contact_id}", "outcome"),
                                "campaign": {"S": campaign_id},
                                "outcome": {"S": outcome},
                                "at": {"S": now.isoformat()},
                                "contact_id": {"S": contact_id},
                                "expires_at": {"N": str(int((now + KEEP).timestamp()))},
                            },
                            "ConditionExpression": "attribute_not_exists(campaign_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(f"{campaign_id}#count#{shard}", "count"),
                            "UpdateExpression": "ADD #o :one",
                            "ExpressionAttributeNames": {"#o": outcome},
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons") or []
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons:
                    return False
            if busy(error) or error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise StorageBusy(f"campaigns table: {error.response.get('Error', {}).get('Code')}") from error
            raise StorageError(f"campaigns table: {error.response.get('Error', {}).get('Code')}") from error
        except BotoCoreError as error:
            raise StorageBusy(f"campaigns table: {type(error).__name__}") from error
        return True

    def outcome(self, campaign_id: str, contact_id: str) -> str | None:
        answer = _call(
            "get_item",
            self.table,
            self.region,
            Key=_key(f"{campaign_id}#r#{contact_id}", "outcome"),
            ConsistentRead=True,
        )
        return text(answer.get("Item", {}), "outcome")

    # ---- A/B tests: the people held until the decision, the decision, kept once --------------------------------
    # Items: `held#<n>` the page n's people not in the sample (JSON list), with `released` once the rest's chunks
    # of that page are queued; on the campaign item: `held` (their count), `sample_until` (the sample's last send
    # moment), `ab_decision` (JSON: the winner, significant or not, shared.campaigns.ab.decision).
    def hold(self, campaign_id: str, index: int, contacts: list[str]) -> bool:
        """Keeps a page's people held back, once (with their count): False when kept already (a redelivery)."""
        try:
            clients.dynamodb(self.region).transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {**_key(campaign_id, f"held#{index:08d}"), "contacts": {"S": json.dumps(contacts)}},
                            "ConditionExpression": "attribute_not_exists(campaign_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(campaign_id, CAMPAIGN),
                            "UpdateExpression": "ADD held :n",
                            "ExpressionAttributeValues": {":n": {"N": str(len(contacts))}},
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise StorageBusy(f"campaigns table: {error.response.get('Error', {}).get('Code')}") from error
        except BotoCoreError as error:
            raise StorageBusy(f"campaigns table: {type(error).__name__}") from error
        return True

    def held(self, campaign_id: str, index: int) -> tuple[list[str], bool] | None:
        """A page's people held back and whether they were released; None: no such page."""
        answer = _call(
            "get_item", self.table, self.region, Key=_key(campaign_id, f"held#{index:08d}"), ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            return None
        return list(json.loads(text(item, "contacts") or "[]")), bool(item.get("released", {}).get("BOOL"))

    def release(self, campaign_id: str, index: int) -> None:
        _call(
            "update_item",
            self.table,
            self.region,
            Key=_key(campaign_id, f"held#{index:08d}"),
            UpdateExpression="SET released = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def sample_until(self, campaign_id: str, moment: datetime) -> None:
        """Moves the sample's last send moment later (never earlier)."""
        value = {"S": moment.astimezone(UTC).isoformat()}
        with contextlib.suppress(Conflict):  # a later moment is kept already
            _call(
                "update_item",
                self.table,
                self.region,
                Key=_key(campaign_id, CAMPAIGN),
                UpdateExpression="SET sample_until = :m",
                ConditionExpression="attribute_not_exists(sample_until) OR sample_until < :m",
                ExpressionAttributeValues={":m": value},
            )

    def decide(self, campaign_id: str, decision: dict[str, Any]) -> dict[str, Any]:
        """Keeps the A/B decision once; answers the one kept (an earlier one, when this one came second)."""
        try:
            _call(
                "update_item",
                self.table,
                self.region,
                Key=_key(campaign_id, CAMPAIGN),
                UpdateExpression="SET ab_decision = :d",
                ConditionExpression="attribute_not_exists(ab_decision)",
                ExpressionAttributeValues={":d": {"S": json.dumps(decision, sort_keys=True)}},
            )
            return decision
        except Conflict:
            kept: dict[str, Any] = json.loads(text(self.get(campaign_id) or {}, "ab_decision") or "{}")
            return kept

    # ---- the campaigns started, for the reports: one partition, one item per campaign ------------------------
    def list_started(self, campaign_id: str, name: str, started_at: datetime, ab: dict[str, Any] | None) -> None:
        item: dict[str, Any] = {
            **_key(STARTED, campaign_id),
            "name": {"S": name or campaign_id},
            "started_at": {"S": started_at.isoformat()},
        }
        if ab is not None:
            item["ab"] = {"S": json.dumps(ab, sort_keys=True)}
        _call("put_item", self.table, self.region, Item=item)

    def started(self) -> list[dict[str, Any]]:
        """Every campaign started: id, name, started_at, ab (its document's `ab`, if any)."""
        request: dict[str, Any] = {
            "KeyConditionExpression": "campaign_id = :c",
            "ExpressionAttributeValues": {":c": {"S": STARTED}},
        }
        found = []
        while True:
            answer = _call("query", self.table, self.region, **request)
            for item in answer.get("Items", []):
                ab = text(item, "ab")
                found.append(
                    {
                        "id": text(item, "item"),
                        "name": text(item, "name"),
                        "started_at": text(item, "started_at"),
                        "ab": json.loads(ab) if ab else None,
                    }
                )
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
