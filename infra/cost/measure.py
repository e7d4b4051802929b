"""A shipped scenario executed in moto's Step Functions interpreter, in this process, for one consenting contact:
the act function's real handler does each Task against moto's DynamoDB and SES; the Waits return at once (time is
not what is measured). What it yields: the states the history entered (the transitions billed), and per act
Task its DynamoDB requests (reads, writes) and its milliseconds. `make bench` (figure 6) runs it and may save the
figures to measured.json; tests/scenarios check the transition counts of infra.cost.paths against it."""

from __future__ import annotations

import io
import json
import os
import secrets
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

REGION = "eu-west-3"
READS = {"GetItem", "Query", "BatchGetItem", "Scan", "TransactGetItems"}


@dataclass
class Executed:
    status: str
    entered: list[str]
    tasks: list[tuple[str, Counter[str], float]] = field(default_factory=list)  # (action, calls, seconds)

    def requests(self, action: str) -> tuple[float, float]:
        """Mean (reads, writes) per Task of that action."""
        counts = [calls for name, calls, _ in self.tasks if name == action]
        if not counts:
            return 0.0, 0.0
        reads = sum(n for calls in counts for op, n in calls.items() if op in READS)
        writes = sum(n for calls in counts for op, n in calls.items() if op not in READS)
        return reads / len(counts), writes / len(counts)

    def milliseconds(self, action: str) -> float:
        seconds = sorted(s for name, _, s in self.tasks if name == action)
        return 1000 * seconds[len(seconds) // 2] if seconds else 0.0


@contextmanager
def _instant_waits() -> Iterator[None]:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    real = WaitFunction._wait_interval
    WaitFunction._wait_interval = lambda self, env, wait_seconds: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        WaitFunction._wait_interval = real  # type: ignore[method-assign]


def execute(scenario_id: str) -> Executed:
    """Runs the shipped scenario once, down the path a consenting new contact takes."""
    from moto import mock_aws

    from infra import bench, build, samtemplate

    definition = build.compile_all().definition(scenario_id)
    with bench._moto_environment(), mock_aws(config=_CONFIG), _instant_waits():
        os.environ["PARCOURS_LINK_SECRET"] = secrets.token_urlsafe(24)  # this run's (the bench's environment lacks it)
        bench._provision(samtemplate, "ActFunction")
        return _run(definition)


_CONFIG: Any = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}


def _run(definition: dict[str, Any]) -> Executed:
    import boto3
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from infra.bench import counting_dynamodb
    from shared.clock import Clock
    from shared.journeys import compiler
    from shared.settings import get_settings
    from shared.storage import Consent, tables

    boto3.client("ses", region_name=REGION).verify_domain_identity(Domain="boutique.example")
    get_settings.cache_clear()
    from functions.act import app

    executed = Executed("RUNNING", [])

    def invoke(backend: Any, name: str, qualifier: Any, body: Any, headers: Any, response: dict[str, Any]) -> bytes:
        payload = json.loads(body)
        started = time.perf_counter()
        with counting_dynamodb() as calls:
            try:
                answer = app.lambda_handler(payload, SimpleNamespace(**_CONTEXT))
            except Exception as error:  # what Lambda reports as an unhandled function error (its type: the error)
                response["x-amz-function-error"] = "Unhandled"
                answer = {"errorType": type(error).__name__, "errorMessage": str(error)}
        executed.tasks.append((str(payload.get("action")), Counter(calls), time.perf_counter() - started))
        return json.dumps(answer).encode()

    real_invoke = LambdaSimpleBackend.invoke
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
    try:
        now = Clock().now()
        contact_id = uuid.uuid4().hex
        contact = tables(get_settings()).contacts(
            contact_id=contact_id,
            email="lou@example.com",
            first_name="Lou",
            locale="fr",
            created_at=now,
            updated_at=now,
        )
        consent: Any = Consent  # PynamoDB's MapAttribute: untyped to mypy
        contact.email_consent = consent(state="granted", level="single_opt_in", source="bench", at=now)
        contact.save()
        role = boto3.client("iam", region_name=REGION).create_role(RoleName="cost", AssumeRolePolicyDocument="{}")
        arn = _function(role["Role"]["Arn"])
        sfn = boto3.client("stepfunctions", region_name=REGION)
        text = compiler.to_json(definition).replace(compiler.ACT_FUNCTION, arn)
        machine = sfn.create_state_machine(name="cost", definition=text, roleArn=role["Role"]["Arn"])["stateMachineArn"]
        trigger = {"type": "bench", "event_id": "b", "properties": {}}
        execution_input = {"contact_id": contact_id, "bucket": 0, "trigger": trigger}
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))["executionArn"]
        for _ in range(600):  # at most a minute of the machine's time
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
        events = sfn.get_execution_history(executionArn=execution)["events"]
    finally:
        LambdaSimpleBackend.invoke = real_invoke  # type: ignore[method-assign]
        get_settings.cache_clear()
    executed.status = str(described["status"])
    executed.entered = [str(e["stateEnteredEventDetails"]["name"]) for e in events if "stateEnteredEventDetails" in e]
    return executed


_CONTEXT = {
    "function_name": "act",
    "function_version": "$LATEST",
    "invoked_function_arn": f"arn:aws:lambda:{REGION}:123456789012:function:act",
    "memory_limit_in_mb": 512,
    "aws_request_id": "cost",
    "log_group_name": "/aws/lambda/act",
    "log_stream_name": "cost",
}


def _function(role: str) -> str:
    import boto3

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "")
    function = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="act", Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": code.getvalue()}
    )
    return str(function["FunctionArn"])
