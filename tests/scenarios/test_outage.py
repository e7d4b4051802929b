"""An outage outlasted: a step whose DynamoDB throttles is retried by its Task's Retry, then the series goes on.
And a loop that parcours validate refuses, deployed anyway, stopped at run time by the causal chain's limit.

The compiled ASL runs in moto's Step Functions interpreter, in this process (the local runtime is another process,
where nothing could make its DynamoDB throttle): the act function's real handler does each Task, against moto's
DynamoDB, except that the first requests of one kind answer ProvisionedThroughputExceededException. Time is skipped
as the local runtime skips it: the interpreter's retry sleep returns at once and records the interval it drew.
"""

from __future__ import annotations

import io
import json
import random
import time
import traceback
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
from pynamodb.connection.base import Connection

from infra.build import TEMPLATES
from shared.clock import Clock
from shared.events import ContactFacts, Event
from shared.journeys import compiler, dispatch, loader, loops, processing
from shared.journeys.scenario import ScenarioError
from shared.people import scoring
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import Tables, tables
from tests.conftest import ROOT, drain_events, handler_of

REGION = "eu-west-3"
THROTTLED = "TransactWriteItems"  # the add_score step's one write (its claim and the contact's score together)


class Throttle:
    """Makes the next `times` DynamoDB requests of `operation` fail as a throttled table answers."""

    def __init__(self) -> None:
        self.operation = THROTTLED
        self.code = "ProvisionedThroughputExceededException"
        self.times = 0
        self.refused = 0

    def __call__(self, connection: Connection, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if operation == self.operation and self.refused < self.times:
            self.refused += 1
            raise ClientError({"Error": {"Code": self.code, "Message": "refused by the test"}}, operation)
        return dict(answer(connection, operation, kwargs))


answer = Connection._make_api_call


@pytest.fixture
def outage(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """moto running state machines; the act function's handler behind a Lambda ARN; DynamoDB's throttle; the retry
    intervals drawn."""
    with mock_aws(config={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}):
        boto3.client("sqs", region_name=REGION).create_queue(
            QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"}
        )
        act = handler_of("functions.act.app", aws, monkeypatch)
        handler = next(act)

        def invoke(backend: Any, name: str, qualifier: Any, body: Any, headers: Any, response: dict[str, Any]) -> bytes:
            try:
                return json.dumps(handler(json.loads(body), SimpleNamespace(**CONTEXT))).encode()
            except Exception as error:  # what Lambda reports as an unhandled function error (its type: the error)
                response["x-amz-function-error"] = "Unhandled"
                stack = traceback.format_tb(error.__traceback__)
                failure = {"errorType": type(error).__name__, "errorMessage": str(error), "stackTrace": stack}
                return json.dumps(failure).encode()

        throttle = Throttle()
        slept: list[float] = []
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        monkeypatch.setattr(Connection, "_make_api_call", lambda self, op, kwargs: throttle(self, op, kwargs))
        monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=slept.append))
        monkeypatch.setattr(jitter_strategy_decl, "random", random.Random(14))  # noqa: S311 (the same draws every run)
        yield SimpleNamespace(throttle=throttle, slept=slept, machine=_machine(), store=tables_of(aws))
        next(act, None)  # the settings built afresh


CONTEXT = {
    "function_name": "act",
    "function_version": "$LATEST",
    "invoked_function_arn": f"arn:aws:lambda:{REGION}:123456789012:function:act",
    "memory_limit_in_mb": 256,
    "aws_request_id": "test",
    "log_group_name": "/aws/lambda/act",
    "log_stream_name": "test",
}


def tables_of(environ: dict[str, str]) -> Tables:
    return tables(Settings.from_environ(environ))


def _machine() -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="act", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "")
    function = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="act", Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": code.getvalue()}
    )
    model = loader.load(ROOT / "tests" / "fixtures" / "scenarios" / "outage.yaml", TEMPLATES)
    definition = compiler.to_json(compiler.compile_scenario(model)).replace(
        compiler.ACT_FUNCTION, function["FunctionArn"]
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return str(sfn.create_state_machine(name="outage", definition=definition, roleArn=role)["stateMachineArn"])


def run(outage: SimpleNamespace) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Starts an execution for a new contact and follows it to its end (the Tasks run at once: nothing waits but
    the interpreter's thread)."""
    now = datetime(2026, 11, 24, 9, tzinfo=UTC)
    contact_id = uuid.uuid4().hex
    outage.store.contacts(contact_id=contact_id, email="lou@example.com", created_at=now, updated_at=now).save()
    sfn = boto3.client("stepfunctions", region_name=REGION)
    execution_input = {"contact_id": contact_id, "bucket": 0, "trigger": {"type": "test", "event_id": "t"}}
    arn = sfn.start_execution(stateMachineArn=outage.machine, input=json.dumps(execution_input))["executionArn"]
    for _ in range(600):  # at most a minute of the machine's time: the interpreter's thread, however busy
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.1)
    history = [dict(event) for event in sfn.get_execution_history(executionArn=arn)["events"]]
    return contact_id, dict(described), history


def entered(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def test_a_step_whose_dynamodb_throttles_is_retried_and_the_series_goes_on_where_it_was(
    outage: SimpleNamespace,
) -> None:
    outage.throttle.times = 5
    contact_id, described, history = run(outage)
    assert described["status"] == "SUCCEEDED"
    # the step failed five times, under the name its Retry knows, then went through; the next step ran after it
    failures = [e for e in history if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == ["StorageBusy"] * 5
    assert entered(history) == ["Add +10 points (s1-points)", "Set after_the_outage (s2-mark)"]
    contact = outage.store.contacts.get(contact_id)
    assert (contact.score, contact.attributes["after_the_outage"]) == (10, True)  # the points counted once
    # five intervals drawn, each within its exponential bound (full jitter: between 0 and it)
    assert len(outage.slept) == 5
    assert all(0 <= slept <= 2 * 2**attempt for attempt, slept in enumerate(outage.slept))


def test_a_step_whose_dynamodb_stays_throttled_fails_after_about_a_day_and_the_execution_fails(
    outage: SimpleNamespace,
) -> None:
    outage.throttle.times = compiler.RETRY_ATTEMPTS + 1  # never answers within the Task's retries
    contact_id, described, history = run(outage)
    assert described["status"] == "FAILED"  # what ScenarioFailuresAlarm counts (ExecutionsFailed)
    assert entered(history) == ["Add +10 points (s1-points)", "Step failed"]
    assert len(outage.slept) == compiler.RETRY_ATTEMPTS
    # each interval under its bound: doubling from 2 s, capped at an hour
    bounds = [min(compiler.RETRY_INTERVAL * 2**attempt, compiler.RETRY_CAP) for attempt in range(len(outage.slept))]
    assert all(0 <= slept <= bound for slept, bound in zip(outage.slept, bounds, strict=True))
    assert sum(bounds) / 2 == pytest.approx(24 * 3600, rel=0.01)  # on average, about a day
    assert 20 * 3600 < sum(outage.slept) < 28 * 3600  # this run's draws (seeded): 19 runs in 20 fall there
    assert outage.store.contacts.get(contact_id).score == 0  # nothing half-written


def test_a_permanent_dynamodb_error_is_not_retried(outage: SimpleNamespace) -> None:
    outage.throttle.code, outage.throttle.times = "ValidationException", 1
    _, described, history = run(outage)
    assert described["status"] == "FAILED"
    assert [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"] == ["StorageError"]
    assert entered(history) == ["Add +10 points (s1-points)", "Step failed"]
    assert outage.slept == []


def test_a_loop_validate_would_refuse_stops_at_the_chain_limit_at_run_time(
    outage: SimpleNamespace, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the looping fixture deployed where dispatch starts it, and in the catalogue processing reads
    model = loader.load(ROOT / "tests" / "fixtures" / "scenarios" / "looping.yaml", TEMPLATES)
    with pytest.raises(ScenarioError, match="scenario looping triggers itself without end"):
        loops.check([model], {}, scoring.Config(), tmp_path)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    act = boto3.client("lambda", region_name=REGION).get_function(FunctionName="act")["Configuration"]
    definition = compiler.to_json(compiler.compile_scenario(model)).replace(compiler.ACT_FUNCTION, act["FunctionArn"])
    machine = sfn.create_state_machine(name="parcours-looping", definition=definition, roleArn=act["Role"])
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps({model.id: compiler.catalogue_entry(model)}), encoding="utf-8")
    entries = dispatch.catalogue(catalogue)
    monkeypatch.setattr(dispatch, "catalogue", lambda: entries)
    settings = Settings.from_environ(aws)
    now = datetime(2026, 11, 24, 9, tzinfo=UTC)
    contact_id = uuid.uuid4().hex
    outage.store.contacts(contact_id=contact_id, email="lou@example.com", created_at=now, updated_at=now).save()

    # When a first score.changed comes (from a source: chain 0), and the process function handles what follows
    first = Event(
        "test#1",
        "score.changed",
        "test",
        "scoring",
        now.isoformat(),
        now.isoformat(),
        ContactFacts(contact_id=contact_id),
        {"old": 0, "new": 1},
    )
    pending, cut = [first], 0
    while pending:
        for event in pending:
            cut += processing.process(event, settings, Clock()).cut
        _settle(sfn, machine["stateMachineArn"])
        pending = [Event.from_dict(body) for body in drain_events(settings.queue_url)]

    # Then the loop went round until the chain's limit, and stopped there
    executions = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    assert len(executions) == ingestion.CHAIN_LIMIT + 1  # started by the events of chains 0 to 20
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    assert outage.store.contacts.get(contact_id).score == ingestion.CHAIN_LIMIT + 1
    assert cut == 0  # the processing emitted nothing of its own; the last step's score.changed was the one cut


def _settle(sfn: Any, machine: str) -> None:
    """Waits until no execution of the machine runs (the interpreter's thread; at most a minute, however busy)."""
    for _ in range(600):
        if not sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
            return
        time.sleep(0.1)
