"""Skipped time for `parcours local --skip-time`: the simulated clock stands still while anything runs, and jumps to
the next moment something is due as soon as nothing does (decision 4 of DESIGN.md).

Work is counted while it runs: an HTTP request, a call to the AWS emulation, a Lambda invocation, a Step Functions
execution between its waits, a queue's poller between its polls. Whatever waits for a moment parks on a timer here
(a Wait state's end, a `wait_for` timeout, a Task's retry interval, a message's visibility, the daily schedule):
it stops counting, and counts again when time reaches its moment or something wakes it earlier (an execution
stopped, a task token sent back, a message sent to a polled queue). The one who wakes it counts it, before it
runs again, so there is no instant where it runs uncounted and time could move under it.

Time moves only when a client asks (`advance` to a moment, or `run_until_idle`): it then goes from timer to
timer, firing one, waiting until nothing runs, firing the next, so each Task runs at its timer's moment to the
second, on an idle machine or a loaded one. Between two requests the clock stands, so a client can send more
events at a moment of its choosing (an order 36 hours after a checkout).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    """A moment something waits for: `due` (a UNIX timestamp, None: only a wake ends it), what waits (for reports)."""

    due: float
    seq: int
    what: str = field(compare=False)
    background: bool = field(compare=False, default=False)  # the daily schedule: fires when time passes it
    keys: tuple[Hashable, ...] = field(compare=False, default=())
    event: threading.Event = field(compare=False, default_factory=threading.Event)
    fired: bool = field(compare=False, default=False)  # woken by time (not by a wake)
    done: bool = field(compare=False, default=False)

    @property
    def execution(self) -> str | None:
        """The Step Functions execution that waits, if one does."""
        return next((str(key[1]) for key in self.keys if isinstance(key, tuple) and key[0] == "execution"), None)


UNBOUNDED = float("inf")


@dataclass(frozen=True)
class Advanced:
    """What a request to move time did."""

    now: float
    fired: int
    idle: bool  # nothing will happen by itself but the daily schedule (what waits, waits for an event)
    pending: list[tuple[float, str, str | None]]  # the timers still waiting, (due, what, execution), earliest first


class SkippedTime:
    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Condition()
        self._busy = 0
        self._timers: list[Timer] = []  # a heap; done timers are dropped as they come up
        self._keyed: dict[Hashable, Timer] = {}
        self._seq = itertools.count()
        self._moving = threading.Lock()  # one client moves time at a time

    def timestamp(self) -> float:
        return self._now

    @property
    def busy(self) -> int:
        return self._busy

    # ---- work --------------------------------------------------------------------------------------------------
    def enter(self) -> None:
        with self._lock:
            self._busy += 1

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy <= 0:
                self._lock.notify_all()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Counts the block as work: time stands still until it ends."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    # ---- waiting -----------------------------------------------------------------------------------------------
    def park(
        self,
        due: float | None,
        what: str,
        keys: Iterable[Hashable] = (),
        background: bool = False,
        woken_if: Callable[[], bool] | None = None,
    ) -> bool:
        """Stops counting the caller (which was counted) until time reaches `due` (answers True) or `wake(key)` is
        called for one of `keys` (answers False); it is counted again when this returns. `woken_if` is asked once
        the timer is set, for a wake that came before it (a task token sent back while the Task was starting). A
        moment already reached does not wait."""
        with self._lock:
            if due is not None and due <= self._now:
                return True
            timer = Timer(UNBOUNDED if due is None else due, next(self._seq), what, background, tuple(keys))
            heapq.heappush(self._timers, timer)
            for key in timer.keys:
                self._keyed[key] = timer
            self._busy -= 1
            self._lock.notify_all()
        if woken_if is not None and woken_if():
            self._end(timer, fired=False)
        timer.event.wait()
        return timer.fired

    def sleep(self, seconds: float, what: str = "a retry interval") -> None:
        self.park(self._now + max(0.0, seconds), what)

    def wake(self, key: Hashable) -> None:
        """Ends the wait parked under `key` now, if any (a stop, a task token sent back, a message sent)."""
        with self._lock:
            timer = self._keyed.get(key)
        if timer is not None:
            self._end(timer, fired=False)

    def _end(self, timer: Timer, fired: bool) -> None:
        with self._lock:
            if timer.done:
                return
            timer.done, timer.fired = True, fired
            for key in timer.keys:
                if self._keyed.get(key) is timer:
                    del self._keyed[key]
            self._busy += 1  # counted from now on, by whoever woke it
        timer.event.set()

    # ---- moving time -------------------------------------------------------------------------------------------
    def _idle(self) -> None:
        with self._lock:
            while self._busy > 0:
                self._lock.wait()

    def _next(self, limit: float, until_idle: bool) -> Timer | None:
        """The timer to fire next at or before `limit`; with `until_idle`, only while some non-background timer is
        due by then (the daily schedule alone does not move time)."""
        with self._lock:
            while self._timers and self._timers[0].done:
                heapq.heappop(self._timers)
            if until_idle and not any(not t.done and not t.background and t.due <= limit for t in self._timers):
                return None
            if not self._timers or self._timers[0].due > limit:
                return None
            return self._timers[0]

    def advance(self, to: float | None = None, until_idle: bool = False, limit: float = UNBOUNDED) -> Advanced:
        """Moves time to `to` (never back), or with `until_idle` for as long as anything but the daily schedule is
        due (at most to `limit`), firing each timer on the way at its moment, one at a time, once nothing runs."""
        with self._moving:
            target = min(limit, UNBOUNDED if to is None else to)
            fired = 0
            while True:
                self._idle()
                timer = self._next(target, until_idle)
                if timer is None:
                    break
                with self._lock:
                    self._now = max(self._now, timer.due)
                self._end(timer, fired=True)
                fired += 1
            self._idle()
            with self._lock:
                if to is not None and to > self._now:
                    self._now = to
                live = [t for t in self._timers if not t.done]
                return Advanced(
                    now=self._now,
                    fired=fired,
                    idle=not any(not t.background and t.due != UNBOUNDED for t in live),
                    pending=sorted((t.due, t.what, t.execution) for t in live),
                )
