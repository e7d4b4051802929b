"""Stream records built from the tables' real items (moto in-process), as Lambda hands them to the report function,
and the reports table read back as a user of the reports would see it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3

from shared.reports import store
from shared.settings import Settings
from shared.storage import tables

_sequence = itertools.count(1000)


def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
    names = {
        "events": ("contact_id", "at_id"),
        "enrolments": ("contact_id", "key"),
        "sends": ("send_id",),
    }[table]
    return {name: item[name] for name in names}


def raw(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The item as DynamoDB's JSON (what a stream image holds)."""
    answer = boto3.client("dynamodb", region_name="eu-west-3").get_item(TableName=table, Key=key, ConsistentRead=True)
    return answer.get("Item")


def record(table: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stream record of `table` (the events table's stream has no old image: NEW_IMAGE)."""
    name = "INSERT" if old is None else ("REMOVE" if new is None else "MODIFY")
    dynamodb: dict[str, Any] = {"SequenceNumber": str(next(_sequence)), "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        dynamodb["NewImage"] = new
        dynamodb["Keys"] = key_of(table, new)
    if old is not None and table != "events":
        dynamodb["OldImage"] = old
    return {
        "eventID": f"e{dynamodb['SequenceNumber']}",
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "eventSourceARN": f"arn:aws:dynamodb:eu-west-3:123456789012:table/{table}/stream/2026-11-24T00:00:00.000",
        "dynamodb": dynamodb,
    }


def changed(table: str, key: dict[str, Any], write: Callable[[], Any]) -> dict[str, Any]:
    """The record of what `write` does to the item at `key` (its images before and after)."""
    before = raw(table, key)
    write()
    return record(table, raw(table, key), before)


def event(
    settings: Settings,
    kind: str,
    at: datetime,
    properties: dict[str, Any],
    contact_id: str = "c1",
    source: str = "ses",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An event recorded in the contact's history as the processing records it, and its stream record."""
    at_id = f"{at.isoformat()}#{event_id or f'{source}#{kind}#{at.isoformat()}'}"
    tables(settings).events(
        contact_id=contact_id,
        at_id=at_id,
        type=kind,
        source=source,
        properties={"topic": "test", **properties},
        expires_at=at + timedelta(days=30),
    ).save()
    new = raw(settings.events_table, {"contact_id": {"S": contact_id}, "at_id": {"S": at_id}})
    return record(settings.events_table, new)


def counters(settings: Settings, scenario: str) -> dict[tuple[str, str | None, str | None], dict[str, Any]]:
    """The scenario's counter items: (day, step, variant) -> counters (numbers as Decimals)."""
    client = boto3.client("dynamodb", region_name="eu-west-3")
    items = client.query(
        TableName=settings.reports_table,
        KeyConditionExpression="#r = :r",
        ExpressionAttributeNames={"#r": "report"},
        ExpressionAttributeValues={":r": {"S": store.report_id(scenario)}},
    )["Items"]
    found = {}
    for item in items:
        values = {name: Decimal(value["N"]) for name, value in item.items() if "N" in value}
        found[store.parse_counter_key(item["key"]["S"])] = values
    return found


def totals(settings: Settings, scenario: str) -> dict[str, Decimal]:
    """Every counter of the scenario summed over days, steps and variants."""
    summed: dict[str, Decimal] = {}
    for values in counters(settings, scenario).values():
        for name, value in values.items():
            summed[name] = summed.get(name, Decimal(0)) + value
    return {name: value for name, value in summed.items() if value or name.startswith(("revenue", "orders"))}
