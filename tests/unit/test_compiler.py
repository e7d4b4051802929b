from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from infra import build, samtemplate
from shared import compiler
from shared.scenario import Scenario, SendEmail, Wait, load
from tests.conftest import ROOT


def welcome() -> Scenario:
    return load(ROOT / "scenarios" / "welcome.yaml", ROOT / "templates")


def reachable(definition: dict[str, Any]) -> set[str]:
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = definition["States"][name]
        todo += [state["Next"]] if "Next" in state else []
        todo += [catch["Next"] for catch in state.get("Catch", [])]
    return seen


def test_the_welcome_series_compiles_to_readable_states_in_order() -> None:
    definition = compiler.compile_scenario(welcome())
    assert list(definition["States"]) == [
        "Send email e1-welcome",
        "Wait 2d until J+2",
        "Send email e2-value",
        "Wait 3d until J+5",
        "Send email e3-social-proof",
        "Wait 3d until J+8",
        "Send email e4-offer",
        "Done",
        "Step failed",
    ]
    waits = [s["Seconds"] for s in definition["States"].values() if s["Type"] == "Wait"]
    assert waits == [2 * 86400, 3 * 86400, 3 * 86400]


def test_every_task_retries_lambda_and_throttling_errors_and_catches_the_rest() -> None:
    definition = compiler.compile_scenario(welcome())
    for state in definition["States"].values():
        if state["Type"] == "Task":
            retry = state["Retry"][0]
            assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "SendDeferred"} <= set(
                retry["ErrorEquals"]
            )
            assert retry["BackoffRate"] > 1
            assert retry["JitterStrategy"] == "FULL"
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Step failed"}]


def test_a_send_passes_the_execution_id_so_the_send_is_idempotent_on_execution_and_step() -> None:
    payload = compiler.compile_scenario(welcome())["States"]["Send email e1-welcome"]["Parameters"]["Payload"]
    assert payload["execution.$"] == "$$.Execution.Id"
    assert payload["step"] == "e1-welcome"


def test_compiling_twice_gives_the_same_bytes() -> None:
    assert compiler.to_json(compiler.compile_scenario(welcome())) == compiler.to_json(
        compiler.compile_scenario(welcome())
    )


def test_the_compiled_files_in_the_repository_are_not_stale() -> None:
    assert build.stale_files(build.compile_all()) == [], "run `parcours compile` (make compile)"


def test_template_yaml_deploys_every_compiled_scenario_with_the_act_function() -> None:
    compiled = build.compile_all()
    machines = dict(samtemplate.state_machines(samtemplate.load()))
    deployed = {props["DefinitionUri"]: props for props in machines.values()}
    for scenario_id in compiled.scenarios:
        props = deployed.get(f"scenarios/compiled/{scenario_id}.asl.json")
        assert props is not None, f"template.yaml has no state machine for scenario {scenario_id}"
        assert props["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{scenario_id}"}
        assert props["DefinitionSubstitutions"] == {"ActFunctionArn": {"Fn::GetAtt": ["ActFunction", "Arn"]}}
    assert len(deployed) == len(compiled.scenarios)


durations = st.integers(min_value=1, max_value=30).map(lambda days: Wait(seconds=days * 3600, text=f"{days}h"))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    kinds = draw(st.lists(st.one_of(st.none(), durations), min_size=1, max_size=12))
    steps = tuple(
        SendEmail(id=f"s{index}", template="welcome/1-welcome") if kind is None else kind
        for index, kind in enumerate(kinds)
    )
    return Scenario("generated", "Generated", "", "marketing", "contact.subscribed", "email", steps, "generated.yaml")


@given(scenarios())
def test_any_valid_scenario_compiles_to_asl_whose_every_next_exists_and_every_step_is_reachable(
    scenario: Scenario,
) -> None:
    definition = compiler.compile_scenario(scenario)
    states = definition["States"]
    assert definition["StartAt"] in states
    for state in states.values():
        for target in [state.get("Next"), *[c["Next"] for c in state.get("Catch", [])]]:
            assert target is None or target in states
    assert len(states) == len(scenario.steps) + (2 if "Step failed" in states else 1)
    assert reachable(definition) == set(states)
    assert all(len(name) <= 80 for name in states)
