"""The reports table's write side, for the report function (shared.reports.counting, shared.reports.attribution):
DynamoDB's low-level client, items in its JSON; DynamoDB's errors become ReportsError / ReportsBusy here.

Besides the counter items (shared.reports.store), each kind of item under its own `report` prefix:
    counted#<digest>            key "-"              a fact counted once (a marker: the digest of what the fact is,
                                                     never a person's data), with a TTL
    attribution#<contact id>    key "click"|"open"   the email the contact last clicked (opened), TTL = the window
    order#<source>#<order id>   key "order"          what an order was attributed to and what is left of it after
                                                     refunds; keys "refund#<id>" and "cancelled": each counted once
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients
from shared.storage import REPORTS_ATTRIBUTION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

MARKER = "counted#"
ATTRIBUTION = REPORTS_ATTRIBUTION  # a person's: their file and erasure read it (shared.journeys.privacy)
ORDER = "order#"
TRANSACTION_LIMIT = 100  # TransactWriteItems' most actions
# DynamoDB's answers when it throttles or fails for a while: the batch is retried later (ReportsBusy)
BUSY_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "TransactionConflict",
        "TransactionInProgressException",
    }
)


class ReportsError(RuntimeError):
    """DynamoDB refused a write to the reports table for good (a bug, a missing permission)."""


class ReportsBusy(ReportsError):
    """DynamoDB throttled or was unavailable: the same records may be counted later (the stream retries them)."""


def marker_id(fact: str) -> str:
    """The marker's `report`: a digest of the fact (`opened#<message id>`, `sent#<send id>` ...)."""
    return MARKER + hashlib.sha256(fact.encode()).hexdigest()[:40]


def attribution_id(contact_id: str) -> str:
    return ATTRIBUTION + contact_id


def order_report(source: str, order_id: str) -> str:
    return f"{ORDER}{source}#{order_id}"


def number(value: Decimal | int) -> dict[str, str]:
    return {"N": str(value)}


def epoch(at: datetime) -> dict[str, str]:
    return {"N": str(int(at.timestamp()))}


@dataclass(frozen=True)
class Write:
    """One action of a transaction: a put only if the item is absent, or an update (ADD to counters, SET of values)
    under an optional condition that the item's named attributes hold the given values."""

    report: str
    key: str
    put: Mapping[str, Any] | None = None  # the item's other attributes, in DynamoDB's JSON: a conditional create
    add: Mapping[str, Decimal | int] | None = None
    set: Mapping[str, Any] | None = None  # DynamoDB's JSON
    expect: Mapping[str, Any] | None = None  # attribute -> DynamoDB JSON value it must hold

    def action(self, table: str) -> TransactWriteItemTypeDef:
        key = {"report": {"S": self.report}, "key": {"S": self.key}}
        if self.put is not None:
            return {
                "Put": {
                    "TableName": table,
                    "Item": {**key, **self.put},
                    "ConditionExpression": "attribute_not_exists(#r)",
                    "ExpressionAttributeNames": {"#r": "report"},
                }
            }
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds, sets, conditions = [], [], []
        for i, (name, amount) in enumerate(sorted((self.add or {}).items())):
            names[f"#a{i}"], values[f":a{i}"] = name, number(amount)
            adds.append(f"#a{i} :a{i}")
        for i, (name, value) in enumerate(sorted((self.set or {}).items())):
            names[f"#s{i}"], values[f":s{i}"] = name, value
            sets.append(f"#s{i} = :s{i}")
        for i, (name, value) in enumerate(sorted((self.expect or {}).items())):
            names[f"#e{i}"], values[f":e{i}"] = name, value
            conditions.append(f"#e{i} = :e{i}")
        clauses = ([f"ADD {', '.join(adds)}"] if adds else []) + ([f"SET {', '.join(sets)}"] if sets else [])
        expression = " ".join(clauses)
        update: dict[str, Any] = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return {"Update": update}  # type: ignore[typeddict-item]


def _busy(error: ClientError) -> bool:
    if error.response.get("Error", {}).get("Code") in BUSY_CODES:
        return True
    reasons = error.response.get("CancellationReasons") or []
    return any(reason.get("Code") in BUSY_CODES for reason in reasons)


def _failure(error: ClientError | BotoCoreError) -> ReportsError:
    if isinstance(error, BotoCoreError) or _busy(error):
        return ReportsBusy(type(error).__name__ if isinstance(error, BotoCoreError) else str(error))
    return ReportsError(str(error))


def transact(table: str, region: str, writes: Sequence[Write], attempts: int = 3) -> list[int]:
    """Writes all of `writes` or none. Answers [] when written, else the indexes of the writes whose condition did
    not hold (nothing is written then). A conflict with another transaction is tried again a few times, then
    ReportsBusy; any other refusal, ReportsError."""
    if not writes:
        return []
    if len(writes) > TRANSACTION_LIMIT:
        raise ValueError(f"a transaction holds at most {TRANSACTION_LIMIT} writes, not {len(writes)}")
    client = clients.dynamodb(region)
    items = [write.action(table) for write in writes]
    for attempt in range(attempts):
        try:
            client.transact_write_items(TransactItems=items)
            return []
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            failed = [i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"]
            if failed:
                return failed
            conflict = any(reason.get("Code") == "TransactionConflict" for reason in reasons)
            if conflict and attempt + 1 < attempts:
                time.sleep(0.05 * 2**attempt)  # another batch counting into the same item at this moment
                continue
            raise _failure(error) from error
        except BotoCoreError as error:
            raise _failure(error) from error
    raise ReportsBusy("transaction conflicts")  # pragma: no cover (the loop returns or raises)


def update_if_newer(table: str, region: str, report: str, key: str, values: Mapping[str, Any], at: str) -> bool:
    """Sets `values` and `at` (ISO 8601 UTC, compared as text) on the item only if it holds no `at` or an older one:
    applying the same or an older fact again changes nothing. True when written."""
    names = {"#at": "at", **{f"#v{i}": name for i, name in enumerate(sorted(values))}}
    sets = ["#at = :at", *(f"#v{i} = :v{i}" for i in range(len(values)))]
    expression_values = {":at": {"S": at}, **{f":v{i}": values[name] for i, name in enumerate(sorted(values))}}
    try:
        clients.dynamodb(region).update_item(
            TableName=table,
            Key={"report": {"S": report}, "key": {"S": key}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(#at) OR #at < :at",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=expression_values,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise _failure(error) from error
    except BotoCoreError as error:
        raise _failure(error) from error
    return True


def items_of(table: str, region: str, report: str) -> list[dict[str, Any]]:
    """Every item of one `report` partition (an attribution's two, an order's few), read consistently."""
    client = clients.dynamodb(region)
    found: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    try:
        while True:
            request: dict[str, Any] = {
                "TableName": table,
                "KeyConditionExpression": "#r = :r",
                "ExpressionAttributeNames": {"#r": "report"},
                "ExpressionAttributeValues": {":r": {"S": report}},
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            page = client.query(**request)
            found += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return found
    except (ClientError, BotoCoreError) as error:
        raise _failure(error) from error


def delete_items(table: str, region: str, items: Sequence[Mapping[str, Any]]) -> None:
    client = clients.dynamodb(region)
    try:
        for item in items:
            client.delete_item(TableName=table, Key={"report": item["report"], "key": item["key"]})
    except (ClientError, BotoCoreError) as error:
        raise _failure(error) from error
