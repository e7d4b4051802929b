"""`parcours local`: the real template on moto, the real handlers in-process, the HTTP API on localhost.

What AWS would do and moto does not is done here, and only that: running Lambda handlers (moto's Docker-less
Lambda returns a canned answer), serving the HTTP API routes (moto skips AWS::ApiGatewayV2), applying
DefinitionSubstitutions, creating the SES configuration set and the SNS subscriptions moto's CloudFormation skips,
delivering SNS messages to subscribed functions (moto's SNS calls its Docker Lambda), keeping the tags of each
sent email (moto's SESv2 drops them) for the SES events the local route `/_local/ses-event` publishes, verifying
the sender's domain (in AWS, the stack's identity and the operator's DNS records), keeping the attributes of
published SMS (moto drops them; the outbox shows the sender id), and scaling time for Wait states along with the
one clock (each execution on its own timeline, its Tasks running at their instant on it, as they would in AWS).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import heapq
import html
import importlib
import itertools
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_string
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra import build, samtemplate, sigv4
from infra.skipped import SkippedTime
from shared.clock import Clock, drive, pinned

REGION = "eu-west-3"
ACCOUNT = "123456789012"
STACK = "parcours"
TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/", "application/xml")

LOCAL_PARAMETERS = {
    "SenderEmail": "bonjour@boutique.example",
    "SenderName": "La Boutique",
    "PostalAddress": "12 rue des Artisans, 75011 Paris, France",
}


# Settings that are template parameters in AWS, taken from the environment locally.
ENVIRONMENT_PARAMETERS = {
    "PARCOURS_CRM_URL": "CrmEndpointUrl",
    "PARCOURS_SMS_SENDER_ID": "SmsSenderId",
    "PARCOURS_SMS_STOP_TEXT": "SmsStopText",
}


# Standard queues whose event source the runtime plays itself, as Lambda's poller (see _poll_standard_queues).
POLLED_QUEUES = ("CrmHandoffQueue",)


class LocalRuntimeError(RuntimeError):
    """The local stack could not be created; the message says which resource or step failed."""


def _instant(value: Any) -> float | None:
    """A UNIX timestamp from what moto puts in the context object (a datetime or ISO 8601 text)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class LocalRuntime:
    def __init__(
        self,
        port: int = 3000,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        environ: dict[str, str] | None = None,
        crm_url: str | None = None,
        start_at: datetime | None = None,
        skip_time: bool = False,
    ) -> None:
        self.host = host
        self.start_at = start_at  # the simulated instant the clock reads when the stack is ready (default: now)
        self.port = port or free_port()
        self.time_scale = time_scale
        self.environ = dict(os.environ if environ is None else environ)
        if crm_url:
            self.environ["PARCOURS_CRM_URL"] = crm_url
        if self.environ.get("PARCOURS_CRM_URL") and not self.environ.get("PARCOURS_CRM_SECRET"):
            raise LocalRuntimeError(
                "a CRM URL needs PARCOURS_CRM_SECRET in the environment: the CRM checks the signature with it"
            )
        self.clock = Clock(scale=time_scale, epoch=time.time())
        # --skip-time: the clock stands still while anything runs, and moves only when a client asks (infra.skipped)
        self.skipped = SkippedTime(time.time() if start_at is None else start_at.timestamp()) if skip_time else None
        self.moto_port = free_port()
        self.routes: dict[tuple[str, str], str] = {}  # (method, path) -> function name
        self.iam_routes: set[str] = set()  # route keys ("POST /v1/lists/{name}/add") that need a SigV4 signature
        self.schedules: list[tuple[str, samtemplate.DailySchedule]] = []  # (function name, when)
        self._stopping = threading.Event()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._server: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._sends_table = ""
        self._sms_attributes: dict[str, dict[str, Any]] = {}  # SNS message id -> the attributes it was sent with
        self._accepted: dict[str, int] = {}  # SES or SNS message id -> its rank in the order they were accepted
        self._ranks = itertools.count()
        # execution id -> the simulated instant its Tasks run at and its next Wait counts from (None: the clock's)
        self._timelines: dict[str, float | None] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.ses_sends: dict[str, dict[str, Any]] = {}  # SES message id -> {tags, configuration_set}
        self.email_events_topic: str | None = None  # where the configuration set publishes SES events

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._start_moto()
        self._patch_moto()
        self._deploy()
        self._serve()
        play = self._play_schedules if self.skipped is None else self._play_schedules_skipped
        threading.Thread(target=play, name="parcours-scheduler", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._server is not None:
            self._server.stop()
        if self.skipped is not None:
            drive(None)

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        # moto says, for every resource type it skips, what this module's docstring already says.
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
        # Metrics are disabled locally (no CloudWatch to read them), which Powertools reports on every flush.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        for noisy in ("moto", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.ERROR)

        os.environ.update(
            {
                "MOTO_PORT": str(self.moto_port),  # moto's Step Functions calls services at localhost:MOTO_PORT
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._server.start()
        skipped = self.skipped
        if skipped is not None:  # every call to the AWS emulation is work: time stands still until it is answered
            wsgi = self._server._server
            app = wsgi.app

            def counted(environ: Any, start_response: Any) -> Any:
                with skipped.running():
                    return app(environ, start_response)

            wsgi.app = counted
        import urllib.request

        request = urllib.request.Request(
            f"{self.aws_endpoint}/moto-api/config",
            data=json.dumps(
                {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
            ).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).read()

    def _patch_moto(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.sesv2.responses import SESV2Response
        from moto.sns.models import SNSBackend
        from moto.sqs.models import Queue
        from moto.stepfunctions.models import StateMachine
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )
        from moto.stepfunctions.responses import get_backend as sfn_backend

        runtime = self

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

        def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
            # A Wait counts from where the execution's own timeline stands (its start, then each Wait's end), not
            # from now: the real milliseconds its Tasks took, magnified by the time scale, would otherwise pile up
            # step after step (AWS's milliseconds are nothing next to days). The Tasks run at that instant too
            # (see _invoke), so a Wait a Task worked out (wait_until, a deferred send) counts from it as well.
            # After a wait_for the timeline stands nowhere (the event may come at any time): from now.
            execution = env.states.context_object.context_object_data["Execution"]
            now = runtime.clock.timestamp()
            timelines = runtime._timelines
            if execution["Id"] in timelines:
                origin = timelines[execution["Id"]]
            else:
                started = _instant(execution.get("StartTime"))
                origin = None if started is None else runtime.clock.simulated(started)
            target = (now if origin is None else origin) + wait_seconds
            timelines[execution["Id"]] = target
            deadline = time.monotonic() + runtime.clock.real_seconds(max(0.0, target - now))
            while env.is_running():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if env.program_state_event.wait(min(remaining, 0.5)):
                    time.sleep(0.01)  # stopping: is_running() turns false at once

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

        def timeout_body(timeout: Any, env: Any) -> None:
            # TimeoutSeconds of a task (a wait_for step) lasts as long as the same Wait would. The execution's
            # timeline restarts when the wait ends: the event may come at any time.
            if not timeout.is_default_value():  # only wait_for steps set one; every other Task has the default
                runtime._timelines[env.states.context_object.context_object_data["Execution"]["Id"]] = None
            env.stack.append(runtime.clock.real_seconds(timeout._eval_seconds(env=env)))

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
                runtime._drain_fifo(queue)

        setattr(Queue, "add_message", add_message)  # noqa: B010
        setattr(SNSBackend, "publish", publish)  # noqa: B010
        setattr(Timeout, "_eval_body", timeout_body)  # noqa: B010
        setattr(LambdaSimpleBackend, "invoke", invoke)  # noqa: B010 (monkeypatching moto, on purpose)
        setattr(LambdaSimpleBackend, "send_sns_message", send_sns_message)  # noqa: B010
        setattr(SESV2Response, "send_email", send_email)  # noqa: B010
        setattr(WaitFunction, "_wait_interval", wait_interval)  # noqa: B010
        # A Task's Retry interval (2 s, then 4 s...) is simulated time too: unscaled, one retry would last a
        # simulated day and push every later step of the journey.
        scaled_time = SimpleNamespace(sleep=lambda seconds: time.sleep(runtime.clock.real_seconds(seconds)))
        setattr(retrier_decl, "time", scaled_time)  # noqa: B010
        setattr(StateMachine, "create_from_cloudformation_json", classmethod(create_state_machine))  # noqa: B010
        if self.skipped is not None:
            self._patch_moto_for_skipped_time(self.skipped)

    def _patch_moto_for_skipped_time(self, skipped: SkippedTime) -> None:
        """What waits in moto parks on the skipped clock, and what moto stamps reads it (see infra.skipped)."""
        import moto.sqs.models as sqs_models
        from moto.sqs.models import Message, Queue, SQSBackend
        from moto.stepfunctions.parser import models as sfn_models
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout, TimeoutSeconds
        from moto.stepfunctions.parser.asl.component.state import state as sfn_state
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
            StateTaskServiceCallback,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackOutcomeTimedOut
        from moto.stepfunctions.parser.asl.eval.event import event_manager
        from moto.stepfunctions.parser.backend import execution as sfn_execution
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        def execution_of(env: Any) -> str:
            return str(env.states.context_object.context_object_data["Execution"]["Id"])

        def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
            skipped.park(
                skipped.timestamp() + max(0, wait_seconds),
                f"a Wait of {execution_of(env)}",
                keys=[("execution", execution_of(env))],
                woken_if=lambda: not env.is_running(),
            )

        def timeout_body(timeout: Any, env: Any) -> None:
            # The Task's own thread never times out in real time; a wait_for's timeout is a timer (await_token).
            env.stack.append(TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)

        def await_token(
            task: Any, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
        ) -> Any:
            seconds = None if task.timeout.is_default_value() else task.timeout._eval_seconds(env=env)
            execution = execution_of(env)
            skipped.park(
                None if seconds is None else skipped.timestamp() + seconds,
                f"a wait_for of {execution}",
                keys=[("callback", id(callback_endpoint)), ("execution", execution)],
                woken_if=lambda: callback_endpoint.get_outcome() is not None or not env.is_running(),
            )
            outcome = callback_endpoint.get_outcome()
            return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id) if outcome is None else outcome

        notify_as_moto_does = CallbackEndpoint.notify
        interrupt_as_moto_does = CallbackEndpoint.interrupt_all

        def notify(endpoint: Any, outcome: Any) -> None:
            notify_as_moto_does(endpoint, outcome)
            skipped.wake(("callback", id(endpoint)))

        def interrupt_all(endpoint: Any) -> None:
            interrupt_as_moto_does(endpoint)
            skipped.wake(("callback", id(endpoint)))

        def start_worker(worker: Any) -> None:
            # Counted from its start (inside StartExecution) to its end, but while it waits.
            skipped.enter()

            def run() -> None:
                try:
                    worker._execution_logic()
                finally:
                    skipped.leave()

            threading.Thread(target=run, name="parcours-execution", daemon=True).start()

        stop_as_moto_does = ExecutionWorker.stop

        def stop_worker(worker: Any, stop_date: Any, error: Any, cause: Any) -> None:
            stop_as_moto_does(worker, stop_date, error, cause)
            if worker.env is not None:
                skipped.wake(("execution", execution_of(worker.env)))

        add_message = Queue.add_message  # the FIFO draining version (see _patch_moto)

        def add_and_wake(queue: Any, message: Any) -> None:
            add_message(queue, message)
            skipped.wake(("queue", queue.name))

        def retained(backend: Any, queue_name: str, message: Any) -> bool:
            period = backend.get_queue_attributes(queue_name, ["MessageRetentionPeriod"])["MessageRetentionPeriod"]
            return bool(int(period) + message.sent_timestamp / 1000 > skipped.timestamp())

        class SkippedDatetime:
            """`datetime.datetime.now` as moto's Step Functions modules call it, on the skipped clock."""

            @staticmethod
            def now(tz: Any = None) -> datetime:
                return datetime.fromtimestamp(skipped.timestamp(), tz=tz or UTC)

        skipped_datetime = SimpleNamespace(datetime=SkippedDatetime, timezone=timezone)
        for module in (sfn_models, sfn_execution, sfn_state, event_manager):
            setattr(module, "datetime", skipped_datetime)  # noqa: B010 (start and stop dates, history times)
        setattr(sqs_models, "unix_time_millis", lambda dt=None: skipped.timestamp() * 1000)  # noqa: B010
        # A message's retention is judged on the skipped clock too (moto reads the machine's), else messages
        # sent at a simulated date further back than the retention period vanish. Long polls keep the machine's
        # clock for their deadline: the frozen one would never end them.
        setattr(SQSBackend, "is_message_valid_based_on_retention_period", retained)  # noqa: B010
        # A message shows from its moment on, as in SQS (moto: only once past it). The clock stands still between
        # requests, so one made visible now (VisibilityTimeout 0: `parcours dlq list` releases what it listed)
        # would stay hidden from the next request (`parcours dlq redrive`) until a client moved time.
        setattr(Message, "visible", property(lambda message: skipped.timestamp() * 1000 >= message.visible_at))  # noqa: B010
        setattr(Queue, "add_message", add_and_wake)  # noqa: B010
        setattr(WaitFunction, "_wait_interval", wait_interval)  # noqa: B010
        setattr(Timeout, "_eval_body", timeout_body)  # noqa: B010
        setattr(StateTaskServiceCallback, "_eval_wait_for_task_token", await_token)  # noqa: B010
        setattr(CallbackEndpoint, "notify", notify)  # noqa: B010
        setattr(CallbackEndpoint, "interrupt_all", interrupt_all)  # noqa: B010
        setattr(ExecutionWorker, "start", start_worker)  # noqa: B010
        setattr(ExecutionWorker, "stop", stop_worker)  # noqa: B010
        setattr(retrier_decl, "time", SimpleNamespace(sleep=skipped.sleep))  # noqa: B010

    def client(self, service: str) -> Any:
        """The runtime's own client of an emulated service, made once: making one per request or daily run costs
        more than the call (and boto3's default session is not safe to make clients from in several threads)."""
        with self._clients_lock:
            if service not in self._clients:
                import boto3

                self._clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
            return self._clients[service]

    # ---- deployment -------------------------------------------------------------------------------------------
    def _deploy(self) -> None:
        import boto3

        sam = samtemplate.load()
        compiled = build.compile_all()
        definitions = {
            props["DefinitionUri"]: compiled.definition(props["DefinitionUri"].rsplit("/", 1)[-1].split(".")[0])
            for _, props in samtemplate.state_machines(sam)
        }
        parameters = {**LOCAL_PARAMETERS, "PublicBaseUrl": self.api_url}
        # moto's CloudFormation skips AWS::SES::EmailIdentity, and the outputs reading its DKIM tokens would fail
        # the stack; SES would hand out tokens for DNS records no one adds here. So the local stack takes the path
        # of an operator whose domain is already verified, which the runtime does (see _complete_skipped_resources).
        parameters["ManageSendingDomain"] = "false"
        for name in LOCAL_PARAMETERS:
            override = self.environ.get(f"PARCOURS_LOCAL_{name.upper()}")
            if override:
                parameters[name] = override
        for variable, name in ENVIRONMENT_PARAMETERS.items():
            if self.environ.get(variable):
                parameters[name] = self.environ[variable]
        translated = samtemplate.translate(samtemplate.for_local(sam, definitions), parameters)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=samtemplate.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise LocalRuntimeError(f"stack {STACK}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
        physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
            if r.get("LogicalResourceId")  # moto lists the resource types it skipped without names
        }
        self._sends_table = physical["SendsTable"]
        self._complete_skipped_resources(translated, parameters["SenderEmail"], physical)
        self._configure_handlers(translated, physical)
        self._poll_standard_queues(translated, physical)
        for route in samtemplate.http_routes(sam):
            self.routes[(route.method, route.path)] = physical[route.function]
            if route.iam:
                self.iam_routes.add(f"{route.method} {route.path}")
        self.schedules = [(physical[s.function], s) for s in samtemplate.daily_schedules(sam)]
        self._warm_up(compiled, physical)

    def _warm_up(self, compiled: build.Compiled, physical: dict[str, str]) -> None:
        """Pays the functions' first-call costs (clients, compiled templates, first requests) before anything
        runs. A cold start costs about a real second, which the time scale turns into hours or days; in AWS it is
        a second against days. Nothing changes: an unrecognised event is only recorded, a wait is planned for no
        one, and the templates are rendered with sample data."""
        import boto3

        from infra import validation
        from shared import clients, storage
        from shared.events import UNRECOGNISED, Event
        from shared.journeys import dispatch
        from shared.settings import get_settings
        from shared.sources.ingestion import group_and_dedup_ids

        validation.templates(compiled)  # fills the template caches the act function renders from
        for client in (clients.sqs, clients.sesv2, clients.stepfunctions, clients.sns, clients.events):
            client(REGION)
        dispatch.catalogue()
        t = storage.tables(get_settings())
        for table in dataclasses.fields(t):  # each model opens its own connection on its first request
            next(iter(getattr(t, table.name).query("warm-up", limit=1)), None)
        now = self.clock.now().isoformat()
        event = Event(f"local#warm-up#{uuid.uuid4().hex}", UNRECOGNISED, "local", "warm-up", now, now)
        group, dedup = group_and_dedup_ids(event)
        boto3.client("sqs", region_name=REGION).send_message(
            QueueUrl=physical["EventsQueue"],
            MessageBody=event.to_json(),
            MessageGroupId=group,
            MessageDeduplicationId=dedup,
        )
        plan = {
            "action": "plan_wait",
            "scenario": "warm-up",
            "step": "warm-up",
            "contact_id": "warm-up",
            "time": "10:00",
        }
        boto3.client("lambda", region_name=REGION).invoke(
            FunctionName=physical["ActFunction"], Payload=json.dumps(plan).encode()
        )

    def _complete_skipped_resources(self, translated: dict[str, Any], sender: str, physical: dict[str, str]) -> None:
        import boto3

        sesv2 = boto3.client("sesv2", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        lambda_client = boto3.client("lambda", region_name=REGION)
        for resource in translated["Resources"].values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::SES::ConfigurationSet":
                sesv2.create_configuration_set(ConfigurationSetName=f"{STACK}-email")
            elif resource["Type"] == "AWS::SES::ConfigurationSetEventDestination":
                self.email_events_topic = physical[props["EventDestination"]["SnsDestination"]["TopicARN"]["Ref"]]
            elif resource["Type"] == "AWS::SNS::Subscription" and props.get("Protocol") == "lambda":
                topic = physical[props["TopicArn"]["Ref"]]
                function = physical[props["Endpoint"]["Fn::GetAtt"][0]]
                arn = lambda_client.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
                known = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
                if not any(sub["Endpoint"] == arn for sub in known):
                    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)
        # In AWS the operator verifies the sending domain once (DKIM records); locally we do it for them.
        boto3.client("ses", region_name=REGION).verify_domain_identity(Domain=sender.partition("@")[2])

    def _configure_handlers(self, translated: dict[str, Any], physical: dict[str, str]) -> None:
        """One process holds every function, so their environments must agree; local overrides go on top."""
        import boto3

        lambda_client = boto3.client("lambda", region_name=REGION)
        merged: dict[str, str] = {}
        handlers: dict[str, str] = {}
        for logical_id, resource in translated["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            config = lambda_client.get_function_configuration(FunctionName=physical[logical_id])
            for key, raw in config.get("Environment", {}).get("Variables", {}).items():
                value = str(raw)
                if merged.get(key, value) != value:
                    raise LocalRuntimeError(f"functions disagree on environment variable {key}")
                merged[key] = value
            handlers[config["FunctionName"]] = config["Handler"]
        # Simulated time starts now, when the stack is ready, at the real date and time or at `start_at`.
        start = None if self.start_at is None else self.start_at.timestamp()
        self.clock = Clock(scale=self.time_scale, epoch=time.time(), start=start)
        if start is not None:
            merged["PARCOURS_CLOCK_START"] = repr(start)
        if self.skipped is not None:  # every clock of this process, the handlers' too, reads the skipped time
            drive(self.skipped.timestamp)
        merged.update(
            {
                "PARCOURS_TIME_SCALE": repr(1.0 if self.skipped is not None else self.time_scale),
                "PARCOURS_CLOCK_EPOCH": repr(self.clock.epoch),
                "PARCOURS_LINK_SECRET": self.environ.get("PARCOURS_LINK_SECRET") or secrets.token_urlsafe(32),
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": self.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )
        for name in (
            "PARCOURS_SHOPIFY_SECRET",
            "PARCOURS_WOOCOMMERCE_SECRET",
            "PARCOURS_GENERIC_SECRET",
            "PARCOURS_WRITE_KEY",
            "PARCOURS_CRM_SECRET",
        ):
            if self.environ.get(name):
                merged[name] = self.environ[name]
        os.environ.update(merged)
        # Imported only now: Powertools reads its settings from the environment when a module creates its Logger.
        self._handlers = {name: self._load_handler(handler) for name, handler in handlers.items()}

    @staticmethod
    def _load_handler(handler: str) -> Callable[..., Any]:
        module_name, _, attribute = handler.rpartition(".")
        return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]

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

    def _task_instant(self, event: Any) -> float | None:
        """The simulated instant a Step Functions Task runs at: where its execution's timeline stands (the end of
        its last Wait, else its start). None for any other invocation, and for a Task after a wait_for, which runs
        on the one clock."""
        from moto.stepfunctions.exceptions import ExecutionDoesNotExist, InvalidArn
        from moto.stepfunctions.responses import get_backend

        execution = event.get("execution") if isinstance(event, dict) else None
        if not isinstance(execution, str) or self.skipped is not None:  # skipped time stands at the Task's instant
            return None
        if execution in self._timelines:
            return self._timelines[execution]
        try:
            started = get_backend(ACCOUNT, REGION).describe_execution(execution).start_date
        except (ExecutionDoesNotExist, InvalidArn):  # an invocation of the act function from outside a journey
            return None
        return self.clock.simulated(started.timestamp())

    # ---- SQS event sources -------------------------------------------------------------------------------------
    @staticmethod
    def _drain_fifo(queue: Any) -> None:
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

    def _poll_standard_queues(self, translated: dict[str, Any], physical: dict[str, str]) -> None:
        """Lambda's SQS poller, for the queues in POLLED_QUEUES (the CRM handoff's), whose retries are their point.

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

    # ---- skipped time -----------------------------------------------------------------------------------------
    def move_time(self, how: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """`POST /_local/advance` {"to": ISO 8601 with offset} or {"seconds": N}: time goes to that moment, each
        timer on the way firing at its own moment; `POST /_local/run-until-idle` {"at_most_days": N (400)}: time
        goes on as long as something but the daily runs is due (a Wait, a wait_for timeout, a retry, a message's
        visibility). Both answer once nothing runs: {now, fired, idle, pending: [{due, what, execution}]}."""
        if self.skipped is None:
            return 409, {"error": "time is scaled, not skipped: start parcours local with --skip-time"}
        try:
            request = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, {"error": "body is not JSON"}
        if not isinstance(request, dict):
            return 400, {"error": "body must be a JSON object"}
        now = self.skipped.timestamp()
        if how == "advance":
            if ("to" in request) == ("seconds" in request):
                return 400, {"error": "give either to (an ISO 8601 instant with its offset) or seconds"}
            if "to" in request:
                moment = _instant(request["to"]) if isinstance(request["to"], str) else None
                if moment is None or not re.search(r"(Z|[+-]\d\d:?\d\d)$", request["to"]):
                    return 400, {"error": "to must be an ISO 8601 instant with its offset, e.g. 2026-11-24T09:00:00Z"}
            else:
                seconds = request["seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e10:
                    return 400, {"error": "seconds must be a number, 0 or more"}
                moment = now + seconds
            if moment < now:
                before = datetime.fromtimestamp(now, UTC).isoformat()
                return 400, {"error": f"to is before now ({before}): time never goes back"}
            done = self.skipped.advance(to=moment)
        else:
            days = request.get("at_most_days", 400)
            if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 3660:
                return 400, {"error": "at_most_days must be a number above 0, at most 3660"}
            done = self.skipped.advance(until_idle=True, limit=now + days * 86400)
        return 200, {
            "now": datetime.fromtimestamp(done.now, UTC).isoformat(),
            "fired": done.fired,
            "idle": done.idle,
            "pending": [
                {
                    "due": None if due == float("inf") else datetime.fromtimestamp(due, UTC).isoformat(),
                    "what": what,
                    "execution": execution,
                }
                for due, what, execution in done.pending
            ],
        }

    # ---- HTTP API ---------------------------------------------------------------------------------------------
    def _serve(self) -> None:
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests may carry personal data in query strings: not logged

            def do_GET(self) -> None:
                runtime._http_request(self, "GET")

            def do_POST(self) -> None:
                runtime._http_request(self, "POST")

        self._http = ThreadingHTTPServer((self.host, self.port), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="parcours-http", daemon=True).start()

    def _http_request(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if method == "GET" and url.path == "/_local/outbox":
            self._reply(request, 200, {"content-type": "application/json"}, json.dumps(self.outbox()).encode())
            return
        if method == "GET" and url.path == "/_local/clock":
            now = {
                "now": self.clock.now().isoformat(),
                "time_scale": None if self.skipped else self.time_scale,
                "skipped": self.skipped is not None,
            }
            self._reply(request, 200, {"content-type": "application/json"}, json.dumps(now).encode())
            return
        if method == "POST" and url.path in ("/_local/advance", "/_local/run-until-idle"):
            status, answer = self.move_time(url.path.rpartition("/")[2], body)
            self._reply(request, status, {"content-type": "application/json"}, json.dumps(answer).encode())
            return
        with contextlib.nullcontext() if self.skipped is None else self.skipped.running():  # time stands still
            self._http_request_counted(request, method, url, body)

    def _http_request_counted(self, request: BaseHTTPRequestHandler, method: str, url: Any, body: bytes) -> None:
        if method == "POST" and url.path == "/_local/ses-event":
            status, answer = self.ses_event(body)
            self._reply(request, status, {"content-type": "application/json"}, json.dumps(answer).encode())
            return
        if method == "POST" and url.path == "/_local/schedule":
            reports = [self.run_daily_now()]
            self._reply(request, 200, {"content-type": "application/json"}, json.dumps(reports).encode())
            return
        if method == "GET" and url.path == "/_local/outbox.html":
            self._reply(request, 200, {"content-type": "text/html; charset=utf-8"}, outbox_page(self.outbox()))
            return
        match = self._route(method, url.path)
        if match is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        function, route_key, parameters = match
        if route_key in self.iam_routes:
            signed_url = f"http://{request.headers.get('Host', '')}{request.path}"
            refusal = sigv4.refusal(method, signed_url, dict(request.headers.items()), body)
            if refusal is not None:  # what API Gateway answers, before any function runs
                denied = json.dumps({"message": refusal}).encode()
                self._reply(request, 403, {"content-type": "application/json"}, denied)
                return
        status, headers, payload = self._call_route(
            function, request, method, url.path, url.query, body, route_key, parameters
        )
        self._reply(request, status, headers, payload)

    def _route(self, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        """The function, route key and path parameters of a request, as API Gateway matches `/a/{id}/b`."""
        for (route_method, route_path), function in self.routes.items():
            if route_method != method:
                continue
            pattern = "^" + re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(route_path)) + "$"
            found = re.match(pattern, path)
            if found:
                return function, f"{method} {route_path}", found.groupdict()
        return None

    def _call_route(
        self,
        function: str,
        request: BaseHTTPRequestHandler,
        method: str,
        path: str,
        query: str,
        body: bytes,
        route_key: str,
        parameters: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        """API Gateway HTTP API, payload format 2.0: the event it builds and the answer it makes of the result."""

        headers = {name.lower(): value for name, value in request.headers.items()}
        content_type = headers.get("content-type", "")
        textual = content_type.startswith(TEXT_TYPES)
        try:
            text_body = body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            text_body = None
        event = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "pathParameters": parameters or None,
            "rawQueryString": query,
            "headers": headers,
            "queryStringParameters": dict(parse_qsl(query)) or None,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "local",
                "domainName": f"{self.host}:{self.port}",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": self.clock.now().strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(self.clock.timestamp() * 1000),
            },
            "body": text_body if text_body is not None else base64.b64encode(body).decode(),
            "isBase64Encoded": text_body is None,
        }
        answer = self.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        result = json.loads(payload) if payload else None
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, {"content-type": "application/json"}, json.dumps(result).encode()
        out_body = result.get("body") or ""
        raw = base64.b64decode(out_body) if result.get("isBase64Encoded") else str(out_body).encode()
        return (
            int(result["statusCode"]),
            {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()},
            raw,
        )

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name != "content-length":
                request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    # ---- outbox -----------------------------------------------------------------------------------------------
    def outbox(self) -> list[dict[str, Any]]:
        """Every message SES and SNS accepted, oldest first (the local runtime contract's shape)."""
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        accepted = self._accepted
        emails = [
            (accepted.get(message.id, -1), {**_email_entry(message.raw_data), "message_id": message.id})
            for message in list(ses_backends[ACCOUNT][REGION].sent_messages)
            if hasattr(message, "raw_data")
        ]
        published = list(sns_backends[ACCOUNT][REGION].sms_messages.items())
        records = self._sms_records() if published else {}
        texts = [
            (
                accepted.get(message_id, -1),
                _sms_entry(phone, text, records[message_id], self._sms_attributes.get(message_id, {})),
            )
            for message_id, (phone, text) in published
            if message_id in records  # recorded as sent a moment after SNS accepted it
        ]
        # Each list is in the order SES or SNS accepted its messages: merged on that order. Not on `sent_at`: it is
        # the instant on each execution's own timeline (see _invoke), and an email's Date header has only seconds.
        return [entry for _, entry in heapq.merge(emails, texts, key=lambda ranked: ranked[0])]

    def _sms_records(self) -> dict[str, dict[str, Any]]:
        """The send records of SMS (scenario, step, when), by SNS message id: moto keeps only number and text."""

        dynamodb = self.client("dynamodb")
        records: dict[str, dict[str, Any]] = {}
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self._sends_table,
            FilterExpression="channel = :sms AND attribute_exists(message_id)",
            ExpressionAttributeValues={":sms": {"S": "sms"}},
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                records[item["message_id"]["S"]] = {
                    "scenario": item["scenario"]["S"],
                    "step": item["step"]["S"],
                    "sent_at": item["sent_at"]["S"] if "sent_at" in item else None,
                    "segments": int(item["segments"]["N"]) if "segments" in item else None,
                    "encoding": item["encoding"]["S"] if "encoding" in item else None,
                }
        return records

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


def _part(message: Message, subtype: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8")
    return None


def _email_entry(raw: str) -> dict[str, Any]:
    from email.header import decode_header, make_header

    message = message_from_string(raw)

    def header(name: str) -> str | None:
        value = message.get(name)
        return str(make_header(decode_header(value))) if value is not None else None

    date = message.get("Date")
    return {
        "channel": "email",
        "to": parseaddr(header("To") or "")[1],
        "from": header("From"),
        "subject": header("Subject"),
        "text": _part(message, "plain"),
        "html": _part(message, "html"),
        "headers": {name: str(make_header(decode_header(value))) for name, value in message.items()},
        "scenario": message.get("X-Parcours-Scenario"),
        "step": message.get("X-Parcours-Step"),
        "sent_at": parsedate_to_datetime(date).isoformat() if date else None,
    }


def _sms_entry(phone: str, text: str, record: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    sender = attributes.get("AWS.SNS.SMS.SenderID", {}).get("Value")
    sent_at = record["sent_at"]
    return {
        "channel": "sms",
        "to": phone,
        "from": sender,
        "subject": None,
        "text": text,
        "html": None,
        "headers": {},
        "scenario": record["scenario"],
        "step": record["step"],
        # To the second, as an email's Date header: two messages of one step may be milliseconds apart.
        "sent_at": datetime.fromisoformat(sent_at).replace(microsecond=0).isoformat() if sent_at else None,
        "segments": record["segments"],  # what the SMS costs
        "encoding": record["encoding"],
    }


def outbox_page(messages: list[dict[str, Any]]) -> bytes:
    rows = []
    for number, item in enumerate(reversed(messages), start=1):
        summary = (
            f" → {html.escape(item['to'] or '')} · "
            f"{html.escape(item['scenario'] or '')}/{html.escape(item['step'] or '')} · "
            f"{html.escape(item['sent_at'] or '')}</summary>"
        )
        if item["channel"] == "sms":
            rows.append(
                f"<details><summary><b>SMS</b> ({item['encoding']}, {item['segments']} segment(s)) from "
                f"{html.escape(item['from'] or '(no sender id)')}{summary}"
                f"<pre style='white-space:pre-wrap'>{html.escape(item['text'] or '')}</pre></details>"
            )
            continue
        rows.append(
            f"<details><summary><b>{html.escape(item['subject'] or '')}</b>{summary}"
            f"<iframe title='message {number}' sandbox srcdoc=\"{html.escape(item['html'] or '', quote=True)}\" "
            "style='width:100%;height:480px;border:1px solid #ccc'></iframe>"
            f"<pre>{html.escape(json.dumps(item['headers'], indent=1, ensure_ascii=False))}</pre></details>"
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>parcours outbox</title>"
        "<body style='font-family:sans-serif;max-width:960px;margin:2em auto'>"
        f"<h1>Outbox ({len(messages)} sent, newest first)</h1>{''.join(rows) or '<p>Nothing sent yet.</p>'}</body>"
    )
    return page.encode()
