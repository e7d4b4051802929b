"""The counters a marketer reads, counted from stream records built from the tables' real items: each fact once,
however often its record comes, and nothing from the records that do not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared import outbox
from shared.events import EMAIL_BOUNCED, EMAIL_CLICKED, EMAIL_DELIVERED, EMAIL_OPENED, EMAIL_UNSUBSCRIBED, TRACK
from shared.journeys import enrolments
from shared.reports import counting, writes
from shared.settings import Settings
from shared.storage import tables
from tests.unit.reports import streams

NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
EXECUTION = "arn:aws:states:eu-west-3:123456789012:execution:parcours-abandoned-cart:c1-k1"


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    return Settings.from_environ(aws)


def ses(kind: str, message: str = "m1", step: str = "e1-reminder", **more: Any) -> dict[str, Any]:
    return {"scenario": "abandoned-cart", "step": step, "variant": None, "message_id": message, **more}


def test_an_enrolment_counts_entered_then_converted_on_the_scenario_itself(settings: Settings) -> None:
    t = tables(settings)
    key = {"contact_id": {"S": "c1"}, "key": {"S": enrolments.key("abandoned-cart", EXECUTION)}}
    entered = streams.changed(
        settings.enrolments_table, key, lambda: enrolments.record(t, "c1", "abandoned-cart", EXECUTION, NOW)
    )
    later = NOW + timedelta(days=1)
    converted = streams.changed(
        settings.enrolments_table,
        key,
        lambda: enrolments.finish(
            t, "c1", "abandoned-cart", EXECUTION, "order.placed", later, capped=False, region="eu-west-3"
        ),
    )
    outcome = counting.count([entered, converted], settings, NOW)
    assert outcome.failed_at is None
    assert streams.counters(settings, "abandoned-cart") == {
        ("2026-11-24", None, None): {"entered": 1},
        ("2026-11-25", None, None): {"converted": 1},
    }
    assert outcome.counted == {("abandoned-cart", "entered"): 1, ("abandoned-cart", "converted"): 1}


def test_a_redelivered_batch_counts_once(settings: Settings) -> None:
    t = tables(settings)
    key = {"contact_id": {"S": "c1"}, "key": {"S": enrolments.key("abandoned-cart", EXECUTION)}}
    entered = streams.changed(
        settings.enrolments_table, key, lambda: enrolments.record(t, "c1", "abandoned-cart", EXECUTION, NOW)
    )
    delivered = streams.event(settings, EMAIL_DELIVERED, NOW, ses("delivered"))
    counting.count([entered, delivered], settings, NOW)
    again = counting.count([entered, delivered, entered], settings, NOW)  # Lambda retried; a record came twice
    assert again.counted == {}
    assert again.repeated == 3
    assert streams.totals(settings, "abandoned-cart") == {"entered": 1, "delivered": 1}


def test_a_send_counts_sent_when_it_is_sent_and_an_sms_counts_apart(settings: Settings) -> None:
    t = tables(settings)
    records = []
    for channel, step in (("email", "e1-reminder"), ("sms", "s1-reminder")):
        key = outbox.send_id(EXECUTION, step)

        def claim(key: str = key, step: str = step, channel: str = channel) -> bool:
            return outbox.claim(
                t, key, scenario="abandoned-cart", step=step, contact_id="c1", channel=channel, now=NOW, variant="b"
            )

        def send(key: str = key, channel: str = channel) -> None:
            outbox.mark_sent(t, key, f"m-{channel}", NOW)

        records.append(streams.changed(settings.sends_table, {"send_id": {"S": key}}, claim))
        records.append(streams.changed(settings.sends_table, {"send_id": {"S": key}}, send))
    outcome = counting.count(records, settings, NOW)
    assert streams.counters(settings, "abandoned-cart") == {
        ("2026-11-24", "e1-reminder", "b"): {"sent": 1},
        ("2026-11-24", "s1-reminder", "b"): {"sms_sent": 1},
    }
    assert outcome.counted == {("abandoned-cart", "sent"): 1, ("abandoned-cart", "sms_sent"): 1}


def test_opens_and_clicks_count_once_per_email_however_often_they_come(settings: Settings) -> None:
    records = [
        streams.event(settings, EMAIL_OPENED, NOW, ses("opened")),
        streams.event(settings, EMAIL_OPENED, NOW + timedelta(hours=1), ses("opened")),  # read again
        streams.event(settings, EMAIL_CLICKED, NOW + timedelta(hours=2), ses("clicked", link="https://x")),
        streams.event(settings, EMAIL_OPENED, NOW, ses("opened", message="m2", step="e2-help")),
    ]
    counting.count(records[:2], settings, NOW)
    counting.count(records[2:], settings, NOW)
    counting.count([streams.event(settings, EMAIL_CLICKED, NOW + timedelta(days=3), ses("clicked"))], settings, NOW)
    assert streams.counters(settings, "abandoned-cart") == {
        ("2026-11-24", "e1-reminder", None): {"opened": 1, "clicked": 1},
        ("2026-11-24", "e2-help", None): {"opened": 1},
    }


def test_only_hard_bounces_count_and_an_unsubscribe_through_the_email_counts_on_its_step(settings: Settings) -> None:
    records = [
        streams.event(settings, EMAIL_BOUNCED, NOW, ses("bounced", message="m1", bounce_type="Transient")),
        streams.event(settings, EMAIL_BOUNCED, NOW, ses("bounced", message="m2", bounce_type="Permanent")),
        streams.event(
            settings,
            EMAIL_UNSUBSCRIBED,
            NOW,
            {"scenario": "abandoned-cart", "step": "e2-help", "variant": "a"},
            source="unsubscribe",
        ),
        streams.event(settings, TRACK, NOW, {"event": "Ebook Downloaded"}, source="tracking"),  # counts nothing
    ]
    counting.count(records, settings, NOW)
    assert streams.counters(settings, "abandoned-cart") == {
        ("2026-11-24", "e1-reminder", None): {"bounced": 1},
        ("2026-11-24", "e2-help", "a"): {"unsubscribed": 1},
    }


def test_the_act_functions_outcomes_count_once_per_send(settings: Settings) -> None:
    t = tables(settings)
    key = outbox.send_id(EXECUTION, "e1-reminder")
    records = []
    for status, times in (("deferred", 3), ("failed", 1)):

        def record(status: str = status) -> None:
            outbox.record_outcome(
                t,
                key,
                status,
                scenario="abandoned-cart",
                step="e1-reminder",
                variant=None,
                contact_id="c1",
                channel="email",
                now=NOW,
            )

        for _ in range(times):  # deferred three times: one deferred send
            records.append(streams.changed(settings.sends_table, {"send_id": {"S": f"{key}#{status}"}}, record))
    counting.count(records, settings, NOW)
    assert streams.totals(settings, "abandoned-cart") == {"deferred": 1, "failed": 1}


def test_a_cancelled_transaction_drops_the_facts_counted_already_and_writes_the_rest(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = streams.event(settings, EMAIL_DELIVERED, NOW, ses("delivered", message="m1"))
    counting.count([first], settings, NOW)
    second = streams.event(settings, EMAIL_DELIVERED, NOW, ses("delivered", message="m2"))
    calls = []
    transact = writes.transact

    def counted(table: str, region: str, batch: list[writes.Write], attempts: int = 3) -> list[int]:
        calls.append(len(batch))
        return transact(table, region, batch, attempts)

    monkeypatch.setattr(writes, "transact", counted)
    outcome = counting.count([first, second], settings, NOW)  # the first record again, in a new batch
    assert calls == [3, 2]  # two markers and the counter item, cancelled; then the new marker and the counter
    assert outcome.repeated == 1
    assert streams.totals(settings, "abandoned-cart") == {"delivered": 2}


def test_a_large_batch_is_written_in_transactions_of_at_most_100(settings: Settings) -> None:
    records = [
        streams.event(
            settings, EMAIL_DELIVERED, NOW + timedelta(seconds=i), ses("delivered", message=f"m{i}", step=f"s{i % 60}")
        )
        for i in range(150)
    ]
    outcome = counting.count(records, settings, NOW)
    assert outcome.failed_at is None
    assert streams.totals(settings, "abandoned-cart") == {"delivered": 150}


def test_when_dynamodb_is_busy_the_batch_stops_at_the_first_record_not_counted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = streams.event(settings, EMAIL_DELIVERED, NOW, ses("delivered"))

    def busy(*args: Any, **kwargs: Any) -> list[int]:
        raise writes.ReportsBusy("throttled")

    monkeypatch.setattr(writes, "transact", busy)
    outcome = counting.count([record], settings, NOW)
    assert outcome.failed_at == record["dynamodb"]["SequenceNumber"]
    monkeypatch.undo()
    assert counting.count([record], settings, NOW).failed_at is None  # the retry counts it
    assert streams.totals(settings, "abandoned-cart") == {"delivered": Decimal(1)}


def test_the_handler_counts_a_batch_and_names_the_record_to_retry_when_dynamodb_is_busy(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.local import InvocationContext
    from tests.conftest import handler_of

    handler = next(handler_of("functions.report.app", aws, monkeypatch))
    settings = Settings.from_environ(aws)
    first = streams.event(settings, EMAIL_DELIVERED, NOW, ses("delivered", message="m1"))
    answer = handler({"Records": [first]}, InvocationContext.of("parcours-ReportFunction"))
    assert answer == {"batchItemFailures": []}
    second = streams.event(settings, EMAIL_DELIVERED, NOW, ses("delivered", message="m2"))

    def busy(*args: Any, **kwargs: Any) -> list[int]:
        raise writes.ReportsBusy("throttled")

    monkeypatch.setattr(writes, "transact", busy)
    answer = handler({"Records": [second]}, InvocationContext.of("parcours-ReportFunction"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": second["dynamodb"]["SequenceNumber"]}]}
    assert streams.totals(settings, "abandoned-cart") == {"delivered": 1}
