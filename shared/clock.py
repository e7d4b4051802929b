"""The one clock. In AWS it is the wall clock; the local runtime speeds it up (decision 4 of DESIGN.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Clock:
    """Simulated time runs `scale` times faster than real time from the real instant `epoch` on, where it reads
    `start` (the local runtime may begin on a chosen day, e.g. a Saturday evening; by default the real instant)."""

    scale: float = 1.0
    epoch: float = 0.0
    start: float | None = None

    def timestamp(self) -> float:
        return self.simulated(time.time())

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
