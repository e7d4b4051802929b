"""`parcours test`: every journey file in scenarios/tests, run against real `parcours local` processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import build, journeys, validation

COMPILED = build.compile_all()
FILES = sorted(journeys.TESTS.glob("*.test.yaml"))


def test_every_shipped_scenario_has_a_journey_file() -> None:
    assert sorted(path.name.removesuffix(".test.yaml") for path in FILES) == sorted(COMPILED.scenarios)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, list[journeys.Outcome]]:
    cases = [case for path in FILES for case in journeys.load(path, COMPILED.scenarios)]
    results = journeys.run_all(cases, validation.SAMPLE_CONTEXT["trigger"]["properties"])
    by_file: dict[str, list[journeys.Outcome]] = {}
    for outcome in results:
        by_file.setdefault(outcome.case.file, []).append(outcome)
    return by_file


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_the_journeys_of_a_scenario_pass(path: Path, outcomes: dict[str, list[journeys.Outcome]]) -> None:
    failures = ["\n".join(o.problems) for o in outcomes[path.name] if not o.passed]
    assert not failures, "\n\n".join(failures)
