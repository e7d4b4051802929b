from datetime import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from infra import build, graph, samtemplate
from shared.journeys import compiler, pacing
from shared.journeys.loader import load
from shared.journeys.scenario import (
    Case,
    Choose,
    Exit,
    If,
    ListChange,
    NotifyCrm,
    Scenario,
    SendEmail,
    SendSms,
    SetAttribute,
    Split,
    Step,
    Unsubscribe,
    Variant,
    Wait,
    WaitUntilDate,
)
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
        todo += [state[key] for key in ("Next", "Default") if key in state]
        todo += [catch["Next"] for catch in state.get("Catch", [])]
        todo += [choice["Next"] for choice in state.get("Choices", [])]
    return seen


def test_the_welcome_series_compiles_to_readable_states_in_order() -> None:
    definition = compiler.compile_scenario(welcome())
    assert list(definition["States"]) == [
        "Send email e1-welcome",
        "Held back (e1-welcome)",
        "Held back (e1-welcome): seconds",
        "Wait until e1-welcome may go",
        "Wait 2d until J+2",
        "Send email e2-value",
        "Held back (e2-value)",
        "Held back (e2-value): seconds",
        "Wait until e2-value may go",
        "Wait 3d until J+5",
        "Send email e3-social-proof",
        "Held back (e3-social-proof)",
        "Held back (e3-social-proof): seconds",
        "Wait until e3-social-proof may go",
        "Wait 3d until J+8",
        "Send email e4-offer",
        "Held back (e4-offer)",
        "Held back (e4-offer): seconds",
        "Wait until e4-offer may go",
        "Step failed",
    ]
    assert definition["States"]["Send email e4-offer"]["End"] is True  # no Succeed state to pay for
    waits = [s["Seconds"] for s in definition["States"].values() if s["Type"] == "Wait" and "Seconds" in s]
    assert waits == [2 * 86400, 3 * 86400, 3 * 86400]


def test_a_marketing_send_held_back_waits_the_seconds_it_answered_then_sends_again() -> None:
    states = compiler.compile_scenario(welcome())["States"]
    send = states["Send email e2-value"]
    # A send that goes costs its Task only: it leads straight on to the next step
    assert send["Next"] == "Wait 3d until J+5"
    # Held back, the act function raises HeldBack, whose Cause holds the deferred answer as JSON text
    assert send["Catch"][0] == {"ErrorEquals": ["HeldBack"], "ResultPath": "$.held", "Next": "Held back (e2-value)"}
    assert send["Catch"][1]["ErrorEquals"] == ["States.ALL"]
    assert states["Held back (e2-value)"]["Parameters"] == {"cause.$": "States.StringToJson($.held.Cause)"}
    assert states["Held back (e2-value): seconds"]["Parameters"] == {
        "answer.$": "States.StringToJson($.held.cause.errorMessage)"
    }
    assert states["Wait until e2-value may go"] == {
        "Type": "Wait",
        "SecondsPath": "$.held.answer.seconds",
        "Next": "Send email e2-value",
    }


def test_the_sending_habits_ride_in_each_marketing_send_and_never_in_a_transactional_one() -> None:
    # Given a policy with caps on both channels, one for promotions only, and quiet hours for SMS
    policy = pacing.Policy(
        caps=(
            pacing.Cap("email", 2, 86400),
            pacing.Cap("email", 1, 7 * 86400, "promotions"),
            pacing.Cap("sms", 1, 86400),
        ),
        quiet_hours={"sms": pacing.Hours(time(21), time(8))},
    )
    # When the welcome series (topic newsletter) compiles, Then its sends carry the email caps that concern it
    states = compiler.compile_scenario(welcome(), policy)["States"]
    assert states["Send email e1-welcome"]["Parameters"]["Payload"]["pacing"] == {
        "caps": [{"max": 2, "seconds": 86400}],
        "when_capped": "defer",
    }
    # And an SMS step carries the SMS rules, the French hours included
    sms = compiler.compile_scenario(
        load(ROOT / "tests/fixtures/scenarios/sms-and-crm.yaml", ROOT / "templates"), policy
    )
    assert sms["States"]["Send SMS s1-reminder"]["Parameters"]["Payload"]["pacing"] == {
        "caps": [{"max": 1, "seconds": 86400}],
        "when_capped": "defer",
        "quiet_hours": "21:00-08:00",
        "french_hours": "08:00-20:00",
    }
    # And a transactional scenario's send has no rules and no held-back loop
    confirm = compiler.compile_scenario(load(ROOT / "scenarios/confirm-subscription.yaml", ROOT / "templates"), policy)
    sends = [state for state in confirm["States"].values() if state["Type"] == "Task"]
    assert sends
    assert all("pacing" not in state["Parameters"]["Payload"] for state in sends)
    assert not any(state["Type"] == "Choice" for state in confirm["States"].values())


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
            # (a marketing send Catches HeldBack first: its deferral path)
            assert state["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Step failed"}


def test_transient_errors_are_retried_for_about_a_day_with_capped_exponential_backoff() -> None:
    definition = compiler.compile_scenario(welcome())
    retries = [state["Retry"] for state in definition["States"].values() if state["Type"] == "Task"]
    assert retries
    assert all(retry == compiler.RETRY for retry in retries)
    retry: dict[str, Any] = dict(compiler.RETRY[0])
    # SES, SNS (SendDeferred), DynamoDB (StorageBusy), Lambda's own errors and the CRM: and nothing permanent
    assert {"SendDeferred", "StorageBusy", "CrmDeferred", "Lambda.TooManyRequestsException"} <= set(
        retry["ErrorEquals"]
    )
    assert not {"States.ALL", "SendRefused", "StorageError", "CrmRefused", "States.TaskFailed"} & set(
        retry["ErrorEquals"]
    )
    # The intervals Step Functions computes (before its full jitter draws each between 0 and it): 2 s doubling,
    # capped at an hour
    bounds = [
        min(retry["IntervalSeconds"] * retry["BackoffRate"] ** attempt, retry["MaxDelaySeconds"])
        for attempt in range(retry["MaxAttempts"])
    ]
    assert bounds[:3] == [2, 4, 8]
    assert max(bounds) == 3600
    assert sum(bounds[:11]) < 3600 * 1.2  # the first hour and a bit backs off; then once an hour
    assert 23 * 3600 < sum(bounds) / 2 < 25 * 3600  # full jitter: the mean total is half the bounds, a day
    assert retry["JitterStrategy"] == "FULL"


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


def test_an_if_checks_the_contact_now_then_chooses_and_both_branches_join_the_next_step() -> None:
    definition = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/branching.yaml", ROOT / "templates"))
    states = definition["States"]
    assert definition["StartAt"] == "Check profile"
    assert states["Check profile"]["Parameters"]["Payload"]["condition"]["all"][0] == {
        "attribute": "first_name",
        "exists": True,
    }
    assert states["Check profile"]["Next"] == "profile?"
    assert states["profile?"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.last.value", "BooleanEquals": True, "Next": "Send email tips"}],
        "Default": "Send email reminder",
    }
    assert states["Send email tips"]["Next"] == "Wait 1d until J+1"
    assert states["Send email reminder"]["End"] is True  # exit: the Task before it ends the execution


def test_a_split_chooses_on_the_contacts_bucket_by_cumulative_percent_and_tags_the_variant() -> None:
    definition = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/branching.yaml", ROOT / "templates"))
    split = definition["States"]["Split subject-test"]
    assert split["Choices"] == [{"Variable": "$.bucket", "NumericLessThan": 30, "Next": "Send email variant-a"}]
    assert split["Default"] == "Send email variant-b"
    payload = definition["States"]["Send email variant-b"]["Parameters"]["Payload"]
    assert payload["variant"] == "b"


def test_an_if_without_else_goes_straight_on_when_the_condition_fails() -> None:
    definition = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/branching.yaml", ROOT / "templates"))
    assert definition["States"]["vip-check?"]["Default"] == "Done"


durations = st.integers(min_value=1, max_value=30).map(lambda days: Wait(seconds=days * 3600, text=f"{days}h"))
counter = iter(range(10**9))


def _id() -> str:
    return f"s{next(counter)}"


leaf = st.one_of(
    durations,
    st.builds(lambda: SendEmail(id=_id(), template="welcome/1-welcome")),
    st.builds(lambda: SetAttribute(id=_id(), name="plan", value=1)),
    st.builds(lambda add: ListChange(id=_id(), list="vip", add=add), st.booleans()),
    st.builds(lambda: SendSms(id=_id(), template="abandoned-cart/1-reminder")),
    st.builds(lambda: NotifyCrm(id=_id(), type="qualified")),
    st.builds(lambda: Unsubscribe(id=_id(), channel="email")),
    st.builds(lambda yearly: WaitUntilDate(_id(), "birthday", yearly, -7, "10:00"), st.booleans()),
)


def _with_exit(steps: list[Step], exits: bool) -> tuple[Step, ...]:
    return (*steps, Exit()) if exits else tuple(steps)


step_lists: st.SearchStrategy[list[Any]] = st.recursive(
    st.lists(leaf, min_size=1, max_size=4),
    lambda inner: st.lists(
        st.one_of(
            leaf,
            st.builds(
                lambda c, t, e: If(id=_id(), condition={"consent": "email"}, then=tuple(t), otherwise=tuple(e)),
                st.none(),
                inner,
                st.one_of(st.just([]), inner),
            ),
            st.builds(
                lambda cases, e: Choose(
                    id=_id(), cases=tuple(Case({"in_list": "vip"}, tuple(c)) for c in cases), otherwise=tuple(e)
                ),
                st.lists(inner, min_size=1, max_size=3),
                st.one_of(st.just([]), inner),
            ),
            st.builds(
                lambda a, b, p: Split(id=_id(), variants=(Variant("a", p, tuple(a)), Variant("b", 100 - p, tuple(b)))),
                inner,
                inner,
                st.integers(min_value=1, max_value=99),
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    max_leaves=12,
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    steps = _with_exit(list(draw(step_lists)), draw(st.booleans()))
    cap = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)))
    return Scenario(
        "generated", "Generated", "", "marketing", "contact.subscribed", "email", steps, "generated.yaml", entry_cap=cap
    )


@given(scenarios())
def test_any_valid_scenario_compiles_to_asl_whose_every_next_exists_and_every_step_is_reachable(
    scenario: Scenario,
) -> None:
    definition = compiler.compile_scenario(scenario)
    states = definition["States"]
    assert definition["StartAt"] in states
    for state in states.values():
        targets = [state.get("Next"), state.get("Default"), *[c["Next"] for c in state.get("Catch", [])]]
        for target in targets + [c["Next"] for c in state.get("Choices", [])]:
            assert target is None or target in states
    assert reachable(definition) == set(states)
    assert ("Step failed" in states) == any(state["Type"] == "Task" for state in states.values())
    if scenario.entry_cap is not None:  # a capped scenario's every way out, failures included, frees the place
        for name, state in states.items():
            if name not in ("Leave", "Leave after a failure"):
                assert not {"Done", "Step failed"} & set(_targets(state)), name
    assert all(len(name) <= 80 for name in states)


def test_wait_for_holds_a_task_token_with_a_timeout_and_two_ways_out() -> None:
    definition = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/waiting.yaml", ROOT / "templates"))
    state = definition["States"]["Wait for order.placed (order-check)"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert state["TimeoutSeconds"] == 86400
    assert state["Next"] == "Send email thanks"
    assert state["Catch"][0] == {
        "ErrorEquals": ["States.Timeout"],
        "ResultPath": "$.timeout",
        "Next": "Send email nudge",
    }
    assert "States.Timeout" not in state["Retry"][0]["ErrorEquals"]  # a timeout is an answer, not a failure


def test_wait_until_plans_the_seconds_then_waits_on_them() -> None:
    definition = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/timed.yaml", ROOT / "templates"))
    assert definition["StartAt"] == "Plan morning"
    plan = definition["States"]["Plan morning"]
    assert plan["Parameters"]["Payload"]["time"] == "10:00"
    assert plan["Parameters"]["Payload"]["weekdays"] == ["mon", "tue", "wed", "thu", "fri"]
    assert plan["Next"] == "Wait until 10:00 mon,tue,wed,thu,fri (morning)"
    wait = definition["States"][plan["Next"]]
    assert wait == {"Type": "Wait", "SecondsPath": "$.plan.seconds", "Next": "Send email hello"}


def test_an_sms_and_a_crm_notification_are_one_task_each_with_retries() -> None:
    definition = compiler.compile_scenario(load(ROOT / "tests/fixtures/scenarios/sms-and-crm.yaml", ROOT / "templates"))
    states = definition["States"]
    assert [name for name in states if name not in graph.folded(definition)] == [
        "Send SMS s1-reminder",
        "Send email e1-reminder",
        "Notify CRM handoff",
        "Step failed",
    ]
    sms = states["Send SMS s1-reminder"]
    assert sms["Parameters"]["Payload"] == {
        "action": "send_sms",
        "scenario": "sms-and-crm",
        "step": "s1-reminder",
        "contact_id.$": "$.contact_id",
        "execution.$": "$$.Execution.Id",
        "template": "abandoned-cart/1-reminder",
        "category": "marketing",
        "trigger.$": "$.trigger",
        "pacing": {"caps": [], "when_capped": "defer", "french_hours": "08:00-20:00"},
    }
    assert sms["Next"] == "Send email e1-reminder"
    crm = states["Notify CRM handoff"]
    assert crm["Parameters"]["Payload"]["action"] == "notify_crm"
    assert crm["Parameters"]["Payload"]["type"] == "qualified"
    assert crm["Parameters"]["Payload"]["execution.$"] == "$$.Execution.Id"  # the delivery id's half
    assert crm["End"] is True
    for state in (sms, crm):
        assert {"SendDeferred", "CrmDeferred", "Lambda.ServiceException"} <= set(state["Retry"][0]["ErrorEquals"])
        assert state["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Step failed"}


def _targets(state: dict[str, Any]) -> list[str]:
    return [
        *[state[key] for key in ("Next", "Default") if key in state],
        *[choice["Next"] for choice in state.get("Choices", [])],
        *[catch["Next"] for catch in state.get("Catch", [])],
    ]


def test_a_capped_scenario_frees_the_place_on_every_way_out_with_one_more_task() -> None:
    capped = load(ROOT / "tests/fixtures/scenarios/capped.yaml", ROOT / "templates")
    states = compiler.compile_scenario(capped)["States"]
    leave, after_failure = states["Leave"], states["Leave after a failure"]
    for name, state in states.items():
        if name not in ("Leave", "Leave after a failure"):
            assert not {"Done", "Step failed"} & set(_targets(state)), name  # the exit step included
    assert (leave["End"], after_failure["Next"]) == (True, "Step failed")  # the last Task ends the execution
    for state in (leave, after_failure):
        assert state["Parameters"]["Payload"]["action"] == "leave"
        assert state["Parameters"]["Payload"]["execution.$"] == "$$.Execution.Id"
        assert state["ResultPath"] == "$.left"  # keeps $.error for the execution history
        assert [catch["Next"] for catch in state["Catch"]] == ["Step failed"]  # never loops
    assert compiler.catalogue_entry(capped)["entry"]["cap"] == 2
    uncapped = compiler.compile_scenario(welcome())["States"]
    assert "Leave" not in uncapped
    assert "cap" not in compiler.catalogue_entry(welcome())["entry"]


def test_a_date_trigger_starts_by_waiting_for_its_day_then_the_steps_follow() -> None:
    definition = compiler.compile_scenario(load(ROOT / "scenarios/birthday.yaml", ROOT / "templates"))
    assert definition["StartAt"] == "Plan on-the-day"
    plan = definition["States"]["Plan on-the-day"]
    assert plan["Parameters"]["Payload"] == {
        "action": "plan_wait",
        "scenario": "birthday",
        "step": "on-the-day",
        "contact_id.$": "$.contact_id",
        "execution.$": "$$.Execution.Id",
        "time": "10:00",
        "date.$": "$.trigger.properties.date",
    }
    wait = definition["States"][plan["Next"]]
    assert wait == {"Type": "Wait", "SecondsPath": "$.plan.seconds", "Next": "Send email e1-birthday-offer"}
    entry = compiler.catalogue_entry(load(ROOT / "scenarios/birthday.yaml", ROOT / "templates"))
    assert entry["trigger"] == {
        "event": "date.reached",
        "where": {"attribute": "birthday", "offset_days": 0, "time": "10:00"},
    }
    assert entry["entry"]["re_entry"] == "always"


def test_re_engagement_unsubscribes_in_one_task_and_stops_on_an_open_or_a_click() -> None:
    scenario = load(ROOT / "scenarios/re-engagement.yaml", ROOT / "templates")
    states = compiler.compile_scenario(scenario)["States"]
    goodbye = states["Unsubscribe from email (goodbye)"]
    assert goodbye["Parameters"]["Payload"]["action"] == "unsubscribe"
    assert goodbye["Parameters"]["Payload"]["channel"] == "email"
    assert goodbye["End"] is True
    entry = compiler.catalogue_entry(scenario)
    assert entry["goal"] == {"event": "email.opened", "events": ["email.opened", "email.clicked"]}
    assert entry["trigger"] == {"event": "contact.inactive", "where": {"days": 90}}
    # transitions for a silent contact: plan + wait, E1, wait, E2, wait, unsubscribe (which ends it)
    deferrals = [name for name in states if name.endswith("may go") or name.startswith("Held back (")]
    assert len([name for name in states if name not in ("Done", "Step failed", *deferrals)]) == 7


def test_a_date_wait_plans_from_the_attribute_and_refuses_a_moment_past_the_year() -> None:
    scenario = Scenario(
        "renewal",
        "Renewal",
        "",
        "marketing",
        "contact.subscribed",
        "email",
        (WaitUntilDate("before", "renewal_date", False, -7, "10:00"),),
        "renewal.yaml",
    )
    states = compiler.compile_scenario(scenario)["States"]
    payload = states["Plan before"]["Parameters"]["Payload"]
    assert payload["attribute"] == "renewal_date"
    assert (payload["yearly"], payload["offset_days"], payload["time"]) == (False, -7, "10:00")
    assert payload["started.$"] == "$$.Execution.StartTime"
    assert "Wait until 10:00 on renewal_date -7d (before)" in states
