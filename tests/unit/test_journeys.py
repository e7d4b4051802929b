"""Journey files: every mistake named with the file and the case."""

from pathlib import Path

import pytest

from infra import build, journeys

COMPILED = build.compile_all()
GOOD = """\
scenario: welcome
cases:
  - name: subscribes
    contact: {first_name: Camille, consent: granted}
    events:
      - {at: 0h, event: contact.subscribed}
    expect:
      sent: [{step: e1-welcome, at: 0h}]
      ends: completed
"""


def load(tmp_path: Path, text: str) -> list[journeys.Case]:
    path = tmp_path / "welcome.test.yaml"
    path.write_text(text)
    return journeys.load(path, COMPILED.scenarios)


def test_a_journey_file_loads_with_times_in_seconds(tmp_path: Path) -> None:
    [case] = load(tmp_path, GOOD)
    assert case.events == ((0, "contact.subscribed", None),)
    assert case.sent == (journeys.Expected("e1-welcome", 0),)
    assert case.time_scale == journeys.DEFAULT_SCALE
    assert case.horizon() >= 86400


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("scenario: welcome", "scenario: nope"), "unknown scenario 'nope'"),
        (("event: contact.subscribed", "event: order.teleported"), "each event needs `event`"),
        (("step: e1-welcome", "step: e9-nothing"), "has no send step 'e9-nothing'"),
        (("ends: completed", "ends: happily"), "ends is one of"),
        (("at: 0h, event", "at: soon, event"), "not a duration"),
        (("cases:", "time_scale: fast\ncases:"), "time_scale is a positive number"),
        (("  - name: subscribes\n", "  - nom: subscribes\n"), "a case has name"),
        (("      ends: completed\n", "      ends: completed\n      colour: blue\n"), "unknown expectation colour"),
        (("    events:\n      - {at: 0h, event: contact.subscribed}\n", "    events: []\n"), "no events"),
    ],
)
def test_each_mistake_names_the_file_and_the_case(tmp_path: Path, change: tuple[str, str], words: str) -> None:
    with pytest.raises(journeys.JourneyFileError) as error:
        load(tmp_path, GOOD.replace(*change))
    assert words in str(error.value)
    assert str(error.value).startswith("welcome.test.yaml")


def test_every_shipped_journey_file_loads() -> None:
    cases = [c for path in sorted(journeys.TESTS.glob("*.test.yaml")) for c in journeys.load(path, COMPILED.scenarios)]
    assert {case.scenario for case in cases} == set(COMPILED.scenarios)
