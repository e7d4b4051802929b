"""Moments in the contact's time zone (DST included): the next allowed time of day on allowed weekdays, a date
attribute's day at a time of day, its yearly anniversary (29 February falls on 28 February in other years), and
the day windows of the daily schedule."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def zone(name: str | None, default: str) -> ZoneInfo:
    """The contact's zone when it is a real one, the deployment's default otherwise."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def next_moment(now: datetime, at: time, weekdays: tuple[str, ...], tz: ZoneInfo) -> datetime:
    """The first local `at` on an allowed weekday that is not before `now` (now itself if it is exactly that).

    A time the clocks skip resolves forward (02:30 on the spring night in Paris is 03:30 summer time); a time they
    repeat counts twice (after the first 02:30 of the autumn night, the second is still to come)."""
    allowed = {WEEKDAYS.index(day) for day in weekdays} if weekdays else set(range(7))
    instant = now.astimezone(UTC)
    local = now.astimezone(tz)
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        if day.weekday() not in allowed:
            continue
        for fold in (0, 1):  # fold=0: the earlier reading of a repeated time, the later offset of a skipped one
            candidate = datetime.combine(day, at.replace(fold=fold), tzinfo=tz).astimezone(UTC)
            # As instants: datetimes sharing a tzinfo compare by their wall time, blind to a DST change between.
            if candidate >= instant:
                return candidate.astimezone(tz)
    raise ValueError("no allowed weekday")  # unreachable: `allowed` is never empty


def parse_date(value: object) -> date | None:
    """An ISO calendar date (YYYY-MM-DD) as a date attribute holds it; None for anything else."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.match(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def anniversary(original: date, year: int) -> date:
    """The original's month and day in `year`; 29 February falls on 28 February in the other years."""
    if (original.month, original.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return original.replace(year=year)


def on_day(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`at` o'clock on a local day (a time skipped by a DST jump resolves forward)."""
    return datetime.combine(day, at, tzinfo=tz)


def next_anniversary(original: date, offset_days: int, at: time, tz: ZoneInfo, now: datetime) -> datetime:
    """The first yearly occurrence (anniversary + offset, at local time `at`) whose local day is today or later.

    Today's occurrence is returned even when its time has passed: the caller continues at once rather than wait
    a year (which Step Functions would not allow anyway)."""
    today = now.astimezone(tz).date()
    for year in range(today.year - 2, today.year + 3):
        day = anniversary(original, year) + timedelta(days=offset_days)
        if day >= today:
            return on_day(day, at, tz)
    raise ValueError("no anniversary within two years")  # unreachable: offsets are under a year


def daily_window(scheduled: datetime) -> tuple[datetime, datetime]:
    """The 24 hours from a daily run's scheduled time: what that run emits. Runs scheduled a day apart tile time,
    so every local moment falls in exactly one run's window, whatever the time zone or DST; a retried run keeps
    its scheduled time, hence its window."""
    start = scheduled.astimezone(UTC)
    return start, start + timedelta(days=1)


def local_days(start: datetime, end: datetime) -> tuple[date, ...]:
    """The local days whose times of day can fall in [start, end): zones run from UTC-12 to UTC+14, so a local
    day's moments lie between its UTC midnight minus 14 hours and plus 36 hours. Three days for a 24-hour window."""
    first = (start - timedelta(days=2)).date()
    found = []
    for offset in range(5):
        day = first + timedelta(days=offset)
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        if midnight - timedelta(hours=14) < end and midnight + timedelta(hours=36) > start:
            found.append(day)
    return tuple(found)


def month_days(anniversary_day: date) -> tuple[str, ...]:
    """The MM-DD of the dates whose anniversary falls on `anniversary_day`: 28 February also takes the 29th in a
    year without one."""
    found: tuple[str, ...] = (f"{anniversary_day.month:02d}-{anniversary_day.day:02d}",)
    if (anniversary_day.month, anniversary_day.day) == (2, 28) and not calendar.isleap(anniversary_day.year):
        found += ("02-29",)
    return found


def inactive_since(run_day: date, days: int) -> date:
    """The engagement day of contacts who, on `run_day`, have been silent for exactly `days` days."""
    return run_day - timedelta(days=days)
