"""What a figure is judged against: the seed articles' benchmarks, beside the scenarios they are about, and the
deliverability thresholds that matter (README, Reports). Data and two small judgements; nothing else."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    scenario: str  # the shipped scenario's id it judges
    step: str | None  # the step whose rate it judges (None: the scenario's)
    figure: str  # the rate it judges, as named in a report's `rates`
    low: float
    high: float | None  # None: "above low"
    text: str
    source: str


BENCHMARKS = (
    Benchmark(
        "welcome",
        "e1-welcome",  # "un email de bienvenue": the welcome email itself, not the series' later ones
        "open",
        0.50,
        0.60,
        "a welcome email's open rate: 50 to 60 %, three times a usual marketing email's",
        "GetResponse, 2025 (seed article)",
    ),
    Benchmark(
        "abandoned-cart",
        None,  # the carts recovered: the scenario's goal (an order) reached, over the carts that entered
        "conversion",
        0.10,
        0.15,
        "cart reminder sequences recover 10 to 15 % of abandoned carts",
        "Baymard Institute, 2024 (seed article)",
    ),
)
DELIVERED_BENCHMARK = Benchmark(
    "*", None, "delivery", 0.95, None, "deliverability: aim at 95 % delivered or more", "seed article"
)


def judged(benchmark: Benchmark, value: float | None) -> str:
    """below | within | above the benchmark's range; "no data" without a value."""
    if value is None:
        return "no data"
    if value < benchmark.low:
        return "below"
    return "above" if benchmark.high is not None and value > benchmark.high else "within"


def of(scenario: str) -> list[Benchmark]:
    return [benchmark for benchmark in BENCHMARKS if benchmark.scenario == scenario]


@dataclass(frozen=True)
class Threshold:
    """A deliverability figure's lines: past `watch` look at it, past `over` it harms sending (or the benchmark is
    missed). `higher_is_better`: for the delivery rate the lines are floors."""

    figure: str
    watch: float
    over: float
    higher_is_better: bool
    text: str


THRESHOLDS = (
    Threshold(
        "delivery",
        0.95,
        0.90,
        True,
        "95 % delivered or more (seed article); under 90 % the list or the domain's reputation is in trouble",
    ),
    Threshold(
        "bounce",
        0.02,
        0.05,
        False,
        "SES puts the account under review at 5 % bounces and may pause sending at 10 %; AWS advises under 2 %",
    ),
    Threshold(
        "complaint",
        0.001,
        0.003,
        False,
        "SES reviews the account at 0.1 % complaints (pauses at 0.5 %); Gmail requires under 0.3 % spam reports, "
        "aiming at 0.1 %",
    ),
)


def status(threshold: Threshold, rate: float | None) -> str:
    """ok | watch | over; "no data" when nothing was sent."""
    if rate is None:
        return "no data"
    if threshold.higher_is_better:
        return "ok" if rate >= threshold.watch else "watch" if rate >= threshold.over else "over"
    return "ok" if rate < threshold.watch else "watch" if rate < threshold.over else "over"
