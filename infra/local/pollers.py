"""Lambda's pollers and EventBridge Scheduler, played by the runtime: the FIFO queues drained as soon as a group is
free, the standard queues whose retries matter polled as Lambda polls them, and the daily runs at their time."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.local.state import ACCOUNT, REGION, State

# Standard queues whose event source the runtime plays itself, as Lambda's poller (see _poll_standard_queues).
POLLED_QUEUES = ("CrmHandoffQueue", "CampaignQueue")


def drain_fifo(queue: Any) -> None:
    """moto's event source receives only when a message is sent. One sent to a FIFO group while that group's
    previous message is in flight (an event its own processing emits: the scoring's score.changed,
    contact.qualified) cannot be received then, and would wait for the queue's next SendMessage. Lambda's
    poller takes it as soon as the group is free, when the message in flight is deleted, at the end of the
    send that carried it: so, after each send, invoke again while the queue hands out messages and the
    invocations succeed (a failed one shows again on a later send, as moto does)."""
    from moto.awslambda.utils import get_backend
    from moto.sqs.models import sqs_backends

    backend: Any = sqs_backends[queue.account_id][queue.region]
    for arn, mapping in list(queue.lambda_event_source_mappings.items()):
        if not mapping.enabled:
            continue
        for _ in range(1000):  # a bound, never reached: each round deletes what it received
            messages = backend.receive_message(queue.name, mapping.batch_size, 0, queue.visibility_timeout)
            if not messages:
                break
            if not get_backend(queue.account_id, queue.region).send_sqs_batch(arn, messages, queue.queue_arn):
                for message in messages:
                    backend.change_message_visibility(queue.name, message.receipt_handle, visibility_timeout=0)
                break
            for message in messages:
                backend.delete_message(queue.name, message.receipt_handle)


def _sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received message as Lambda's SQS event source hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType", "String")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class Pollers(State):
    # ---- SQS event sources -------------------------------------------------------------------------------------
    def _poll_standard_queues(self, translated: dict[str, Any], physical: dict[str, str]) -> None:
        """Lambda's SQS poller, for the queues in POLLED_QUEUES (the CRM handoff's, whose retries are their point; the
        campaigns', whose delays are).

        moto's own event source invokes the function while SendMessage is in flight, with a receive count of 1,
        and deletes every message unless the function raises (it ignores batchItemFailures). That is left as it is
        for the other queues (README, How the local runtime maps to AWS: the events queue, the schedule queue whose
        pages run within the send); these are turned off and polled here instead: real receive counts and
        attributes, the failed items of the answer left on the queue (they show again when their visibility, which
        the function may change, runs out), the rest deleted; a function error leaves the whole batch."""
        import boto3

        lambda_client = boto3.client("lambda", region_name=REGION)
        resources = translated["Resources"]
        for resource in resources.values():
            if resource["Type"] != "AWS::Lambda::EventSourceMapping":
                continue
            props = resource["Properties"]
            source = props.get("EventSourceArn")
            queue = source.get("Fn::GetAtt", [""])[0] if isinstance(source, dict) else ""
            if queue not in POLLED_QUEUES:
                continue
            function = physical[props["FunctionName"]["Ref"]]
            for mapping in lambda_client.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]:
                lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            threading.Thread(
                target=self._poll if self.skipped is None else self._poll_skipped,
                args=(physical[queue], function, int(props.get("BatchSize", 10))),
                name=f"parcours-poller-{queue}",
                daemon=True,
            ).start()

    def _poll(self, queue_url: str, function: str, batch_size: int) -> None:
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stopping.is_set():
            try:
                self._receive_and_invoke(sqs, queue_url, queue_arn, function, batch_size, wait=1)
            except Exception as error:  # moto stopping, or a bug here: say so, and go on unless stopping
                if self._stopping.is_set():
                    return
                print(f"polling {queue_url}: {type(error).__name__}: {error}", file=sys.stderr)
                self._stopping.wait(1)

    def _poll_skipped(self, queue_url: str, function: str, batch_size: int) -> None:
        """The poller on skipped time: counted while it polls, parked while the queue has nothing visible, until
        its next message shows (its visibility or delay ends: a timer) or one is sent (a wake)."""
        import boto3
        from moto.sqs.models import sqs_backends

        skipped = self.skipped
        assert skipped is not None
        name = queue_url.rsplit("/", 1)[-1]
        queue: Any = sqs_backends[ACCOUNT][REGION].get_queue(name)
        sqs = boto3.client("sqs", region_name=REGION)
        skipped.enter()
        try:
            while not self._stopping.is_set():
                try:
                    if self._receive_and_invoke(sqs, queue_url, queue.queue_arn, function, batch_size, wait=0):
                        continue
                except Exception as error:  # a bug here: say so, and wait for the next message
                    print(f"polling {queue_url}: {type(error).__name__}: {error}", file=sys.stderr)
                now = skipped.timestamp() * 1000
                hidden = [max(m.visible_at, m.delayed_until) for m in list(queue._messages)]
                later = [moment for moment in hidden if moment > now]
                skipped.park(
                    min(later) / 1000 if later else None,  # a message shows from its moment on (Message.visible)
                    f"the next message of {name}",
                    keys=[("queue", name)],
                    woken_if=lambda: any(m.visible and not m.delayed for m in list(queue._messages)),
                )
        finally:
            skipped.leave()

    def _receive_and_invoke(
        self, sqs: Any, queue_url: str, queue_arn: str, function: str, batch_size: int, wait: int
    ) -> int:
        """One poll: a batch received and handed to the function, its failed items left on the queue (they show
        again when their visibility, which the function may change, runs out), the rest deleted; a function error
        leaves the whole batch. Answers how many messages it received."""
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [_sqs_record(message, queue_arn) for message in messages]}
        answer = self.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
        result = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            return len(messages)  # the whole batch shows again after the queue's visibility timeout
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures") or []}
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                    for n, message in enumerate(done[start : start + 10])
                ],
            )
        return len(messages)

    # ---- EventBridge Scheduler --------------------------------------------------------------------------------
    def _play_schedules(self) -> None:
        """Invokes each scheduled function once per simulated day at its UTC time, on the scaled clock, with the
        scheduled time as EventBridge Scheduler passes it. A run that falls behind is caught up, day by day."""
        due = self._first_runs()
        while due and not self._stopping.is_set():
            due.sort()
            moment, function = due[0]
            wait = self.clock.real_seconds((moment - self.clock.now()).total_seconds())
            if wait > 0 and self._stopping.wait(wait):
                return
            due[0] = self._scheduled_run(function, moment)

    def _play_schedules_skipped(self) -> None:
        """The daily runs on skipped time: each a background timer, which fires when a client moves time past it
        (it never moves time by itself: run_until_idle stops when only the daily runs are left)."""
        skipped = self.skipped
        due = self._first_runs()
        if not due or skipped is None:
            return
        skipped.enter()
        try:
            while not self._stopping.is_set():
                due.sort()
                moment, function = due[0]
                skipped.park(moment.timestamp(), f"the daily run of {function}", background=True)
                due[0] = self._scheduled_run(function, moment)
        finally:
            skipped.leave()

    def _first_runs(self) -> list[tuple[datetime, str]]:
        """Each scheduled function's first run after now, with its function name."""
        now = self.clock.now()
        due: list[tuple[datetime, str]] = []
        for function, when in self.schedules:
            moment = now.replace(hour=when.hour, minute=when.minute, second=0, microsecond=0)
            due.append((moment if moment > now else moment + timedelta(days=1), function))
        return due

    def _scheduled_run(self, function: str, moment: datetime) -> tuple[datetime, str]:
        """One run; answers the function's next one, a day later."""
        try:
            self.run_schedule(function, moment)
        except Exception as error:  # the scheduler retries in AWS; locally, say so and go on to the next day
            print(f"scheduled run of {function} at {moment.isoformat()}: {error}", file=sys.stderr)
        return moment + timedelta(days=1), function

    def run_schedule(self, function: str, moment: datetime) -> Any:

        answer = self.client("lambda").invoke(
            FunctionName=function, Payload=json.dumps({"time": moment.astimezone(UTC).isoformat()}).encode()
        )
        return json.loads(answer["Payload"].read() or b"null")

    def run_daily_now(self) -> dict[str, Any]:
        """`POST /_local/schedule`: the whole daily run in this process (its plan, then each key's pages one after
        the other), answering its report. The runs on the scaled clock go the way AWS goes instead: the scheduled
        function plans onto the schedule queue and the page function reads the pages from its event source."""
        from shared.journeys import schedule
        from shared.settings import get_settings

        now = self.clock.now()
        return dataclasses.asdict(schedule.run(get_settings(), now, now))
