"""What each shipped scenario costs in state transitions, counted from its compiled ASL down every path
(infra.cost.paths), and the count checked against an executed history: the welcome series run in moto's Step
Functions interpreter enters exactly the states its path names, one billed transition each."""

from __future__ import annotations

import pytest

from infra import build
from infra.cost import measure, paths

# Per shipped scenario, the transitions of each path, in the ASL's order: a send that goes costs its Task only, a
# Wait its Wait, the last step ends the execution (no Succeed state to pay for)
EXPECTED = {
    "abandoned-cart": [8],
    "birthday": [3],
    "confirm-subscription": [1],
    "lead-nurturing": [2],
    "loyalty": [3, 3],
    "onboarding": [5, 5],
    "post-purchase": [9],
    "promotion-thanks": [6, 6, 6, 6],
    "re-engagement": [7],
    "welcome": [7],
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_each_shipped_scenario_costs_its_transitions_per_path(scenario: str) -> None:
    found = paths.paths(build.compile_all().definition(scenario))
    assert [path.transitions for path in found] == EXPECTED[scenario]


def test_the_welcome_series_costs_one_transition_per_email_and_per_wait_at_its_floor() -> None:
    [path] = paths.paths(build.compile_all().definition("welcome"))
    assert (path.messages, path.waits, path.transitions) == (4, 3, 7)
    assert path.transitions == paths.floor(path)


def test_the_transitions_counted_from_the_asl_are_the_states_an_execution_enters() -> None:
    # Given the welcome series, executed for a consenting contact by moto's interpreter (the act function's handler
    # doing each Task, every email sent)
    executed = measure.execute("welcome")
    assert executed.status == "SUCCEEDED"
    # Then the history entered the states of the path counted from the ASL, no more: 7 billed transitions
    [path] = paths.paths(build.compile_all().definition("welcome"))
    assert executed.entered == list(path.states)
    assert [action for action, _, _ in executed.tasks] == ["send_email"] * 4
