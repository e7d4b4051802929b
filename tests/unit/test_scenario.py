"""Every kind of invalid scenario gets an error that names file, line and column."""

from pathlib import Path

import pytest

from shared.scenario import ScenarioError, SendEmail, Wait, load
from tests.conftest import ROOT

TEMPLATES = ROOT / "templates"

VALID = """\
id: {name}
name: Test
trigger:
  event: contact.subscribed
steps:
  - id: e1
    send_email: welcome/1-welcome
  - wait: 2d
  - id: e2
    send_email: welcome/2-value
"""


def write(tmp_path: Path, text: str, name: str = "test") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load(write(tmp_path, text), TEMPLATES)
    return caught.value


def test_the_shipped_welcome_scenario_is_the_seeds_series() -> None:
    scenario = load(ROOT / "scenarios" / "welcome.yaml", TEMPLATES)
    sends = [step for step in scenario.steps if isinstance(step, SendEmail)]
    waits = [step.seconds for step in scenario.steps if isinstance(step, Wait)]
    assert [s.id for s in sends] == ["e1-welcome", "e2-value", "e3-social-proof", "e4-offer"]
    assert [sum(waits[:i]) // 86400 for i in range(len(waits) + 1)] == [0, 2, 5, 8]
    assert scenario.trigger_event == "contact.subscribed"
    assert scenario.entry_consent == "email"


def test_a_valid_scenario_loads(tmp_path: Path) -> None:
    scenario = load(write(tmp_path, VALID.format(name="test")), TEMPLATES)
    assert scenario.id == "test"
    assert scenario.category == "marketing"


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        (VALID.format(name="test").replace("name: Test", "name: Test\ncolour: blue"), 3, 9, "unknown key 'colour'"),
        (VALID.format(name="test").replace("name: Test\n", ""), 1, 1, "needs the key 'name'"),
        (VALID.format(name="test").replace("wait: 2d", "wait: two days"), 8, 11, "not a duration"),
        (VALID.format(name="test").replace("wait: 2d", "wait: 0d"), 8, 11, "not a duration"),
        (VALID.format(name="test").replace("id: e2", "id: e1"), 9, 9, "used twice"),
        (VALID.format(name="test").replace("contact.subscribed", "order.teleported"), 4, 10, "unknown event"),
        (VALID.format(name="test").replace("welcome/2-value", "welcome/9-nope"), 10, 17, "no email template"),
        (VALID.format(name="other"), 1, 5, "must match the file name"),
        (VALID.format(name="test").replace("wait: 2d", "wait: 53w"), 8, 11, "a year or more"),
        (VALID.format(name="test").replace("  - wait: 2d", "  - pause: 2d"), 8, 5, "one of: send_email, wait"),
        (
            VALID.format(name="test").replace("    send_email: welcome/2-value", "    send_email: [a, b]"),
            10,
            17,
            "non-empty text",
        ),
        (VALID.format(name="test").replace("id: e1", "id: E 1"), 6, 9, "lower-case"),
        (VALID.format(name="test") + "name: Twice\n", 11, 1, "repeated"),
        ("id: test\nname: [unclosed\n", 3, 1, "not valid YAML"),
        ("", 1, 1, "empty"),
        ("- just\n- a list\n", 1, 1, "must be a mapping"),
        ("id: test\nname: T\ntrigger:\n  event: contact.subscribed\nsteps: []\n", 5, 8, "non-empty list"),
        (VALID.format(name="test").replace("name: Test", "name: Test\ncategory: spam"), 3, 11, "one of marketing"),
    ],
)
def test_each_kind_of_mistake_is_reported_where_it_is(
    tmp_path: Path, text: str, line: int, column: int, words: str
) -> None:
    error = error_for(tmp_path, text)
    assert words in error.message
    assert (error.line, error.column) == (line, column)
    assert str(error).endswith(f"test.yaml:{line}:{column}: {error.message}")
