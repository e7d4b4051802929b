"""An SQS batch's partial answer (shared.batches): only the failed messages come back; on the FIFO events queue a
failed contact's later messages wait with it and the other contacts' go on; a batch failed whole fails the
invocation, naming no one."""

from __future__ import annotations

from typing import Any

import pytest

from shared.batches import BatchFailed, Record, partial


def batch(*messages: tuple[str, str | None]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"rh-{message_id}",
                "body": f"body of {message_id}",
                "attributes": {"ApproximateReceiveCount": "2", **({"MessageGroupId": group} if group else {})},
            }
            for message_id, group in messages
        ]
    }


class Handler:
    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.handled: list[str] = []

    def __call__(self, record: Record) -> None:
        self.handled.append(record.message_id)
        if record.message_id in self.failing:
            raise RuntimeError(f"could not store lou@example.com ({record.message_id})")


def test_on_a_fifo_queue_a_failed_groups_later_messages_wait_and_the_other_groups_go_on() -> None:
    handler = Handler("a1")
    answer = partial(batch(("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")), handler, fifo=True)
    assert handler.handled == ["a1", "b1", "b2"]  # a2 not handled: it would overtake a1
    assert answer == {"batchItemFailures": [{"itemIdentifier": "a1"}, {"itemIdentifier": "a2"}]}


def test_on_a_standard_queue_each_message_is_handled_and_only_the_failed_come_back() -> None:
    handler = Handler("m1")
    answer = partial(batch(("m1", None), ("m2", None)), handler)
    assert handler.handled == ["m1", "m2"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_each_failure_is_told_with_its_record_and_error() -> None:
    told: list[tuple[str, str]] = []
    partial(batch(("m1", None), ("m2", None)), Handler("m2"), on_error=lambda r, e: told.append((r.message_id, str(e))))
    assert told == [("m2", "could not store lou@example.com (m2)")]


def test_a_batch_failed_whole_fails_the_invocation_naming_the_errors_types_only() -> None:
    with pytest.raises(BatchFailed) as failed:
        partial(batch(("a1", "a"), ("b1", "b")), Handler("a1", "b1"), fifo=True, fail_whole=True)
    assert str(failed.value) == "All records failed processing (2): RuntimeError"
    # unless the function chose to answer item by item
    assert partial(batch(("m1", None)), Handler("m1"))["batchItemFailures"] == [{"itemIdentifier": "m1"}]


def test_an_empty_batch_is_done() -> None:
    assert partial({"Records": []}, Handler(), fail_whole=True) == {"batchItemFailures": []}
    assert partial({}, Handler(), fail_whole=True) == {"batchItemFailures": []}


def test_a_record_reads_what_sqs_gives_and_tolerates_what_it_does_not() -> None:
    record = Record.of(batch(("m1", "g"))["Records"][0])
    assert (record.message_id, record.body, record.receipt_handle) == ("m1", "body of m1", "rh-m1")
    assert (record.group_id, record.attributes["ApproximateReceiveCount"]) == ("g", "2")
    bare = Record.of({"messageId": "m2", "attributes": None})
    assert (bare.body, bare.group_id, dict(bare.attributes)) == ("", None, {})
