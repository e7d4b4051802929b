"""The report of a period from counter items in the reports table (moto), as the admin route answers it: totals,
steps in the scenario's order, splits with their verdict, the daily series, deliverability and benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
import pytest

from infra.local import InvocationContext
from shared import clients
from shared.journeys.dispatch import CATALOGUE
from shared.reports import layout, reading, store
from shared.reports.layout import ScenarioLayout, SplitLayout, StepLayout

TABLE = "reports"  # tests/conftest.py environ
REGION = "eu-west-3"
CART = layout.from_entry(
    "abandoned-cart",
    {
        "report": {
            "name": "Abandoned cart",
            "steps": [
                {"id": "e1-reminder", "channel": "email"},
                {"id": "e2-help", "channel": "email"},
                {"id": "s1-last-call", "channel": "sms"},
            ],
        }
    },
)
SUBJECTS = ScenarioLayout(
    "subjects",
    "Subject test",
    (
        StepLayout("intro", "email", None, None),
        StepLayout("short", "email", "subject", "a"),
        StepLayout("long", "email", "subject", "b"),
    ),
    (SplitLayout("subject", (("a", 50), ("b", 50))),),
)


def put(scenario: str, day: str, step: str | None = None, variant: str | None = None, **values: Any) -> None:
    item: dict[str, Any] = {
        "report": {"S": store.report_id(scenario)},
        "key": {"S": store.counter_key(day, step, variant)},
    }
    for name, value in values.items():
        item[name.replace("__", ":")] = {"N": str(value)}
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=TABLE, Item=item)


def report(layouts: list[ScenarioLayout], first: str, last: str, scenario: str | None = None) -> dict[str, Any]:
    asked = reading.Period(date.fromisoformat(first), date.fromisoformat(last), scenario)
    return reading.report(REGION, TABLE, layouts, asked)


def test_a_period_sums_its_days_and_leaves_out_the_days_around_it(aws: dict[str, str]) -> None:
    put("abandoned-cart", "2026-03-01", entered=5)  # the day before
    put("abandoned-cart", "2026-03-02", entered=2, converted=1)
    put("abandoned-cart", "2026-03-02", "e1-reminder", sent=2, delivered=2, opened=2, clicked=1)
    put("abandoned-cart", "2026-03-04", entered=1)
    put("abandoned-cart", "2026-03-04", "e2-help", sent=1, delivered=1, bounced=0)
    put("abandoned-cart", "2026-03-05", entered=7)  # the day after
    (cart,) = report([CART], "2026-03-02", "2026-03-04")["scenarios"]
    assert (cart["entered"], cart["converted"], cart["sent"], cart["clicked"]) == (3, 1, 3, 1)
    assert cart["rates"]["conversion"] == pytest.approx(1 / 3, abs=1e-6)
    assert cart["rates"]["click"] == pytest.approx(1 / 3, abs=1e-6)
    assert cart["rates"]["base"] == "delivered"
    assert [day["day"] for day in cart["daily"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert [day["entered"] for day in cart["daily"]] == [2, 0, 1]


def test_every_step_shows_in_the_scenarios_order_even_without_activity(aws: dict[str, str]) -> None:
    put("abandoned-cart", "2026-03-02", "e2-help", sent=4)
    put("abandoned-cart", "2026-03-02", "s1-last-call", sms_sent=3, sms_failed=1)
    (cart,) = report([CART], "2026-03-01", "2026-03-31")["scenarios"]
    steps = [(step["id"], step["channel"], step["sent"], step["sms_sent"]) for step in cart["steps"]]
    assert steps == [("e1-reminder", "email", 0, 0), ("e2-help", "email", 4, 0), ("s1-last-call", "sms", 0, 3)]
    assert cart["steps"][0]["rates"]["open"] is None  # nothing sent: no rate, not 0 %
    assert cart["steps"][2]["rates"]["sms_failure"] == 0.25


def test_a_scenario_without_activity_shows_zeros(aws: dict[str, str]) -> None:
    answer = report([CART, SUBJECTS], "2026-03-01", "2026-03-07")
    cart = answer["scenarios"][0]
    assert all(cart[name] == 0 for name in reading.SHOWN)
    assert cart["revenue"] == {}
    assert cart["rates"]["conversion"] is None
    assert len(cart["daily"]) == 7
    assert answer["deliverability"]["total"]["status"] == {
        "delivery": "no data",
        "bounce": "no data",
        "complaint": "no data",
    }


def test_revenue_is_exact_per_currency_and_rounded_to_the_currencys_unit(aws: dict[str, str]) -> None:
    # 0.1 + 0.2 summed as floats would give 0.30000000000000004; three items of 14.005 EUR: 42.015 -> 42.02 (to even)
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):
        put("abandoned-cart", day, "e1-reminder", orders_click=1, revenue_click__EUR="14.005")
    put("abandoned-cart", "2026-03-02", "e2-help", orders_click=1, revenue_click__USD="0.1")
    put("abandoned-cart", "2026-03-03", "e2-help", orders_click=1, revenue_click__USD="0.2", revenue_open__JPY="1500")
    (cart,) = report([CART], "2026-03-01", "2026-03-31")["scenarios"]
    assert cart["revenue"] == {"EUR": 42.02, "USD": 0.3}
    assert cart["revenue_open"] == {"JPY": 1500.0}
    assert cart["orders"] == 5
    assert cart["steps"][0]["revenue"] == {"EUR": 42.02}
    assert reading.money(Decimal("42.015"), "EUR") == 42.02
    assert reading.money(Decimal("1.2345"), "KWD") == 1.234  # three decimals, half to even


def test_a_split_shows_each_variant_with_intervals_and_a_winner_only_when_significant(aws: dict[str, str]) -> None:
    put("subjects", "2026-03-02", "short", "a", sent=1000, delivered=1000, opened=400, clicked=20)
    put("subjects", "2026-03-02", "long", "b", sent=1000, delivered=1000, opened=420, clicked=60)
    (subjects,) = report([SUBJECTS], "2026-03-01", "2026-03-31")["scenarios"]
    (split,) = subjects["splits"]
    assert [(v["name"], v["steps"], v["sent"], v["clicked"]) for v in split["variants"]] == [
        ("a", ["short"], 1000, 20),
        ("b", ["long"], 1000, 60),
    ]
    click_b = split["variants"][1]["click"]
    assert click_b["low"] < click_b["rate"] == 0.06 < click_b["high"]
    assert (split["winner"], split["significant"], split["test"]) == ("b", True, "two-proportion z-test")
    assert split["verdict"].startswith("b wins on click rate")

    put("subjects", "2026-03-10", "short", "a", sent=10, delivered=10, clicked=1)  # still a clear difference
    (close,) = report([SUBJECTS], "2026-03-10", "2026-03-10")["scenarios"][0]["splits"]
    assert close["winner"] is None
    assert close["verdict"].startswith("no significant difference yet")  # b sent nothing that day


def test_small_splits_use_fishers_test(aws: dict[str, str]) -> None:
    put("subjects", "2026-03-02", "short", "a", sent=12, clicked=1)
    put("subjects", "2026-03-02", "long", "b", sent=12, clicked=4)
    (split,) = report([SUBJECTS], "2026-03-01", "2026-03-31")["scenarios"][0]["splits"]
    assert split["base"] == "sent"  # no delivery known
    assert split["test"] == "Fisher's exact test"
    assert split["winner"] is None


def test_deliverability_is_judged_per_day_against_the_thresholds(aws: dict[str, str]) -> None:
    put("abandoned-cart", "2026-03-02", "e1-reminder", sent=1000, delivered=990, bounced=10, complained=0)
    put("abandoned-cart", "2026-03-03", "e1-reminder", sent=1000, delivered=930, bounced=60, complained=2)
    put("subjects", "2026-03-03", "intro", sent=1000, delivered=1000, complained=2)
    answer = report([CART, SUBJECTS], "2026-03-02", "2026-03-03")
    first, second = answer["deliverability"]["days"]
    assert first["status"] == {"delivery": "ok", "bounce": "ok", "complaint": "ok"}
    assert (second["sent"], second["bounced"], second["complained"]) == (2000, 60, 4)
    assert second["rates"]["bounce"] == 0.03
    assert second["status"] == {"delivery": "ok", "bounce": "watch", "complaint": "watch"}
    thresholds = {t["figure"]: (t["watch"], t["over"]) for t in answer["deliverability"]["thresholds"]}
    assert thresholds == {"delivery": (0.95, 0.9), "bounce": (0.02, 0.05), "complaint": (0.001, 0.003)}


def test_the_seeds_benchmarks_sit_beside_the_figures_they_judge(aws: dict[str, str]) -> None:
    put("abandoned-cart", "2026-03-02", entered=100, converted=12)
    (cart,) = report([CART], "2026-03-01", "2026-03-31")["scenarios"]
    (benchmark,) = cart["benchmarks"]
    assert (benchmark["figure"], benchmark["low"], benchmark["high"], benchmark["status"]) == (
        "conversion",
        0.1,
        0.15,
        "within",
    )
    assert report([SUBJECTS], "2026-03-01", "2026-03-31")["scenarios"][0]["benchmarks"] == []


def test_a_long_period_is_read_in_pages(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for day in range(1, 29):
        put("abandoned-cart", f"2026-02-{day:02d}", entered=1)
        put("abandoned-cart", f"2026-02-{day:02d}", "e1-reminder", sent=1)
    calls: list[dict[str, Any]] = []
    original = clients.dynamodb(REGION).query

    def small_pages(**request: Any) -> Any:
        calls.append(request)
        return original(**request, Limit=10)

    monkeypatch.setattr(clients.dynamodb(REGION), "query", small_pages)
    (cart,) = report([CART], "2026-02-01", "2026-02-28")["scenarios"]
    assert (cart["entered"], cart["sent"]) == (28, 28)
    assert len(calls) == 6  # 56 items, 10 a page: one Query, paginated
    assert all("Scan" not in json.dumps(call) for call in calls)


# ---- the route -------------------------------------------------------------------------------------------------
@pytest.fixture
def admin(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tests.conftest import handler_of

    yield from handler_of("functions.admin.app", aws, monkeypatch)


def get(handler: Any, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    from urllib.parse import urlencode

    event = {
        "version": "2.0",
        "routeKey": "GET /v1/reports/scenarios",
        "rawPath": "/v1/reports/scenarios",
        "rawQueryString": urlencode(query),
        "queryStringParameters": dict(query) or None,
        "headers": {},
        "requestContext": {
            "requestId": "req-1",
            "stage": "$default",
            "http": {"method": "GET", "path": "/v1/reports/scenarios", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
        },
        "isBase64Encoded": False,
    }
    answer = handler(event, InvocationContext.of("admin"))
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_route_reports_every_deployed_scenario(admin: Any) -> None:
    put("abandoned-cart", "2026-03-02", entered=2, converted=1)
    put("abandoned-cart", "2026-03-02", "e1-reminder", sent=2, clicked=1, orders_click=1, revenue_click__EUR="42.00")
    status, answer = get(admin, {"from": "2026-03-01", "to": "2026-03-31"})
    assert status == 200
    deployed = [entry.id for entry in layout.layouts(CATALOGUE)]
    assert [s["id"] for s in answer["scenarios"]] == deployed
    cart = next(s for s in answer["scenarios"] if s["id"] == "abandoned-cart")
    assert (cart["entered"], cart["clicked"], cart["converted"], cart["revenue"]) == (2, 1, 1, {"EUR": 42.0})
    assert [step["id"] for step in cart["steps"]] == ["e1-reminder", "e2-help", "e3-offer", "s1-last-call"]
    status, answer = get(admin, {"from": "2026-03-01", "to": "2026-03-31", "scenario": "abandoned-cart"})
    assert [s["id"] for s in answer["scenarios"]] == ["abandoned-cart"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"to": "2026-03-31"}, "from", "required"),
        ({"from": "2026-03-01"}, "to", "required"),
        ({"from": "01/03/2026", "to": "2026-03-31"}, "from", "YYYY-MM-DD"),
        ({"from": "2026-02-30", "to": "2026-03-31"}, "from", "not a real day"),
        ({"from": "2026-03-31", "to": "2026-03-01"}, "to", "on or after from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to", "at most 366 days"),
        ({"from": "2026-03-01", "to": "2026-03-31", "scenario": "nope"}, "scenario", "not a deployed scenario"),
    ],
)
def test_a_bad_request_is_refused_naming_the_parameter(
    admin: Any, query: dict[str, str], field: str, words: str
) -> None:
    status, answer = get(admin, query)
    assert status == 400
    assert answer["field"] == field
    assert answer["error"].startswith(f"{field}: ")
    assert words in answer["error"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_leap_year_fits_in_one_report(admin: Any) -> None:
    status, answer = get(admin, {"from": "2028-01-01", "to": "2028-12-31"})  # 366 days
    assert status == 200
    assert len(answer["scenarios"][0]["daily"]) == 366


def test_a_compiled_scenario_with_a_split_is_reported_with_its_variants(aws: dict[str, str]) -> None:
    """The layout the compiler writes in the catalogue (tests/fixtures/scenarios/branching.yaml has a split)."""
    from shared.journeys import compiler
    from shared.journeys.loader import load
    from tests.conftest import ROOT

    scenario = load(ROOT / "tests/fixtures/scenarios/branching.yaml", ROOT / "templates")
    compiled = layout.from_entry(scenario.id, compiler.catalogue_entry(scenario))
    assert [(s.id, s.split, s.variant) for s in compiled.steps] == [
        ("tips", None, None),
        ("reminder", None, None),
        ("variant-a", "subject-test", "a"),
        ("variant-b", "subject-test", "b"),
    ]
    put("branching", "2026-03-02", "variant-a", "a", sent=300, delivered=300, clicked=9)
    put("branching", "2026-03-02", "variant-b", "b", sent=700, delivered=700, clicked=36)
    (split,) = report([compiled], "2026-03-01", "2026-03-31")["scenarios"][0]["splits"]
    assert [(v["name"], v["percent"], v["clicked"]) for v in split["variants"]] == [("a", 30, 9), ("b", 70, 36)]
    assert split["winner"] is None  # 3 % against 5.1 %: p ≈ 0.13, not yet
    assert split["verdict"].startswith("no significant difference yet on click rate")
    put("branching", "2026-03-03", "variant-b", "b", sent=0, clicked=20)  # 56 of 700: 8 %
    (split,) = report([compiled], "2026-03-01", "2026-03-31")["scenarios"][0]["splits"]
    assert (split["winner"], split["significant"]) == ("b", True)
