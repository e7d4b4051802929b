"""The one clock. In AWS it is the wall clock; the local runtime speeds it up or skips it (decision 4 of DESIGN.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

_pin = threading.local()
_driver: Callable[[], float] | None = None


def wall_time() -> float:
    """The real instant (UNIX timestamp), whatever the simulated one: the one read of the machine's clock.

    For what another party checks against its own wall clock (a signature's freshness window, a SigV4 date) and for
    the simulated clocks below to count from. Everything else reads a Clock (tests/unit/test_one_clock.py)."""
    return time.time()


def drive(source: Callable[[], float] | None) -> None:
    """From now on every clock in this process reads `source` (UNIX timestamps); None: back to real time.

    Only `parcours local --skip-time` drives the clock: its handlers run in its process, and its time stands still
    while they run and jumps when nothing does (infra.local.skipped). In AWS nothing drives it."""
    global _driver
    _driver = source


@contextmanager
def pinned(simulated: float) -> Iterator[None]:
    """Within this block, on this thread, every clock reads `simulated` plus the real time elapsed since, unscaled.

    Only the local runtime pins, around a Step Functions Task: the Task then runs at the instant its execution's
    timeline stands at (its start, or the end of its last Wait), as in AWS where it runs milliseconds after. The
    compressed clock would instead count the real time a busy machine took to reach it, magnified thousands of
    times (a second late at x43200 is half a day)."""
    previous = getattr(_pin, "at", None)
    _pin.at = (simulated, wall_time())
    try:
        yield
    finally:
        _pin.at = previous


@dataclass(frozen=True)
class Clock:
    """Simulated time runs `scale` times faster than real time from the real instant `epoch` on, where it reads
    `start` (the local runtime may begin on a chosen day, e.g. a Saturday evening; by default the real instant)."""

    scale: float = 1.0
    epoch: float = 0.0
    start: float | None = None

    def timestamp(self) -> float:
        pin: tuple[float, float] | None = getattr(_pin, "at", None)
        if pin is not None:
            return pin[0] + (wall_time() - pin[1])
        if _driver is not None:
            return _driver()
        return self.simulated(wall_time())

    def simulated(self, real: float) -> float:
        """The simulated instant of a real one (UNIX timestamps)."""
        if self.scale == 1.0 and self.start is None:
            return real
        return (self.epoch if self.start is None else self.start) + (real - self.epoch) * self.scale

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), tz=UTC)

    def real_seconds(self, simulated_seconds: float) -> float:
        """How long a simulated duration lasts on the wall clock."""
        return simulated_seconds / self.scale
