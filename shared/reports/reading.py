"""The report of a period (`GET /v1/reports/scenarios`, `parcours report`, `/_local/report.html`): for each
deployed scenario, one Query of its counter items (shared.reports.queries), summed into its totals, its steps in
the scenario's order (every one, even with zeros), its splits' A/B results (shared.reports.stats), its daily series;
and the account's deliverability per day against the thresholds that matter (shared.reports.benchmarks).

Rates are fractions (0.5 is 50 %), None where their denominator is 0:
- delivery = delivered / sent (None while SES told no outcome: no delivery nor bounce event); bounce = bounced /
  sent; complaint = complained / sent (SES's own definitions);
- open, click, unsubscribe = opened, clicked, unsubscribed / delivered, or / sent while no delivery is known (the
  SES delivery events are not configured, or not arrived yet): `rates.base` says which;
- click_to_open = clicked / opened; conversion = converted / entered (the goal reached: for abandoned-cart, the carts
  recovered); order = orders attributed by a click / the same base as open.
Revenue is summed as exact decimals per currency, then given as JSON numbers rounded to the currency's minor unit.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shared.reports import benchmarks, queries, stats, store
from shared.reports.layout import CampaignLayout, ScenarioLayout, StepLayout

MAX_DAYS = 366
CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CAMPAIGN_STEP = "email"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SHOWN = tuple(name for name in store.COUNTERS if name not in ("orders_click", "orders_open"))
DAILY = ("entered", "converted", "sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
# ISO 4217 minor units that are not 2 (the others, EUR and USD first, have cents)
MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
# The A/B verdict is on clicks: since Apple Mail Privacy Protection (2021) an open is often no person's, and orders
# are too few in most tests to decide on.
DECIDING = "clicked"


class ReportRequestError(ValueError):
    """A bad report request: `field` names the query parameter; the answer is 400."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.status = 400


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # included
    scenario: str | None = None  # only this one
    campaign: str | None = None  # only this campaign

    def days(self) -> list[str]:
        return [(self.first + timedelta(days=n)).isoformat() for n in range((self.last - self.first).days + 1)]


def _day(parameters: Mapping[str, str], name: str) -> date:
    value = (parameters.get(name) or "").strip()
    if not value:
        raise ReportRequestError(name, "required, a day as YYYY-MM-DD (UTC)")
    if not DATE.match(value):
        raise ReportRequestError(name, f"must be a day as YYYY-MM-DD, got {value[:40]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportRequestError(name, f"{value!r} is not a real day") from None


def period(parameters: Mapping[str, str], known: Iterable[str], campaigns: Iterable[str] = ()) -> Period:
    """The period a request asks for: `from` and `to` (both required, both included, at most MAX_DAYS days) and an
    optional `scenario` among `known`, or `campaign` among the `campaigns` started."""
    first, last = _day(parameters, "from"), _day(parameters, "to")
    if last < first:
        raise ReportRequestError("to", f"must be on or after from ({first.isoformat()})")
    if (last - first).days + 1 > MAX_DAYS:
        raise ReportRequestError("to", f"a report covers at most {MAX_DAYS} days; from {first} to {last} is more")
    scenario = parameters.get("scenario")
    if scenario is not None:
        names = sorted(known)
        if scenario not in names:
            raise ReportRequestError("scenario", f"{scenario[:60]!r} is not a deployed scenario; known: {names}")
    campaign = parameters.get("campaign")
    if campaign is not None:
        if scenario is not None:
            raise ReportRequestError("campaign", "ask for a scenario or a campaign, not both")
        if not CAMPAIGN_ID.match(campaign):
            raise ReportRequestError("campaign", f"{campaign[:60]!r} is not a campaign id (lower-case, digits, dashes)")
        if campaign not in set(campaigns):
            raise ReportRequestError("campaign", f"no campaign {campaign!r} was started")
    return Period(first, last, scenario, campaign)


# ---- sums ------------------------------------------------------------------------------------------------------
@dataclass
class Totals:
    counters: Counter[str]
    revenue: dict[str, Decimal]  # "revenue_click:EUR" -> amount

    @classmethod
    def empty(cls) -> Totals:
        return cls(Counter(), {})

    def add(self, item: queries.CounterItem) -> None:
        self.counters.update(item.counters)
        for name, amount in item.revenue.items():
            self.revenue[name] = self.revenue.get(name, Decimal(0)) + amount

    def merge(self, other: Totals) -> None:
        self.counters.update(other.counters)
        for name, amount in other.revenue.items():
            self.revenue[name] = self.revenue.get(name, Decimal(0)) + amount


def money(amount: Decimal, currency: str) -> float:
    """An exact amount as a JSON number rounded to the currency's minor unit (half to even, as banks round)."""
    exponent = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return float(amount.quantize(exponent, rounding=ROUND_HALF_EVEN))


def revenue_of(totals: Totals, prefix: str) -> dict[str, float]:
    return {
        name.removeprefix(prefix): money(amount, name.removeprefix(prefix))
        for name, amount in sorted(totals.revenue.items())
        if name.startswith(prefix)
    }


def _ratio(top: int, bottom: int) -> float | None:
    return round(top / bottom, 6) if bottom else None


def base_of(counters: Mapping[str, int]) -> tuple[str, int]:
    """The denominator of open, click and unsubscribe rates: delivered when any delivery is known, else sent."""
    return ("delivered", counters["delivered"]) if counters.get("delivered") else ("sent", counters.get("sent", 0))


def _delivery(sent: int, delivered: int, bounced: int) -> float | None:
    """delivered / sent; None while SES told no outcome at all (no delivery nor bounce event): unknown, not 0 %."""
    return _ratio(delivered, sent) if delivered or bounced else None


def rates(counters: Mapping[str, int]) -> dict[str, Any]:
    c = Counter(counters)
    base, over = base_of(c)
    return {
        "base": base,
        "delivery": _delivery(c["sent"], c["delivered"], c["bounced"]),
        "open": _ratio(c["opened"], over),
        "click": _ratio(c["clicked"], over),
        "click_to_open": _ratio(c["clicked"], c["opened"]),
        "unsubscribe": _ratio(c["unsubscribed"], over),
        "bounce": _ratio(c["bounced"], c["sent"]),
        "complaint": _ratio(c["complained"], c["sent"]),
        "conversion": _ratio(c["converted"], c["entered"]),
        "order": _ratio(c["orders_click"], over),
        "sms_failure": _ratio(c["sms_failed"], c["sms_sent"] + c["sms_failed"]),
    }


def figures(totals: Totals) -> dict[str, Any]:
    """Counters, orders, revenue (click and open attribution) and rates of a sum, in the answer's names."""
    c = totals.counters
    return {
        **{name: int(c[name]) for name in SHOWN},
        "orders": int(c["orders_click"]),
        "orders_open": int(c["orders_open"]),
        "revenue": revenue_of(totals, "revenue_click:"),
        "revenue_open": revenue_of(totals, "revenue_open:"),
        "rates": rates(c),
    }


# ---- A/B -------------------------------------------------------------------------------------------------------
def _interval(successes: int, trials: int) -> dict[str, float | None]:
    found = stats.wilson(min(successes, trials), trials)
    return {
        "rate": None if found.rate is None else round(found.rate, 6),
        "low": None if found.low is None else round(found.low, 6),
        "high": None if found.high is None else round(found.high, 6),
    }


def split_result(
    split_id: str, variants: Sequence[tuple[str, int, list[str], Totals]], deciding: str = DECIDING
) -> dict[str, Any]:
    """One split: each variant's counts and rates with 95 % Wilson intervals, and the verdict on clicks (stats), or
    on opens (`deciding="opened"`: a campaign's A/B test may choose them)."""
    every_delivered = all(totals.counters["delivered"] > 0 for _, _, _, totals in variants)
    base = "delivered" if every_delivered else "sent"  # the same denominator for every variant
    shown = []
    arms = []
    for name, percent, steps, totals in variants:
        c = totals.counters
        trials = int(c[base])
        shown.append(
            {
                "name": name,
                "percent": percent,
                "steps": steps,
                **{key: int(c[key]) for key in ("sent", "delivered", "opened", "clicked", "unsubscribed")},
                "orders": int(c["orders_click"]),
                "revenue": revenue_of(totals, "revenue_click:"),
                "open": _interval(int(c["opened"]), trials),
                "click": _interval(int(c["clicked"]), trials),
                "order": _interval(int(c["orders_click"]), trials),
            }
        )
        arms.append(stats.Arm(name, min(int(c[deciding]), trials), trials))
    metric = "open" if deciding == "opened" else "click"
    decided = stats.verdict(arms, f"{metric} rate")
    return {
        "id": split_id,
        "base": base,
        "metric": metric,
        "variants": shown,
        "test": decided.test,
        "p_value": None if decided.p_value is None else round(decided.p_value, 6),
        "alpha": round(decided.alpha, 6),
        "significant": decided.significant,
        "winner": decided.winner,
        "verdict": decided.text,
        "sends_needed_per_variant": decided.sends_needed,
    }


# ---- one scenario ----------------------------------------------------------------------------------------------
def _step_entry(step: StepLayout, totals: Totals, in_scenario: bool) -> dict[str, Any]:
    return {
        "id": step.id,
        "channel": step.channel,
        "split": step.split,
        "variant": step.variant,
        "in_scenario": in_scenario,
        **figures(totals),
    }


def _benchmarks(scenario: str, scenario_rates: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The seeds' benchmarks of this scenario, each with the figure it judges (the scenario's or a step's rate)."""
    found = []
    for b in benchmarks.of(scenario):
        judged_rates = scenario_rates
        if b.step is not None:
            judged_rates = next((step["rates"] for step in steps if step["id"] == b.step), {})
        value = judged_rates.get(b.figure)
        found.append(
            {
                "step": b.step,
                "figure": b.figure,
                "low": b.low,
                "high": b.high,
                "text": b.text,
                "source": b.source,
                "value": value,
                "status": benchmarks.judged(b, value),
            }
        )
    return found


def scenario_report(
    layout: ScenarioLayout, items: Iterable[queries.CounterItem], days: Sequence[str]
) -> dict[str, Any]:
    """A scenario's figures from its counter items of the period (any order)."""
    total = Totals.empty()
    by_step: dict[tuple[str, str | None], Totals] = {}
    by_day = {day: Totals.empty() for day in days}
    for item in items:
        total.add(item)
        if item.day in by_day:
            by_day[item.day].add(item)
        if item.step is not None:
            by_step.setdefault((item.step, item.variant), Totals.empty()).add(item)
    steps = []
    known = set()
    for step in layout.steps:
        known.add(step.id)
        totals = Totals.empty()
        for (step_id, _variant), found in by_step.items():  # a step's items all carry its variant, normally
            if step_id == step.id:
                totals.merge(found)
        steps.append(_step_entry(step, totals, in_scenario=True))
    # Steps counted in the period but no longer in the scenario (renamed, removed): shown after, marked so
    for (step_id, variant), found in sorted(by_step.items(), key=lambda pair: (pair[0][0], pair[0][1] or "")):
        if step_id not in known:
            channel = "sms" if found.counters["sms_sent"] or found.counters["sms_failed"] else "email"
            steps.append(_step_entry(StepLayout(step_id, channel, None, variant), found, in_scenario=False))
    splits = []
    for split in layout.splits:
        variants = []
        for name, percent in split.variants:
            members = [s.id for s in layout.steps if s.split == split.id and s.variant == name and s.channel == "email"]
            totals = Totals.empty()
            for (step_id, variant), found in by_step.items():
                if step_id in members and variant in (name, None):
                    totals.merge(found)
            variants.append((name, percent, members, totals))
        splits.append(split_result(split.id, variants))
    figured = figures(total)
    return {
        "kind": "scenario",
        "id": layout.id,
        "name": layout.name,
        **figured,
        "benchmarks": _benchmarks(layout.id, figured["rates"], steps),
        "steps": steps,
        "splits": splits,
        "daily": [
            {
                "day": day,
                **{name: int(totals.counters[name]) for name in DAILY},
                "orders": int(totals.counters["orders_click"]),
                "revenue": revenue_of(totals, "revenue_click:"),
            }
            for day, totals in by_day.items()
        ],
    }


# ---- one campaign ----------------------------------------------------------------------------------------------
def campaign_report(
    campaign: CampaignLayout, items: Iterable[queries.CounterItem], days: Sequence[str]
) -> dict[str, Any]:
    """A campaign as a scenario of one step (`email`), counted and attributed alike; an A/B test as its split: the
    sample's variants (the rest, sent the winner untagged, is in the step's figures, not the test's)."""
    found = list(items)
    step = StepLayout(CAMPAIGN_STEP, "email", "ab" if campaign.variants else None, None)
    row = scenario_report(ScenarioLayout(campaign.report, campaign.name, (step,)), found, days)
    splits = []
    if campaign.variants:
        arms = []
        for name, percent in campaign.variants:
            totals = Totals.empty()
            for item in found:
                if item.step == CAMPAIGN_STEP and item.variant == name:
                    totals.add(item)
            arms.append((name, percent, [CAMPAIGN_STEP], totals))
        splits.append(split_result("ab", arms, campaign.deciding))
    return {
        **row,
        "kind": "campaign",
        "id": campaign.id,
        "report": campaign.report,
        "started_at": campaign.started_at,
        "splits": splits,
    }


def _counted(row: Mapping[str, Any]) -> bool:
    return any(row[name] for name in ("sent", "sms_sent", "opened", "clicked", "orders", "orders_open")) or bool(
        row["revenue"] or row["revenue_open"]
    )


# ---- deliverability --------------------------------------------------------------------------------------------
def _judged(sent: int, delivered: int, bounced: int, complained: int) -> dict[str, Any]:
    values = {
        "delivery": _delivery(sent, delivered, bounced),
        "bounce": _ratio(bounced, sent),
        "complaint": _ratio(complained, sent),
    }
    return {
        "sent": sent,
        "delivered": delivered,
        "bounced": bounced,
        "complained": complained,
        "rates": values,
        "status": {t.figure: benchmarks.status(t, values[t.figure]) for t in benchmarks.THRESHOLDS},
    }


def deliverability(scenarios: Sequence[Mapping[str, Any]], days: Sequence[str]) -> dict[str, Any]:
    """The account's emails of the period (every scenario reported), per day and in total, against THRESHOLDS."""
    per_day = []
    for index, day in enumerate(days):
        sums = Counter[str]()
        for scenario in scenarios:
            sums.update({k: scenario["daily"][index][k] for k in ("sent", "delivered", "bounced", "complained")})
        per_day.append({"day": day, **_judged(sums["sent"], sums["delivered"], sums["bounced"], sums["complained"])})
    total = Counter[str]()
    for scenario in scenarios:
        total.update({k: scenario[k] for k in ("sent", "delivered", "bounced", "complained")})
    return {
        "days": per_day,
        "total": _judged(total["sent"], total["delivered"], total["bounced"], total["complained"]),
        "thresholds": [
            {
                "figure": t.figure,
                "watch": t.watch,
                "over": t.over,
                "higher_is_better": t.higher_is_better,
                "text": t.text,
            }
            for t in benchmarks.THRESHOLDS
        ],
    }


# ---- the report ------------------------------------------------------------------------------------------------
def report(
    region: str,
    table: str,
    layouts: Sequence[ScenarioLayout],
    asked: Period,
    campaigns: Sequence[CampaignLayout] = (),
) -> dict[str, Any]:
    """The report of `asked` over the scenarios of `layouts` and the campaigns started (or the one asked): one Query
    per scenario and per campaign started by the period's end. Every scenario is a row; a campaign is one (`kind:
    campaign`) when it started in the period or counted something in it (its opens, clicks and orders come days
    after its sends)."""
    days = asked.days()
    chosen = [layout for layout in layouts if asked.campaign is None and asked.scenario in (None, layout.id)]
    rows = [
        scenario_report(layout, queries.counter_items(region, table, layout.id, asked.first, asked.last), days)
        for layout in chosen
    ]
    for campaign in sorted(campaigns, key=lambda c: (c.started_at, c.id)):
        if asked.scenario is not None or asked.campaign not in (None, campaign.id):
            continue
        started = campaign.started_at[:10]
        if started > asked.last.isoformat():
            continue
        items = queries.counter_items(region, table, campaign.report, asked.first, asked.last)
        row = campaign_report(campaign, items, days)
        if started >= asked.first.isoformat() or _counted(row) or asked.campaign == campaign.id:
            rows.append(row)
    return assemble(asked, rows)


def assemble(asked: Period, scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    days = asked.days()
    delivery = deliverability(scenarios, days)
    delivered_benchmark = benchmarks.DELIVERED_BENCHMARK
    delivery_rate = delivery["total"]["rates"]["delivery"]
    return {
        "from": asked.first.isoformat(),
        "to": asked.last.isoformat(),
        "scenarios": scenarios,
        "deliverability": delivery,
        "benchmarks": [
            {"scenario": b.scenario, "step": b.step, "figure": b.figure, "low": b.low, "high": b.high}
            | {"text": b.text, "source": b.source}
            for b in (*benchmarks.BENCHMARKS, delivered_benchmark)
        ],
        "deliverability_benchmark": {
            "figure": "delivery",
            "low": delivered_benchmark.low,
            "text": delivered_benchmark.text,
            "value": delivery_rate,
            "status": benchmarks.judged(delivered_benchmark, delivery_rate),
        },
    }
