"""Campaigns in the report of a period (moto): a campaign started is a row of its own (`kind: campaign`) beside the
scenarios, its one step and its A/B test's split read from its counter items (`campaign.<id>`), shown when it started
in the period or counted something in it; `campaign=ID` asks for it alone."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shared.reports import reading
from shared.reports.layout import CampaignLayout
from tests.unit.reports.test_reading import CART, REGION, TABLE, put

SPRING = CampaignLayout("spring", "Spring sale", "2026-03-02T08:00:00+00:00", (("a", 10), ("b", 10)), "opened")
WINTER = CampaignLayout("winter", "Winter sale", "2026-01-10T08:00:00+00:00")
LATER = CampaignLayout("later", "Later", "2026-03-20T08:00:00+00:00")


def report(first: str, last: str, **asked: str) -> dict[str, Any]:
    period = reading.Period(date.fromisoformat(first), date.fromisoformat(last), **asked)
    return reading.report(REGION, TABLE, [CART], period, [SPRING, WINTER, LATER])


def test_a_campaign_is_a_row_with_its_step_its_ab_split_and_its_revenue(aws: dict[str, str]) -> None:
    # the sample's variants, and the rest (sent the winner untagged)
    put("campaign.spring", "2026-03-02", "email", "a", sent=100, delivered=100, opened=20, clicked=2)
    put("campaign.spring", "2026-03-02", "email", "b", sent=100, delivered=100, opened=40, clicked=3)
    put("campaign.spring", "2026-03-03", "email", None, sent=800, delivered=790, opened=300, clicked=30)
    put("campaign.spring", "2026-03-04", "email", None, orders_click=2, revenue_click__EUR="120.50")
    put("abandoned-cart", "2026-03-02", entered=3)

    rows = report("2026-03-01", "2026-03-05")["scenarios"]

    assert [(row["kind"], row["id"]) for row in rows] == [("scenario", "abandoned-cart"), ("campaign", "spring")]
    spring = rows[1]
    assert (spring["name"], spring["report"], spring["started_at"]) == (
        "Spring sale",
        "campaign.spring",
        "2026-03-02T08:00:00+00:00",
    )
    assert (spring["sent"], spring["opened"], spring["orders"], spring["revenue"]) == (1000, 360, 2, {"EUR": 120.5})
    assert [(step["id"], step["sent"]) for step in spring["steps"]] == [("email", 1000)]
    [split] = spring["splits"]
    assert [(v["name"], v["percent"], v["sent"], v["opened"]) for v in split["variants"]] == [
        ("a", 10, 100, 20),
        ("b", 10, 100, 40),
    ]
    assert (split["metric"], split["winner"], split["significant"]) == ("open", "b", True)  # 40 % against 20 %
    assert split["verdict"].startswith("b wins on open rate")
    assert [day["sent"] for day in spring["daily"]] == [0, 200, 800, 0, 0]
    # the account's emails count the campaign's
    assert report("2026-03-01", "2026-03-05")["deliverability"]["total"]["sent"] == 1000


def test_a_campaign_shows_when_it_started_in_the_period_or_counted_in_it(aws: dict[str, str]) -> None:
    put("campaign.winter", "2026-02-01", "email", None, clicked=1)  # a late click, weeks after its start
    # spring started in the period without a count yet; winter counted nothing then; later had not started
    assert [r["id"] for r in report("2026-03-01", "2026-03-05")["scenarios"] if r["kind"] == "campaign"] == ["spring"]
    assert [r["id"] for r in report("2026-02-01", "2026-02-02")["scenarios"] if r["kind"] == "campaign"] == ["winter"]
    # asked for alone: the campaign, even when it counted nothing; no scenario
    alone = report("2026-02-10", "2026-02-11", campaign="winter")["scenarios"]
    assert [(r["kind"], r["id"], r["sent"]) for r in alone] == [("campaign", "winter", 0)]
    # a scenario asked for alone: no campaign
    assert [r["id"] for r in report("2026-03-01", "2026-03-05", scenario="abandoned-cart")["scenarios"]] == [
        "abandoned-cart"
    ]


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        ({"campaign": "autumn"}, "no campaign 'autumn' was started"),
        ({"campaign": "Bad Id"}, "is not a campaign id"),
        ({"campaign": "spring", "scenario": "abandoned-cart"}, "not both"),
    ],
)
def test_a_bad_campaign_parameter_is_refused_naming_it(parameters: dict[str, str], words: str) -> None:
    with pytest.raises(reading.ReportRequestError) as refused:
        reading.period({"from": "2026-03-01", "to": "2026-03-02", **parameters}, ["abandoned-cart"], ["spring"])
    assert refused.value.field == "campaign"
    assert words in str(refused.value)
