"""A choose step executed by moto's interpreter: the first case that holds runs, else the `else` steps, and every
path joins the step after it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start


@pytest.fixture(scope="module")
def machine(local: RunningLocal) -> str:
    return deploy_fixture(local, "choosing")


@pytest.mark.parametrize(
    ("fields", "branch"),
    [
        ({"lists": {"vip"}, "orders_count": 2}, "e-vip"),  # both cases hold: the first wins
        ({"orders_count": 2}, "e-buyer"),
        ({"orders_count": 7}, "e-others"),
    ],
)
def test_the_first_case_that_holds_runs_then_the_paths_join(
    local: RunningLocal, store: Tables, machine: str, fields: dict[str, Any], branch: str
) -> None:
    email = f"choose.{uuid.uuid4().hex[:8]}@example.com"
    execution = start(local, machine, add_contact(store, email, **fields))
    local.advance(seconds=0)  # no wait: it ends at once
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == [
        "Check segment",
        "segment?",
        f"Send email {branch}",
        "Send email e-all",
    ]
    assert [m["step"] for m in local.outbox(to=email)] == [branch, "e-all"]
