"""Journey files: every mistake named with the file and the case."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra import build, journeys
from shared.journeys.loader import load as load_scenario
from tests.conftest import ROOT

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
    assert case.horizon() == 86400  # a day past the last event and expected send


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("scenario: welcome", "scenario: nope"), "unknown scenario 'nope'"),
        (("event: contact.subscribed", "event: order.teleported"), "each event needs `event`"),
        (("step: e1-welcome", "step: e9-nothing"), "has no send step 'e9-nothing'"),
        (("ends: completed", "ends: happily"), "ends is one of"),
        (("at: 0h, event", "at: soon, event"), "not a duration"),
        (("cases:", "colour: blue\ncases:"), "a journey file has `scenario`, `cases`"),
        (("  - name: subscribes\n", "  - nom: subscribes\n"), "a case has name"),
        (("      ends: completed\n", "      ends: completed\n      colour: blue\n"), "unknown expectation colour"),
        (("    events:\n      - {at: 0h, event: contact.subscribed}\n", "    events: []\n"), "no events"),
        (("consent: granted}", "consent: granted, sms_consent: yes}"), "contact sms_consent is one of granted"),
        (("consent: granted}", "consent: granted, phone: 33612345678}"), "contact phone is a text in E.164"),
        (("contact: {first_name: Camille, consent: granted}", "contact: [Camille]"), "contact is a mapping"),
        (("{step: e1-welcome, at: 0h}", "{step: e1-welcome, on: J+2, time: '10:00'}"), "each expected send is"),
        (("{step: e1-welcome, at: 0h}", "{step: e1-welcome, day: tomorrow, time: '10:00'}"), "write `day: J+2"),
        (("{step: e1-welcome, at: 0h}", "{step: e1-welcome, day: J+2}"), "write `day: J+2"),
        (("      ends: completed\n", "      ends: completed\n      consent: maybe\n"), "consent is one of"),
        (("consent: granted}", "consent: granted, attributes: [birthday]}"), "contact attributes map names"),
        (("step: e1-welcome", "step: [e1-welcome]"), "a list of two or more (one of a split's variants)"),
        (("step: e1-welcome", "step: {a: e1-welcome}"), "a list of two or more (one of a split's variants)"),
        (("step: e1-welcome", "step: [e1-welcome, e9-nothing]"), "has no send step 'e9-nothing'"),
    ],
)
def test_each_mistake_names_the_file_and_the_case(tmp_path: Path, change: tuple[str, str], words: str) -> None:
    with pytest.raises(journeys.JourneyFileError) as error:
        load(tmp_path, GOOD.replace(*change))
    assert words in str(error.value)
    assert str(error.value).startswith("welcome.test.yaml")


def test_a_send_may_be_expected_from_one_of_a_splits_variants(tmp_path: Path) -> None:
    [case] = load(tmp_path, GOOD.replace("step: e1-welcome", "step: [e1-welcome, e2-value]"))
    assert case.sent[0].steps == ("e1-welcome", "e2-value")


def test_every_shipped_journey_file_loads() -> None:
    cases = [c for path in sorted(journeys.TESTS.glob("*.test.yaml")) for c in journeys.load(path, COMPILED.scenarios)]
    assert {case.scenario for case in cases} == set(COMPILED.scenarios)


SMS_SCENARIO = """\
scenario: sms-and-crm
cases:
  - name: gets the SMS
    contact: {first_name: Camille, consent: granted, phone: "+33 6 12 34 56 78", sms_consent: granted}
    events:
      - {at: 0h, event: checkout.started}
    expect:
      sent: [{step: s1-reminder, at: 0h}]
  - name: no SMS without consent
    contact: {first_name: Camille, phone: "+33612345679", sms_consent: none}
    events:
      - {at: 0h, event: checkout.started}
    expect:
      not_sent: [s1-reminder]
"""


def sms_cases(tmp_path: Path, text: str = SMS_SCENARIO) -> list[journeys.Case]:
    fixture = load_scenario(ROOT / "tests/fixtures/scenarios/sms-and-crm.yaml", ROOT / "templates")
    path = tmp_path / "sms-and-crm.test.yaml"
    path.write_text(text)
    return journeys.load(path, {fixture.id: fixture})


def test_sms_steps_are_send_steps_and_a_contact_may_have_a_phone_and_sms_consent(tmp_path: Path) -> None:
    first, second = sms_cases(tmp_path)
    assert first.sent == (journeys.Expected("s1-reminder", 0),)
    assert first.contact["sms_consent"] == "granted"
    assert second.not_sent == ("s1-reminder",)


def test_two_cases_side_by_side_with_the_same_phone_are_refused_before_anything_runs(tmp_path: Path) -> None:
    cases = sms_cases(tmp_path, SMS_SCENARIO.replace("+33612345679", "+33612345678"))  # written otherwise
    with pytest.raises(journeys.JourneyFileError, match=r"case 'no SMS without consent': phone .* is also the phone"):
        journeys.run_all(cases, {})


def test_dates_relative_to_the_start_and_sends_at_a_local_time_on_a_day(tmp_path: Path) -> None:
    text = GOOD.replace("consent: granted}", "consent: granted, attributes: {birthday: J+2, timezone: Asia/Tokyo}}")
    text = text.replace("{step: e1-welcome, at: 0h}", "{step: e1-welcome, day: J+2, time: '10:00'}")
    [case] = load(tmp_path, text)
    assert case.sent == (journeys.Expected("e1-welcome", None, 2, "10:00"),)
    assert case.timezone() == "Asia/Tokyo"
    start = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # already 25 November in Tokyo
    assert journeys.resolve_attributes(case.contact["attributes"], start) == {
        "birthday": "2026-11-27",
        "timezone": "Asia/Tokyo",
    }
    # 27 November 10:00 in Tokyo is 01:00 UTC, 57 hours after the start
    assert case.sent[0].offset(start, start, case.timezone()) == 57 * 3600
    assert case.horizon() >= 3 * 86400
