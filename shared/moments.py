"""The next allowed moment: a time of day on allowed weekdays, in the contact's time zone (DST included)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
    """The first local `at` on an allowed weekday that is not before `now` (now itself if it is exactly that)."""
    allowed = {WEEKDAYS.index(day) for day in weekdays} if weekdays else set(range(7))
    local = now.astimezone(tz)
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, at, tzinfo=tz)
        # A time skipped by a DST jump resolves forward (zoneinfo's fold=0); compare as instants.
        if day.weekday() in allowed and candidate >= local:
            return candidate
    raise ValueError("no allowed weekday")  # unreachable: `allowed` is never empty
