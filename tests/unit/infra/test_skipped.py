"""Skipped time (infra.local.skipped): time stands still while anything runs and moves only when a client asks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from infra.local import LocalRuntime
from infra.local.skipped import SkippedTime

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


def runtime(skip_time: bool = True) -> LocalRuntime:
    """A runtime not started: what its /_local/advance and /_local/run-until-idle routes answer needs no stack."""
    return LocalRuntime(environ={}, skip_time=skip_time, start_at=datetime.fromtimestamp(T0, UTC))


@pytest.mark.parametrize(
    ("how", "body", "error"),
    [
        ("advance", b"not json", "body is not JSON"),
        ("advance", b"[1]", "body must be a JSON object"),
        ("advance", b"{}", "give either to"),
        ("advance", b'{"to": "2026-11-25T09:00:00Z", "seconds": 60}', "give either to"),
        ("advance", b'{"to": "2026-11-25T09:00:00"}', "to must be an ISO 8601 instant with its offset"),
        ("advance", b'{"to": "tomorrow"}', "to must be an ISO 8601 instant with its offset"),
        ("advance", b'{"to": 1795000000}', "to must be an ISO 8601 instant with its offset"),
        ("advance", b'{"to": "2020-01-01T00:00:00Z"}', "to is before now (2026-11-18T11:06:40+00:00)"),
        ("advance", b'{"seconds": -1}', "seconds must be a number, 0 or more"),
        ("advance", b'{"seconds": true}', "seconds must be a number, 0 or more"),
        ("advance", b'{"seconds": "60"}', "seconds must be a number, 0 or more"),
        ("run-until-idle", b'{"at_most_days": 0}', "at_most_days must be a number above 0, at most 3660"),
        ("run-until-idle", b'{"at_most_days": 4000}', "at_most_days must be a number above 0, at most 3660"),
        ("run-until-idle", b'{"at_most_days": "400"}', "at_most_days must be a number above 0, at most 3660"),
    ],
)
def test_a_request_to_move_time_written_wrong_is_refused_and_time_stays(how: str, body: bytes, error: str) -> None:
    local = runtime()
    status, answer = local.move_time(how, body)
    assert status == 400
    assert error in answer["error"]
    assert local.skipped is not None
    assert local.skipped.timestamp() == T0


def test_time_that_is_scaled_cannot_be_moved_by_request() -> None:
    status, answer = runtime(skip_time=False).move_time("advance", b'{"seconds": 60}')
    assert status == 409
    assert "--skip-time" in answer["error"]


def test_run_until_idle_answers_where_time_stopped_and_what_is_still_due() -> None:
    # Given a Wait due in two hours, and a daily run (a background timer) due in one
    local = runtime()
    assert local.skipped is not None
    log: list[tuple[str, float]] = []
    waiter(local.skipped, T0 + 7200, log, "a Wait of exec-1")
    waiter(local.skipped, T0 + 3600, log, "the daily run", background=True)

    # When a client runs time on until idle
    status, answer = local.move_time("run-until-idle", b"{}")

    # Then it stops at the Wait's end, the daily run having fired on the way, and nothing is left due
    assert status == 200
    assert answer["now"] == datetime.fromtimestamp(T0 + 7200, UTC).isoformat()
    assert (answer["fired"], answer["idle"], answer["pending"]) == (2, True, [])
    assert log == [("the daily run", T0 + 3600), ("a Wait of exec-1", T0 + 7200)]
