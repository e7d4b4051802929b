import threading
from datetime import UTC, datetime

import pytest
import time_machine

from shared import clock
from shared.clock import Clock, pinned
from shared.settings import ConfigurationError, Settings


def test_settings_are_read_from_the_environment(environ: dict[str, str]) -> None:
    settings = Settings.from_environ(environ)
    assert settings.public_base_url == "https://mail.boutique.example"
    assert settings.time_scale == 1.0
    assert settings.default_locale == "fr"


@pytest.mark.parametrize("missing", ["PARCOURS_CONTACTS_TABLE", "PARCOURS_QUEUE_URL", "PARCOURS_FROM_ADDRESS"])
def test_a_missing_variable_is_named(environ: dict[str, str], missing: str) -> None:
    del environ[missing]
    with pytest.raises(ConfigurationError, match=missing):
        Settings.from_environ(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PARCOURS_TIME_SCALE", "fast"),
        ("PARCOURS_TIME_SCALE", "0"),
        ("PARCOURS_DEFAULT_LOCALE", "de"),
        ("PARCOURS_MAX_RECEIVE_COUNT", "0"),
        ("PARCOURS_MAX_RECEIVE_COUNT", "2.5"),
        ("PARCOURS_MAX_RECEIVE_COUNT", "five"),
        ("PARCOURS_ATTRIBUTION_CLICK_DAYS", "-1"),
        ("PARCOURS_ATTRIBUTION_CLICK_DAYS", "91"),
        ("PARCOURS_ATTRIBUTION_OPEN_HOURS", "1.5"),
        ("PARCOURS_ATTRIBUTION_OPEN_HOURS", "a day"),
    ],
)
def test_a_malformed_variable_is_named(environ: dict[str, str], name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_environ({**environ, name: value})


def test_the_attribution_windows_default_to_five_days_for_clicks_and_24_hours_for_opens(
    environ: dict[str, str],
) -> None:
    settings = Settings.from_environ(environ)
    assert (settings.attribution_click_days, settings.attribution_open_hours) == (5, 24)
    given = {**environ, "PARCOURS_ATTRIBUTION_CLICK_DAYS": "7", "PARCOURS_ATTRIBUTION_OPEN_HOURS": "0"}
    assert (
        Settings.from_environ(given).attribution_click_days,
        Settings.from_environ(given).attribution_open_hours,
    ) == (7, 0)


class Wall:
    """The machine's clock as shared.clock reads it (wall_time), moved by hand: exact readings, no sleeps."""

    def __init__(self, at: datetime) -> None:
        self.at = at.timestamp()

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Wall:
    moved = Wall(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    monkeypatch.setattr(clock, "wall_time", moved)
    return moved


def test_the_wall_time_is_the_machines_clock() -> None:
    with time_machine.travel(datetime(2028, 2, 29, 22, 30, tzinfo=UTC), tick=False):
        assert clock.wall_time() == datetime(2028, 2, 29, 22, 30, tzinfo=UTC).timestamp()


def test_the_real_clock_is_the_wall_clock(wall: Wall) -> None:
    assert Clock().now() == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    wall.at += 90
    assert Clock().now() == datetime(2026, 11, 24, 9, 1, 30, tzinfo=UTC)


def test_a_scaled_clock_starts_at_the_real_time_and_runs_faster(wall: Wall) -> None:
    epoch = wall.at - 10  # started ten real seconds ago, at x 8640: a simulated day later
    scaled = Clock(scale=8640, epoch=epoch)
    assert scaled.timestamp() == epoch + 86400
    assert scaled.real_seconds(86400) == 10


def test_a_clock_may_begin_on_a_chosen_day_and_run_from_there(environ: dict[str, str], wall: Wall) -> None:
    # Given the local runtime started ten real seconds ago at x 8640, its clock set to begin on a Saturday evening
    saturday = datetime(2026, 11, 28, 21, 30, tzinfo=UTC).timestamp()
    settings = Settings.from_environ(
        {
            **environ,
            "PARCOURS_TIME_SCALE": "8640",
            "PARCOURS_CLOCK_EPOCH": repr(wall.at - 10),
            "PARCOURS_CLOCK_START": repr(saturday),
        }
    )
    # Then it reads a simulated day after that evening
    assert settings.clock().timestamp() == saturday + 86400
    # And unscaled, it still starts there
    assert Clock(epoch=wall.at, start=saturday).timestamp() == saturday


def test_a_pinned_clock_reads_the_pinned_instant_and_runs_unscaled_from_there_on_its_thread_only(wall: Wall) -> None:
    # Given a clock at x43200 (a real second is half a simulated day), and an instant a simulated week ago
    scaled = Clock(scale=43200, epoch=wall.at)
    a_week_ago = scaled.timestamp() - 7 * 86400
    seen_elsewhere: list[float] = []
    # When a Task runs pinned to that instant for a quarter of a real second
    with pinned(a_week_ago):
        start = scaled.timestamp()
        wall.at += 0.25
        other = threading.Thread(target=lambda: seen_elsewhere.append(scaled.timestamp()))
        other.start()
        other.join()
        end = scaled.timestamp()
    # Then it reads that instant, and the real time it takes counts as real time, not as 3 simulated hours
    assert start == a_week_ago
    assert end == a_week_ago + 0.25
    # And another thread, and the same thread afterwards, read the compressed clock
    assert seen_elsewhere == [a_week_ago + 7 * 86400 + 0.25 * 43200]
    assert scaled.timestamp() == a_week_ago + 7 * 86400 + 0.25 * 43200
