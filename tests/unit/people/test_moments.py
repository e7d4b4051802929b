from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.people.moments import (
    anniversary,
    daily_window,
    inactive_since,
    local_days,
    month_days,
    next_anniversary,
    next_moment,
    on_day,
    parse_date,
    zone,
)

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("now", "weekdays", "expected"),
    [
        # Tuesday 08:00 in Paris (07:00 UTC): today at 10:00
        (datetime(2026, 11, 24, 7, 0, tzinfo=UTC), (), datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)),
        # Tuesday 11:00 in Paris: tomorrow at 10:00
        (datetime(2026, 11, 24, 10, 0, tzinfo=UTC), (), datetime(2026, 11, 25, 10, 0, tzinfo=PARIS)),
        # Saturday evening, weekdays only: Monday
        (
            datetime(2026, 11, 28, 20, 0, tzinfo=UTC),
            ("mon", "tue", "wed", "thu", "fri"),
            datetime(2026, 11, 30, 10, 0, tzinfo=PARIS),
        ),
        # Exactly 10:00: now
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), (), datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)),
        # Across the spring DST change (29 March 2026): 10:00 local is 08:00 UTC after it
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), (), datetime(2026, 3, 29, 8, 0, tzinfo=UTC)),
    ],
)
def test_the_next_local_moment(now: datetime, weekdays: tuple[str, ...], expected: datetime) -> None:
    assert next_moment(now, time(10, 0), weekdays, PARIS) == expected


@pytest.mark.parametrize(
    ("now", "at", "zone_", "expected"),
    [
        # Paris, 28 March 2027, 03:10 summer time: 02:30 was skipped tonight, it is 03:30 (not tomorrow's 02:30)
        (datetime(2027, 3, 28, 1, 10, tzinfo=UTC), time(2, 30), PARIS, datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
        # Los Angeles, 14 March 2027, 03:10 daylight time: likewise 03:30
        (
            datetime(2027, 3, 14, 10, 10, tzinfo=UTC),
            time(2, 30),
            ZoneInfo("America/Los_Angeles"),
            datetime(2027, 3, 14, 10, 30, tzinfo=UTC),
        ),
        # Paris, 31 October 2027, 02:10 for the second time (winter time): the second 02:30, not the first, gone
        (datetime(2027, 10, 31, 1, 10, tzinfo=UTC), time(2, 30), PARIS, datetime(2027, 10, 31, 1, 30, tzinfo=UTC)),
        # The same night at 02:10 the first time (summer time): the first 02:30
        (datetime(2027, 10, 31, 0, 10, tzinfo=UTC), time(2, 30), PARIS, datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),
        # Both 02:30s gone: tomorrow's
        (datetime(2027, 10, 31, 1, 40, tzinfo=UTC), time(2, 30), PARIS, datetime(2027, 11, 1, 1, 30, tzinfo=UTC)),
        # 29 February 2028 at 23:30 in Paris: 10:00 on 1 March
        (datetime(2028, 2, 29, 22, 30, tzinfo=UTC), time(10, 0), PARIS, datetime(2028, 3, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_the_next_local_moment_on_the_nights_the_clocks_change_is_never_in_the_past_nor_a_day_late(
    now: datetime, at: time, zone_: ZoneInfo, expected: datetime
) -> None:
    moment = next_moment(now, at, (), zone_)
    assert moment.astimezone(UTC) == expected  # (a repeated time never equals one in another zone: PEP 495)
    assert moment.isoformat() == expected.astimezone(zone_).isoformat()  # its offset as the clocks read then


def test_an_unknown_zone_falls_back_to_the_default() -> None:
    assert zone("Mars/Olympus_Mons", "Europe/Paris") == PARIS
    assert zone(None, "Europe/Paris") == PARIS
    assert zone("America/Montreal", "Europe/Paris") == ZoneInfo("America/Montreal")


# ---- dates: anniversaries, the daily run's window, inactivity ----------------------------------------------------
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9
LOS_ANGELES = ZoneInfo("America/Los_Angeles")  # UTC-8 in winter
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14, the earliest day on Earth


@pytest.mark.parametrize(
    ("original", "year", "expected"),
    [
        (date(1990, 3, 15), 2026, date(2026, 3, 15)),
        (date(2000, 2, 29), 2026, date(2026, 2, 28)),  # no 29 February in 2026: the 28th
        (date(2000, 2, 29), 2028, date(2028, 2, 29)),
        (date(1999, 2, 28), 2028, date(2028, 2, 28)),  # the 28th stays the 28th in a leap year
        (date(1990, 12, 31), 2026, date(2026, 12, 31)),
    ],
)
def test_the_anniversary_of_a_date(original: date, year: int, expected: date) -> None:
    assert anniversary(original, year) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 15), ("03-15",)),
        (date(2026, 2, 28), ("02-28", "02-29")),  # non-leap year: the 29th's anniversary is the 28th
        (date(2028, 2, 28), ("02-28",)),
        (date(2028, 2, 29), ("02-29",)),
    ],
)
def test_the_month_days_read_for_an_anniversary_day(day: date, expected: tuple[str, ...]) -> None:
    assert month_days(day) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1990-03-15", date(1990, 3, 15)),
        (" 2000-02-29 ", date(2000, 2, 29)),
        ("2001-02-29", None),  # no such day
        ("15/03/1990", None),
        ("1990-03-15T10:00:00", None),
        (19900315, None),
        (None, None),
    ],
)
def test_a_date_attribute_is_an_iso_calendar_date(text: object, expected: date | None) -> None:
    assert parse_date(text) == expected


def test_the_next_anniversary_is_today_even_past_its_time_then_next_year() -> None:
    birthday = date(1990, 11, 24)
    # 24 November 2026, 08:00 in Paris: today at 10:00
    assert next_anniversary(birthday, 0, time(10), PARIS, datetime(2026, 11, 24, 7, tzinfo=UTC)) == datetime(
        2026, 11, 24, 10, tzinfo=PARIS
    )
    # 15:00 in Paris the same day: still today's (the caller continues at once), never a year later
    assert next_anniversary(birthday, 0, time(10), PARIS, datetime(2026, 11, 24, 14, tzinfo=UTC)) == datetime(
        2026, 11, 24, 10, tzinfo=PARIS
    )
    # the day after: next year
    assert next_anniversary(birthday, 0, time(10), PARIS, datetime(2026, 11, 25, 9, tzinfo=UTC)) == datetime(
        2027, 11, 24, 10, tzinfo=PARIS
    )
    # a week before the birthday, the day after that week-before moment: next year's week-before
    assert next_anniversary(birthday, -7, time(10), PARIS, datetime(2026, 11, 18, 9, tzinfo=UTC)) == datetime(
        2027, 11, 17, 10, tzinfo=PARIS
    )


def test_a_leap_day_birthday_comes_on_28_february_in_other_years() -> None:
    leap = date(2000, 2, 29)
    assert next_anniversary(leap, 0, time(10), PARIS, datetime(2027, 1, 1, tzinfo=UTC)) == datetime(
        2027, 2, 28, 10, tzinfo=PARIS
    )
    assert next_anniversary(leap, 0, time(10), PARIS, datetime(2028, 1, 1, tzinfo=UTC)) == datetime(
        2028, 2, 29, 10, tzinfo=PARIS
    )


def test_the_local_moment_is_where_the_contact_lives() -> None:
    day = date(2026, 11, 24)
    assert on_day(day, time(10), TOKYO) == datetime(2026, 11, 24, 1, tzinfo=UTC)
    assert on_day(day, time(10), LOS_ANGELES) == datetime(2026, 11, 24, 18, tzinfo=UTC)
    assert on_day(day, time(10), KIRITIMATI) == datetime(2026, 11, 23, 20, tzinfo=UTC)  # the day before, in UTC


@pytest.mark.parametrize("tz", [PARIS, TOKYO, LOS_ANGELES, KIRITIMATI, ZoneInfo("Pacific/Pago_Pago")])
@pytest.mark.parametrize("at", [time(0, 0), time(0, 4), time(10, 0), time(23, 59)])
def test_every_local_moment_falls_in_exactly_one_daily_window(tz: ZoneInfo, at: time) -> None:
    """Whatever the zone and the time of day, each day's moment is emitted by exactly one run (no miss, no second
    one), DST included, and that run comes before the moment: the execution waits for it."""
    for offset in range(0, 400, 3):
        day = date(2026, 1, 1) + timedelta(days=offset)
        moment = on_day(day, at, tz)
        runs = []
        for run_day in (day - timedelta(days=2), day - timedelta(days=1), day, day + timedelta(days=1)):
            start, end = daily_window(datetime(run_day.year, run_day.month, run_day.day, 0, 5, tzinfo=UTC))
            if day in local_days(start, end) and start <= moment < end:
                runs.append(start)
        assert len(runs) == 1, (day, runs)
        assert runs[0] <= moment < runs[0] + timedelta(hours=24)


def test_the_daily_window_is_the_24_hours_from_the_scheduled_time() -> None:
    scheduled = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)
    assert daily_window(scheduled) == (scheduled, datetime(2026, 11, 25, 0, 5, tzinfo=UTC))
    days = (date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25))
    assert local_days(*daily_window(scheduled)) == days
    # run on demand in the afternoon: the window reaches into the day after tomorrow's early zones
    afternoon = daily_window(datetime(2026, 11, 24, 15, tzinfo=UTC))
    assert local_days(*afternoon) == (date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26))


def test_inactivity_counts_whole_days_back_from_the_run() -> None:
    assert inactive_since(date(2026, 11, 24), 90) == date(2026, 8, 26)
    assert inactive_since(date(2026, 3, 1), 1) == date(2026, 2, 28)
    assert inactive_since(date(2028, 3, 1), 1) == date(2028, 2, 29)
