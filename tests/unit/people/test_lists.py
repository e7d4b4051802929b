"""Dynamic lists: scenarios/lists.yaml read and checked at build time, kept current per event and as windows pass."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import build
from shared.clock import Clock
from shared.events import ConsentFacts, ContactFacts, Event
from shared.journeys import dispatch, processing, schedule
from shared.journeys.declarations import load_lists
from shared.journeys.scenario import ScenarioError
from shared.messages import actions
from shared.people import lists
from shared.settings import Settings
from shared.storage import tables
from tests.conftest import drain_events

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
PROMO = lists.rule_of(
    "bought-after-promotion",
    {"event": "order.placed", "at_least": 1, "within": 30 * 86400, "where": {"discount_code": {"exists": True}}},
)
BIG_SPENDERS = lists.rule_of("big-spenders", {"attribute": "total_spent", "gte": 200})
FRENCH = lists.rule_of("french", {"attribute": "locale", "equals": "fr"})
FRENCH_BIG = lists.rule_of("french-big-spenders", {"all": [{"in_list": "french"}, {"in_list": "big-spenders"}]})
QUIET = lists.rule_of("no-recent-order", {"event": "order.placed", "at_most": 0, "within": 7 * 86400})


# ---- lists.yaml at build time --------------------------------------------------------------------------------------
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lists.yaml"
    path.write_text(text, encoding="utf-8")
    return path


RULE = "lists:\n  promo:\n    description: bought with a code\n    if:\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("lists: [promo]\n", 1, "lists maps each list name"),
        ("segments: {}\n", 1, "unknown key 'segments'"),
        ("lists:\n  Promo_1:\n    description: x\n    if: {in_list: a}\n", 3, "not a list name"),
        ("lists:\n  promo:\n    if: {in_list: a}\n", 3, "needs the key 'description'"),
        ("lists:\n  promo:\n    description: x\n", 3, "needs the key 'if'"),
        (RULE + "      attribute: total_spent\n      gte: lots\n", 5, "gte compares with a number"),
        (RULE + "      color: red\n", 5, "unknown condition with keys color"),
        (RULE + "      {event: order.shipped, at_least: 1, within: 30d}\n", 5, "unknown event 'order.shipped'"),
        (RULE + "      {event: order.placed, at_least: 1, within: soon}\n", 5, "not a duration"),
        (RULE + "      {event: order.placed, at_least: 1}\n", 5, "a behaviour condition is"),
        (RULE + "      {consent: email}\n", 5, "consent is checked when a message is sent"),
        (RULE + "      {all: [{in_list: a}, {opened: e1-welcome}]}\n", 5, "opened reads a message"),
        (RULE + "      {age: {gte: 18}}\n", 5, "age changes with the date alone"),
        (RULE + "      {event: contact.inactive, at_least: 1, within: 1d}\n", 5, "emitted for scenarios by the daily"),
        (RULE + "      {event: list.joined, at_least: 1, within: 1d}\n", 5, "read a list's members with in_list"),
        ("lists:\n  promo:\n    description: x\n    if: {in_list: a}\n  promo:\n    description: y\n", 5, "repeated"),
    ],
)
def test_a_mistake_in_lists_yaml_names_its_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_lists(write(tmp_path, text))
    assert caught.value.path.endswith("lists.yaml")
    assert caught.value.line == line
    assert message in caught.value.message


def test_without_a_lists_file_there_is_no_dynamic_list(tmp_path: Path) -> None:
    assert load_lists(tmp_path / "lists.yaml") == {}


TAGGER = """id: tagger
name: Tagger
trigger: {event: order.placed}
steps:
  - id: tag
    add_to_list: vip
  - id: untag
    remove_from_list: old-vip
"""


def project(tmp_path: Path, rules: str, declared: str = "lists: {}\n") -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "tagger.yaml").write_text(TAGGER, encoding="utf-8")
    (folder / "declarations.yaml").write_text(declared, encoding="utf-8")
    (folder / "lists.yaml").write_text("lists:\n" + rules, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("rules", "declared", "line", "message"),
    [
        (
            "  promo:\n    description: x\n    if: {in_list: vipp}\n",
            "lists: {}\n",
            4,
            "reads list 'vipp', which is neither dynamic, nor added to by a scenario",
        ),
        (
            "  a:\n    description: x\n    if: {in_list: b}\n  b:\n    description: y\n    if: {not_in_list: a}\n",
            "lists: {}\n",
            3,
            "cycle: a -> b -> a",
        ),
        ("  a:\n    description: x\n    if: {in_list: a}\n", "lists: {}\n", 3, "cycle: a -> a"),
        ("  vip:\n    description: x\n    if: {attribute: total_spent, gte: 500}\n", "lists: {}\n", 3, "adds to it"),
        ("  old-vip:\n    description: x\n    if: {attribute: score, gte: 1}\n", "lists: {}\n", 3, "removes from"),
        (
            "  newsletter:\n    description: x\n    if: {attribute: locale, equals: fr}\n",
            "lists:\n  newsletter: imported from the old tool\n",
            3,
            "also declared in declarations.yaml",
        ),
    ],
)
def test_a_dynamic_list_that_contradicts_the_scenarios_is_refused_at_build_time(
    tmp_path: Path, rules: str, declared: str, line: int, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        build.compile_all(project(tmp_path, rules, declared), tmp_path)
    assert caught.value.path.endswith("lists.yaml")
    assert caught.value.line == line
    assert message in caught.value.message


def test_lists_compile_in_dependency_order_and_scenarios_may_read_them(tmp_path: Path) -> None:
    rules = (
        "  both:\n    description: x\n    if: {all: [{in_list: fr}, {in_list: vip}]}\n"
        "  fr:\n    description: y\n    if: {attribute: locale, equals: fr}\n"
    )
    folder = project(tmp_path, rules, "lists:\n  old-vip: imported\n")
    (folder / "reader.yaml").write_text(
        "id: reader\nname: Reader\ntrigger: {event: order.placed}\nsteps:\n"
        "  - id: check\n    if: {in_list: both}\n    then:\n      - id: tag2\n        add_to_list: seen\n",
        encoding="utf-8",
    )
    compiled = build.compile_all(folder, tmp_path)
    names = [spec["name"] for spec in json.loads(compiled.files["scenarios/compiled/lists.json"])["lists"]]
    assert names == ["fr", "both"]  # both reads fr: fr is evaluated first


def test_compile_check_catches_a_stale_lists_json(tmp_path: Path) -> None:
    compiled = build.compile_all()
    build.write(compiled, tmp_path)
    assert build.stale_files(compiled, tmp_path) == []
    target = tmp_path / "scenarios" / "compiled" / "lists.json"
    target.write_text(target.read_text(encoding="utf-8").replace("2592000", "86400"), encoding="utf-8")
    assert build.stale_files(compiled, tmp_path) == ["scenarios/compiled/lists.json"]


def test_the_shipped_promotion_list_reads_what_the_shops_send() -> None:
    [shipped] = [rule for rule in lists.rules() if rule.name == "bought-after-promotion"]
    assert shipped == PROMO


# ---- which rules an event can change -------------------------------------------------------------------------------
def event(event_type: str, facts: ContactFacts | None = None, **properties: Any) -> Event:
    return Event(
        f"test#{event_type}#{sorted(properties.items())}",
        event_type,
        "test",
        "test",
        T0.isoformat(),
        T0.isoformat(),
        facts or ContactFacts(email="lou@example.com"),
        properties,
    )


@dataclass
class Known:
    contact_id: str = "c1"
    created_at: datetime = T0 - timedelta(days=3)
    created_by_event: bool = False


@pytest.mark.parametrize(
    ("incoming", "evaluated"),
    [
        (event("order.placed", total="20"), ["bought-after-promotion", "big-spenders", "no-recent-order"]),
        (event("page.viewed", path="/"), []),
        (event("email.opened"), []),
        (event("contact.updated", ContactFacts(email="lou@example.com", locale="fr")), ["french"]),
        (event("list.joined", ContactFacts(contact_id="c1"), list="french"), ["french-big-spenders"]),
        (event("list.joined", ContactFacts(contact_id="c1"), list="sales-qualified"), []),
        (event("score.changed", ContactFacts(contact_id="c1"), old=1, new=5, points=4), []),
    ],
)
def test_an_event_evaluates_only_the_lists_it_can_change(incoming: Event, evaluated: list[str]) -> None:
    known = (PROMO, BIG_SPENDERS, FRENCH, FRENCH_BIG, QUIET)
    chosen = lists.affected(incoming, Known(), T0, known)  # type: ignore[arg-type]
    assert [rule.name for rule in chosen] == evaluated


def test_a_new_contact_meets_every_list_once() -> None:
    known = (PROMO, BIG_SPENDERS, FRENCH, FRENCH_BIG, QUIET)
    chosen = lists.affected(event("page.viewed"), Known(created_at=T0, created_by_event=True), T0, known)  # type: ignore[arg-type]
    assert len(chosen) == 5


def test_an_event_emitted_at_the_instant_a_contact_was_created_reads_its_history() -> None:
    # Given a contact created at T0 by an order, and an event its processing emitted, processed at the same T0
    # (skipped time stands still; in AWS, two events within the same microsecond)
    known = (PROMO, BIG_SPENDERS, FRENCH, FRENCH_BIG, QUIET)
    # Then that event is not taken for the one that created the contact: only the lists it can change are evaluated
    assert lists.affected(event("page.viewed"), Known(created_at=T0), T0, known) == []  # type: ignore[arg-type]


# ---- kept current over DynamoDB and SQS (moto) ---------------------------------------------------------------------
@dataclass(frozen=True)
class Stopped(Clock):
    at: datetime = T0

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def settings(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    monkeypatch.setattr(lists, "rules", lambda: (PROMO, BIG_SPENDERS, FRENCH, FRENCH_BIG, QUIET))
    monkeypatch.setattr(dispatch, "catalogue", lambda: ())  # no scenario: the lists only
    return Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})


def queued(settings: Settings) -> list[dict[str, Any]]:
    """The events queued since the last look, each once, by id."""
    found = {event["event_id"]: event for event in drain_events(settings.queue_url)}
    return sorted(found.values(), key=lambda event: event["event_id"])


def moves(settings: Settings) -> list[tuple[str, str]]:
    """The list.joined / list.left events queued (the scoring's own events left out)."""
    return [(body["type"], body["properties"]["list"]) for body in queued(settings) if body["type"].startswith("list.")]


class Queries:
    """The history reads (Query on the events table)."""

    def __init__(self, requests: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        self.requests = requests

    def on(self, table: str) -> int:
        return sum(1 for name, asked, _ in self.requests if (name, asked.get("TableName")) == ("Query", table))


@pytest.fixture
def queries(dynamodb_requests: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> Queries:
    return Queries(dynamodb_requests)


CONSENT = ConsentFacts("granted", "single_opt_in", T0.isoformat(), "test")


def happen(settings: Settings, at: datetime, event_type: str, number: int, **properties: Any) -> str:
    facts = ContactFacts(email="lou@example.com", email_consent=CONSENT, locale=properties.pop("locale", None))
    incoming = Event(f"shop#{number}", event_type, "shop", "t", at.isoformat(), at.isoformat(), facts, properties)
    result = processing.process(incoming, settings, Stopped(at=at))
    assert result.contact_id is not None
    return result.contact_id


def in_lists(settings: Settings, contact_id: str) -> set[str]:
    return set(tables(settings).contacts.get(contact_id, consistent_read=True).lists or ())


def members(settings: Settings, name: str) -> list[str]:
    return [member["contact_id"] for member in lists.members(settings, name)]


def test_a_discounted_order_joins_the_list_once_and_emits_list_joined(settings: Settings) -> None:
    contact_id = happen(settings, T0, "page.viewed", 1, path="/")  # a newcomer: every rule, once
    assert in_lists(settings, contact_id) == {"no-recent-order"}
    assert moves(settings) == [("list.joined", "no-recent-order")]

    happen(settings, T0 + timedelta(hours=1), "order.placed", 2, total="250.00", discount_code="PROMO10")
    assert in_lists(settings, contact_id) == {"bought-after-promotion", "big-spenders"}
    assert sorted(moves(settings)) == [
        ("list.joined", "big-spenders"),
        ("list.joined", "bought-after-promotion"),
        ("list.left", "no-recent-order"),
    ]
    assert members(settings, "bought-after-promotion") == [contact_id]
    assert members(settings, "no-recent-order") == []

    happen(settings, T0 + timedelta(hours=2), "order.placed", 3, total="10.00", discount_code="PROMO10")
    assert moves(settings) == []  # already in: no second list.joined


def test_a_list_built_on_others_follows_them_in_the_same_event(settings: Settings) -> None:
    contact_id = happen(settings, T0, "order.placed", 1, total="300", locale="fr")
    assert {"french", "big-spenders", "french-big-spenders"} <= in_lists(settings, contact_id)
    # french and big-spenders are evaluated before the list that reads them: it joins in the same pass
    assert ("list.joined", "french-big-spenders") in moves(settings)

    happen(settings, T0 + timedelta(days=1), "contact.updated", 2, locale="en")
    assert in_lists(settings, contact_id) & {"french", "french-big-spenders"} == set()
    assert sorted(moves(settings)) == [("list.left", "french"), ("list.left", "french-big-spenders")]


def test_the_history_is_read_once_per_event_for_all_window_rules(settings: Settings, queries: Queries) -> None:
    events_table = tables(settings).events.Meta.table_name
    happen(settings, T0, "order.placed", 1, total="20", discount_code="A")
    assert queries.on(events_table) == 0  # a contact this event created: its history is the event, nothing to read
    before = queries.on(events_table)
    happen(settings, T0 + timedelta(days=1), "order.placed", 2, total="20")  # two window rules affected
    assert queries.on(events_table) - before == 1
    before = queries.on(events_table)
    happen(settings, T0 + timedelta(days=2), "page.viewed", 3, path="/")  # no rule affected: no read
    assert queries.on(events_table) - before == 0


def test_a_membership_lapses_when_its_window_passes_found_by_the_daily_index(settings: Settings) -> None:
    contact_id = happen(settings, T0, "order.placed", 1, total="20", discount_code="PROMO10")
    queued(settings)
    stored = tables(settings).contacts.get(contact_id)
    # The order leaves the no-recent-order window first (7 days): the run of the day after re-checks
    assert stored.lists_recheck_on == "2026-11-10"
    assert "no-recent-order" not in in_lists(settings, contact_id)

    early = lists.recheck(settings, datetime(2026, 11, 9, 0, 5, tzinfo=UTC), datetime(2026, 11, 9, 0, 5, tzinfo=UTC))
    assert early.contacts == 0  # not under this day: nobody read

    run = datetime(2026, 11, 10, 0, 5, tzinfo=UTC)
    report = lists.recheck(settings, run, run)
    assert (report.contacts, report.joined, report.left) == (1, 1, 0)
    assert moves(settings) == [("list.joined", "no-recent-order")]  # no order for 7 days: joins by time alone
    assert tables(settings).contacts.get(contact_id).lists_recheck_on == "2026-12-03"  # the 30-day window next

    run = datetime(2026, 12, 3, 0, 5, tzinfo=UTC)
    report = lists.recheck(settings, run, run)
    assert (report.contacts, report.joined, report.left) == (1, 0, 1)
    assert moves(settings) == [("list.left", "bought-after-promotion")]
    assert members(settings, "bought-after-promotion") == []
    assert tables(settings).contacts.get(contact_id).lists_recheck_on is None  # nothing left to pass: out of index
    assert lists.recheck(settings, run, run).left == 0  # a second run of the day changes nothing


def test_a_later_event_moves_the_recheck_earlier_but_never_later(settings: Settings) -> None:
    contact_id = happen(settings, T0, "order.placed", 1, total="20", discount_code="A")
    assert tables(settings).contacts.get(contact_id).lists_recheck_on == "2026-11-10"
    happen(settings, T0 + timedelta(days=2), "order.placed", 2, total="20", discount_code="B")
    assert tables(settings).contacts.get(contact_id).lists_recheck_on == "2026-11-10"


def test_scenario_steps_keep_the_members_table_too(settings: Settings) -> None:
    contact_id = happen(settings, T0, "page.viewed", 1, path="/")
    queued(settings)
    payload = {"list": "vip", "contact_id": contact_id, "execution": "exec-1", "step": "tag", "scenario": "s"}
    assert actions.change_list(payload, settings, True, T0)["status"] == "done"
    assert actions.change_list(payload, settings, True, T0)["status"] == "unchanged"
    assert members(settings, "vip") == [contact_id]
    [joined] = queued(settings)
    assert (joined["event_id"], joined["properties"]) == ("parcours#list.joined#exec-1#tag", {"list": "vip"})
    assert actions.change_list({**payload, "step": "untag"}, settings, False, T0)["status"] == "done"
    assert members(settings, "vip") == []


def test_a_scenario_setting_an_attribute_moves_the_lists_reading_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = lists.rule_of("sales-ready", {"attribute": "lifecycle_stage", "equals": "sql"})
    monkeypatch.setattr(lists, "rules", lambda: (sql, FRENCH))
    contact_id = happen(settings, T0, "page.viewed", 1, path="/")
    queued(settings)
    payload = {"contact_id": contact_id, "name": "lifecycle_stage", "value": "sql", "execution": "x1", "step": "s"}
    assert actions.set_attribute(payload, settings)["status"] == "done"
    assert in_lists(settings, contact_id) == {"sales-ready"}
    [joined] = queued(settings)
    assert (joined["type"], joined["properties"]) == ("list.joined", {"list": "sales-ready"})
    assert actions.set_attribute({**payload, "name": "plan", "value": "pro"}, settings)["status"] == "done"
    assert queued(settings) == []  # no rule reads plan


def test_an_identify_that_merges_a_visitor_evaluates_the_window_rules() -> None:
    views = lists.rule_of("pricing-visitors", {"event": "page.viewed", "at_least": 2, "within": 7 * 86400})
    merging = event("contact.updated", ContactFacts(email="lou@example.com", anonymous_id="anon-1"))
    assert lists.affected(merging, Known(), T0, (views, FRENCH)) == [views]  # type: ignore[arg-type]
    alone = event("page.viewed", ContactFacts(anonymous_id="anon-1"))
    assert lists.affected(alone, Known(), T0, (FRENCH,)) == []  # type: ignore[arg-type]


def test_the_daily_run_pages_the_days_rechecks_like_its_other_keys(settings: Settings) -> None:
    contact_id = happen(settings, T0, "order.placed", 1, total="20", discount_code="PROMO10")
    queued(settings)
    day = datetime(2026, 11, 10, 0, 5, tzinfo=UTC)
    assert schedule.plan(schedule.work(()), day, day)[1] == []  # only the deployment's run reads the lists' key
    plans = schedule.plan(schedule.work(), day, day)[1]
    assert [(page.kind, page.key) for page in plans if page.kind == "lists"] == [("lists", "2026-11-10")]
    schedule.run(settings, day, day)
    assert moves(settings) == [("list.joined", "no-recent-order")]
    assert tables(settings).contacts.get(contact_id).lists_recheck_on == "2026-12-03"
