"""Scenario actions that change the contact emit what they changed, once, for other scenarios to start on."""

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from shared.clock import Clock
from shared.events import Event
from shared.journeys import compiler, dispatch, enrolments, processing
from shared.messages import actions
from shared.people import contacts
from shared.settings import Settings
from shared.storage import Consent, tables

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})
    contact = tables(settings).contacts(contact_id="c1", email="c@example.com", created_at=NOW, updated_at=NOW)
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="test", at=NOW)
    contact.save()
    return settings


def queued(settings: Settings) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    messages = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def payload(**fields: Any) -> dict[str, Any]:
    return {"scenario": "loyalty", "step": "vip", "contact_id": "c1", "execution": "arn:x:exec", **fields}


def test_joining_a_list_emits_list_joined_once(settings: Settings) -> None:
    assert actions.change_list(payload(list="vip"), settings, True, NOW) == {"status": "done"}
    assert actions.change_list(payload(list="vip", step="again"), settings, True, NOW)["status"] == "unchanged"
    [event] = queued(settings)
    assert (event["type"], event["properties"], event["contact"]["contact_id"]) == (
        "list.joined",
        {"list": "vip"},
        "c1",
    )


def test_leaving_a_list_one_is_not_in_changes_nothing(settings: Settings) -> None:
    assert actions.change_list(payload(list="vip"), settings, False, NOW)["status"] == "unchanged"
    assert queued(settings) == []


def test_a_missing_contact_is_skipped_without_an_event(settings: Settings) -> None:
    assert actions.change_list(payload(list="vip", contact_id="gone"), settings, True, NOW)["status"] == "skipped"
    assert actions.add_score(payload(points=5, contact_id="gone"), settings, NOW)["status"] == "skipped"
    assert queued(settings) == []


def test_score_changes_carry_old_and_new_so_a_trigger_can_ask_for_a_crossing(settings: Settings) -> None:
    actions.add_score(payload(points=45, step="a"), settings, NOW)
    actions.add_score(payload(points=10, step="b"), settings, NOW)
    events = [e for e in queued(settings) if e["type"] == "score.changed"]  # (and the stages they reach)
    assert [e["properties"] for e in events] == [
        {"old": 0, "new": 45, "points": 45, "reason": "a"},
        {"old": 45, "new": 55, "points": 10, "reason": "b"},
    ]
    crossing = dispatch.Entry(
        "lead-nurturing", "score.changed", "none", "never", None, {"old": {"lt": 50}, "new": {"gte": 50}}
    )
    boto3.client("stepfunctions", region_name="eu-west-3").create_state_machine(
        name="parcours-lead-nurturing",
        roleArn="arn:aws:iam::123456789012:role/r",
        definition=json.dumps({"StartAt": "D", "States": {"D": {"Type": "Succeed"}}}),
    )
    outcomes = []
    for body in events:
        event = Event.from_dict(body)
        assert event.contact is not None
        contact = contacts.upsert(event.contact, tables(settings), NOW)
        assert contact is not None
        outcomes += dispatch.start_matching(event, contact, settings, (crossing,), NOW)
    assert [o.started for o in outcomes] == [True]  # only the second change crosses 50


def test_an_event_about_a_known_contact_is_recorded_in_its_history(settings: Settings) -> None:
    actions.change_list(payload(list="vip"), settings, True, NOW)
    [body] = queued(settings)
    result = processing.process(Event.from_dict(body), settings, Clock())
    assert result.contact_id == "c1"
    assert [e.type for e in tables(settings).events.query("c1")] == ["list.joined"]


def test_an_action_the_compiler_never_writes_is_refused_by_name(settings: Settings) -> None:
    with pytest.raises(actions.InvalidAction, match="unknown action 'teleport'"):
        actions.perform(payload(action="teleport"), settings)


def test_perform_routes_to_the_action_asked_for(settings: Settings) -> None:
    assert actions.perform(payload(action="add_score", points=3), settings) == {"status": "done", "score": 3}


def test_leaving_a_capped_scenario_frees_the_place_once_even_if_the_task_is_retried(settings: Settings) -> None:
    t = tables(settings)
    execution = "arn:aws:states:eu-west-3:123456789012:execution:parcours-loyalty:x"
    assert enrolments.take_place(t, "loyalty", 5)
    enrolments.record(t, "c1", "loyalty", execution, NOW)
    leave = payload(action="leave", step="leave", execution=execution)
    assert actions.perform(leave, settings) == {"status": "done"}
    assert actions.perform(leave, settings) == {"status": "unchanged"}  # the retry
    assert enrolments.running(t, "loyalty") == 0
    assert [e.status for e in enrolments.of(t, "c1", "loyalty")] == ["finished"]
    started_by_hand = payload(action="leave", step="leave", execution="arn:x:not-dispatched")
    assert actions.perform(started_by_hand, settings) == {"status": "unchanged"}  # took no place, frees none


def test_dynamodb_throttling_anywhere_in_a_task_leaves_as_storage_busy_for_the_retry(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import GetError

    from shared.storage import StorageBusy, StorageError

    def throttled(*args: Any, **kwargs: Any) -> Any:
        cause = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")
        raise GetError("Failed to get item", cause)

    monkeypatch.setattr(actions, "evaluate", throttled)  # PynamoDB's own error, not wrapped on its way out
    with pytest.raises(StorageBusy) as raised:
        actions.perform(payload(action="evaluate", condition={"in_list": "vip"}), settings)
    assert type(raised.value).__name__ == "StorageBusy"  # the error name Step Functions matches
    assert "StorageBusy" in compiler.RETRYABLE

    def refused(*args: Any, **kwargs: Any) -> Any:
        cause = ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "GetItem")
        raise StorageError("refused") from GetError("Failed to get item", cause)

    monkeypatch.setattr(actions, "evaluate", refused)  # a refusal for good stays itself: the Catch takes it at once
    with pytest.raises(StorageError) as refusal:
        actions.perform(payload(action="evaluate", condition={"in_list": "vip"}), settings)
    assert type(refusal.value) is StorageError


def test_a_step_emits_one_link_further_than_its_trigger_and_nothing_past_the_chain_limit(settings: Settings) -> None:
    from shared.sources import ingestion

    answer = actions.perform(payload(action="add_score", points=5, trigger={"type": "x", "chain": 2}), settings)
    [event] = queued(settings)
    assert (event["type"], event["chain"], answer) == ("score.changed", 3, {"status": "done", "score": 5})
    limit = {"type": "score.changed", "chain": ingestion.CHAIN_LIMIT}
    answer = actions.perform(payload(action="add_to_list", list="vip", step="s2", trigger=limit), settings)
    assert answer == {"status": "done", "events_cut": 1}  # the list is joined; list.joined is not emitted
    assert queued(settings) == []
