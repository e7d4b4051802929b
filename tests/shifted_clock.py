"""`--clock-at`: run the tests with the machine's clock moved, so that no test passes only on today's date.

A test that reads the real date instead of the project's clock (shared/clock.py) or a fixed instant of its own
passes today and fails some other day: on 29 February, the night the clocks change, or at New Year. Moving the
machine's clock (time-machine: time.time, datetime.now, time.localtime...; not time.monotonic nor perf_counter, so
sleeps and condition waits still work, and `tick` lets time pass) shows that failure now instead.

    pytest tests/unit --clock-at=+400d
    pytest tests/unit --clock-at='+400d,2028-02-29T23:30+01:00[Europe/Paris]'   # each test at one of them
    pytest tests/unit --clock-at='+400d,2028-02-29T23:30+01:00[Europe/Paris]' --clock-at-each   # at each

A SPEC is an instant with its offset, optionally with a zone in brackets that also becomes the local zone (TZ)
for the test, so naive local-time reads move too; or a shift from the real instant (`+400d`, `-6h`, `+1d12h`).
With several, each test runs at one, picked from a hash of its node id: one suite's time, the same instant for a
test on every run and in every pytest-xdist worker. A failed test's report says at which SPEC it ran.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
import time_machine

_SHIFT = re.compile(r"[+-](\d+[wdhms])+")
_PART = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_ZONED = re.compile(r"(?P<instant>[^\[\]]+)(\[(?P<zone>[^\[\]]+)\])?")


@dataclass(frozen=True)
class Spec:
    """Where one test's clock stands: `shift` from the real instant, or the fixed `instant` (in `zone`, if any)."""

    text: str
    shift: timedelta | None = None
    instant: datetime | None = None

    def destination(self) -> timedelta | datetime | float:
        if self.shift is not None:
            return self.shift
        assert self.instant is not None
        # A datetime in a ZoneInfo makes time-machine set TZ; a bare offset leaves the machine's zone alone.
        return self.instant if isinstance(self.instant.tzinfo, ZoneInfo) else self.instant.timestamp()

    def describe(self) -> str:
        if self.shift is not None:
            return f"{self.text} (from the real instant)"
        assert self.instant is not None
        zone = f", TZ={self.instant.tzinfo}" if isinstance(self.instant.tzinfo, ZoneInfo) else ""
        return f"{self.text} ({self.instant.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M:%S} UTC{zone})"


def parse_spec(text: str) -> Spec:
    """One SPEC; a zone whose offset at that instant is not the one written is refused (a typo, or a wrong guess
    about which side of a clock change the instant is)."""
    if _SHIFT.fullmatch(text):
        sign = -1 if text[0] == "-" else 1
        shift = timedelta(**{_UNITS[unit]: sign * int(count) for count, unit in _PART.findall(text)})
        return Spec(text, shift=shift)
    zoned = _ZONED.fullmatch(text)
    try:
        instant = datetime.fromisoformat(zoned["instant"]) if zoned else None
    except ValueError:
        instant = None
    if zoned is None or instant is None or instant.tzinfo is None:
        raise pytest.UsageError(
            f"--clock-at: {text!r} is neither an instant with its offset (2028-02-29T23:30+01:00, optionally "
            "followed by a zone: [Europe/Paris]) nor a shift (+400d, -6h, +1d12h)"
        )
    if zoned["zone"] is None:
        return Spec(text, instant=instant)
    try:
        zone = ZoneInfo(zoned["zone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise pytest.UsageError(f"--clock-at: unknown time zone {zoned['zone']!r} in {text!r}") from None
    local = instant.astimezone(zone)
    if local.utcoffset() != instant.utcoffset():
        raise pytest.UsageError(f"--clock-at: {text!r}: that instant is {local.isoformat()} in {zone}")
    return Spec(text, instant=local)


def parse_specs(value: str) -> list[Spec]:
    return [parse_spec(text) for text in re.split(r"[,\s]+", value.strip()) if text]


def pick(specs: list[Spec], nodeid: str) -> Spec:
    """The SPEC a test runs at: a stable hash of its node id (not Python's hash(), salted per process)."""
    digest = hashlib.sha256(nodeid.encode()).digest()
    return specs[int.from_bytes(digest[:8], "big") % len(specs)]


_specs = pytest.StashKey[list[Spec]]()
_ran_at = pytest.StashKey[Spec]()
_runs = pytest.StashKey[Counter[str]]()  # tests per SPEC, for the closing line (-q prints no header)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shifted clock")
    group.addoption(
        "--clock-at",
        metavar="SPEC[,SPEC...]",
        help="move the machine's clock for each test: an instant with offset, optionally with a zone that becomes "
        "the local zone (2028-02-29T23:30+01:00[Europe/Paris]), or a shift (+400d); with several, each test runs "
        "at one of them, picked from its node id",
    )
    group.addoption(
        "--clock-at-each",
        action="store_true",
        help="with --clock-at, run every test at every SPEC (one test id per SPEC)",
    )


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("clock_at")
    if value is None:
        if config.getoption("clock_at_each"):
            raise pytest.UsageError("--clock-at-each needs --clock-at")
        return
    specs = parse_specs(value)
    if not specs:
        raise pytest.UsageError("--clock-at: no SPEC given")
    config.stash[_specs] = specs
    config.stash[_runs] = Counter()


def pytest_report_header(config: pytest.Config) -> list[str]:
    specs = config.stash.get(_specs, None)
    if not specs:
        return []
    how = "every test at each" if config.getoption("clock_at_each") else "each test at one, picked from its node id"
    return [f"clock moved ({how}):", *(f"  {spec.describe()}" for spec in specs)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    runs = config.stash.get(_runs, None)
    if runs:  # none in a pytest-xdist controller: its workers ran the tests
        counted = ", ".join(f"{runs[spec.text]} at {spec.text}" for spec in config.stash[_specs])
        terminalreporter.write_line(f"clock moved: {counted}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    specs = metafunc.config.stash.get(_specs, None)
    if specs and metafunc.config.getoption("clock_at_each") and "_clock_at" in metafunc.fixturenames:
        metafunc.parametrize("_clock_at", specs, indirect=True, ids=[f"clock={spec.text}" for spec in specs])


@pytest.fixture(autouse=True)
def _clock_at(request: pytest.FixtureRequest) -> Iterator[None]:
    """Autouse, so set up before the test's other function-scoped fixtures: they too see the moved clock."""
    specs = request.config.stash.get(_specs, None)
    if not specs:
        yield
        return
    spec: Spec = getattr(request, "param", None) or pick(specs, request.node.nodeid)
    request.node.stash[_ran_at] = spec
    request.config.stash[_runs][spec.text] += 1
    with time_machine.travel(spec.destination(), tick=True):
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    spec = item.stash.get(_ran_at, None)
    if spec is not None and report.failed:
        each = " --clock-at-each" if item.config.getoption("clock_at_each") else ""
        again = f"pytest '{item.nodeid}' --clock-at='{spec.text}'{each}"
        report.sections.append(("clock moved", f"ran at {spec.describe()}\nagain: {again}"))
    return report
