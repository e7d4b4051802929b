"""While the stack runs, what AWS would do and moto does not: running the Lambda handlers in this process (moto's
Docker-less Lambda returns a canned answer), delivering SNS messages to subscribed functions (moto's SNS calls its
Docker Lambda), creating the stack's state machines in the backend that executes them, keeping the tags of each sent
email (moto's SESv2 drops them) for the SES events `POST /_local/ses-event` publishes, keeping the attributes of
published SMS (moto drops them; the outbox shows the sender id), draining FIFO queues as Lambda's poller does
(pollers.py), and DynamoDB's atomic requests (serialise_dynamodb). What moto's CloudFormation skips is done at
deployment (runtime.py), simulated time in timelines.py.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from infra.local.pollers import drain_fifo
from infra.local.state import ACCOUNT, REGION, State
from shared.clock import pinned


@dataclass
class InvocationContext:
    """What Lambda passes as `context`, enough for Powertools (the runtime's invocations, the bench, the tests)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @classmethod
    def of(cls, function_name: str, timeout: float = 30, memory: int = 512) -> InvocationContext:
        """A context for the stack's function `function_name`, with `timeout` seconds left from now."""
        return cls(
            function_name=function_name,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
            memory_limit_in_mb=memory,
            deadline=time.monotonic() + timeout,
        )


# moto's DynamoDB backend calls that read or write items: one at a time, as DynamoDB makes each request atomic.
DYNAMODB_CALLS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def back_up_items() -> Callable[[], None]:
    """moto's TransactWriteItems backs up every table it touches, whole (`copy.deepcopy`), before applying, and puts
    the copies back when it is cancelled: a cost that grows with the data (a 10,000-row import went quadratic, the
    session's e2e tables slowed every transaction). Here the backup is of the items the transaction names, and of
    the length of each touched table's stream, restored the same way when it is cancelled (a cancelled transaction
    hands no record to the stream's function). Atomic only under serialise_dynamodb's lock (or one thread).
    Answers what puts moto's own back."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _TablesKept:
        """`copy` inside moto's backend: a table is "backed up" as itself; everything else as before."""

        @staticmethod
        def deepcopy(value: Any) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[Any] = []
        streams: dict[str, tuple[Any, int]] = {}
        for item in transact_items:
            _, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue  # moto refuses it before writing anything
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            if table.stream_shard is not None:
                streams.setdefault(table.name, (table.stream_shard, len(table.stream_shard.items)))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in reversed(saved):
                if range_key is None:
                    table.items.pop(hash_key, None)
                    if before is not None:
                        table.items[hash_key] = before
                else:
                    table.items[hash_key].pop(range_key, None)
                    if before is not None:
                        table.items[hash_key][range_key] = before
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    kept = models.copy  # type: ignore[attr-defined]
    models.copy = _TablesKept  # type: ignore[attr-defined,assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    def undo() -> None:
        models.copy = kept  # type: ignore[attr-defined]
        models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]

    return undo


def serialise_dynamodb() -> None:
    """DynamoDB applies a conditional write or a transaction atomically; moto does not, under the runtime's threads
    (two functions at once, as Lambda runs them): its condition is checked, then the item written, and a failed
    transaction puts back a copy of each table it touched, taken before it began, so that another request's write
    made meanwhile is lost (a shop's consent vanished when the site's identify, at the same moment, lost its race
    to create the same contact). Each call runs alone under one lock.

    A write to a table with a stream hands its records to the mapped function (the report function) within the
    call, as moto does; that function writes to DynamoDB itself, from another thread: so the records are handed
    over once the call has let go of the lock, before it answers, one batch of a stream at a time and in order (a
    writer finding its stream's batch under way leaves its records to that one; a failed batch is put back for the
    next write, as moto keeps it)."""
    from moto.awslambda.utils import get_backend
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamRecord, StreamShard

    lock = threading.RLock()
    local = threading.local()  # per thread: how deep in locked calls, and the streams written meanwhile
    delivering: dict[str, threading.Lock] = {}  # per table with a stream

    def deliver(shard: Any) -> None:
        with lock:
            busy = delivering.setdefault(shard.table.name, threading.Lock())
        if not busy.acquire(blocking=False):
            return  # the batch under way takes these records next
        try:
            while True:
                with lock:
                    records, shard.items = shard.items, []
                if not records:
                    return
                result: Any = None
                for arn, mapping in list(shard.table.lambda_event_source_mappings.items()):
                    result = get_backend(shard.account_id, arn.split(":")[3]).send_dynamodb_items(
                        arn, records, mapping.event_source_arn
                    )
                if not result:
                    with lock:
                        shard.items = records + shard.items
                    return
        finally:
            busy.release()

    def alone(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if getattr(local, "depth", 0) == 0:
                local.depth, local.shards = 0, {}
            local.depth += 1
            try:
                with lock:
                    return method(*args, **kwargs)
            finally:
                local.depth -= 1
                if local.depth == 0:
                    for shard in list(local.shards.values()):
                        deliver(shard)

        return call

    def add(shard: Any, old: Any, new: Any) -> None:
        # moto's StreamShard.add, the handing over left to deliver()
        view = shard.table.stream_specification["StreamViewType"]
        name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        sequence = len(shard.items) + shard.starting_sequence_number
        shard.items.append(StreamRecord(shard.table, view, name, old, new, sequence))
        if shard.table.lambda_event_source_mappings and getattr(local, "depth", 0):
            local.shards[shard.table.name] = shard

    for name in DYNAMODB_CALLS:
        setattr(DynamoDBBackend, name, alone(getattr(DynamoDBBackend, name)))
    setattr(StreamShard, "add", add)  # noqa: B010 (monkeypatching moto, on purpose)


class Emulation(State):
    def _patch_moto(self) -> None:
        """What moto lacks, patched into it; time is patched after (timelines.py)."""
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.sesv2.responses import SESV2Response
        from moto.sns.models import SNSBackend
        from moto.sqs.models import Queue
        from moto.stepfunctions.models import StateMachine
        from moto.stepfunctions.responses import get_backend as sfn_backend

        runtime = self
        back_up_items()
        serialise_dynamodb()

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: dict[str, Any],
        ) -> bytes:
            return runtime._invoke(backend, function_name, body, response_headers)

        def send_sns_message(
            backend: Any, function_name: str, message: str, subject: str | None = None, qualifier: Any = None
        ) -> None:
            # moto's SNS hands the message to its Docker Lambda; Lambda would run the subscribed handler.
            record = {
                "EventVersion": "1.0",
                "EventSource": "aws:sns",
                "EventSubscriptionArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:local-subscription",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": runtime.email_events_topic or "",
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": runtime.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "SignatureVersion": "1",
                    "Signature": "local",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
            runtime._invoke(backend, function_name, json.dumps({"Records": [record]}), {})

        def send_dynamodb_items(backend: Any, function_arn: str, items: list[Any], source: str) -> bytes:
            # A table's stream mapped to a function (the report function): moto calls this on every write, with
            # every record not handed over yet, and keeps them for the next write unless the answer is truthy;
            # Lambda would run the handler with them (its FilterCriteria are left to the handler, which filters).
            records = [runtime._stream_record(item, source) for item in items]
            headers: dict[str, Any] = {}
            answer = runtime._invoke(backend, function_arn, json.dumps({"Records": records}), headers)
            if headers.get("x-amz-function-error") or (json.loads(answer or b"{}") or {}).get("batchItemFailures"):
                return b""  # failed: the records are handed over again with the next write, as a retry
            return answer or b"{}"

        original_send_email = SESV2Response.send_email

        def send_email(response: Any) -> str:
            # SES keeps a message's tags and configuration set for the events it publishes about it.
            answer: str = original_send_email(response)
            params = json.loads(response.body)
            message_id = json.loads(answer)["MessageId"]
            runtime._accepted[message_id] = next(runtime._ranks)
            runtime.ses_sends[message_id] = {
                "tags": {tag["Name"]: tag["Value"] for tag in params.get("EmailTags") or []},
                "configuration_set": params.get("ConfigurationSetName"),
            }
            return answer

        def create_state_machine(
            cls: Any,
            /,
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Any:
            # moto's CloudFormation creates state machines in the backend that does not execute them.
            props = cloudformation_json["Properties"]
            return sfn_backend(account_id, region_name).create_state_machine(
                props.get("StateMachineName", resource_name),
                props["DefinitionString"],
                props.get("RoleArn", ""),
                sm_type=props.get("StateMachineType"),
            )

        publish_as_moto_does = SNSBackend.publish

        def publish(backend: Any, message: str, arn: str | None, phone_number: str | None = None, **kwargs: Any) -> str:
            message_id: str = publish_as_moto_does(backend, message, arn, phone_number=phone_number, **kwargs)
            if phone_number:
                runtime._accepted[message_id] = next(runtime._ranks)
                runtime._sms_attributes[message_id] = dict(kwargs.get("message_attributes") or {})
            return message_id

        add_message_as_moto_does = Queue.add_message

        def add_message(queue: Any, message: Any) -> None:
            add_message_as_moto_does(queue, message)
            if queue.fifo_queue:
                drain_fifo(queue)

        setattr(Queue, "add_message", add_message)  # noqa: B010 (monkeypatching moto, on purpose)
        setattr(SNSBackend, "publish", publish)  # noqa: B010
        setattr(LambdaSimpleBackend, "invoke", invoke)  # noqa: B010
        setattr(LambdaSimpleBackend, "send_sns_message", send_sns_message)  # noqa: B010
        setattr(LambdaSimpleBackend, "send_dynamodb_items", send_dynamodb_items)  # noqa: B010
        setattr(SESV2Response, "send_email", send_email)  # noqa: B010
        setattr(StateMachine, "create_from_cloudformation_json", classmethod(create_state_machine))  # noqa: B010

    # ---- Lambda -----------------------------------------------------------------------------------------------
    def _invoke(self, backend: Any, function_name: str, body: Any, response_headers: dict[str, Any]) -> bytes:
        function = backend.get_function(function_name)
        handler = self._handlers.get(function.function_name)
        if handler is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ResourceNotFound", "errorMessage": function_name}).encode()
        context = InvocationContext(
            function_name=function.function_name,
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size or 128),
            deadline=time.monotonic() + float(function.timeout or 3),
        )
        try:
            event = json.loads(body) if body else {}
            instant = self._task_instant(event)
            with contextlib.nullcontext() if instant is None else pinned(instant):
                result = handler(event, context)
        except Exception as error:  # what Lambda reports as an unhandled function error
            print(f"{function.function_name}: {type(error).__name__}: {error}", file=sys.stderr)
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
            ).encode()
        return json.dumps(result).encode()

    @staticmethod
    def _stream_record(item: Any, source: str) -> dict[str, Any]:
        """A DynamoDB stream record as Lambda hands it over (moto's own shape, its time as epoch seconds)."""
        record = item.to_json()
        dynamodb = dict(record["dynamodb"])
        created: Any = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record["eventVersion"],
            "eventSource": record["eventSource"],
            "awsRegion": REGION,
            "dynamodb": dynamodb,
            "eventSourceARN": source,
        }

    # ---- SES events -------------------------------------------------------------------------------------------
    def ses_event(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """`POST /_local/ses-event` {message_id | to + step, type: open | click | delivery | bounce | complaint,
        link (click), bounce_type (bounce: Permanent, the default, Transient or Undetermined)}: what SES publishes
        when the message is delivered, bounces, is reported as spam, opened or clicked, on the configuration set's
        topic (the event publishing shape, with the message's tags and its recipient)."""

        try:
            request = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, {"error": "body is not JSON"}
        if not isinstance(request, dict) or request.get("type") not in SES_EVENT_TYPES:
            return 400, {"error": f"type must be one of {', '.join(SES_EVENT_TYPES)}"}
        if request["type"] == "click" and not isinstance(request.get("link"), str):
            return 400, {"error": "a click needs the link clicked"}
        bounce_type = request.get("bounce_type", "Permanent")
        if request["type"] == "bounce" and bounce_type not in BOUNCE_SUBTYPES:
            return 400, {"error": f"bounce_type must be one of {', '.join(BOUNCE_SUBTYPES)}"}
        sent = [
            entry
            for entry in self.outbox()
            if entry["channel"] == "email"
            and (
                entry["message_id"] == request.get("message_id")
                or (entry["to"] == request.get("to") and entry["step"] == request.get("step"))
            )
        ]
        if not sent:
            return 404, {"error": "no message sent with that message_id, or to that address at that step"}
        entry = sent[-1]
        send = self.ses_sends.get(entry["message_id"], {"tags": {}, "configuration_set": None})
        if send["configuration_set"] is None or self.email_events_topic is None:
            return 409, {"error": "the message was sent without a configuration set: SES publishes no event"}
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ses_type, detail_key = SES_EVENT_TYPES[request["type"]]
        detail = _ses_detail(ses_type, request, entry["to"], now)
        tags = {
            "ses:configuration-set": [send["configuration_set"]],
            "ses:from-domain": [parseaddr(entry["from"] or "")[1].partition("@")[2]],
            **{name: [value] for name, value in send["tags"].items()},
        }
        event = {
            "eventType": ses_type,
            "mail": {
                "timestamp": entry["sent_at"],
                "source": parseaddr(entry["from"] or "")[1],
                "sendingAccountId": ACCOUNT,
                "messageId": entry["message_id"],
                "destination": [entry["to"]],
                "headersTruncated": False,
                "tags": tags,
            },
            detail_key: detail,
        }
        published = self.client("sns").publish(TopicArn=self.email_events_topic, Message=json.dumps(event))
        return 202, {"published": published["MessageId"], "message_id": entry["message_id"], "type": ses_type}


SES_EVENT_TYPES = {  # the route's type -> SES eventType, and the key of its detail
    "open": ("Open", "open"),
    "click": ("Click", "click"),
    "delivery": ("Delivery", "delivery"),
    "bounce": ("Bounce", "bounce"),
    "complaint": ("Complaint", "complaint"),
}
BOUNCE_SUBTYPES = {"Permanent": "General", "Transient": "MailboxFull", "Undetermined": "Undetermined"}


def _ses_detail(ses_type: str, request: dict[str, Any], to: str, now: str) -> dict[str, Any]:
    """The event's detail as SES writes it (docs: "Contents of event data that Amazon SES publishes to SNS")."""
    feedback_id = f"local-{uuid.uuid4().hex}"
    if ses_type == "Open":
        return {"ipAddress": "127.0.0.1", "timestamp": now, "userAgent": "parcours local"}
    if ses_type == "Click":
        return {
            "ipAddress": "127.0.0.1",
            "timestamp": now,
            "userAgent": "parcours local",
            "link": request["link"],
            "linkTags": {},
        }
    if ses_type == "Delivery":
        return {
            "timestamp": now,
            "processingTimeMillis": 512,
            "recipients": [to],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "local.parcours",
        }
    if ses_type == "Bounce":
        bounce_type = request.get("bounce_type", "Permanent")
        permanent = bounce_type == "Permanent"
        return {
            "bounceType": bounce_type,
            "bounceSubType": BOUNCE_SUBTYPES[bounce_type],
            "bouncedRecipients": [
                {
                    "emailAddress": to,
                    "action": "failed",
                    "status": "5.1.1" if permanent else "4.2.2",
                    "diagnosticCode": f"smtp; {'550 5.1.1' if permanent else '452 4.2.2'} <{to}> local bounce",
                }
            ],
            "timestamp": now,
            "feedbackId": feedback_id,
            "reportingMTA": "dsn; local.parcours",
        }
    return {
        "complainedRecipients": [{"emailAddress": to}],
        "timestamp": now,
        "feedbackId": feedback_id,
        "userAgent": "parcours local",
        "complaintFeedbackType": "abuse",
        "arrivalDate": now,
    }
