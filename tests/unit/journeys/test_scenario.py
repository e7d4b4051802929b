"""Every kind of invalid scenario gets an error that names file, line and column."""

import json
from pathlib import Path

import pytest

from shared.journeys.compiler import catalogue_entry
from shared.journeys.loader import load
from shared.journeys.scenario import (
    Choose,
    DateTrigger,
    Exit,
    If,
    ListChange,
    NotifyCrm,
    ScenarioError,
    SendEmail,
    SendSms,
    SetAttribute,
    Split,
    Unsubscribe,
    Wait,
    WaitUntilDate,
)
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
    assert scenario.topic == "newsletter"  # the default topic of a marketing scenario


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
        (VALID.format(name="test").replace("name: Test", "name: Test\ntopic: deals"), 3, 8, "one of newsletter"),
        (
            VALID.format(name="test").replace("name: Test", "name: Test\ncategory: transactional\ntopic: tips"),
            4,
            8,
            "a transactional scenario has no topic",
        ),
        (
            VALID.format(name="test").replace("name: Test", "name: Test\nsoft_opt_in: yes-please"),
            3,
            14,
            "true or false",
        ),
        (
            VALID.format(name="test").replace("name: Test", "name: Test\ncategory: transactional\nsoft_opt_in: true"),
            4,
            14,
            "soft_opt_in is for marketing scenarios",
        ),
        (
            VALID.format(name="test").replace("name: Test", "name: Test\nwhen_capped: later"),
            3,
            14,
            "one of defer, skip",
        ),
        (
            VALID.format(name="test").replace("name: Test", "name: Test\ncategory: transactional\nwhen_capped: skip"),
            4,
            14,
            "a transactional scenario is never capped",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: {code: BIEN VENUE}"
            ),
            11,
            22,
            "discount code 'BIEN VENUE': letters, digits, _ and -",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value",
                "    send_email: welcome/2-value\n    discount: {code: " + "A" * 65 + "}",
            ),
            11,
            22,
            "at most 64",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: {code: X1, pool: y}"
            ),
            11,
            15,
            "discount is `{code: BIENVENUE10}`",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: {}"
            ),
            11,
            15,
            "discount is `{code: BIENVENUE10}`",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: {pool: Welcome 10}"
            ),
            11,
            22,
            "discount pool 'Welcome 10': lower-case",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: {amount: 10}"
            ),
            11,
            24,
            "unknown key 'amount' in discount",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: BIENVENUE10"
            ),
            11,
            15,
            "discount must be a mapping",
        ),
        (
            VALID.format(name="test").replace(
                "    send_email: welcome/2-value", "    send_sms: abandoned-cart/1-reminder\n    discount: {code: X1}"
            ),
            11,
            15,
            "unknown key 'discount' in a send_sms step",
        ),
    ],
)
def test_each_kind_of_mistake_is_reported_where_it_is(
    tmp_path: Path, text: str, line: int, column: int, words: str
) -> None:
    error = error_for(tmp_path, text)
    assert words in error.message
    assert (error.line, error.column) == (line, column)
    assert str(error).endswith(f"test.yaml:{line}:{column}: {error.message}")


FIXTURES = ROOT / "tests" / "fixtures" / "scenarios"


def test_branches_actions_and_exit_load_from_yaml() -> None:
    scenario = load(FIXTURES / "branching.yaml", TEMPLATES)
    profile = scenario.steps[0]
    assert isinstance(profile, If)
    assert profile.condition == {
        "all": [{"attribute": "first_name", "exists": True}, {"attribute": "last_name", "exists": True}]
    }
    assert isinstance(profile.otherwise[-1], Exit)
    split = scenario.steps[2]
    assert isinstance(split, Split)
    assert [(v.name, v.percent) for v in split.variants] == [("a", 30), ("b", 70)]
    assert scenario.steps[3] == SetAttribute(id="mark", name="onboarded", value=True)
    assert scenario.steps[4] == ListChange(id="loyal", list="clients-fideles", add=True)


BRANCHY = """\
id: test
name: Test
trigger:
  event: contact.subscribed
steps:
{steps}"""


@pytest.mark.parametrize(
    ("steps", "line", "words"),
    [
        ("  - id: x\n    if: {consent: email}\n", 6, "needs the key 'then'"),
        ("  - id: x\n    if: {colour: blue}\n    then: [{exit: true}]\n", 7, "unknown condition with keys colour"),
        ("  - id: x\n    if: {attribute: first_name}\n    then: [{exit: true}]\n", 7, "exactly one of exists"),
        ("  - id: x\n    if: {all: []}\n    then: [{exit: true}]\n", 7, "non-empty list of conditions"),
        ("  - id: x\n    if: {consent: sms}\n    then: [{exit: true}]\n", 7, "or 'unconfirmed'"),
        (
            "  - id: x\n    split:\n      a: {percent: 50, steps: [{exit: true}]}\n"
            "      b: {percent: 40, steps: [{exit: true}]}\n",
            8,
            "add up to 90, not 100",
        ),
        ("  - id: x\n    split:\n      a: {percent: 100, steps: [{exit: true}]}\n", 8, "two or more variant"),
        (
            "  - id: x\n    split:\n      a: {percent: 50%, steps: [{exit: true}]}\n"
            "      b: {percent: 50, steps: [{exit: true}]}\n",
            8,
            "whole number",
        ),
        ("  - exit: true\n  - wait: 1d\n", 7, "can never run"),
        ("  - exit: false\n", 6, "exit: true"),
        ("  - id: x\n    set_attribute: {name: email, value: a}\n", 7, "not a profile field"),
        ("  - id: x\n    add_to_list: Clients Fidèles\n", 7, "list name"),
        ("  - id: x\n    send_email: welcome/1-welcome\n    wait: 1d\n", 6, "one of: send_email, wait"),
        ("  - id: x\n    if: {consent: email}\n    then:\n      - wait: 200d\n  - wait: 200d\n", 10, "a year or more"),
        ("  - id: x\n    wait_for: {event: order.placed, timeout: 1d}\n", 6, "on_event, on_timeout or both"),
        ("  - id: x\n    wait_until: {time: 10:00}\n", 7, "in quotes"),
        (
            "  - id: x\n    if: {event: order.placed, at_least: 2, within: soon}\n    then: [{exit: true}]\n",
            7,
            "not a duration",
        ),
        (
            "  - id: x\n    if: {event: order.shipped, at_least: 2, within: 30d}\n    then: [{exit: true}]\n",
            7,
            "unknown event",
        ),
        (
            "  - id: x\n    if: {event: order.placed, at_least: 2}\n    then: [{exit: true}]\n",
            7,
            "a behaviour condition is",
        ),
        ("  - id: x\n    add_score: 0\n", 7, "whole number of points"),
        ("  - id: x\n    wait_until: {time: '25:00'}\n", 7, "not a time of day"),
        ("  - id: x\n    wait_until: {time: '10:00', weekdays: [monday]}\n", 7, "weekdays is a list of mon"),
        (
            "  - id: x\n    wait_for: {event: order.shipped, timeout: 1d}\n    on_event: [{exit: true}]\n",
            7,
            "unknown event",
        ),
        (
            "  - id: x\n    wait_for: {event: order.placed, timeout: soon}\n    on_event: [{exit: true}]\n",
            7,
            "not a duration",
        ),
        (
            "  - id: x\n    wait_for: {event: order.placed}\n    on_event: [{exit: true}]\n",
            7,
            "needs the key 'timeout'",
        ),
        (
            "  - id: x\n    if: {consent: email}\n    then:\n      - id: x\n        send_email: welcome/1-welcome\n",
            9,
            "used twice",
        ),
        ("  - id: x\n    send_sms: abandoned-cart/9-nope\n", 7, "no SMS template 'abandoned-cart/9-nope'"),
        ("  - id: x\n    send_sms: welcome/1-welcome\n", 7, "expected templates/sms/welcome/1-welcome.<locale>.txt"),
        ("  - id: x\n    send_sms: [a]\n", 7, "send_sms must be a non-empty text"),
        ("  - id: x\n    notify_crm: Qualified Lead\n", 7, "notify_crm takes the notification type"),
        ("  - id: x\n    notify_crm: {type: qualified}\n", 7, "notify_crm takes the notification type"),
        ("  - id: x\n    notify_crm: 5\n", 7, "notify_crm takes the notification type"),
        ("  - notify_crm: qualified\n", 6, "needs the key 'id'"),
        ("  - id: x\n    notify_crm: qualified\n    url: https://crm.example\n", 8, "unknown key 'url'"),
        ("  - id: x\n    if: {age: {over: 18}}\n    then: [{exit: true}]\n", 7, "age takes exactly one of equals"),
        ("  - id: x\n    if: {age: {gte: adult}}\n    then: [{exit: true}]\n", 7, "whole number of years"),
        (
            "  - id: x\n    if: {event: page.viewed, where: {path: {contains: 5}}, at_least: 1, within: 30d}\n"
            "    then: [{exit: true}]\n",
            7,
            "contains looks for a text (case sensitive), not 5",
        ),
        ("  - id: x\n    if: {opened: E1}\n    then: [{exit: true}]\n", 7, "opened names a send step"),
        ("  - id: x\n    if: {opened: e9}\n    then: [{exit: true}]\n", 7, "opened: no step 'e9' in this scenario"),
        (
            "  - id: x\n    if: {clicked: x}\n    then: [{exit: true}]\n",
            7,
            "clicked: step 'x' is a if step; only what a send_email step sent is clicked",
        ),
    ],
)
def test_each_kind_of_mistake_in_branches_and_actions_is_reported(
    tmp_path: Path, steps: str, line: int, words: str
) -> None:
    error = error_for(tmp_path, BRANCHY.format(steps=steps))
    assert words in error.message
    assert error.line == line


def test_sms_and_crm_steps_load_with_their_column(tmp_path: Path) -> None:
    steps = "  - id: s1-reminder\n    send_sms: abandoned-cart/1-reminder\n"
    text = BRANCHY.format(steps=steps + "  - id: handoff\n    notify_crm: qualified\n")
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert scenario.steps == (
        SendSms(id="s1-reminder", template="abandoned-cart/1-reminder"),
        NotifyCrm(id="handoff", type="qualified"),
    )
    error = error_for(tmp_path, text.replace("abandoned-cart/1-reminder", "abandoned-cart/2-nope"))
    assert (error.line, error.column) == (7, 15)
    assert str(error).endswith("test.yaml:7:15: " + error.message)
    error = error_for(tmp_path, text.replace("notify_crm: qualified", "notify_crm: Qualified!"))
    assert (error.line, error.column) == (9, 17)


@pytest.mark.parametrize(
    ("addition", "line", "words"),
    [
        ("goal:\n  event: order.shipped\n", 12, "unknown event"),
        ("goal:\n  event: contact.subscribed\n", 12, "the goal is the trigger"),
        ("entry:\n  re_entry: sometimes\n", 12, "write never, always, or after"),
        ("entry:\n  re_entry: after soon\n", 12, "write never, always, or after"),
        ("entry:\n  cap: 0\n", 12, "entry.cap is how many contacts may be in the scenario at once"),
        ("entry:\n  cap: lots\n", 12, "a whole number > 0"),
        ("entry:\n  cap: 10.5\n", 12, "a whole number > 0"),
    ],
)
def test_goals_and_re_entry_are_checked(tmp_path: Path, addition: str, line: int, words: str) -> None:
    error = error_for(tmp_path, VALID.format(name="test") + addition)
    assert words in error.message
    assert error.line == line


def test_goal_and_re_entry_are_read(tmp_path: Path) -> None:
    text = VALID.format(name="test") + "goal:\n  event: order.placed\nentry:\n  re_entry: after 7d\n"
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert (scenario.goal_event, scenario.re_entry) == ("order.placed", f"after:{7 * 86400}")


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("{total: {bigger: 50}}", "exactly one of equals"),
        ("{total: {gt: lots}}", "compares with a number"),
        ("[total]", "maps event properties"),
        ("{currency: {in: EUR}}", "takes a list"),
        ("{currency: {contains: 5}}", "contains looks for a text"),
    ],
)
def test_a_trigger_filter_is_checked(tmp_path: Path, where: str, words: str) -> None:
    text = VALID.format(name="test").replace(
        "  event: contact.subscribed\n", f"  event: contact.subscribed\n  where: {where}\n"
    )
    error = error_for(tmp_path, text)
    assert words in error.message
    assert error.line == 5


def test_a_custom_tracking_event_is_a_track_trigger_filtered_by_its_name(tmp_path: Path) -> None:
    text = VALID.format(name="test").replace(
        "  event: contact.subscribed\n", '  event: track\n  where: {event: "Ebook Downloaded"}\n'
    )
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert (scenario.trigger_event, scenario.trigger_where) == ("track", {"event": "Ebook Downloaded"})


READER = """\
id: reader
name: Reader
trigger:
  event: {trigger}
steps:
  - id: check
    if: {condition}
    then:
      - id: e1
        send_email: welcome/1-welcome
"""
WRITER = """\
id: writer
name: Writer
trigger:
  event: order.placed
steps:
  - id: mark
    set_attribute: {name: plan_type, value: pro}
  - id: vip
    add_to_list: vip
"""


def compile_dir(tmp_path: Path, files: dict[str, str]) -> None:
    from infra import build

    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    build.compile_all(tmp_path, TEMPLATES)


@pytest.mark.parametrize(
    ("condition", "trigger", "line", "column", "words"),
    [
        ("{in_list: vjp}", "contact.subscribed", 7, 19, "list 'vjp' is read here but no scenario adds contacts"),
        ("{not_in_list: vjp}", "contact.subscribed", 7, 23, "list 'vjp'"),
        ("{attribute: plan_typ, equals: pro}", "contact.subscribed", 7, 21, "attribute 'plan_typ' is read here"),
        ("{any: [{consent: email}, {in_list: vjp}]}", "contact.subscribed", 7, 44, "list 'vjp'"),
        ("{consent: email}\n  where: {list: vjp}", "list.joined", 5, 17, "list 'vjp'"),
        ("{consent: email}\n  where: {list: {in: [vip, vjp]}}", "list.joined", 5, 28, "list 'vjp'"),
    ],
)
def test_a_list_or_attribute_that_nothing_fills_is_refused_where_it_is_read(
    tmp_path: Path, condition: str, trigger: str, line: int, column: int, words: str
) -> None:
    text = READER.format(condition="{consent: email}", trigger=trigger)
    if "\n" in condition:  # a trigger filter: goes under the trigger, the condition stays simple
        text = text.replace(f"event: {trigger}\n", f"event: {trigger}\n{condition.split(chr(10))[1]}\n")
    else:
        text = text.replace("if: {consent: email}", f"if: {condition}")
    with pytest.raises(ScenarioError) as caught:
        compile_dir(tmp_path, {"reader.yaml": text, "writer.yaml": WRITER})
    assert words in caught.value.message
    assert "declarations.yaml" in caught.value.message
    assert (caught.value.path.endswith("reader.yaml"), caught.value.line, caught.value.column) == (True, line, column)


def test_removing_from_a_list_nothing_fills_is_refused(tmp_path: Path) -> None:
    text = WRITER.replace("add_to_list: vip", "remove_from_list: vjp")
    with pytest.raises(ScenarioError) as caught:
        compile_dir(tmp_path, {"writer.yaml": text})
    assert (caught.value.line, "list 'vjp'" in caught.value.message) == (9, True)


@pytest.mark.parametrize(
    "condition",
    [
        "{in_list: vip}",  # another scenario adds contacts to it
        "{attribute: plan_type, equals: pro}",  # another scenario sets it
        "{in_list: newsletter}",  # declared
        "{attribute: birthday, exists: true}",  # declared
        "{attribute: first_name, exists: true}",  # a profile field
        "{attribute: orders_count, in: [1, 2]}",  # a counter
    ],
)
def test_a_list_or_attribute_filled_somewhere_is_accepted(tmp_path: Path, condition: str) -> None:
    declarations = "lists:\n  newsletter: the monthly newsletter, imported\nattributes:\n  birthday: ISO date\n"
    reader = READER.format(condition=condition, trigger="contact.subscribed")
    compile_dir(tmp_path, {"reader.yaml": reader, "writer.yaml": WRITER, "declarations.yaml": declarations})


@pytest.mark.parametrize(
    ("declarations", "line", "words"),
    [
        ("lists:\n  Nouveautés: new products\n", 2, "'Nouveautés' is not a list name"),
        ("attributes:\n  birthday:\n", 2, "say what 'birthday' holds"),
        ("lists: [vip]\n", 1, "lists must be a mapping"),
        ("segments:\n  vip: x\n", 2, "unknown key 'segments'"),
    ],
)
def test_mistakes_in_the_declarations_are_reported_where_they_are(
    tmp_path: Path, declarations: str, line: int, words: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        compile_dir(tmp_path, {"writer.yaml": WRITER, "declarations.yaml": declarations})
    assert words in caught.value.message
    assert caught.value.path.endswith("declarations.yaml")
    assert caught.value.line == line


OPENS = """\
id: test
name: Test
trigger:
  event: contact.subscribed
steps:
  - id: e1
    send_email: welcome/1-welcome
  - wait: 2d
  - id: read-it
    if:
      any:
        - opened: e1
        - clicked: {ref}
    then:
      - id: e2
        send_email: welcome/2-value
"""


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("e3", "clicked: no step 'e3' in this scenario; send steps: e1, e2"),
        ("read-it", "clicked: step 'read-it' is a if step"),
    ],
)
def test_opened_and_clicked_name_a_send_step_of_the_scenario_where_written(
    tmp_path: Path, ref: str, words: str
) -> None:
    error = error_for(tmp_path, OPENS.format(ref=ref))
    assert words in error.message
    assert (error.line, error.column) == (13, 20)


def test_opened_clicked_age_visits_and_a_cap_load(tmp_path: Path) -> None:
    text = OPENS.format(ref="e2").replace(
        "        - clicked: e2\n",
        "        - clicked: e2\n        - age: {gte: 18}\n"
        "        - {event: page.viewed, where: {path: {contains: /pricing}}, at_least: 1, within: 30d}\n",
    )
    text = text.replace("{path: {contains: /pricing}}", "{path: {contains: /pricing}, opened: {exists: true}}")
    scenario = load(write(tmp_path, text + "entry:\n  cap: 1000\n"), TEMPLATES)
    branch = scenario.steps[2]
    assert isinstance(branch, If)
    assert branch.condition == {
        "any": [
            {"opened": "e1"},
            {"clicked": "e2"},
            {"age": {"gte": 18}},
            {
                "event": "page.viewed",
                "where": {"path": {"contains": "/pricing"}, "opened": {"exists": True}},  # a property, not a step
                "at_least": 1,
                "within": 30 * 86400,
            },
        ]
    }
    assert scenario.entry_cap == 1000
    # age reads the custom attribute birthday: `parcours validate` wants it filled or declared
    assert [(r.kind, r.name, r.writes, r.line) for r in scenario.references] == [("attribute", "birthday", False, 14)]


DATED = """\
id: test
name: Test
trigger:
{trigger}
steps:
  - id: e1
    send_email: welcome/1-welcome
"""


def test_a_date_trigger_loads_with_its_local_time_and_yearly_re_entry(tmp_path: Path) -> None:
    text = DATED.format(trigger='  date: birthday\n  time: "10:00"\n  offset: -7d')
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert scenario.trigger_event == "date.reached"
    assert scenario.trigger_date == DateTrigger("birthday", "10:00", -7)
    assert scenario.trigger_where == {"attribute": "birthday", "offset_days": -7, "time": "10:00"}
    assert scenario.re_entry == "always"


def test_an_inactivity_trigger_loads_in_days(tmp_path: Path) -> None:
    scenario = load(write(tmp_path, DATED.format(trigger="  inactive: 13w")), TEMPLATES)
    assert (scenario.trigger_event, scenario.inactive_days, scenario.re_entry) == ("contact.inactive", 91, "always")
    assert scenario.trigger_where == {"days": 91}


def test_date_waits_unsubscribe_and_a_goal_of_several_events_load(tmp_path: Path) -> None:
    steps = (
        '  - id: w1\n    wait_until: {date: renewal_date, offset: -7d, time: "10:00"}\n'
        '  - id: w2\n    wait_until: {anniversary: created_at, time: "09:30"}\n'
        "  - id: bye\n    unsubscribe: email\n"
    )
    text = BRANCHY.format(steps=steps) + "goal:\n  event: [email.opened, email.clicked]\n"
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert scenario.steps == (
        WaitUntilDate("w1", "renewal_date", False, -7, "10:00"),
        WaitUntilDate("w2", "created_at", True, 0, "09:30"),
        Unsubscribe("bye", "email"),
    )
    assert scenario.goal_events == ("email.opened", "email.clicked")
    assert scenario.goal_event == "email.opened"


@pytest.mark.parametrize(
    ("trigger", "line", "column", "words"),
    [
        ("  date: birthday", 4, 3, "a date trigger needs `time`"),
        ('  date: birthday\n  time: "25:00"', 5, 9, "not a time of day"),
        ("  date: birthday\n  time: 10:00", 5, 9, "in quotes"),
        ('  date: first_name\n  time: "10:00"', 4, 9, "name a custom attribute holding a date"),
        ('  date: Birth Day\n  time: "10:00"', 4, 9, "name a custom attribute holding a date"),
        ('  date: birthday\n  time: "10:00"\n  offset: a week before', 6, 11, "not a number of days"),
        ('  date: birthday\n  time: "10:00"\n  offset: -3h', 6, 11, "not a number of days"),
        ('  date: birthday\n  time: "10:00"\n  offset: 400d', 6, 11, "under a year"),
        ('  date: birthday\n  time: "10:00"\n  inactive: 90d', 4, 3, "a trigger is one of"),
        ('  event: contact.subscribed\n  time: "10:00"', 5, 9, "goes with a date trigger"),
        ("  inactive: 90d\n  where: {days: 90}", 5, 10, "filters an event trigger"),
        ("  inactive: soon", 4, 13, "write a number of days or weeks"),
        ("  inactive: 36h", 4, 13, "write a number of days or weeks"),
        ("  inactive: 0d", 4, 13, "write a number of days or weeks"),
        ("  event: date.reached", 4, 10, "comes from the daily schedule"),
        ("  event: contact.inactive", 4, 10, "comes from the daily schedule"),
        ("  {}", 4, 3, "a trigger is one of"),
    ],
)
def test_each_kind_of_mistake_in_a_date_or_inactivity_trigger_is_reported(
    tmp_path: Path, trigger: str, line: int, column: int, words: str
) -> None:
    error = error_for(tmp_path, DATED.format(trigger=trigger))
    assert words in error.message
    assert (error.line, error.column) == (line, column)


@pytest.mark.parametrize(
    ("steps", "line", "words"),
    [
        ('  - id: x\n    wait_until: {date: renewal_date, anniversary: birthday, time: "10:00"}\n', 7, "not both"),
        ('  - id: x\n    wait_until: {date: renewal_date, weekdays: [mon], time: "10:00"}\n', 7, "weekdays do not go"),
        ('  - id: x\n    wait_until: {date: email, time: "10:00"}\n', 7, "name a custom attribute holding a date"),
        ('  - id: x\n    wait_until: {date: renewal_date, offset: soon, time: "10:00"}\n', 7, "not a number of days"),
        ('  - id: x\n    wait_until: {offset: -7d, time: "10:00"}\n', 7, "offset goes with `date` or `anniversary`"),
        ("  - id: x\n    wait_until: {anniversary: birthday}\n", 7, "needs the key 'time'"),
        ("  - id: x\n    wait_until: {anniversary: birthday, time: 10:00}\n", 7, "in quotes"),
        ("  - id: x\n    unsubscribe: sms\n", 7, "unsubscribe must be one of email"),
        ("  - id: x\n    unsubscribe: email\n    channel: email\n", 8, "unknown key 'channel'"),
        ("  - unsubscribe: email\n", 6, "needs the key 'id'"),
    ],
)
def test_each_kind_of_mistake_in_date_waits_and_unsubscribe_is_reported(
    tmp_path: Path, steps: str, line: int, words: str
) -> None:
    error = error_for(tmp_path, BRANCHY.format(steps=steps))
    assert words in error.message
    assert error.line == line


@pytest.mark.parametrize(
    ("goal", "words"),
    [
        ("goal:\n  event: []\n", "a list of events"),
        ("goal:\n  event: [email.opened, order.shipped]\n", "unknown event 'order.shipped'"),
        ("goal:\n  event: [email.opened, contact.subscribed]\n", "the goal is the trigger"),
    ],
)
def test_a_goal_of_several_events_is_checked(tmp_path: Path, goal: str, words: str) -> None:
    error = error_for(tmp_path, VALID.format(name="test") + goal)
    assert words in error.message
    assert error.line == 12


@pytest.mark.parametrize(
    ("trigger", "steps", "line", "column"),
    [
        ('  date: wedding_day\n  time: "10:00"', "  - id: e1\n    send_email: welcome/1-welcome\n", 4, 9),
        (
            "  event: contact.subscribed",
            '  - id: w\n    wait_until: {anniversary: wedding_day, time: "10:00"}\n',
            7,
            31,
        ),
    ],
)
def test_a_date_read_by_a_trigger_or_a_wait_must_be_filled_or_declared(
    tmp_path: Path, trigger: str, steps: str, line: int, column: int
) -> None:
    text = f"id: dated\nname: Dated\ntrigger:\n{trigger}\nsteps:\n{steps}"
    with pytest.raises(ScenarioError) as caught:
        compile_dir(tmp_path, {"dated.yaml": text})
    assert "attribute 'wedding_day' is read here but no scenario sets it" in caught.value.message
    assert (caught.value.line, caught.value.column) == (line, column)
    # created_at is every contact's: never a missing reference
    compile_dir(tmp_path, {"dated.yaml": text.replace("wedding_day", "created_at")})


def test_an_entry_condition_is_read_and_goes_to_the_catalogue(tmp_path: Path) -> None:
    text = VALID.format(name="test") + "entry:\n  if: {event: order.placed, at_most: 0, within: 180d}\n"
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert scenario.entry_condition == {"event": "order.placed", "at_most": 0, "within": 180 * 86400}
    assert catalogue_entry(scenario)["entry"]["if"] == scenario.entry_condition


@pytest.mark.parametrize(
    ("entry_if", "line", "words"),
    [
        ("{colour: blue}", 12, "entry.if: unknown condition with keys colour"),
        ("{event: order.shipped, at_least: 1, within: 30d}", 12, "unknown event"),
        ("{event: order.placed, at_least: 1, within: soon}", 12, "not a duration"),
        ("{opened: e1}", 12, "there is none here"),
    ],
)
def test_a_wrong_entry_condition_is_reported_where_it_is(tmp_path: Path, entry_if: str, line: int, words: str) -> None:
    error = error_for(tmp_path, VALID.format(name="test") + f"entry:\n  if: {entry_if}\n")
    assert words in error.message
    assert error.line == line


def test_a_list_an_entry_condition_reads_must_be_filled_somewhere(tmp_path: Path) -> None:
    reader = (
        READER.format(condition="{consent: email}", trigger="contact.subscribed") + "entry:\n  if: {in_list: vjp}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        compile_dir(tmp_path, {"reader.yaml": reader, "writer.yaml": WRITER})
    assert "list 'vjp' is read here" in caught.value.message
    assert (caught.value.line, caught.value.column) == (12, 17)


def test_a_choose_step_reads_its_cases_in_order(tmp_path: Path) -> None:
    scenario = load(ROOT / "tests" / "fixtures" / "scenarios" / "choosing.yaml", TEMPLATES)
    segment = scenario.steps[0]
    assert isinstance(segment, Choose)
    assert [case.condition for case in segment.cases] == [
        {"in_list": "vip"},
        {"attribute": "orders_count", "in": [1, 2, 3]},
    ]
    assert [step.id for case in segment.cases for step in case.steps if isinstance(step, SendEmail)] == [
        "e-vip",
        "e-buyer",
    ]
    assert [step.id for step in segment.otherwise if isinstance(step, SendEmail)] == ["e-others"]


@pytest.mark.parametrize(
    ("steps", "line", "words"),
    [
        ("  - id: x\n    choose: {if: {consent: email}}\n", 7, "choose is a list of cases"),
        ("  - id: x\n    choose: []\n", 7, "choose is a list of cases"),
        ("  - id: x\n    choose:\n      - if: {consent: email}\n", 8, "case 1 of choose needs the key 'then'"),
        ("  - id: x\n    choose:\n      - {if: {colour: blue}, then: [{exit: true}]}\n", 8, "choose[0].if: unknown"),
        ("  - id: x\n    choose:\n      - {if: {consent: email}, then: [{exit: true}], when: 1}\n", 8, "unknown key"),
        (
            "  - id: x\n    choose:\n      - {if: {consent: email}, then: [{exit: true}]}\n    otherwise: []\n",
            9,
            "unknown",
        ),
    ],
)
def test_each_kind_of_mistake_in_a_choose_step_is_reported(tmp_path: Path, steps: str, line: int, words: str) -> None:
    error = error_for(tmp_path, BRANCHY.format(steps=steps))
    assert words in error.message
    assert error.line == line


def test_a_goal_can_be_a_condition_with_or_without_events(tmp_path: Path) -> None:
    text = VALID.format(name="test") + "goal:\n  if: {in_list: customers}\n"
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert (scenario.goal_condition, scenario.goal_events) == ({"in_list": "customers"}, ())
    assert catalogue_entry(scenario)["goal"] == {"if": {"in_list": "customers"}}


@pytest.mark.parametrize(
    ("goal", "line", "words"),
    [
        ("goal: {}\n", 11, "a goal is `event: ...`"),
        ("goal:\n  if: {opened: e1}\n", 12, "goal.if: opened and clicked"),
        ("goal:\n  if: {colour: blue}\n", 12, "goal.if: unknown condition"),
    ],
)
def test_a_wrong_goal_is_reported_where_it_is(tmp_path: Path, goal: str, line: int, words: str) -> None:
    error = error_for(tmp_path, VALID.format(name="test") + goal)
    assert words in error.message
    assert error.line == line


def test_a_send_step_carries_its_fixed_code_or_its_pool_into_the_task_payload(tmp_path: Path) -> None:
    from shared.journeys.compiler import compile_scenario
    from shared.journeys.scenario import Discount, SendEmail

    text = VALID.format(name="test").replace(
        "    send_email: welcome/1-welcome", "    send_email: welcome/1-welcome\n    discount: {code: BIENVENUE10}"
    )
    text = text.replace(
        "    send_email: welcome/2-value", "    send_email: welcome/2-value\n    discount: {pool: welcome-10}"
    )
    scenario = load(write(tmp_path, text), TEMPLATES)
    assert scenario.steps[0] == SendEmail("e1", "welcome/1-welcome", Discount(code="BIENVENUE10"))
    assert scenario.steps[2] == SendEmail("e2", "welcome/2-value", Discount(pool="welcome-10"))
    states = compile_scenario(scenario)["States"]
    payloads = [state["Parameters"]["Payload"] for state in states.values() if state["Type"] == "Task"]
    assert [payload["discount"] for payload in payloads] == [{"code": "BIENVENUE10"}, {"pool": "welcome-10"}]


def test_soft_opt_in_is_off_by_default_and_reaches_entry_and_every_send(tmp_path: Path) -> None:
    from shared.journeys.compiler import compile_scenario

    plain = load(write(tmp_path, VALID.format(name="test")), TEMPLATES)
    assert plain.soft_opt_in is False
    assert "soft_opt_in" not in catalogue_entry(plain)["entry"]
    assert "soft_opt_in" not in json.dumps(compile_scenario(plain))
    text = VALID.format(name="test").replace("name: Test", "name: Test\nsoft_opt_in: true")
    soft = load(write(tmp_path, text), TEMPLATES)
    assert catalogue_entry(soft)["entry"]["soft_opt_in"] is True
    sends = [
        state["Parameters"]["Payload"]
        for state in compile_scenario(soft)["States"].values()
        if state.get("Parameters", {}).get("Payload", {}).get("action") == "send_email"
    ]
    assert [payload["soft_opt_in"] for payload in sends] == [True, True]
