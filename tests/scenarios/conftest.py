"""Helpers for running compiled state machines in `parcours local`: contacts written straight to the stack's
tables, executions started and followed through the Step Functions API."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from infra.build import TEMPLATES
from infra.localprocess import RunningLocal
from shared.journeys import compiler, loader, pacing
from shared.settings import Settings
from shared.storage import Consent, Tables, tables
from tests.conftest import ROOT


@pytest.fixture
def store(local: RunningLocal, monkeypatch: pytest.MonkeyPatch) -> Tables:
    return stack_tables(local, monkeypatch)


def stack_tables(local: RunningLocal, monkeypatch: pytest.MonkeyPatch) -> Tables:
    """The stack's tables, reached through the local runtime's AWS endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.aws_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    _runtime[:] = [local]
    return tables(stack_settings(local))


def stack_settings(local: RunningLocal, **overrides: str) -> Settings:
    """Settings naming the stack's tables and queue, as the functions get them (what tests do not use: unused)."""
    ids = local.physical_ids()
    environ = {
        "AWS_REGION": "eu-west-3",
        "PARCOURS_CONTACTS_TABLE": ids["ContactsTable"],
        "PARCOURS_IDENTITIES_TABLE": ids["IdentitiesTable"],
        "PARCOURS_EVENTS_TABLE": ids["EventsTable"],
        "PARCOURS_SENDS_TABLE": ids["SendsTable"],
        "PARCOURS_ENROLMENTS_TABLE": ids["EnrolmentsTable"],
        "PARCOURS_DATES_TABLE": ids["DatesTable"],
        "PARCOURS_SUPPRESSIONS_TABLE": ids["SuppressionsTable"],
        "PARCOURS_DISCOUNT_CODES_TABLE": ids["DiscountCodesTable"],
        "PARCOURS_LIST_MEMBERS_TABLE": ids["ListMembersTable"],
        "PARCOURS_IDEMPOTENCY_TABLE": ids["IdempotencyTable"],
        "PARCOURS_REPORTS_TABLE": ids["ReportsTable"],
        "PARCOURS_QUEUE_URL": ids["EventsQueue"],
        **{
            name: "unused"
            for name in (
                "PARCOURS_STATE_MACHINE_PREFIX",
                "PARCOURS_FROM_ADDRESS",
                "PARCOURS_CONFIGURATION_SET",
                "PARCOURS_PUBLIC_BASE_URL",
                "PARCOURS_SENDER_NAME",
                "PARCOURS_POSTAL_ADDRESS",
            )
        },
        **overrides,
    }
    return Settings.from_environ(environ)


_runtime: list[RunningLocal] = []  # the runtime whose tables `store` reaches: contacts are created at its now


def add_contact(store: Tables, email: str, consent: str | None = "granted", **fields: Any) -> str:
    now = _runtime[-1].now()
    contact = store.contacts(
        contact_id=uuid.uuid4().hex,
        email=email,
        created_at=now,
        updated_at=now,
        **{"first_name": "Lou", "locale": "fr", **fields},
    )
    if consent:
        contact.email_consent = Consent(state=consent, level="single_opt_in", source="test", at=now)
    contact.save()
    return str(contact.contact_id)


def start(local: RunningLocal, machine_arn: str, contact_id: str, **extra: Any) -> str:
    execution_input = {
        "contact_id": contact_id,
        "trigger": {"type": "test", "event_id": "t", "properties": {}},
        **extra,
    }
    execution = local.client("stepfunctions").start_execution(
        stateMachineArn=machine_arn, name=f"test-{uuid.uuid4().hex}", input=json.dumps(execution_input)
    )
    return str(execution["executionArn"])


def described(local: RunningLocal, execution: str) -> dict[str, Any]:
    """The execution as it stands at the runtime's now: advance to the moment it should have reached first (an
    advance answers once nothing runs). Not run-until-idle: that would also play every earlier test's waits."""
    return dict(local.client("stepfunctions").describe_execution(executionArn=execution))


def sent_at(local: RunningLocal, email: str) -> dict[str, datetime]:
    """When each step's message to `email` went out, to the second (an email's Date header has no more)."""
    return {m["step"]: datetime.fromisoformat(m["sent_at"]) for m in local.outbox(to=email)}


HELD_BACK = "Held back ("  # the Pass a deferred marketing send Catches to (shared.journeys.compiler): a detail


def entered_states(local: RunningLocal, execution: str) -> list[str]:
    """The states the execution went through, in order, but the Pass a deferred marketing send Catches to (a
    deferral still shows, as its Wait: "Wait until <step> may go")."""
    events = local.client("stepfunctions").get_execution_history(executionArn=execution)["events"]
    names = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return [name for name in names if not name.startswith(HELD_BACK)]


def machine(local: RunningLocal, scenario_id: str) -> str:
    """The ARN of a shipped scenario's state machine, as template.yaml deployed it."""
    logical_id = "".join(part.capitalize() for part in scenario_id.split("-")) + "StateMachine"
    return local.physical_ids()[logical_id]


def deploy_fixture(
    local: RunningLocal,
    name: str,
    machine_name: str | None = None,
    policy: pacing.Policy | None = None,
    **changes: Any,
) -> str:
    """A fixture scenario from tests/fixtures/scenarios, deployed beside the stack's state machines and wired to
    its act function, as template.yaml wires the shipped ones (under `machine_name` when dispatch must find it),
    compiled with the sending habits `policy`, its model's fields overridden by `changes`."""
    ids = local.physical_ids()
    sfn = local.client("stepfunctions")
    act = local.client("lambda").get_function(FunctionName=ids["ActFunction"])["Configuration"]["FunctionArn"]
    model = loader.load(ROOT / "tests" / "fixtures" / "scenarios" / f"{name}.yaml", TEMPLATES)
    model = dataclasses.replace(model, **changes)
    definition = compiler.to_json(compiler.compile_scenario(model, policy)).replace(compiler.ACT_FUNCTION, act)
    role = sfn.describe_state_machine(stateMachineArn=ids["WelcomeStateMachine"])["roleArn"]
    machine_name = machine_name or f"parcours-{name}-{uuid.uuid4().hex[:8]}"
    return str(sfn.create_state_machine(name=machine_name, definition=definition, roleArn=role)["stateMachineArn"])
