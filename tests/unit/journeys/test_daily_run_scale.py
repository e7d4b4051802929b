"""The daily run over 10,000 contacts, through its two handlers and its queue: it reads the matching contacts
and nothing else, counted where DynamoDB answers (moto's backend), whoever asks."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local import InvocationContext
from shared.journeys import schedule
from shared.people import moments
from shared.settings import Settings, get_settings
from shared.storage import tables
from tests.conftest import drain_events

RUN = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)  # the daily run of Tuesday 24 November 2026
CONTACTS = 10_000
BIRTHDAYS = 120  # in Paris, born on 24 November: 10:00 there is 09:00 UTC, in this run's window
SILENT = 250  # engaged last on 26 August, 90 days before: re-engagement's day
PAGE = 100  # small pages, so that keys take several (120: two pages; 250: three)
NEAR = {(11, day) for day in range(21, 28)}  # month-days around the run, which it reads in some zone


class ServerReads:
    """Every read moto's DynamoDB backend answered: requests by (operation, table, index), items returned."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str | None]] = Counter()
        self.items: Counter[tuple[str, str | None]] = Counter()

    def operations(self) -> set[str]:
        return {operation for operation, _, _ in self.requests}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> ServerReads:
    from moto.dynamodb.models import DynamoDBBackend

    counted = ServerReads()
    query, scan, get_item = DynamoDBBackend.query, DynamoDBBackend.scan, DynamoDBBackend.get_item
    statement = DynamoDBBackend.execute_statement

    def counting_query(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        answer = query(backend, table_name, *args, **kwargs)
        index = kwargs.get("index_name")
        counted.requests["Query", table_name, index] += 1
        counted.items[table_name, index] += len(answer[0])
        return answer

    def counting_scan(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        answer = scan(backend, table_name, *args, **kwargs)
        counted.requests["Scan", table_name, None] += 1
        counted.items[table_name, None] += len(answer[0])
        return answer

    def counting_get_item(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        answer = get_item(backend, table_name, *args, **kwargs)  # also what BatchGetItem and TransactGetItems do
        counted.requests["GetItem", table_name, None] += 1
        counted.items[table_name, None] += answer is not None
        return answer

    def counting_statement(backend: Any, *args: Any, **kwargs: Any) -> Any:
        counted.requests["ExecuteStatement", "", None] += 1
        return statement(backend, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "query", counting_query)
    monkeypatch.setattr(DynamoDBBackend, "scan", counting_scan)
    monkeypatch.setattr(DynamoDBBackend, "get_item", counting_get_item)
    monkeypatch.setattr(DynamoDBBackend, "execute_statement", counting_statement)
    return counted


@pytest.fixture
def settings(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    events = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    pages = sqs.create_queue(QueueName="parcours-schedule")["QueueUrl"]
    for name, value in {
        **aws,
        "PARCOURS_QUEUE_URL": events,
        "PARCOURS_SCHEDULE_QUEUE_URL": pages,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(schedule, "PAGE", PAGE)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def generate(settings: Settings) -> tuple[set[str], set[str]]:
    """10,000 contacts written in batches, as contacts.upsert leaves them (engagement day, dates index entries):
    BIRTHDAYS with today's birthday in Paris, SILENT engaged last exactly 90 days ago, the rest neither, on no
    day this run reads whatever the scenarios ask (their inactivity days are avoided too)."""
    t = tables(settings)
    rng = random.Random(2026)  # noqa: S311 (test data)
    watched = {moments.inactive_since(RUN.date(), days) for days in schedule.work().inactive_days}  # and scoring's
    birthdays: set[str] = set()
    silent: set[str] = set()
    with t.contacts.batch_write() as contacts, t.dates.batch_write() as index:
        for n in range(CONTACTS):
            contact_id = f"c{n:05d}"
            if n < BIRTHDAYS:
                born = date(1960 + n % 40, 11, 24)
                birthdays.add(contact_id)
            else:
                born = date(1970, 1, 1) + timedelta(days=rng.randrange(365 * 30))
                while (born.month, born.day) in NEAR:
                    born += timedelta(days=10)
            if BIRTHDAYS <= n < BIRTHDAYS + SILENT:
                engaged = moments.inactive_since(RUN.date(), 90)
                silent.add(contact_id)
            else:
                engaged = RUN.date() - timedelta(days=rng.randrange(1, 400))
                while engaged in watched:
                    engaged -= timedelta(days=1)
            created = datetime.combine(engaged, datetime.min.time(), UTC)
            while (created.month, created.day) in NEAR:
                created -= timedelta(days=10)  # a signup anniversary near the run is read by a created_at trigger
            keys = {f"birthday#{born:%m-%d}", f"created_at#{created:%m-%d}"}
            contacts.save(
                t.contacts(
                    contact_id,
                    created_at=created,
                    updated_at=created,
                    engaged_on=engaged.isoformat(),
                    attributes={"birthday": born.isoformat(), "timezone": "Europe/Paris"},
                    date_keys=keys,
                )
            )
            index.save(t.dates(f"birthday#{born:%m-%d}", contact_id, date=born.isoformat(), timezone="Europe/Paris"))
            index.save(
                t.dates(f"created_at#{created:%m-%d}", contact_id, date=created.date().isoformat(), timezone=None)
            )
    return birthdays, silent


def drain_pages(settings: Settings) -> int:
    """What Lambda's event source mapping does: each message of the schedule queue to the page handler, one per
    invocation (BatchSize 1), deleted when it succeeded. Returns the invocations."""
    from functions.schedule import app

    sqs = boto3.client("sqs", region_name="eu-west-3")
    assert settings.schedule_queue_url is not None
    invocations = 0
    while True:
        messages = sqs.receive_message(QueueUrl=settings.schedule_queue_url, MaxNumberOfMessages=1).get("Messages")
        if not messages:
            return invocations
        [message] = messages
        record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"]}
        answer = app.page_handler({"Records": [record]}, InvocationContext.of("parcours-SchedulePagesFunction"))
        assert answer == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=settings.schedule_queue_url, ReceiptHandle=message["ReceiptHandle"])
        invocations += 1


def queued(settings: Settings) -> list[dict[str, Any]]:
    return drain_events(settings.queue_url)


@pytest.mark.scale
def test_the_daily_run_over_ten_thousand_contacts_reads_only_the_matching_ones(
    settings: Settings, reads: ServerReads
) -> None:
    from functions.schedule import app

    birthdays, silent = generate(settings)
    reads.requests.clear()
    reads.items.clear()

    planned = app.lambda_handler({"time": RUN.isoformat()}, InvocationContext.of("parcours-ScheduleFunction"))
    # Planning peeks at each key (one Query of Limit 1) and plans pages only for the keys that hold something.
    assert {operation for operation, _, _ in reads.requests} == {"Query"}
    assert all(count <= reads.requests["Query", table, index] for (table, index), count in reads.items.items())
    assert planned["pages"] == 2  # the birthdays' day and the silent day: the other keys are empty and cost no page
    reads.requests.clear()
    reads.items.clear()
    invocations = drain_pages(settings)

    # Every page is one Query of one key holding something: the birthdays of 24 November (two pages) and the
    # engagement day of 90 days ago (three pages).
    assert reads.operations() == {"Query"}
    assert invocations == planned["pages"] + 1 + 2
    assert sum(reads.requests.values()) == invocations
    assert reads.items == {
        (settings.dates_table, None): BIRTHDAYS,
        (settings.contacts_table, "engaged_on"): SILENT,
    }

    events = queued(settings)
    assert len(events) == BIRTHDAYS + SILENT
    assert {e["contact"]["contact_id"] for e in events if e["type"] == "date.reached"} == birthdays
    assert {e["contact"]["contact_id"] for e in events if e["type"] == "contact.inactive"} == silent
    moments_queued = {e["properties"]["moment"] for e in events if e["type"] == "date.reached"}
    assert moments_queued == {"2026-11-24T09:00:00+00:00"}  # 10:00 in Paris
    assert {json.dumps(e["properties"]) for e in events if e["type"] == "contact.inactive"} == {
        json.dumps({"days": 90, "since": "2026-08-26"})
    }


def test_a_message_that_is_not_a_page_is_reported_failed_alone(settings: Settings) -> None:
    """Lambda retries it, then the schedule DLQ keeps it; the good page in the same batch is done."""
    from functions.schedule import app

    page = schedule.Page(
        kind="inactive", key="2026-08-26", start=RUN.isoformat(), end=RUN.isoformat(), now=RUN.isoformat(), limit=10
    )
    records = [
        {"messageId": "bad", "receiptHandle": "r1", "body": '{"kind": "weekly"}'},
        {"messageId": "good", "receiptHandle": "r2", "body": page.to_json()},
    ]
    answer = app.page_handler({"Records": records}, InvocationContext.of("parcours-SchedulePagesFunction"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
