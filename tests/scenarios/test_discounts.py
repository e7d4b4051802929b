"""Unique discount codes end to end in `parcours local`: codes loaded with `parcours codes load` against its
endpoint, claimed by the act function as moto's Step Functions runs a compiled fixture, seen in the emails sent."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from shared.outbox import send_id
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, entered_states, start

TRIGGER = {
    "type": "checkout.started",
    "event_id": "t",
    "properties": {"recovery_url": "https://boutique.example/r/1", "lines": [], "currency": "EUR"},
}
CODE_IN_EMAIL = re.compile(r"<strong>([A-Z0-9-]+)</strong>")


def codes(local: RunningLocal, *args: str) -> int:
    return cli.main(["codes", *args, "--endpoint-url", local.aws_endpoint])


def test_each_contact_gets_its_own_code_from_the_pool_and_the_same_code_in_its_second_email(
    local: RunningLocal, store: Tables, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "codes.csv"
    export.write_text("Code,Usage count\nCART-0001,0\nCART-0002,0\nCART-0003,0\n", encoding="utf-8")
    assert codes(local, "load", "test-pooled", str(export)) == 0
    assert codes(local, "load", "test-pooled", str(export)) == 0  # loading twice adds nothing
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "pool test-pooled: 3 code(s) added, 0 already there; 3 in the pool"
    assert printed[2] == "pool test-pooled: 0 code(s) added, 3 already there; 3 in the pool"

    machine = deploy_fixture(local, "pooled")
    addresses = [f"code.{uuid.uuid4().hex[:8]}@example.com" for _ in range(2)]
    started = local.now()
    runs = [start(local, machine, add_contact(store, address), trigger=TRIGGER) for address in addresses]
    local.advance(to=started + timedelta(hours=1))  # the reminder's wait
    assert [described(local, run)["status"] for run in runs] == ["SUCCEEDED", "SUCCEEDED"]

    seen = []
    for address, run in zip(addresses, runs, strict=True):
        messages = local.outbox(to=address)
        assert [(m["step"], datetime.fromisoformat(m["sent_at"])) for m in messages] == [
            ("e1-offer", started),
            ("e2-reminder", started + timedelta(hours=1)),
        ]
        shown = [CODE_IN_EMAIL.findall(m["html"]) for m in messages]
        assert shown[0] == shown[1]
        assert len(shown[0]) == 1
        assert shown[0][0] in messages[0]["text"]
        seen.append(shown[0][0])
        record = store.sends.get(send_id(run, "e2-reminder"))
        assert record.discount_code == shown[0][0]  # recorded with the send, for support
    assert len(set(seen)) == 2
    assert set(seen) <= {"CART-0001", "CART-0002", "CART-0003"}

    assert codes(local, "status", "test-pooled") == 0
    assert capsys.readouterr().out == "pool test-pooled: 3 total, 2 claimed, 1 free\n"


def test_an_empty_pool_fails_the_step_naming_the_pool_and_sends_nothing(local: RunningLocal, store: Tables) -> None:
    address = f"nocode.{uuid.uuid4().hex[:8]}@example.com"
    execution = start(local, deploy_fixture(local, "pool-empty"), add_contact(store, address), trigger=TRIGGER)
    local.advance(seconds=0)  # it fails at its first step, at once
    assert described(local, execution)["status"] == "FAILED"
    assert entered_states(local, execution) == ["Send email e1-offer", "Step failed"]
    history = json.dumps(
        local.client("stepfunctions").get_execution_history(executionArn=execution)["events"], default=str
    )
    assert "DiscountPoolEmpty" in history
    assert "discount pool 'test-never-loaded' has no codes" in history
    assert local.outbox(to=address) == []


def test_a_bad_codes_file_is_refused_with_its_line_numbers_and_loads_nothing(
    local: RunningLocal, store: Tables, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "codes.txt"
    bad.write_text("GOOD-1\nnot a code\nGOOD-1\n", encoding="utf-8")
    assert codes(local, "load", "test-bad", str(bad)) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {bad}:2: 'not a code' is not a discount code: letters, digits, _ and -, at most 64",
        f"error: {bad}:3: GOOD-1 is repeated (first on line 1)",
    ]
    assert codes(local, "status", "test-bad") == 0
    assert capsys.readouterr().out == "pool test-bad: 0 total, 0 claimed, 0 free\n"
