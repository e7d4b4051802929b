"""`parcours dlq list|redrive`: what waits in a dead-letter queue, and sending it back once fixed.

Works against `parcours local` (its AWS endpoint, as it prints it) and against AWS with the usual credentials; the
queues are the stack's outputs EventsQueueUrl and EventsDeadLetterQueueUrl (`--queue events`), or
CrmHandoffQueueUrl and CrmHandoffDeadLetterQueueUrl (`--queue handoff`: qualified leads the CRM refused or did not
take after every retry; shared/people/handoff.py writes their reasons the same way). Nothing here prints personal
data: the reasons were scrubbed when the process function wrote them (shared/deadletters.py), and the bodies
are not shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3

from shared import deadletters as reasons

HIDDEN_SECONDS = 60  # how long a listed message stays invisible to others while we read the whole queue
LOCAL_REGION = "eu-west-3"  # the region `parcours local` deploys in


class DeadLetterError(RuntimeError):
    """The queues cannot be found or read: the message says what to check."""


@dataclass(frozen=True)
class Letter:
    message_id: str  # on the dead-letter queue
    event_id: str | None
    type: str | None
    source: str | None
    reason: str
    failed_at: str  # the first failure: its first receive on the events queue
    group: str
    body: str
    receipt: str

    def matches(self, wanted: set[str]) -> bool:
        return self.message_id in wanted or (self.event_id is not None and self.event_id in wanted)


@dataclass(frozen=True)
class Queues:
    events: str
    dead_letters: str


def clients(endpoint_url: str | None, region: str | None) -> tuple[Any, Any]:
    """SQS and CloudFormation clients; the local runtime takes any credentials and lives in its own region."""
    local = endpoint_url is not None and urlsplit(endpoint_url).hostname in ("127.0.0.1", "localhost")
    region = region or boto3.Session().region_name or (LOCAL_REGION if local else None)
    if region is None:
        raise DeadLetterError("no AWS region: pass --region or set AWS_REGION")
    credentials = {}
    if local and boto3.Session().get_credentials() is None:
        credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    sqs = boto3.client("sqs", region_name=region, endpoint_url=endpoint_url, **credentials)  # type: ignore[call-overload]
    cloudformation = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint_url, **credentials)  # type: ignore[call-overload]
    return sqs, cloudformation


OUTPUTS = {
    "events": ("EventsQueueUrl", "EventsDeadLetterQueueUrl"),
    "handoff": ("CrmHandoffQueueUrl", "CrmHandoffDeadLetterQueueUrl"),
    "campaigns": ("CampaignQueueUrl", "CampaignDeadLetterQueueUrl"),  # a redriven chunk mails no one twice
}


def queues(cloudformation: Any, stack: str, which: str = "events") -> Queues:
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as error:  # botocore's ClientError, or no endpoint at all
        raise DeadLetterError(f"cannot read stack {stack!r}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    source, dead_letters = OUTPUTS[which]
    missing = [name for name in (source, dead_letters) if not outputs.get(name)]
    if missing:
        raise DeadLetterError(f"stack {stack!r} has no output(s) {', '.join(missing)}")
    return Queues(outputs[source], outputs[dead_letters])


def receive_all(sqs: Any, url: str) -> list[Letter]:
    """Every message we can see, oldest first, hidden from others for HIDDEN_SECONDS (release() shows them again).

    A FIFO queue hides a group's later messages while its earlier ones are in flight: a group with more than ten
    waiting messages shows its first ten; redrive them, then list again."""
    letters: list[Letter] = []
    seen: set[str] = set()
    while True:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=HIDDEN_SECONDS,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        fresh = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        if not fresh:
            return letters
        for message in fresh:
            seen.add(message["MessageId"])
            letters.append(_letter(message))


def _letter(message: dict[str, Any]) -> Letter:
    given = {name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()}
    system = message.get("Attributes", {})
    if reasons.KIND in given:
        reason = f"{given[reasons.KIND]}: {given.get(reasons.ERROR_TYPE, '?')}: {given.get(reasons.ERROR_MESSAGE, '')}"
        failed_at = given.get(reasons.FIRST_FAILED_AT) or given.get(reasons.FAILED_AT, "")
    else:  # moved by SQS itself (the function timed out or crashed on every receive): no reason was written
        reason = "moved by SQS after its last receive, no reason recorded (see the process function's logs)"
        failed_at = ""
    if not failed_at and system.get("SentTimestamp"):
        failed_at = datetime.fromtimestamp(int(system["SentTimestamp"]) / 1000, UTC).isoformat()
    known = reasons.best_effort(message["Body"]) if reasons.EVENT_ID not in given else {}
    return Letter(
        message_id=message["MessageId"],
        event_id=given.get(reasons.EVENT_ID) or known.get("event_id"),
        type=given.get(reasons.EVENT_TYPE) or known.get("type"),
        source=given.get(reasons.EVENT_SOURCE) or known.get("source"),
        reason=reason,
        failed_at=failed_at,
        group=system.get("MessageGroupId", "redriven"),
        body=message["Body"],
        receipt=message["ReceiptHandle"],
    )


def release(sqs: Any, url: str, letters: list[Letter]) -> None:
    """Shows the listed messages again at once, for the next reader."""
    for start in range(0, len(letters), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": letter.receipt, "VisibilityTimeout": 0}
            for n, letter in enumerate(letters[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def redrive(sqs: Any, at: Queues, letters: list[Letter]) -> None:
    """Each letter back on its queue, then off the DLQ: on the FIFO events queue in its own group (its contact's
    order kept) under a new deduplication id (the old one may still be in SQS's 5-minute window). Sent twice by a
    crash between the two? The idempotency table keeps an event from acting twice, and a handoff keeps its
    delivery id (the CRM's acceptance is recorded under it)."""
    for letter in letters:
        fifo = {"MessageGroupId": letter.group, "MessageDeduplicationId": f"redrive-{uuid.uuid4().hex}"}
        sqs.send_message(QueueUrl=at.events, MessageBody=letter.body, **(fifo if at.events.endswith(".fifo") else {}))
        sqs.delete_message(QueueUrl=at.dead_letters, ReceiptHandle=letter.receipt)


def table(letters: list[Letter]) -> str:
    rows = [("id", "event", "type", "source", "first failed at", "reason")]
    rows += [
        (
            letter.message_id,
            letter.event_id or "?",
            letter.type or "?",
            letter.source or "?",
            letter.failed_at or "?",
            letter.reason,
        )
        for letter in letters
    ]
    widths = [max(len(row[n]) for row in rows) for n in range(5)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)), row[5]]) for row in rows
    )
