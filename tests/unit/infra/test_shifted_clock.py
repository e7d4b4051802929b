"""--clock-at (tests/shifted_clock.py), run on small test files of its own: the check in `make test` that no test
passes only on today's date is worth only what it moves."""

from __future__ import annotations

import re

import pytest

from tests.shifted_clock import parse_spec, pick

PLUGIN = ("-p", "tests.shifted_clock", "-p", "no:cacheprovider")
LEAP_EVENING_IN_PARIS = "2028-02-29T23:30+01:00[Europe/Paris]"


def test_a_test_reads_the_moved_date_and_the_moved_local_zone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from datetime import UTC, date, datetime

        def test_it():
            assert date.today() == date(2028, 2, 29)
            assert datetime.now().strftime("%H:%M") == "23:30"  # naive, local: Paris
            assert datetime.now(UTC).strftime("%d %H:%M") == "29 22:30"
            assert time.strftime("%Z") == "CET"
        """
    )
    pytester.runpytest_inprocess(*PLUGIN, f"--clock-at={LEAP_EVENING_IN_PARIS}").assert_outcomes(passed=1)


def test_time_still_passes_so_waits_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import time

        def test_it():
            before = time.time()
            assert not threading.Event().wait(0.05)
            assert time.time() > before
        """
    )
    pytester.runpytest_inprocess(*PLUGIN, "--clock-at=+400d").assert_outcomes(passed=1)


def test_a_test_that_reads_todays_date_fails_and_says_where_it_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from datetime import date

        def test_this_century():
            assert date.today().year < 2100
        """
    )
    result = pytester.runpytest_inprocess(*PLUGIN, "--clock-at=2101-01-01T00:00+00:00")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ran at 2101-01-01T00:00+00:00 (2101-01-01 00:00:00 UTC)*",
            "*again: pytest 'test_a_test_that_reads_todays_date_fails_and_says_where_it_ran.py::test_this_century'"
            " --clock-at='2101-01-01T00:00+00:00'*",
        ]
    )


def test_with_several_instants_each_test_runs_at_one_the_same_on_every_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(40))
        def test_it(n):
            pass
        """
    )
    instants = "+400d,2027-12-31T23:59:00+00:00"
    runs = [pytester.runpytest_inprocess(*PLUGIN, "-q", f"--clock-at={instants}") for _ in range(2)]
    lines = [next(line for line in run.outlines if line.startswith("clock moved:")) for run in runs]
    found = re.fullmatch(r"clock moved: (\d+) at \+400d, (\d+) at 2027-12-31T23:59:00\+00:00", lines[0])
    assert found is not None
    assert int(found[1]) + int(found[2]) == 40
    assert int(found[1]) > 0
    assert int(found[2]) > 0
    assert lines[1] == lines[0]


def test_the_thorough_run_runs_every_test_at_every_instant(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest_inprocess(*PLUGIN, "-v", "--clock-at=+400d,-3h", "--clock-at-each")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_it?clock=+400d? PASSED*", "*test_it?clock=-3h? PASSED*"])


def test_the_instant_a_test_runs_at_depends_on_its_id_only_in_every_process() -> None:
    """Python's hash() would differ from one process (one pytest-xdist worker) to the next."""
    specs = [parse_spec("+400d"), parse_spec(LEAP_EVENING_IN_PARIS)]
    picked = [specs.index(pick(specs, f"tests/unit/test_x.py::test_{n}")) for n in range(8)]
    assert picked == [0, 0, 0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2028-02-29T23:30+02:00[Europe/Paris]", "that instant is 2028-02-29T22:30:00+01:00 in Europe/Paris"),
        ("2028-02-29T23:30[Europe/Paris]", "neither an instant with its offset"),
        ("2028-02-29T23:30+01:00[Europe/Pari]", "unknown time zone 'Europe/Pari'"),
        ("400d", "neither an instant with its offset"),
    ],
)
def test_an_instant_written_wrong_is_refused(spec: str, message: str) -> None:
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        parse_spec(spec)
