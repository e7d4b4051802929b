"""The reports table's read side: a scenario's counter items over a period, one paginated Query on its partition
(shared.reports.store's keys), so a report costs a bounded number of reads whatever the traffic: days × (steps + 1)
items at most per scenario. DynamoDB's errors become ReportsUnavailable here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients
from shared.reports import store


class ReportsUnavailable(RuntimeError):
    """DynamoDB refused or failed the report's reads (throttled, unavailable, a missing permission): retry later."""


@dataclass(frozen=True)
class CounterItem:
    day: str  # YYYY-MM-DD, UTC
    step: str | None  # None: the scenario's own counters
    variant: str | None
    counters: dict[str, int] = field(default_factory=dict)  # the COUNTERS present
    revenue: dict[str, Decimal] = field(default_factory=dict)  # "revenue_click:EUR" -> exact amount


def key_range(first: date, last: date) -> tuple[str, str]:
    """The `key` bounds of the counter items of the days first..last, both included: "<first>#" to "<last>#~"
    ("~" sorts after every character of a step id or a variant)."""
    return f"{first.isoformat()}#", f"{last.isoformat()}#~"


def _item(raw: dict[str, Any]) -> CounterItem:
    day, step, variant = store.parse_counter_key(raw["key"]["S"])
    counters: dict[str, int] = {}
    revenue: dict[str, Decimal] = {}
    for name, value in raw.items():
        if name in store.COUNTERS and "N" in value:
            counters[name] = int(Decimal(value["N"]))
        elif name.startswith(store.REVENUE_PREFIXES) and "N" in value:
            currency = name.partition(":")[2]
            if store.CURRENCY.match(currency):
                revenue[name] = Decimal(value["N"])
    return CounterItem(day, step, variant, counters, revenue)


def counter_items(region: str, table: str, scenario: str, first: date, last: date) -> Iterator[CounterItem]:
    """The scenario's counter items of the days first..last (UTC, both included), page after page."""
    low, high = key_range(first, last)
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#report = :report AND #key BETWEEN :low AND :high",
        "ExpressionAttributeNames": {"#report": "report", "#key": "key"},
        "ExpressionAttributeValues": {
            ":report": {"S": store.report_id(scenario)},
            ":low": {"S": low},
            ":high": {"S": high},
        },
    }
    dynamodb = clients.dynamodb(region)
    while True:
        try:
            page = dynamodb.query(**request)
        except (ClientError, BotoCoreError) as error:
            code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
            raise ReportsUnavailable(f"the reports table could not be read ({code or type(error).__name__})") from None
        for raw in page.get("Items", []):
            yield _item(raw)
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
