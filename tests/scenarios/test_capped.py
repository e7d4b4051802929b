"""Entry cap: at most N contacts in a scenario at once. The (N+1)th is refused; a place frees when an execution
ends (its Leave Task, on the way to Done or after a failure)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infra import validation
from infra.build import TEMPLATES
from infra.localprocess import RunningLocal
from shared import clients
from shared.events import CHECKOUT_STARTED, Event
from shared.journeys import compiler, dispatch, enrolments, loader
from shared.settings import Settings
from shared.storage import Tables, tables
from tests.conftest import ROOT
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, stack_settings

CART = validation.SAMPLE_CONTEXT["trigger"]["properties"]  # what the fixture's emails read


@pytest.fixture(scope="module")
def capped(local: RunningLocal) -> str:
    return deploy_fixture(local, "capped", machine_name="parcours-capped")  # where dispatch starts `capped`


@pytest.fixture
def settings(local: RunningLocal, store: Tables, capped: str) -> Iterator[Settings]:
    """Dispatch as the process function runs it, against the local stack."""
    clients._client.cache_clear()  # clients made for the local endpoint only
    yield stack_settings(local, PARCOURS_STATE_MACHINE_PREFIX=capped.removesuffix("capped"))
    clients._client.cache_clear()


@pytest.fixture
def entries(tmp_path: Path) -> tuple[dispatch.Entry, ...]:
    """The fixture's catalogue entry, as `parcours compile` writes it for shipped scenarios."""
    model = loader.load(ROOT / "tests" / "fixtures" / "scenarios" / "capped.yaml", TEMPLATES)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({model.id: compiler.catalogue_entry(model)}))
    return dispatch.catalogue(path)


def checkout(
    local: RunningLocal, settings: Settings, entries: tuple[dispatch.Entry, ...], contact_id: str, **props: Any
) -> dispatch.Outcome:
    """A checkout at the runtime's now, dispatched as the process function dispatches it."""
    contact = tables(settings).contacts.get(contact_id, consistent_read=True)
    now = local.now()
    event = Event(
        uuid.uuid4().hex, CHECKOUT_STARTED, "test", "checkouts/create", now.isoformat(), now.isoformat(), None, props
    )
    [outcome] = dispatch.start_matching(event, contact, settings, entries, now)
    return outcome


def execution_of(store: Tables, contact_id: str) -> str:
    [enrolment] = [e for e in enrolments.of(store, contact_id, "capped") if e.status == "active"]
    return str(enrolment.execution_arn)


def test_the_contact_over_the_cap_is_refused_and_a_place_frees_when_one_leaves(
    local: RunningLocal, store: Tables, settings: Settings, entries: tuple[dispatch.Entry, ...]
) -> None:
    assert [entry.cap for entry in entries] == [2]
    slow = add_contact(store, f"slow.{uuid.uuid4().hex[:8]}@example.com")
    quick = add_contact(store, f"quick.{uuid.uuid4().hex[:8]}@example.com", first_name="Quick")
    third = add_contact(store, f"third.{uuid.uuid4().hex[:8]}@example.com")

    # Two contacts fill the scenario; the third is refused
    started = local.now()
    assert checkout(local, settings, entries, slow, **CART).started
    slow_execution = execution_of(store, slow)
    assert checkout(local, settings, entries, quick, **CART).started
    quick_execution = execution_of(store, quick)
    refused = checkout(local, settings, entries, third, **CART)
    assert (refused.started, refused.reason) == (False, "entry cap reached")
    assert enrolments.of(store, third, "capped") == []  # not queued: nothing waits for a place

    # The quick one leaves at once (its Leave Task frees the place and closes its enrolment) ...
    local.advance(seconds=0)
    assert described(local, quick_execution)["status"] == "SUCCEEDED"
    assert entered_states(local, quick_execution)[-1:] == ["Leave"]
    assert enrolments.running(store, "capped") == 1
    [closed] = enrolments.of(store, quick, "capped")
    assert closed.status == "finished"

    # ... so the third contact's next checkout, an hour later, gets in while the slow one still waits
    local.advance(to=started + timedelta(hours=1))
    assert checkout(local, settings, entries, third, **CART).started
    third_execution = execution_of(store, third)
    assert described(local, slow_execution)["status"] == "RUNNING"
    assert enrolments.running(store, "capped") == 2

    # Each leaves after its 2-day wait: the slow one first, and the third an hour later
    local.advance(to=started + timedelta(days=2))
    assert [described(local, e)["status"] for e in (slow_execution, third_execution)] == ["SUCCEEDED", "RUNNING"]
    assert enrolments.running(store, "capped") == 1
    local.advance(to=started + timedelta(days=2, hours=1))
    assert described(local, third_execution)["status"] == "SUCCEEDED"
    assert enrolments.running(store, "capped") == 0


def test_an_execution_that_fails_gives_its_place_back_too(
    local: RunningLocal, store: Tables, settings: Settings, entries: tuple[dispatch.Entry, ...]
) -> None:
    contact_id = add_contact(store, f"broken.{uuid.uuid4().hex[:8]}@example.com")
    before = enrolments.running(store, "capped")
    assert checkout(local, settings, entries, contact_id).started  # no cart lines: the reminder cannot be rendered
    execution = execution_of(store, contact_id)
    local.advance(seconds=0)  # it fails at its first step, at once
    assert described(local, execution)["status"] == "FAILED"
    assert entered_states(local, execution) == ["Send email reminder", "Leave after a failure", "Step failed"]
    assert enrolments.running(store, "capped") == before
    assert [e.status for e in enrolments.of(store, contact_id, "capped")] == ["finished"]
