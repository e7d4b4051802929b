from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from shared.moments import next_moment, zone

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


def test_an_unknown_zone_falls_back_to_the_default() -> None:
    assert zone("Mars/Olympus_Mons", "Europe/Paris") == PARIS
    assert zone(None, "Europe/Paris") == PARIS
    assert zone("America/Montreal", "Europe/Paris") == ZoneInfo("America/Montreal")
