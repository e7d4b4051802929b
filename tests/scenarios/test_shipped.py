"""Every shipped scenario, deployed by template.yaml, run to its end by moto's Step Functions interpreter:
every state entered in order, every email sent, the waits between them kept (in simulated days)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from infra import build, validation
from infra.localprocess import RunningLocal
from shared.journeys.scenario import Scenario, SendEmail, Wait
from shared.storage import Tables
from tests.scenarios.conftest import HELD_BACK, add_contact, described, entered_states, machine, stack_tables, start

COMPILED = build.compile_all()
# Straight series of ten days or less: every state runs for a consenting contact (longer ones, such as the 60 days
# of post-purchase, are covered by their journey tests). Branching scenarios have tests of their own below.
SHIPPED = sorted(
    name
    for name, scenario in COMPILED.scenarios.items()
    if all(isinstance(step, (SendEmail, Wait)) for step in scenario.steps)
    and scenario.trigger_date is None  # those wait for their trigger's day first: tests/scenarios/test_dates.py
    and sum(step.seconds for step in scenario.steps if isinstance(step, Wait)) <= 10 * 86400
)


@dataclass
class Run:
    scenario: Scenario
    email: str
    execution: str
    began: datetime  # the runtime's now when the execution started


@pytest.fixture(scope="module")
def runs(local: RunningLocal, module_store: Tables) -> dict[str, Run]:
    """All shipped scenarios started at once (they run side by side), for a consenting contact each, and time run
    on to the end of the longest (the clock stands still while they start: one instant for all)."""
    store = module_store
    trigger: dict[str, Any] = validation.SAMPLE_CONTEXT["trigger"]
    started = {}
    began = local.now()
    for scenario_id in SHIPPED:
        email = f"{scenario_id}.{uuid.uuid4().hex[:8]}@example.com"
        contact_id = add_contact(store, email)
        execution = start(local, machine(local, scenario_id), contact_id, bucket=50, trigger=trigger)
        started[scenario_id] = Run(COMPILED.scenarios[scenario_id], email, execution, began)
    longest = max(sum(s.seconds for s in run.scenario.steps if isinstance(s, Wait)) for run in started.values())
    local.advance(to=began + timedelta(seconds=longest))
    return started


@pytest.fixture(scope="module")
def module_store(local: RunningLocal) -> Iterator[Tables]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield stack_tables(local, monkeypatch)


@pytest.mark.parametrize("scenario_id", SHIPPED)
def test_the_scenario_runs_every_state_and_sends_every_email_at_its_time(
    local: RunningLocal, runs: dict[str, Run], scenario_id: str
) -> None:
    run = runs[scenario_id]
    sfn = local.client("stepfunctions")
    assert sfn.describe_execution(executionArn=run.execution)["status"] == "SUCCEEDED"
    definition = COMPILED.definition(scenario_id)
    # Every state but the held-back Choices (left out by entered_states) and the deferral Waits, entered only when
    # the sending habits hold a send back (tests/e2e/test_sending_habits runs them for welcome and abandoned-cart).
    assert entered_states(local, run.execution) == [
        name
        for name in definition["States"]
        if name != "Step failed" and not name.startswith(HELD_BACK) and not name.endswith(" may go")
    ]

    sends = [step.id for step in run.scenario.steps if isinstance(step, SendEmail)]
    messages = local.outbox(to=run.email)
    assert [m["step"] for m in messages] == sends
    assert all(m["scenario"] == scenario_id for m in messages)
    assert all(m["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in messages)

    # Each send goes out at its instant on the execution's timeline: its start plus the waits before it, to the
    # second (an email's Date header has whole seconds).
    due, waited = [], 0
    for step in run.scenario.steps:
        if isinstance(step, Wait):
            waited += step.seconds
        elif isinstance(step, SendEmail):
            due.append((run.began + timedelta(seconds=waited)).replace(microsecond=0))
    assert [datetime.fromisoformat(m["sent_at"]) for m in messages] == due


@pytest.mark.parametrize(
    ("orders", "steps", "lists"),
    [
        (1, ["Send email e1-first-order-code"], None),
        (3, ["Add to list clients-fideles (loyal-customer)"], {"clients-fideles"}),
    ],
)
def test_loyalty_gives_a_first_buyer_a_code_and_marks_a_repeat_buyer_loyal(
    local: RunningLocal, module_store: Tables, orders: int, steps: list[str], lists: set[str] | None
) -> None:
    email = f"loyal.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(module_store, email, orders_count=orders)
    execution = start(local, machine(local, "loyalty"), contact_id, trigger=validation.SAMPLE_CONTEXT["trigger"])
    local.advance(seconds=0)  # no wait in it: it ends at once
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == ["Check first-order", "first-order?", *steps]
    assert [m["step"] for m in local.outbox(to=email)] == (["e1-first-order-code"] if orders == 1 else [])
    assert module_store.contacts.get(contact_id, consistent_read=True).lists == lists
