"""An SQS batch as Lambda hands it to a function, and its partial answer (`batchItemFailures`): only the failed
messages come back. Powertools' batch utility does the same, but importing it imports asyncio and every event data
class, about 20 ms of the process and handoff functions' cold start (README, Bench, figure 3) for these few lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    """One message of the batch: what the handlers read of it."""

    message_id: str
    body: str
    receipt_handle: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)  # SQS's: ApproximateReceiveCount, MessageGroupId...

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Record:
        attributes = raw.get("attributes")
        return cls(
            message_id=str(raw.get("messageId") or ""),
            body=str(raw.get("body") or ""),
            receipt_handle=str(raw.get("receiptHandle") or ""),
            attributes={str(k): str(v) for k, v in attributes.items()} if isinstance(attributes, Mapping) else {},
        )

    @property
    def group_id(self) -> str | None:
        """A FIFO queue's message group (for parcours' events queue, the contact)."""
        return self.attributes.get("MessageGroupId")


class BatchFailed(Exception):
    """Every message of the batch failed: the invocation fails, so that Lambda does not read the batch as done and
    SQS hands the messages out again. Its message names the errors' types only (their text may name a person)."""


def partial(
    event: Mapping[str, Any],
    handle: Callable[[Record], object],
    *,
    fifo: bool = False,
    on_error: Callable[[Record, Exception], None] | None = None,
    fail_whole: bool = False,
) -> dict[str, list[dict[str, str]]]:
    """Each record handled in turn; the answer names those that raised. On a FIFO queue, a message of a group that
    failed in this batch is not handled and fails too (the group's order is kept; the other groups go on).
    `fail_whole`: raise BatchFailed when every record failed."""
    records = [Record.of(raw) for raw in event.get("Records") or []]
    failed: list[str] = []
    errors: list[str] = []
    groups: set[str | None] = set()
    for record in records:
        if fifo and record.group_id in groups:
            failed.append(record.message_id)
            continue
        try:
            handle(record)
        except Exception as error:
            if on_error is not None:
                on_error(record, error)
            failed.append(record.message_id)
            errors.append(type(error).__name__)
            groups.add(record.group_id)
    if fail_whole and records and len(failed) == len(records):
        raise BatchFailed(f"All records failed processing ({len(records)}): {', '.join(sorted(set(errors)))}")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
