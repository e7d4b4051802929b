"""The HTML report and the terminal's table (infra/report_page.py, infra/reporting.py): the numbers, the A/B
verdict, the benchmarks beside their figures, deliverability against its lines; self-contained and escaped."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from infra import report_page, reporting
from shared.reports import reading
from shared.reports.layout import ScenarioLayout, SplitLayout, StepLayout
from shared.reports.queries import CounterItem

DAYS = ["2026-03-01", "2026-03-02"]
CART = ScenarioLayout("abandoned-cart", "Abandoned cart", (StepLayout("e1-reminder", "email", None, None),))
WELCOME = ScenarioLayout(
    "welcome",
    "Welcome <b>series</b>",  # a name is the file's, escaped like anything untrusted
    (
        StepLayout("e1-welcome", "email", None, None),
        StepLayout("short", "email", "subject", "a"),
        StepLayout("long", "email", "subject", "b"),
    ),
    (SplitLayout("subject", (("a", 50), ("b", 50))),),
)
QUIET = ScenarioLayout("birthday", "Birthday offer", (StepLayout("e1-birthday-offer", "email", None, None),))


def sample() -> dict[str, Any]:
    cart = [
        CounterItem("2026-03-01", None, None, {"entered": 2, "converted": 1}),
        CounterItem(
            "2026-03-01",
            "e1-reminder",
            None,
            {"sent": 2, "delivered": 2, "opened": 2, "clicked": 1, "orders_click": 1},
            {"revenue_click:EUR": Decimal("42.00")},
        ),
    ]
    welcome = [
        CounterItem("2026-03-02", None, None, {"entered": 2000}),
        CounterItem(
            "2026-03-02", "e1-welcome", None, {"sent": 2000, "delivered": 1880, "opened": 1100, "bounced": 120}
        ),
        CounterItem("2026-03-02", "short", "a", {"sent": 1000, "delivered": 990, "opened": 500, "clicked": 20}),
        CounterItem("2026-03-02", "long", "b", {"sent": 1000, "delivered": 960, "opened": 480, "clicked": 60}),
    ]
    scenarios = [
        reading.scenario_report(CART, cart, DAYS),
        reading.scenario_report(QUIET, [], DAYS),
        reading.scenario_report(WELCOME, welcome, DAYS),
    ]
    return reading.assemble(reading.Period(date(2026, 3, 1), date(2026, 3, 2)), scenarios)


def text_of(page: str) -> str:
    """What a reader sees: the page without its tags and SVG, its whitespace folded."""
    without_svg = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", without_svg)).replace(" ,", ",")


def test_the_page_shows_the_numbers_the_verdict_and_the_benchmarks() -> None:
    page = report_page.page(sample())
    seen = text_of(page)
    assert "2026-03-01 to 2026-03-02" in seen
    assert "2 entered" in seen
    assert "1 converted (50.0 %)" in seen
    assert "42.00 EUR" in seen
    assert "b wins on click rate" in seen  # 2 % against 6.25 %: significant
    assert "6.2 % (4.9 %–8.0 %)" in seen  # b's click rate and its Wilson interval
    assert "conversion 50.0 %: seed 10–15 %" in seen  # the cart recovery benchmark beside its figure
    assert "e1-welcome open 58.5 %: seed 50–60 %" in seen
    assert "within" in seen
    assert "above" in seen
    assert "SES puts the account under review at 5 % bounces" in seen
    assert "Days past a line: 2026-03-02 (delivered 95.75 % ok, bounces 3.00 % watch" in seen  # 120 of 4,000
    assert "Birthday offer (birthday)" in seen  # no activity: listed, not drawn
    assert page.count("<svg") == 6  # two funnels, two daily series, one split, the deliverability


def test_the_page_is_self_contained_and_escapes_what_files_name() -> None:
    page = report_page.page(sample())
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}  # XML namespaces, never fetched
    assert "Welcome &lt;b&gt;series&lt;/b&gt;" in page
    assert "<b>series</b>" not in page


def test_the_terminal_table_puts_each_benchmark_beside_its_figure() -> None:
    table = reporting.table(sample())
    cart = next(line for line in table.splitlines() if line.startswith("abandoned-cart"))
    assert "42.00 EUR" in cart
    assert "1 (50.0 %)" in cart
    assert "conversion 50.0 % vs 10-15 %: above" in cart
    welcome = next(line for line in table.splitlines() if line.startswith("welcome"))
    assert "e1-welcome open 58.5 % vs 50-60 %: within" in welcome
    assert "A/B welcome/subject: b wins on click rate" in table


def test_the_default_period_is_the_last_30_days() -> None:
    today = date(2026, 3, 31)
    assert reporting.default_period(today, None, None) == (date(2026, 3, 2), today)
    assert reporting.default_period(today, date(2026, 1, 1), None) == (date(2026, 1, 1), date(2026, 1, 30))
    assert reporting.default_period(today, None, date(2026, 2, 28)) == (date(2026, 1, 30), date(2026, 2, 28))
