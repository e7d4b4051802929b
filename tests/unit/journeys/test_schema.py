"""scenarios/schema.json: what editors use to complete and check scenarios, kept in step with the loader."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra import build
from shared.events import CATALOGUE
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "scenarios" / "schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SCENARIOS = build.scenario_files() + build.scenario_files(ROOT / "tests/fixtures/scenarios")


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_knows_the_event_catalogue() -> None:
    assert SCHEMA["$defs"]["event"]["enum"] == list(CATALOGUE)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_scenario_the_loader_accepts_matches_the_schema(path: Path) -> None:
    errors = [error.message for error in VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    "change",
    [
        ("name: Welcome series", "name: Welcome series\ncolour: blue"),
        ("name: Welcome series", "name: Welcome series\nsoft_opt_in: yes-please"),
        ("  - wait: 2d", "  - wait: two days"),
        ("    send_email: welcome/2-value", "    send_email: welcome/2-value\n    wait: 1d"),
        ("  event: contact.subscribed", "  event: order.teleported"),
        ("  consent: email", "  consent: sometimes"),
        ("    send_email: welcome/2-value", "    notify_crm: Qualified Lead"),
        ("    send_email: welcome/2-value", "    send_sms: welcome/2-value\n    wait: 1d"),
        ("  consent: email", "  consent: email\n  cap: 0"),
        ("  - wait: 2d", "  - id: x\n    if: {age: {over: 18}}\n    then: [{exit: true}]\n  - wait: 2d"),
        ("  - wait: 2d", "  - id: x\n    if: {opened: E1}\n    then: [{exit: true}]\n  - wait: 2d"),
        (
            "  - wait: 2d",
            "  - id: x\n    if: {event: page.viewed, where: {path: {contains: 5}}, at_least: 1, within: 1d}\n"
            "    then: [{exit: true}]\n  - wait: 2d",
        ),
    ],
)
def test_mistakes_the_loader_refuses_are_flagged_by_the_schema_too(change: tuple[str, str]) -> None:
    text = (ROOT / "scenarios" / "welcome.yaml").read_text()
    assert change[0] in text
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text.replace(*change)))) != []


def test_age_clicks_visits_and_a_cap_match_the_schema() -> None:
    text = (ROOT / "scenarios" / "welcome.yaml").read_text()
    text = text.replace("  consent: email", "  consent: email\n  cap: 1000").replace(
        "  - wait: 2d",
        "  - id: x\n    if:\n      any:\n        - age: {gte: 18}\n        - clicked: e1-welcome\n"
        "        - {event: page.viewed, where: {path: {contains: /pricing}}, at_least: 1, within: 30d}\n"
        "    then: [{exit: true}]\n  - wait: 2d",
    )
    assert [error.message for error in VALIDATOR.iter_errors(yaml.safe_load(text))] == []


@pytest.mark.parametrize(
    ("scenario", "change"),
    [
        ("birthday", ('  time: "10:00"\n', "")),  # a date trigger needs its time
        ("birthday", ("  date: birthday\n", "  date: birthday\n  inactive: 90d\n")),
        ("birthday", ("  date: birthday\n", "  date: birthday\n  offset: a week\n")),
        ("re-engagement", ("  inactive: 90d", "  inactive: 90d\n  time: '10:00'")),
        ("re-engagement", ("unsubscribe: email", "unsubscribe: sms")),
        ("re-engagement", ('      time: "10:00"\n', '      time: "10:00"\n      offset: -7d\n')),
        ("re-engagement", ("event: [email.opened, email.clicked]", "event: [email.opened, email.teleported]")),
    ],
)
def test_mistakes_in_dates_and_inactivity_are_flagged_by_the_schema(scenario: str, change: tuple[str, str]) -> None:
    text = (ROOT / "scenarios" / f"{scenario}.yaml").read_text()
    assert change[0] in text
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text.replace(*change)))) != []


def test_date_waits_are_described_by_the_schema() -> None:
    step = {"id": "w", "wait_until": {"date": "renewal_date", "offset": "-7d", "time": "10:00"}}
    yearly = {"id": "w", "wait_until": {"anniversary": "birthday", "time": "10:00"}}
    both = {"id": "w", "wait_until": {"anniversary": "birthday", "date": "renewal_date", "time": "10:00"}}
    document = {"id": "x", "name": "X", "trigger": {"event": "contact.subscribed"}}
    assert list(VALIDATOR.iter_errors({**document, "steps": [step, {**yearly, "id": "v"}]})) == []
    assert list(VALIDATOR.iter_errors({**document, "steps": [both]})) != []
