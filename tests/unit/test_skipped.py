"""Skipped time (infra.skipped): time stands still while anything runs and moves only when a client asks."""

from __future__ import annotations

import threading

from infra.skipped import SkippedTime

T0 = 1_795_000_000.0  # a fixed instant: no test reads the real date


def waiter(clock: SkippedTime, due: float | None, log: list[tuple[str, float]], name: str, **park: object) -> None:
    """A worker that was counted, parks until `due`, then records the moment it woke at (and leaves)."""

    def run() -> None:
        fired = clock.park(due, name, **park)  # type: ignore[arg-type]
        log.append((name if fired else f"{name} woken", clock.timestamp()))
        clock.leave()

    clock.enter()
    threading.Thread(target=run, daemon=True).start()


def test_time_stands_still_until_asked_then_each_timer_fires_at_its_moment() -> None:
    clock, log = SkippedTime(T0), []  # type: ignore[var-annotated]
    waiter(clock, T0 + 86400 * 2, log, "J+2")
    waiter(clock, T0 + 3600, log, "H+1")
    clock.advance(to=T0)  # nothing due yet: returns once both are parked
    assert clock.timestamp() == T0
    assert log == []
    done = clock.advance(to=T0 + 86400 * 3)
    assert log == [("H+1", T0 + 3600), ("J+2", T0 + 86400 * 2)]  # in order, each at its moment to the second
    assert (done.now, done.fired, done.pending) == (T0 + 86400 * 3, 2, [])


def test_a_timer_past_the_target_waits_for_a_later_request() -> None:
    clock, log = SkippedTime(T0), []  # type: ignore[var-annotated]
    waiter(clock, T0 + 48 * 3600, log, "H+48")
    done = clock.advance(to=T0 + 36 * 3600)  # a test posts an order 36 hours later
    assert log == []
    assert done.now == T0 + 36 * 3600
    assert [(due, what) for due, what, _ in done.pending] == [(T0 + 48 * 3600, "H+48")]
    clock.advance(to=T0 + 48 * 3600)
    assert log == [("H+48", T0 + 48 * 3600)]


def test_work_that_runs_holds_time_until_it_ends() -> None:
    # Given a handler still running (counted) when a client asks time to move
    clock, log = SkippedTime(T0), []  # type: ignore[var-annotated]
    waiter(clock, T0 + 60, log, "wait")
    release = threading.Event()
    seen: list[float] = []

    def handler() -> None:
        with clock.running():
            release.wait()
            seen.append(clock.timestamp())  # what the handler's clock read while it ran

    threading.Thread(target=handler, daemon=True).start()
    while clock.busy < 1:  # the handler has started
        threading.Event().wait(0.001)
    mover = threading.Thread(target=lambda: clock.advance(to=T0 + 120), daemon=True)
    mover.start()
    mover.join(0.2)
    # Then time has not moved while it ran, and moves once it ends
    assert mover.is_alive()
    assert clock.timestamp() == T0
    assert log == []
    release.set()
    mover.join(5)
    assert seen == [T0]
    assert log == [("wait", T0 + 60)]
    assert clock.timestamp() == T0 + 120


def test_a_wake_ends_a_wait_early_and_a_wake_before_the_wait_is_not_lost() -> None:
    clock, log = SkippedTime(T0), []  # type: ignore[var-annotated]
    waiter(clock, T0 + 3600, log, "wait_for", keys=[("callback", 1)])
    clock.advance(to=T0)
    clock.wake(("callback", 1))  # the task token came back (SendTaskSuccess)
    clock.advance(to=T0)
    assert log == [("wait_for woken", T0)]
    # A token sent back before the Task parks: the check after the timer is set sees it
    waiter(clock, T0 + 3600, log, "late", keys=[("callback", 2)], woken_if=lambda: True)
    clock.advance(to=T0)
    assert log[-1] == ("late woken", T0)


def test_run_until_idle_stops_when_only_the_daily_run_is_left() -> None:
    clock, log = SkippedTime(T0), []  # type: ignore[var-annotated]
    waiter(clock, T0 + 86400 * 5, log, "J+5")
    waiter(clock, T0 + 86400 * 1, log, "daily", background=True)
    waiter(clock, T0 + 86400 * 9, log, "daily later", background=True)
    done = clock.advance(until_idle=True, limit=T0 + 86400 * 400)
    assert log == [("daily", T0 + 86400), ("J+5", T0 + 86400 * 5)]
    assert done.idle
    assert done.now == T0 + 86400 * 5
    assert [what for _, what, _ in done.pending] == ["daily later"]


def test_a_moment_already_reached_does_not_wait() -> None:
    clock = SkippedTime(T0)
    clock.enter()
    assert clock.park(T0 - 1, "past") is True  # a Wait of 0 seconds, a moment already past
    assert clock.busy == 1
