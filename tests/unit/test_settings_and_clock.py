import threading
import time
from datetime import UTC, datetime

import pytest

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
    ],
)
def test_a_malformed_variable_is_named(environ: dict[str, str], name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_environ({**environ, name: value})


def test_the_real_clock_is_the_wall_clock() -> None:
    assert abs(Clock().timestamp() - time.time()) < 1


def test_a_scaled_clock_starts_at_the_real_time_and_runs_faster() -> None:
    epoch = time.time() - 10  # started ten real seconds ago, at x 8640: a simulated day later
    clock = Clock(scale=8640, epoch=epoch)
    assert abs(clock.timestamp() - (epoch + 86400)) < 8640 * 0.5
    assert clock.real_seconds(86400) == 10


def test_a_clock_may_begin_on_a_chosen_day_and_run_from_there(environ: dict[str, str]) -> None:
    # Given the local runtime started ten real seconds ago at x 8640, its clock set to begin on a Saturday evening
    saturday = datetime(2026, 11, 28, 21, 30, tzinfo=UTC).timestamp()
    settings = Settings.from_environ(
        {
            **environ,
            "PARCOURS_TIME_SCALE": "8640",
            "PARCOURS_CLOCK_EPOCH": repr(time.time() - 10),
            "PARCOURS_CLOCK_START": repr(saturday),
        }
    )
    # Then it reads a simulated day after that evening
    assert abs(settings.clock().timestamp() - (saturday + 86400)) < 8640 * 0.5
    # And unscaled, it still starts there
    assert abs(Clock(epoch=time.time(), start=saturday).timestamp() - saturday) < 1


def test_a_pinned_clock_reads_the_pinned_instant_and_runs_unscaled_from_there_on_its_thread_only() -> None:
    # Given a clock at x43200 (a real second is half a simulated day), and an instant a simulated week ago
    clock = Clock(scale=43200, epoch=time.time())
    a_week_ago = clock.timestamp() - 7 * 86400
    seen_elsewhere: list[float] = []
    # When a Task runs pinned to that instant for a fifth of a real second
    with pinned(a_week_ago):
        start = clock.timestamp()
        other = threading.Thread(target=lambda: seen_elsewhere.append(clock.timestamp()))
        other.start()
        other.join()
        time.sleep(0.2)
        end = clock.timestamp()
    # Then it reads that instant, and the real time it takes counts as real time, not as 2.4 simulated hours
    assert abs(start - a_week_ago) < 1
    assert 0.2 <= end - start < 1
    # And another thread, and the same thread afterwards, read the compressed clock
    assert seen_elsewhere[0] - a_week_ago > 6 * 86400
    assert clock.timestamp() - a_week_ago > 7 * 86400
