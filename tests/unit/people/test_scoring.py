"""Lead scoring (scenarios/scoring.yaml, shared.people.scoring): points per event with filters and caps, decay, stages
that only move forward, each change emitted once with its reason, even when an event comes twice or two race."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import build
from shared import storage
from shared.clock import Clock
from shared.events import CATALOGUE, ContactFacts, Event
from shared.journeys import processing, schedule
from shared.journeys.policies import load_scoring
from shared.journeys.scenario import ScenarioError
from shared.messages import actions
from shared.people import scoring
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import ContactModel, tables
from tests.conftest import ROOT, drain_events

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday
SHIPPED = ROOT / "scenarios" / "scoring.yaml"


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})
    tables(settings).contacts(contact_id="c1", email="c@example.com", created_at=NOW, updated_at=NOW).save()
    return settings


def queued(settings: Settings) -> list[dict[str, Any]]:
    return drain_events(settings.queue_url)


def contact(settings: Settings) -> ContactModel:
    return tables(settings).contacts.get("c1", consistent_read=True)


def event(event_type: str, event_id: str, **properties: Any) -> Event:
    return Event(
        event_id=event_id,
        type=event_type,
        source="segment" if event_type not in ("contact.inactive",) else "schedule",
        topic="test",
        occurred_at=NOW.isoformat(),
        received_at=NOW.isoformat(),
        contact=ContactFacts(contact_id="c1"),
        properties=properties,
    )


OPEN = ("email.opened", {"scenario": "welcome", "step": "e1-welcome"})
CLICK = ("email.clicked", {"scenario": "welcome", "step": "e1-welcome", "link": "https://boutique.example/"})
PRICING = ("page.viewed", {"path": "/pricing", "url": "https://boutique.example/pricing"})
EBOOK = ("track", {"event": "Ebook Downloaded"})
DEMO = ("form.submitted", {"form": "demo"})


def apply(settings: Settings, kind: tuple[str, dict[str, Any]], event_id: str, at: datetime = NOW) -> ContactModel:
    held = contact(settings)
    scoring.apply(event(kind[0], event_id, **kind[1]), held, settings, at)
    return held


def changes(events: list[dict[str, Any]], kind: str = "score.changed") -> list[dict[str, Any]]:
    return [e["properties"] for e in events if e["type"] == kind]


def set_score(settings: Settings, score: int, stage: str | None = None) -> None:
    held = contact(settings)
    held.score = score
    if stage is not None:
        held.attributes = {"lifecycle_stage": stage}
    held.save()


# ---- the file -------------------------------------------------------------------------------------------------


def test_the_shipped_rules_are_the_seed_s_table() -> None:
    rules = load_scoring(SHIPPED)
    assert {rule.id: rule.points for rule in rules.rules} == {
        "email-opened": 2,
        "email-clicked": 5,
        "pricing-viewed": 15,
        "ebook-downloaded": 10,
        "demo-requested": 25,
        "inactive-30d": -10,
    }
    assert rules.stages == (10, 30, 50)
    assert rules.decay == scoring.Decay(25, tuple(range(60, 361, 30)))
    assert scoring.Config.from_dict(rules.to_dict()) == rules  # what scoring.json carries to the Lambdas
    assert scoring.config() == rules  # the compiled file is current


def test_the_daily_run_reports_the_silences_the_rules_and_decay_act_on() -> None:
    days = schedule.work().inactive_days  # the deployment's: the catalogue and the scoring
    assert days[:3] == (30, 60, 90)  # 90: re-engagement's too
    assert 360 in days
    assert schedule.work([]).inactive_days == ()  # given entries (tests): only theirs


def test_without_a_scoring_file_nothing_scores(tmp_path: Path) -> None:
    assert load_scoring(tmp_path / "scoring.yaml") == scoring.Config()


RULE = "rules:\n  - {id: opened, event: email.opened, points: 2}\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("rules:\n  - {id: x, event: email.teleported, points: 2}\n", 2, "unknown event 'email.teleported'"),
        ("rules:\n  - {id: x, event: score.changed, points: 2}\n", 2, "parcours' own event"),
        ("rules:\n  - {id: x, event: list.joined, points: 2}\n", 2, "parcours' own event"),
        ("rules:\n  - {id: x, event: email.opened, points: 0}\n", 2, "points is a whole number, not 0"),
        ("rules:\n  - {id: x, event: email.opened, points: two}\n", 2, "points is a whole number"),
        ("rules:\n  - {id: x, event: email.opened, points: 2.5}\n", 2, "points is a whole number"),
        ("rules:\n  - {id: x, event: email.opened, points: 5000}\n", 2, "at most 1000"),
        ("rules:\n  - {id: x, event: email.opened}\n", 2, "needs the key 'points'"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, weight: 3}\n", 2, "unknown key 'weight'"),
        ("rules:\n  - {id: X Y, event: email.opened, points: 2}\n", 2, "a rule id is lower-case"),
        ("rules:\n  - {id: decay, event: email.opened, points: 2}\n", 2, "not `decay`"),
        (RULE + "  - {id: opened, event: email.clicked, points: 5}\n", 3, "used twice"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, cap: {times: 0, per: 7d}}\n", 2, "times is how often"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, cap: {times: 3}}\n", 2, "cap needs the key 'per'"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, cap: 3}\n", 2, "cap must be a mapping"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, cap: {times: 3, per: a week}}\n", 2, "per 'a week'"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, cap: {times: 3, per: 30m}}\n", 2, "from 1h to 365d"),
        ("rules:\n  - {id: x, event: email.opened, points: 2, cap: {times: 3, per: 400d}}\n", 2, "from 1h to 365d"),
        ("rules:\n  - {id: x, event: page.viewed, where: {path: {like: x}}, points: 2}\n", 2, "use exactly one of"),
        ("rules:\n  - {id: x, event: contact.inactive, points: -10}\n", 2, "where: {days: 30}"),
        ("rules:\n  - {id: x, event: contact.inactive, where: {days: 30d}, points: -10}\n", 2, "where: {days: 30}"),
        ("rules: {id: x}\n", 1, "rules is a list"),
        (RULE + "decay: {after: 60d}\n", 3, "needs the key 'percent'"),
        (RULE + "decay: {after: 60d, percent: 0}\n", 3, "1 to 100"),
        (RULE + "decay: {after: 12h, percent: 25}\n", 3, "decay.after '12h'"),
        (RULE + "decay: {after: 400d, percent: 25}\n", 3, "at most 365d"),
        (RULE + "decay: {after: 60d, every: 1 month, percent: 25}\n", 3, "decay.every '1 month'"),
        (RULE + "stages: {lead: 10, mql: 60, sql: 50}\n", 3, "the thresholds go up"),
        (RULE + "stages: {lead: 10, mql: 10, sql: 50}\n", 3, "the thresholds go up"),
        (RULE + "stages: {lead: 0, mql: 30, sql: 50}\n", 3, "above 0"),
        (RULE + "stages: {lead: 10, sql: 50}\n", 3, "needs the key 'mql'"),
        (RULE + "stages: {lead: 10, mql: 30, sql: 50, customer: 100}\n", 3, "a contact's first order"),
        (RULE + "thresholds: {}\n", 3, "unknown key 'thresholds'"),
        ("rules:\n  - {id: x, event: email.opened points: 2}\n", 2, "not valid YAML"),
    ],
)
def test_a_mistake_in_scoring_yaml_names_its_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "scoring.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scoring(path)
    assert caught.value.path.endswith("scoring.yaml")
    assert caught.value.line == line
    assert message in caught.value.message


def test_compile_writes_the_rules_and_check_catches_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "scoring.yaml").write_text(RULE + "stages: {lead: 5, mql: 10, sql: 20}\n")
    compiled = build.compile_all(tmp_path / "scenarios")
    written = json.loads(compiled.files["scenarios/compiled/scoring.json"])
    assert written["rules"] == [{"id": "opened", "event": "email.opened", "points": 2}]
    assert written["stages"] == {"lead": 5, "mql": 10, "sql": 20}
    build.write(compiled, tmp_path)
    assert build.stale_files(compiled, tmp_path) == []
    (tmp_path / "scenarios" / "scoring.yaml").write_text(RULE.replace("points: 2", "points: 3"))
    assert build.stale_files(build.compile_all(tmp_path / "scenarios"), tmp_path) == ["scenarios/compiled/scoring.json"]


# ---- points ---------------------------------------------------------------------------------------------------


def test_an_open_a_click_and_a_pricing_view_score_with_their_reasons(settings: Settings) -> None:
    apply(settings, OPEN, "ses#open-1")
    apply(settings, CLICK, "ses#click-1")
    held = apply(settings, PRICING, "segment#page-1")

    assert held.score == contact(settings).score == 22  # kept current in hand too
    events = queued(settings)
    assert changes(events) == [
        {"old": 0, "new": 2, "points": 2, "reason": "email-opened"},
        {"old": 2, "new": 7, "points": 5, "reason": "email-clicked"},
        {"old": 7, "new": 22, "points": 15, "reason": "pricing-viewed"},
    ]
    assert [e["event_id"] for e in events if e["type"] == "score.changed"] == [
        "parcours#score.changed#email-opened#ses#open-1",
        "parcours#score.changed#email-clicked#ses#click-1",
        "parcours#score.changed#pricing-viewed#segment#page-1",
    ]
    assert all(e["source"] == "parcours" and e["contact"]["contact_id"] == "c1" for e in events)
    assert changes(events, "stage.changed") == [{"old": "subscriber", "new": "lead", "score": 22}]
    assert contact(settings).attributes["lifecycle_stage"] == "lead"


@pytest.mark.parametrize(
    "kind",
    [
        ("page.viewed", {"path": "/about"}),
        ("track", {"event": "Video Played"}),
        ("form.submitted", {"form": "newsletter"}),
        ("email.delivered", {"scenario": "welcome"}),
    ],
    ids=["another-page", "another-track", "another-form", "unscored-event"],
)
def test_an_event_no_rule_matches_writes_and_emits_nothing(settings: Settings, kind: tuple[str, Any]) -> None:
    apply(settings, kind, "x#1")
    assert contact(settings).score == 0
    assert queued(settings) == []
    assert list(tables(settings).events.query("_scored#c1")) == []


def test_an_ebook_and_a_demo_request_score_and_a_demo_makes_a_lead_an_mql(settings: Settings) -> None:
    apply(settings, EBOOK, "segment#ebook")
    apply(settings, DEMO, "segment#demo")
    events = queued(settings)
    assert [c["reason"] for c in changes(events)] == ["ebook-downloaded", "demo-requested"]
    assert changes(events, "stage.changed") == [
        {"old": "subscriber", "new": "lead", "score": 10},
        {"old": "lead", "new": "mql", "score": 35},
    ]


def test_a_cap_holds_within_its_period_and_a_new_period_scores_again(settings: Settings) -> None:
    for n in range(5):  # three opens a week count
        apply(settings, OPEN, f"ses#open-{n}", NOW + timedelta(hours=n))
    assert contact(settings).score == 6
    sunday_night = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    apply(settings, OPEN, "ses#open-sunday", sunday_night)
    assert contact(settings).score == 6  # still the week of Monday 23 November
    monday = datetime(2026, 11, 30, 0, 1, tzinfo=UTC)
    apply(settings, OPEN, "ses#open-monday", monday)
    held = contact(settings)
    assert held.score == 8
    # one counter per capped rule: the past week's is gone
    assert held.score_caps.as_dict() == {f"email-opened@{scoring.period(monday, 7 * 86400)}": 1}
    assert len(changes(queued(settings))) == 4


# ---- once, and under concurrency ------------------------------------------------------------------------------


def test_a_redelivered_event_scores_once(settings: Settings) -> None:
    apply(settings, PRICING, "segment#page-1")
    apply(settings, PRICING, "segment#page-1")  # a redelivery, or the message retried after a later failure
    assert contact(settings).score == 15
    assert len(changes(queued(settings))) == 1


@pytest.mark.parametrize(
    ("kind", "emitted"),
    [
        (PRICING, ["score.changed#pricing-viewed", "stage.changed#lead"]),
        (EBOOK, ["score.changed#ebook-downloaded", "stage.changed#lead"]),  # capped at 1: nothing left to do
        (("order.placed", {"total": "10"}), ["stage.changed#customer"]),  # no points, only the stage
    ],
    ids=["pricing", "capped-rule", "first-order"],
)
def test_events_a_failed_enqueue_lost_are_emitted_when_the_event_is_retried(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, kind: tuple[str, Any], emitted: list[str]
) -> None:
    real = ingestion.enqueue

    def down(event: Event, settings: Settings) -> None:
        raise ingestion.QueueUnavailable("the queue is down")

    monkeypatch.setattr(ingestion, "enqueue", down)
    with pytest.raises(ingestion.QueueUnavailable):
        apply(settings, kind, "segment#e-1")  # the change is written, then the emit fails: SQS retries the message
    score = contact(settings).score
    monkeypatch.setattr(ingestion, "enqueue", real)
    apply(settings, kind, "segment#e-1")
    assert contact(settings).score == score  # once
    events = queued(settings)  # the same events, under the same ids
    assert [e["event_id"] for e in events] == [f"parcours#{name}#segment#e-1" for name in emitted]


def test_a_redelivered_add_score_task_adds_once_with_its_step_as_reason(settings: Settings) -> None:
    task = {"scenario": "loyalty", "step": "vip", "contact_id": "c1", "execution": "arn:x:exec", "points": 20}
    assert actions.add_score(task, settings, NOW) == {"status": "done", "score": 20}
    assert actions.add_score(task, settings, NOW) == {"status": "done", "score": 20}  # Step Functions' retry
    events = queued(settings)
    assert changes(events) == [{"old": 0, "new": 20, "points": 20, "reason": "vip"}]
    assert events[0]["event_id"] == "parcours#score.changed#arn:x:exec#vip"
    assert events[0]["topic"] == "loyalty/vip"
    assert changes(events, "stage.changed") == [{"old": "subscriber", "new": "lead", "score": 20}]


def test_two_events_racing_past_a_cap_score_once(settings: Settings) -> None:
    # Both read the contact before either writes (two process functions, two message groups)
    first, second = contact(settings), contact(settings)
    scoring.apply(event(*EBOOK[:1], "segment#ebook-1", **EBOOK[1]), first, settings, NOW)
    scoring.apply(event(*EBOOK[:1], "segment#ebook-2", **EBOOK[1]), second, settings, NOW)
    assert contact(settings).score == 10  # the second's condition failed; read again, the cap was reached
    assert second.score == 10  # what it holds now
    assert len(changes(queued(settings))) == 1


def test_two_events_racing_across_50_emit_one_stage_change_and_one_qualification(settings: Settings) -> None:
    set_score(settings, 45, "mql")
    first, second = contact(settings), contact(settings)
    scoring.apply(event(PRICING[0], "segment#page", **PRICING[1]), first, settings, NOW)
    scoring.apply(event(CLICK[0], "ses#click", **CLICK[1]), second, settings, NOW)
    events = queued(settings)
    assert changes(events) == [
        {"old": 45, "new": 60, "points": 15, "reason": "pricing-viewed"},
        {"old": 60, "new": 65, "points": 5, "reason": "email-clicked"},  # exact: read again after its lost race
    ]
    assert changes(events, "stage.changed") == [{"old": "mql", "new": "sql", "score": 60}]
    assert changes(events, "contact.qualified") == [{"score": 60, "stage": "sql", "qualified_at": NOW.isoformat()}]
    assert [e["event_id"] for e in events if e["type"] == "contact.qualified"] == [
        "parcours#contact.qualified#segment#page"
    ]
    held = contact(settings)
    assert (held.attributes["lifecycle_stage"], held.attributes["qualified_at"]) == ("sql", NOW.isoformat())


def test_a_transaction_conflict_is_read_again_and_retried(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = storage.write_together, []

    def busy_once(*args: Any) -> int | None:
        calls.append(args)
        if len(calls) == 1:
            raise storage.Conflict("TransactionConflict")
        return real(*args)

    monkeypatch.setattr(scoring, "write_together", busy_once)
    apply(settings, CLICK, "ses#click")
    assert (len(calls), contact(settings).score) == (2, 5)


# ---- inactivity, decay, stages --------------------------------------------------------------------------------


def test_thirty_silent_days_cost_ten_points_but_never_below_zero(settings: Settings) -> None:
    set_score(settings, 4)
    apply(settings, ("contact.inactive", {"days": 30, "since": "2026-10-25"}), "schedule#30#c1")
    assert contact(settings).score == 0
    assert changes(queued(settings)) == [{"old": 4, "new": 0, "points": -4, "reason": "inactive-30d"}]
    apply(settings, ("contact.inactive", {"days": 30, "since": "2026-10-26"}), "schedule#30#c1#again")
    assert queued(settings) == []  # nothing left to take: no change, no event


def test_decay_lowers_the_score_never_the_stage(settings: Settings) -> None:
    set_score(settings, 55, "sql")
    apply(settings, ("contact.inactive", {"days": 60, "since": "2026-09-25"}), "schedule#60#c1")
    apply(settings, ("contact.inactive", {"days": 90, "since": "2026-08-26"}), "schedule#90#c1")
    apply(settings, ("contact.inactive", {"days": 45, "since": "2026-10-10"}), "schedule#45#c1")  # no rule: nothing
    assert changes(queued(settings)) == [
        {"old": 55, "new": 41, "points": -14, "reason": "decay"},  # a quarter, rounded up
        {"old": 41, "new": 30, "points": -11, "reason": "decay"},
    ]
    held = contact(settings)
    assert (held.score, held.attributes["lifecycle_stage"]) == (30, "sql")


def test_a_first_order_makes_a_customer_and_points_never_take_it_back_to_sql(settings: Settings) -> None:
    apply(settings, ("order.placed", {"total": "59.80"}), "shopify#order-1")
    events = queued(settings)
    assert changes(events) == []  # no rule on orders: no points
    assert changes(events, "stage.changed") == [{"old": "subscriber", "new": "customer", "score": 0}]
    set_score(settings, 45)
    apply(settings, DEMO, "segment#demo")  # 70 points: past sql, but a customer stays a customer
    events = queued(settings)
    assert [e["type"] for e in events] == ["score.changed"]
    assert contact(settings).attributes["lifecycle_stage"] == "customer"


def test_a_contact_that_ordered_before_becomes_a_customer_on_its_next_event(settings: Settings) -> None:
    held = contact(settings)
    held.orders_count = 2  # imported, or ordered before the scoring was deployed
    held.save()
    apply(settings, OPEN, "ses#open")
    assert changes(queued(settings), "stage.changed") == [{"old": "subscriber", "new": "customer", "score": 2}]


@pytest.mark.parametrize("kind", ["score.changed", "stage.changed", "contact.qualified", "list.joined"])
def test_parcours_own_events_never_score_nor_move_the_stage(settings: Settings, kind: str) -> None:
    held = contact(settings)
    held.orders_count = 1
    held.save()
    own = Event("parcours#x", kind, "parcours", "t", NOW.isoformat(), NOW.isoformat(), ContactFacts(contact_id="c1"))
    scoring.apply(own, contact(settings), settings, NOW)
    assert queued(settings) == []


def test_an_add_score_step_crossing_50_qualifies_the_lead(settings: Settings) -> None:
    task = {"scenario": "webinar", "step": "attended", "contact_id": "c1", "execution": "arn:x:e2", "points": 55}
    actions.add_score(task, settings, NOW)
    events = queued(settings)
    assert changes(events, "stage.changed") == [{"old": "subscriber", "new": "sql", "score": 55}]
    assert changes(events, "contact.qualified") == [{"score": 55, "stage": "sql", "qualified_at": NOW.isoformat()}]


def test_the_process_function_scores_every_event_it_processes(settings: Settings) -> None:
    page = Event(
        "segment#p1",
        "page.viewed",
        "segment",
        "page",
        NOW.isoformat(),
        NOW.isoformat(),
        ContactFacts(email="c@example.com", source_id="segment#u1"),
        {"path": "/pricing"},
    )
    tables(settings).identities(identity="email#c@example.com", contact_id="c1").save()
    processing.process(page, settings, Clock())
    assert contact(settings).score == 15
    assert [e["type"] for e in queued(settings)] == ["score.changed", "stage.changed"]


def test_the_functions_that_score_may_write_what_the_scoring_writes() -> None:
    """moto does not check IAM: the template must grant what AWS would refuse."""
    from infra import samtemplate

    resources = samtemplate.load()["Resources"]
    process = resources["ProcessFunction"]["Properties"]["Policies"]
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}} in process
    assert {"DynamoDBCrudPolicy": {"TableName": {"Ref": "EventsTable"}}} in process  # the claims
    act = resources["ActFunction"]["Properties"]["Policies"]  # add_score
    assert {"DynamoDBWritePolicy": {"TableName": {"Ref": "EventsTable"}}} in act


def test_the_scoring_schema_knows_the_events_and_accepts_the_shipped_file() -> None:
    """scenarios/scoring.schema.json, what editors complete and check scoring.yaml with."""
    import jsonschema
    import yaml

    schema = json.loads((ROOT / "scenarios" / "scoring.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["event"]["enum"] == [e for e in CATALOGUE if e not in scoring.OWN_EVENTS]
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(yaml.safe_load(SHIPPED.read_text()))] == []
    wrong = {"rules": [{"id": "x", "event": "score.changed", "points": 0}], "stages": {"lead": 1}}
    assert len(list(validator.iter_errors(wrong))) == 4  # own event, 0 points, mql and sql missing


def test_a_source_s_attributes_written_from_an_older_read_keep_the_stage(settings: Settings) -> None:
    # A process function reads the contact for an identify with traits; meanwhile another event makes it an sql
    held = contact(settings)
    held.pages = {"/home": 1}
    held.save()
    stale = contact(settings)
    before = stale.serialize()
    set_score(settings, 45, "mql")
    apply(settings, PRICING, "segment#page")
    # then the identify's traits are written from what it read
    stale.attributes = {**stale.attributes.as_dict(), "plan_type": "pro"}
    stale.pages = {"/home": 2, "/docs/v1.2": 1}  # a dot in a key is not a path
    storage.save_changes(stale, before)
    held = contact(settings)
    assert held.attributes.as_dict() == {
        "lifecycle_stage": "sql",
        "qualified_at": NOW.isoformat(),
        "plan_type": "pro",
    }
    assert held.pages.as_dict() == {"/home": 2, "/docs/v1.2": 1}
    assert held.score == 60
