"""The report over the local runtime: counter items in the emulated account's reports table (as the counting
writes them, shared/reports/store.py) read back by the signed admin route, by `parcours report`, and as the page
`/_local/report.html`. The days are months before the session's clock: no other test counts anything there."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import signed
from shared.reports import store

pytestmark = pytest.mark.e2e
FIRST, LAST = "2026-06-01", "2026-06-03"


def put(local: RunningLocal, scenario: str, day: str, step: str | None = None, **values: Any) -> None:
    item: dict[str, Any] = {"report": {"S": store.report_id(scenario)}, "key": {"S": store.counter_key(day, step)}}
    item |= {name.replace("__", ":"): {"N": str(value)} for name, value in values.items()}
    local.client("dynamodb").put_item(TableName=local.physical_ids()["ReportsTable"], Item=item)


@pytest.fixture(scope="module")
def seeded(local: RunningLocal) -> RunningLocal:
    # Two abandoned checkouts got the reminder; one person clicked it and ordered 42.00 EUR
    put(local, "abandoned-cart", "2026-06-01", entered=2)
    put(local, "abandoned-cart", "2026-06-01", "e1-reminder", sent=2, delivered=2, opened=1, clicked=1)
    put(local, "abandoned-cart", "2026-06-02", converted=1)
    put(local, "abandoned-cart", "2026-06-02", "e1-reminder", orders_click=1, revenue_click__EUR="42.00")
    put(local, "welcome", "2026-06-03", entered=3)
    put(local, "welcome", "2026-06-03", "e1-welcome", sent=3, delivered=3, opened=2)
    put(local, "abandoned-cart", "2026-06-04", entered=9)  # the day after the period
    return local


def test_the_signed_route_reports_each_scenario_of_the_period(seeded: RunningLocal) -> None:
    answer = signed("GET", f"{seeded.api_url}/v1/reports/scenarios?from={FIRST}&to={LAST}")
    assert answer.status == 200, answer.body
    assert (answer.body["from"], answer.body["to"]) == (FIRST, LAST)
    by_id = {scenario["id"]: scenario for scenario in answer.body["scenarios"]}
    assert "birthday" in by_id  # every deployed scenario, even without activity
    assert by_id["birthday"]["entered"] == 0
    cart = by_id["abandoned-cart"]
    assert (cart["entered"], cart["clicked"], cart["converted"], cart["revenue"]) == (2, 1, 1, {"EUR": 42.0})
    assert [step["id"] for step in cart["steps"]] == ["e1-reminder", "e2-help", "e3-offer", "s1-last-call"]
    assert cart["benchmarks"][0]["figure"] == "conversion"
    assert cart["benchmarks"][0]["status"] == "above"  # 1 of 2: 50 %, above the seed's 10-15 %
    assert [day["entered"] for day in cart["daily"]] == [2, 0, 0]
    assert answer.body["deliverability"]["total"]["sent"] == 5


def test_the_route_refuses_an_unsigned_call_and_a_bad_period(seeded: RunningLocal) -> None:
    url = f"{seeded.api_url}/v1/reports/scenarios?from={FIRST}&to={LAST}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    assert refused.value.code == 403
    answer = signed("GET", f"{seeded.api_url}/v1/reports/scenarios?from={LAST}&to={FIRST}")
    assert answer.status == 400
    assert answer.body["field"] == "to"


def test_parcours_report_prints_the_table_and_writes_the_page(
    seeded: RunningLocal, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    page = tmp_path / "report.html"
    code = cli.main(["report", "--from", FIRST, "--to", LAST, "--html", str(page), "--api", seeded.api_url])
    assert code == 0
    printed = capsys.readouterr().out
    cart = next(line for line in printed.splitlines() if line.startswith("abandoned-cart"))
    assert re.search(r"\b2\s+2\s+100\.0 %\s+50\.0 %\s+50\.0 %\s+1 \(50\.0 %\)\s+42\.00 EUR", cart), cart
    assert "conversion 50.0 % vs 10-15 %: above" in cart
    assert "42.00 EUR" in page.read_text(encoding="utf-8")


def test_the_local_runtime_serves_the_page(seeded: RunningLocal) -> None:
    with urllib.request.urlopen(f"{seeded.api_url}/_local/report.html?from={FIRST}&to={LAST}", timeout=60) as got:
        assert got.headers["content-type"].startswith("text/html")
        page = got.read().decode()
    assert f"{FIRST} to {LAST}" in page
    assert "42.00 EUR" in page
    assert "conversion 50.0 %: seed 10–15 %" in re.sub(r"<[^>]+>", "", page)
    assert "<script" not in page
    with urllib.request.urlopen(f"{seeded.api_url}/_local/report.html", timeout=60) as got:  # the last 30 days
        today = json.loads(urllib.request.urlopen(f"{seeded.api_url}/_local/clock", timeout=30).read())["now"][:10]
        assert f"to {today}" in got.read().decode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{seeded.api_url}/_local/report.html?from=2026-06-31", timeout=30)
    assert refused.value.code == 400
