"""A campaign's A/B test: who is in the sample and with which variant, and which variant the rest gets.

- Assignment: a hash of the campaign and the person gives a bucket of 10,000; the first `sample` % of the buckets
  are the sample, shared equally among the variants. The same person gets the same answer on every read of the
  audience (a redelivered page, a status), and no table keeps it. The sample is `sample` % of the audience on
  average, not exactly (a few people either way on a small list).
- The decision reads the variants' sends, opens and clicks where the reports count them (the campaign's sends are
  tagged `campaign.<id>`, step `email`, the variant's name: shared.reports.counting) and hands them to the reports'
  own A/B verdict (shared.reports.reading.split_result: Wilson intervals, z-test or Fisher, Bonferroni). A
  significant winner is taken; else the variant with the better rate, said to be not significant (ties: the first
  declared).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from shared.campaigns import document

BUCKETS = 10_000
STEP = "email"  # the campaign's one step in the SES tags and the reports (shared.campaigns.delivery.STEP)
SPLIT = "ab"  # the split's name in a report
DECIDING = {"clicks": "clicked", "opens": "opened"}


def report_name(campaign_id: str) -> str:
    """The scenario name a campaign's sends carry (SES tags, the sends table, the reports)."""
    return f"campaign.{campaign_id}"


def assign(campaign_id: str, ab: document.ABTest, contact_id: str) -> str | None:
    """The variant this person gets in the sample, or None: they wait for the winner."""
    digest = int(hashlib.sha256(f"{campaign_id}#{contact_id}".encode()).hexdigest()[:16], 16)
    if digest % BUCKETS >= ab.sample * BUCKETS // 100:
        return None
    return ab.variants[(digest // BUCKETS) % len(ab.variants)].name


def variant(ab: document.ABTest, name: str) -> document.Variant:
    return next(v for v in ab.variants if v.name == name)


def share(ab: document.ABTest) -> int:
    """Each variant's share of the audience in percent (rounded: a report's split shows whole percents)."""
    return max(1, round(ab.sample / len(ab.variants)))


def measured(region: str, table: str, campaign_id: str, ab: document.ABTest, first: date, last: date) -> dict[str, Any]:
    """The variants' counts and rates over the days first..last and the reports' verdict on the test's metric."""
    # The reports' modules (their statistics) load with a decision or an A/B status, not with every page and chunk
    from shared.reports import queries, reading

    totals = {v.name: reading.Totals.empty() for v in ab.variants}
    for item in queries.counter_items(region, table, report_name(campaign_id), first, last):
        if item.step == STEP and item.variant in totals:
            totals[item.variant].add(item)
    arms = [(v.name, share(ab), [STEP], totals[v.name]) for v in ab.variants]
    return reading.split_result(SPLIT, arms, DECIDING[ab.metric])


def winner(ab: document.ABTest, result: dict[str, Any]) -> tuple[str, bool]:
    """(the variant the rest gets, whether the difference was significant)."""
    if result.get("significant") and result.get("winner"):
        return str(result["winner"]), True
    key = "click" if ab.metric == "clicks" else "open"
    rates = [(v["name"], v[key]["rate"]) for v in result.get("variants", [])]
    best = max(rates, key=lambda pair: -1.0 if pair[1] is None else pair[1], default=(ab.variants[0].name, None))
    return str(best[0]), False


def decision(ab: document.ABTest, result: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What is kept of the decision and shown by the status: the winner, significant or not, and why."""
    chosen, significant = winner(ab, result)
    metric = "click" if ab.metric == "clicks" else "open"
    if significant:
        verdict = str(result.get("verdict"))
    else:
        verdict = (
            f"{chosen} has the better {metric} rate, not significantly ({result.get('verdict')}); it goes to the rest"
        )
    return {
        "winner": chosen,
        "significant": significant,
        "verdict": verdict,
        "test": result.get("test"),
        "p_value": result.get("p_value"),
        "decided_at": now.isoformat(),
        "variants": [
            {k: v[k] for k in ("name", "sent", "delivered", "opened", "clicked", "open", "click")}
            for v in result.get("variants", [])
        ],
    }
