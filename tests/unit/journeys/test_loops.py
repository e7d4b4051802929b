"""Scenarios that would trigger each other without end are refused at compile time, naming the cycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.build import TEMPLATES, compile_all
from shared.journeys.scenario import ScenarioError


def scenario(folder: Path, name: str, trigger: str, re_entry: str, steps: str) -> None:
    (folder / f"{name}.yaml").write_text(
        f"id: {name}\nname: {name}\ncategory: transactional\ntrigger:\n{trigger}\n"
        f"entry:\n  re_entry: {re_entry}\nsteps:\n{steps}\n",
        encoding="utf-8",
    )


def refused(folder: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as raised:
        compile_all(folder, TEMPLATES)
    return raised.value


SCORE_TRIGGER = "  event: score.changed"
ADDS_POINTS = "  - id: s1\n    add_score: 5"


def test_a_score_trigger_that_adds_score_and_comes_back_at_once_is_a_loop(tmp_path: Path) -> None:
    scenario(tmp_path, "a", SCORE_TRIGGER, "always", ADDS_POINTS)
    error = refused(tmp_path)
    assert error.path.endswith("a.yaml")
    assert (error.line, error.column) == (9, 5)  # the add_score step
    assert "scenario a triggers itself without end: a adds +5 points (step s1), which starts a again" in str(error)
    assert "re_entry: always" in error.message


@pytest.mark.parametrize("re_entry", ["never", "after 1d", "after 7d"])
def test_entering_once_or_once_a_day_at_most_breaks_the_cycle(tmp_path: Path, re_entry: str) -> None:
    scenario(tmp_path, "a", SCORE_TRIGGER, re_entry, ADDS_POINTS)
    compile_all(tmp_path, TEMPLATES)


def test_coming_back_within_the_hour_is_at_once(tmp_path: Path) -> None:
    scenario(tmp_path, "a", SCORE_TRIGGER, "after 1h", ADDS_POINTS)
    assert "re_entry: after 3600s" in refused(tmp_path).message


def test_two_scenarios_adding_and_removing_each_others_list_are_a_loop(tmp_path: Path) -> None:
    scenario(
        tmp_path, "a", "  event: list.joined\n  where: {list: x}", "always", "  - id: out\n    remove_from_list: x"
    )
    scenario(tmp_path, "b", "  event: list.left\n  where: {list: x}", "always", "  - id: back\n    add_to_list: x")
    error = refused(tmp_path)
    assert error.path.endswith("a.yaml")
    assert error.message.startswith(
        "scenarios a -> b -> a trigger each other without end: a removes from list x (step out), which starts b; "
        "b adds to list x (step back), which starts a again"
    )


def test_a_where_that_the_emitted_event_cannot_match_breaks_the_cycle(tmp_path: Path) -> None:
    scenario(
        tmp_path, "a", "  event: list.joined\n  where: {list: x}", "always", "  - id: out\n    remove_from_list: x"
    )
    scenario(tmp_path, "b", "  event: list.left\n  where: {list: y}", "always", "  - id: back\n    add_to_list: x")
    (tmp_path / "declarations.yaml").write_text("lists:\n  y: filled by the shop\n", encoding="utf-8")
    compile_all(tmp_path, TEMPLATES)
    # ... and so does a step's reason: a score trigger on another rule's changes
    scenario(tmp_path, "c", "  event: score.changed\n  where: {reason: demo-requested}", "always", ADDS_POINTS)
    compile_all(tmp_path, TEMPLATES)


def test_a_scenario_on_opens_that_sends_an_email_is_a_loop_mail_scanners_keep_going(tmp_path: Path) -> None:
    send = "  - id: e1\n    send_email: welcome/1-welcome"
    scenario(tmp_path, "a", "  event: email.opened", "always", send)
    assert "a sends an email (step e1), which SES reports as email.opened, which starts a again" in str(
        refused(tmp_path)
    )


def test_a_loop_through_a_scoring_rule_is_named_with_the_rule(tmp_path: Path) -> None:
    (tmp_path / "scoring.yaml").write_text(
        "rules:\n  - {id: email-clicked, event: email.clicked, points: 5}\n", encoding="utf-8"
    )
    send = "  - id: e1\n    send_email: welcome/1-welcome"
    scenario(tmp_path, "a", "  event: score.changed\n  where: {reason: email-clicked}", "always", send)
    assert (
        "a sends an email (step e1), which SES reports as email.clicked, which scoring rule email-clicked scores +5, "
        "which starts a again" in str(refused(tmp_path))
    )


def test_a_loop_through_a_dynamic_list_is_named_with_the_list(tmp_path: Path) -> None:
    (tmp_path / "lists.yaml").write_text(
        "lists:\n  hot:\n    description: ten points or more\n    if: {attribute: score, gte: 10}\n", encoding="utf-8"
    )
    scenario(tmp_path, "a", "  event: list.left\n  where: {list: hot}", "always", ADDS_POINTS)
    assert (
        "a adds +5 points (step s1), which may move the contact in or out of dynamic list hot, which starts a again"
        in str(refused(tmp_path))
    )


def test_a_chain_that_ends_is_no_loop(tmp_path: Path) -> None:
    # a adds to x, b (on x) adds to y, c (on y) sends an email: nothing comes back to a
    scenario(tmp_path, "a", SCORE_TRIGGER, "always", "  - id: s1\n    add_to_list: x")
    scenario(tmp_path, "b", "  event: list.joined\n  where: {list: x}", "always", "  - id: s1\n    add_to_list: y")
    scenario(
        tmp_path,
        "c",
        "  event: list.joined\n  where: {list: y}",
        "always",
        "  - id: e1\n    send_email: welcome/1-welcome",
    )
    compile_all(tmp_path, TEMPLATES)


def test_the_shipped_scenarios_have_no_loop() -> None:
    compile_all()
