"""Nothing in the product reads the machine's clock but shared/clock.py: the local runtime can then speed time up or
skip it, a test can fix it, and a date bug has one place to live."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "infra")
THE_CLOCK = {
    "shared/clock.py": "the one clock: wall_time() and the simulated clocks built on it",
    "infra/local/runtime.py": "the local runtime's clock plumbing (time scale, skipped time), checked with it",
    "infra/local/skipped.py": "the local runtime's skipped time: the timeline that drives shared.clock",
}
# Genuine exceptions, each with its reason. time.monotonic and time.perf_counter measure durations, not dates: they
# are fine everywhere and need no entry here.
ALLOWED: dict[str, str] = {}

DATE_CLASSES = {"datetime", "date"}
DATE_READS = {"now", "utcnow", "today"}
TIME_READS = {"time", "time_ns"}
TIME_READS_WITHOUT_ARGUMENT = {"localtime", "gmtime", "ctime", "asctime"}  # with no argument: the current instant


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def clock_reads(source: str) -> list[str]:
    """Where `source` reads the machine's clock: `line: what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [f"{node.lineno}: from time import {a.name}" for a in node.names if a.name in TIME_READS]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner, attribute = _name(node.func.value), node.func.attr
        if (
            (owner in DATE_CLASSES and attribute in DATE_READS)
            or (owner == "time" and attribute in TIME_READS)
            or (owner == "time" and attribute in TIME_READS_WITHOUT_ARGUMENT and not node.args)
            or (owner == "time" and attribute == "strftime" and len(node.args) < 2)
        ):
            found.append(f"{node.lineno}: {owner}.{attribute}()")
    return found


def product_modules() -> list[str]:
    return sorted(str(path.relative_to(ROOT)) for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_product_module_reads_the_machine_clock_but_the_clock() -> None:
    reads = {
        module: found
        for module in product_modules()
        if module not in THE_CLOCK and module not in ALLOWED
        for found in [clock_reads((ROOT / module).read_text())]
        if found
    }
    assert reads == {}, "read shared.clock instead (a Clock, or clock.wall_time() for another party's clock)"


def test_the_allowed_modules_still_exist() -> None:
    """An allowance outliving its module would silently cover a new one of the same name."""
    assert set(THE_CLOCK) | set(ALLOWED) <= set(product_modules())


@pytest.mark.parametrize(
    "line",
    [
        "datetime.now(UTC)",
        "datetime.datetime.utcnow()",
        "date.today()",
        "time.time()",
        "time.time_ns()",
        "time.localtime()",
        "time.strftime('%Y')",
        "from time import time",
    ],
)
def test_every_way_to_read_the_date_is_seen(line: str) -> None:
    assert clock_reads(f"{line}\n") != []


@pytest.mark.parametrize(
    "line",
    [
        "time.monotonic()",
        "time.perf_counter()",
        "datetime.fromtimestamp(clock.wall_time(), UTC)",
        "time.gmtime(0)",
        "time.strftime('%Y', time.gmtime(0))",
        "clock.now()",
    ],
)
def test_durations_and_the_clock_itself_are_not_date_reads(line: str) -> None:
    assert clock_reads(f"{line}\n") == []
