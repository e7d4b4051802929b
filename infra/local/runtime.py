"""`parcours local`'s LocalRuntime, which assembles the parts (see __init__.py): it starts moto, deploys the real
template on it, doing what moto's CloudFormation skips or gets wrong (applying DefinitionSubstitutions, creating the
SES configuration set and the SNS subscriptions, verifying the sender's domain: in AWS, the stack's identity and the
operator's DNS records), loads the real handlers in this process and serves the HTTP API on localhost.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

from infra import build, samtemplate
from infra.local.api import ApiServer
from infra.local.emulation import Emulation
from infra.local.faults import Faults
from infra.local.outbox import Outbox
from infra.local.pollers import Pollers
from infra.local.skipped import SkippedTime
from infra.local.state import REGION, STACK
from infra.local.timelines import Timelines
from shared.clock import Clock, drive

LOCAL_PARAMETERS = {
    "SenderEmail": "bonjour@boutique.example",
    "SenderName": "La Boutique",
    "PostalAddress": "12 rue des Artisans, 75011 Paris, France",
    "DeletionProtection": "false",  # a local stack is a test stack: its tables go with it
}


# Settings that are template parameters in AWS, taken from the environment locally.
ENVIRONMENT_PARAMETERS = {
    "PARCOURS_CRM_URL": "CrmEndpointUrl",
    "PARCOURS_SMS_SENDER_ID": "SmsSenderId",
    "PARCOURS_SMS_STOP_TEXT": "SmsStopText",
    "PARCOURS_BROWSER_KEY": "BrowserKey",
    "PARCOURS_CAMPAIGN_RATE": "CampaignSendRate",
    "PARCOURS_CAMPAIGN_SMS_RATE": "CampaignSmsRate",
}


class LocalRuntimeError(RuntimeError):
    """The local stack could not be created; the message says which resource or step failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRuntime(ApiServer, Emulation, Faults, Pollers, Timelines, Outbox):
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
        """The attributes the parts share are described in state.py."""
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
        self.skipped = SkippedTime(time.time() if start_at is None else start_at.timestamp()) if skip_time else None
        self.moto_port = free_port()
        self.routes = {}
        self.iam_routes = set()
        self.schedules = []
        self._stopping = threading.Event()
        self._handlers = {}
        self._server: Any = None
        self._http = None
        self._sends_table = ""
        self._sms_attributes = {}
        self._accepted = {}
        self._ranks = itertools.count()
        self._timelines = {}
        self._clients = {}
        self._clients_lock = threading.Lock()
        self.ses_sends = {}
        self.email_events_topic = None

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
        self._patch_faults()
        self._patch_moto_for_time()
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

        # moto says, for every resource type it skips, what this package's docstring already says.
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
        for client in (
            clients.sqs,
            clients.sesv2,
            clients.stepfunctions,
            clients.sns,
            clients.events,
            clients.s3,
            clients.dynamodb,
        ):
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
                # the suppression hash's key: nothing outlives the run (moto keeps its tables in memory), so a new
                # one per run orphans nothing
                "PARCOURS_SUPPRESSION_KEY": self.environ.get("PARCOURS_SUPPRESSION_KEY") or secrets.token_urlsafe(32),
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
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
