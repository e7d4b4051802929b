"""The CRM handoff of a qualified lead, in moto with a real HTTP CRM on 127.0.0.1: what is queued, what the CRM
receives and how it is signed, when it is tried again, when it goes to the dead-letter queue, and the EventBridge
event put once the CRM took it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local import InvocationContext
from shared import clients, deadletters
from shared.clock import Clock
from shared.events import CONTACT_QUALIFIED, ContactFacts, Event
from shared.journeys import processing
from shared.people import contacts, crm, handoff
from shared.settings import Settings, get_settings
from shared.storage import tables
from tests.conftest import handler_of
from tests.crm_receiver import CrmReceiver
from tests.unit.functions.test_process_metrics import metrics_of

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SECRET = "handoff-test-secret"
QUALIFIED_AT = "2026-11-24T08:59:00+00:00"
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def receiver() -> Iterator[CrmReceiver]:
    server = CrmReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def queues(aws: dict[str, str]) -> dict[str, str]:
    """The handoff queue, its DLQ, and a queue behind an EventBridge rule for contact.qualified (a subscriber)."""
    sqs = boto3.client("sqs", region_name="eu-west-3")
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("handoff", "handoff-dlq", "subscriber")}
    arn = sqs.get_queue_attributes(QueueUrl=urls["subscriber"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name="eu-west-3")
    events.put_rule(
        Name="qualified", EventPattern=json.dumps({"source": ["parcours"], "detail-type": [CONTACT_QUALIFIED]})
    )
    events.put_targets(Rule="qualified", Targets=[{"Id": "q", "Arn": arn}])
    boto3.client("stepfunctions", region_name="eu-west-3").create_state_machine(  # lead-nurturing starts too
        name="parcours-lead-nurturing", definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn"
    )
    return urls


@pytest.fixture
def environ_with_crm(aws: dict[str, str], queues: dict[str, str], receiver: CrmReceiver) -> dict[str, str]:
    return {
        **aws,
        "PARCOURS_CRM_URL": receiver.url,
        "PARCOURS_CRM_SECRET": SECRET,
        "PARCOURS_HANDOFF_QUEUE_URL": queues["handoff"],
        "PARCOURS_HANDOFF_DEAD_LETTER_QUEUE_URL": queues["handoff-dlq"],
        "PARCOURS_HANDOFF_MAX_RECEIVE_COUNT": "4",
    }


@pytest.fixture
def settings(environ_with_crm: dict[str, str]) -> Settings:
    settings = Settings.from_environ(environ_with_crm)
    save_contact(settings)
    return settings


@pytest.fixture
def handler(environ_with_crm: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    save_contact(Settings.from_environ(environ_with_crm))
    yield from handler_of("functions.handoff.app", environ_with_crm, monkeypatch)


def save_contact(settings: Settings) -> None:
    tables(settings).contacts(
        contact_id="c1",
        email="camille@example.com",
        first_name="Camille",
        last_name="Martin",
        locale="fr",
        score=62,
        attributes={"lifecycle_stage": "sql", "qualified_at": QUALIFIED_AT},
        created_at=NOW,
        updated_at=NOW,
    ).save()


def remember(settings: Settings, minutes: int, event_type: str, source: str, **properties: Any) -> None:
    """An event in the contact's history, `minutes` after 08:00."""
    at = NOW - timedelta(hours=1) + timedelta(minutes=minutes)
    tables(settings).events(
        contact_id="c1", at_id=f"{at.isoformat()}#e{minutes}", type=event_type, source=source, properties=properties
    ).save()


def qualified(event_id: str = "parcours#contact.qualified#x") -> Event:
    properties = {"score": 55, "stage": "sql", "qualified_at": QUALIFIED_AT}
    iso = NOW.isoformat()
    return Event(
        event_id, CONTACT_QUALIFIED, "parcours", "scoring", iso, iso, ContactFacts(contact_id="c1"), properties
    )


def message(event_id: str = "parcours#contact.qualified#x") -> handoff.Handoff:
    return handoff.Handoff(event_id, "c1", 55, "sql", QUALIFIED_AT, handoff.delivery_id(event_id))


def record(body: str, receives: int = 1, message_id: str = "m1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receives), "SentTimestamp": "1795510800000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-3:123456789012:parcours-crm-handoff",
        "awsRegion": "eu-west-3",
    }


def invoke(handler: Any, *records: dict[str, Any]) -> dict[str, Any]:
    return dict(handler({"Records": list(records)}, InvocationContext.of("parcours-HandoffFunction")))


def messages(url: str) -> list[dict[str, Any]]:
    answer = boto3.client("sqs", region_name="eu-west-3").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return [
        {"body": m["Body"], **{k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}}
        for m in answer.get("Messages", [])
    ]


def announcements(queues: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(m["body"]) for m in messages(queues["subscriber"])]


class VisibilitySpy:
    """The SQS client, with its ChangeMessageVisibility calls kept (moto does not say how long a message hides)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.visibility: list[int] = []

    def change_message_visibility(self, **kwargs: Any) -> Any:
        self.visibility.append(kwargs["VisibilityTimeout"])
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, aws: dict[str, str]) -> VisibilitySpy:
    spy = VisibilitySpy(clients.sqs("eu-west-3"))
    monkeypatch.setattr(clients, "sqs", lambda region: spy)
    return spy


# ---- enqueue ---------------------------------------------------------------------------------------------------


def test_processing_a_contact_qualified_event_queues_one_handoff_with_ids_only(
    settings: Settings, queues: dict[str, str]
) -> None:
    processing.process(qualified(), settings, Clock())
    [queued] = messages(queues["handoff"])
    assert json.loads(queued["body"]) == {
        "event_id": "parcours#contact.qualified#x",
        "contact_id": "c1",
        "score": 55,
        "stage": "sql",
        "qualified_at": QUALIFIED_AT,
        "delivery": handoff.delivery_id("parcours#contact.qualified#x"),
    }
    assert "camille" not in queued["body"]


def test_other_events_queue_no_handoff(settings: Settings, queues: dict[str, str]) -> None:
    iso = NOW.isoformat()
    score = Event("parcours#s", "score.changed", "parcours", "scoring", iso, iso, ContactFacts(contact_id="c1"))
    processing.process(score, settings, Clock())
    assert messages(queues["handoff"]) == []


def test_without_a_handoff_queue_nothing_is_queued(aws: dict[str, str]) -> None:
    settings = Settings.from_environ(aws)
    save_contact(settings)
    contact = tables(settings).contacts.get("c1")
    assert handoff.enqueue(qualified(), contact, settings) is None


def test_the_delivery_id_is_stable_per_qualification() -> None:
    assert handoff.delivery_id("a") == handoff.delivery_id("a") != handoff.delivery_id("b")


# ---- the payload -----------------------------------------------------------------------------------------------


def test_the_crm_receives_the_documented_payload_signed_with_its_secret(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str]
) -> None:
    settings = get_settings()
    remember(settings, 1, "page.viewed", "tracking", path="/pricing")
    remember(settings, 2, "score.changed", "parcours", old=40, new=55, points=15, reason="pricing-viewed")
    remember(settings, 3, "list.joined", "parcours", list="prospects")
    remember(settings, 4, "form.submitted", "generic", form="demo")
    remember(settings, 5, "score.changed", "parcours", old=55, new=62, points=7, reason=None)

    assert invoke(handler, record(message().to_json())) == {"batchItemFailures": []}

    [post] = receiver.received
    assert post.verifies_with(SECRET)
    assert not post.verifies_with("another-secret")
    assert post.headers["x-parcours-delivery"] == handoff.delivery_id("parcours#contact.qualified#x")
    assert post.headers["content-type"] == "application/json"
    body = post.json()
    assert set(body) == {
        "type",
        "version",
        "delivery",
        "event_id",
        "stage",
        "score",
        "qualified_at",
        "sent_at",
        "contact",
        "reasons",
        "recent_events",
    }
    assert (body["type"], body["version"], body["stage"], body["score"]) == ("contact.qualified", 1, "sql", 55)
    assert (body["event_id"], body["qualified_at"]) == ("parcours#contact.qualified#x", QUALIFIED_AT)
    assert body["contact"] == {
        "contact_id": "c1",
        "email": "camille@example.com",
        "first_name": "Camille",
        "last_name": "Martin",
        "phone": None,
        "locale": "fr",
        "score": 62,
        "lists": [],
        "attributes": {"lifecycle_stage": "sql", "qualified_at": QUALIFIED_AT},
        "orders_count": 0,
        "total_spent": 0,
    }
    # the score's history with its reasons, oldest first; behaviour is the contact's own events, not parcours'
    assert body["reasons"] == [
        {"at": "2026-11-24T08:02:00+00:00", "reason": "pricing-viewed", "points": 15, "old": 40, "new": 55},
        {"at": "2026-11-24T08:05:00+00:00", "reason": None, "points": 7, "old": 55, "new": 62},
    ]
    assert [(e["at"], e["type"], e["source"], e["properties"]) for e in body["recent_events"]] == [
        ("2026-11-24T08:01:00+00:00", "page.viewed", "tracking", {"path": "/pricing"}),
        ("2026-11-24T08:04:00+00:00", "form.submitted", "generic", {"form": "demo"}),
    ]


def test_recent_behaviour_is_the_latest_events_and_the_history_read_is_bounded(settings: Settings) -> None:
    for minute in range(handoff.RECENT_EVENTS + 5):
        remember(settings, minute, "page.viewed", "tracking", path=f"/p{minute}")
    past = handoff.history(tables(settings), "c1")
    assert [e["properties"]["path"] for e in past.recent] == [f"/p{m}" for m in range(5, handoff.RECENT_EVENTS + 5)]
    assert past.reasons == []


def test_the_history_query_reads_at_most_its_bound(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}
    events_model = tables(settings).events
    query = events_model.query

    def recording(*args: Any, **kwargs: Any) -> Any:
        asked.update(kwargs)
        return query(*args, **kwargs)

    monkeypatch.setattr(events_model, "query", recording)
    handoff.history(tables(settings), "c1")
    assert (asked["limit"], asked["scan_index_forward"]) == (handoff.HISTORY_READ, False)


# ---- retries, refusals, dead letters ---------------------------------------------------------------------------


def test_the_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    assert [handoff.backoff(n) for n in range(1, 11)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


@pytest.mark.parametrize("status", [503, 500, 429])
def test_a_busy_or_failing_crm_is_tried_again_after_the_backoff_of_that_receive(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str], spy: VisibilitySpy, status: int
) -> None:
    receiver.answer(status, status)
    first = invoke(handler, record(message().to_json(), receives=1))
    third = invoke(handler, record(message().to_json(), receives=3))
    assert first == third == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert spy.visibility == [30, 120]
    assert messages(queues["handoff-dlq"]) == []
    assert announcements(queues) == []  # not before the CRM took it
    # and the next attempt delivers, with the same delivery id
    assert invoke(handler, record(message().to_json(), receives=4)) == {"batchItemFailures": []}
    assert len({r.headers["x-parcours-delivery"] for r in receiver.received}) == 1
    assert len(receiver.received) == 3


def test_the_local_runtime_s_compressed_clock_shortens_the_backoff(
    environ_with_crm: dict[str, str], receiver: CrmReceiver, spy: VisibilitySpy
) -> None:
    settings = Settings.from_environ({**environ_with_crm, "PARCOURS_TIME_SCALE": "60"})
    save_contact(settings)
    receiver.answer(503)
    with pytest.raises(crm.CrmDeferred):
        handoff.consume(handoff_record(message(), receives=2), settings, lambda: SECRET)
    assert spy.visibility == [1]  # 60 simulated seconds


def handoff_record(m: handoff.Handoff, receives: int) -> Any:
    from shared.batches import Record

    return Record.of(record(m.to_json(), receives))


def test_on_the_last_receive_a_failing_handoff_goes_to_the_dlq_with_its_reason(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.answer(503)
    assert invoke(handler, record(message().to_json(), receives=4)) == {"batchItemFailures": []}
    [letter] = messages(queues["handoff-dlq"])
    assert letter["body"] == message().to_json()
    assert letter[deadletters.KIND] == deadletters.RETRIES_EXHAUSTED
    assert letter[deadletters.ERROR_TYPE] == "CrmDeferred"
    assert letter[deadletters.ERROR_MESSAGE] == "CRM answered 503"
    assert letter[deadletters.EVENT_ID] == "parcours#contact.qualified#x"
    assert letter[deadletters.RECEIVE_COUNT] == "4"
    assert announcements(queues) == []
    assert metrics_of(capsys.readouterr().out)["CrmHandoffDeadLettered"] == [1.0]


@pytest.mark.parametrize("status", [400, 401, 404, 422, 301])
def test_a_refusal_goes_to_the_dlq_at_once_and_is_counted(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str], capsys: pytest.CaptureFixture[str], status: int
) -> None:
    receiver.answer(status)
    assert invoke(handler, record(message().to_json(), receives=1)) == {"batchItemFailures": []}
    [letter] = messages(queues["handoff-dlq"])
    assert (letter[deadletters.KIND], letter[deadletters.ERROR_MESSAGE]) == ("refused", f"CRM answered {status}")
    assert announcements(queues) == []
    assert metrics_of(capsys.readouterr().out)["CrmHandoffRefused"] == [1.0]
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body is not JSON"),
        ("[1]", "body is a JSON list"),
        (json.dumps({**json.loads(message().to_json()), "contact_id": 5}), "field contact_id is missing or not text"),
        (json.dumps({**json.loads(message().to_json()), "score": "high"}), "field score is missing or not a number"),
        (json.dumps({**json.loads(message().to_json()), "email": "x@example.com"}), "unknown field(s) email"),
    ],
)
def test_a_message_that_is_not_a_handoff_goes_to_the_dlq_naming_the_problem(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str], body: str, reason: str
) -> None:
    assert invoke(handler, record(body)) == {"batchItemFailures": []}
    [letter] = messages(queues["handoff-dlq"])
    assert letter[deadletters.KIND] == deadletters.UNPROCESSABLE
    assert letter[deadletters.ERROR_MESSAGE].startswith(reason)
    assert "x@example.com" not in letter[deadletters.ERROR_MESSAGE]
    assert receiver.received == []


# ---- EventBridge -----------------------------------------------------------------------------------------------


def test_once_the_crm_took_it_eventbridge_gets_contact_qualified_without_personal_data(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str]
) -> None:
    invoke(handler, record(message().to_json()))
    [event] = announcements(queues)
    assert (event["source"], event["detail-type"]) == ("parcours", "contact.qualified")
    assert event["detail"] == {
        "version": 1,
        "event_id": "parcours#contact.qualified#x",
        "delivery": handoff.delivery_id("parcours#contact.qualified#x"),
        "contact_id": "c1",
        "score": 55,
        "stage": "sql",
        "qualified_at": QUALIFIED_AT,
        "crm": "accepted",
    }
    assert "camille" not in json.dumps(event).lower()
    assert "martin" not in json.dumps(event).lower()


def test_the_same_qualification_delivered_twice_posts_once_and_announces_once(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str]
) -> None:
    invoke(handler, record(message().to_json(), message_id="m1"))
    invoke(handler, record(message().to_json(), message_id="m2"))  # a retried processing queued it again
    assert len(receiver.received) == 1
    assert len(announcements(queues)) == 1


def test_when_eventbridge_fails_the_retry_announces_without_posting_again(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str], monkeypatch: pytest.MonkeyPatch, spy: VisibilitySpy
) -> None:
    real = clients.events("eu-west-3")

    class Refusing:
        def put_events(self, **kwargs: Any) -> dict[str, Any]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}

    monkeypatch.setattr(clients, "events", lambda region: Refusing())
    assert invoke(handler, record(message().to_json())) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    monkeypatch.setattr(clients, "events", lambda region: real)
    assert invoke(handler, record(message().to_json(), receives=2)) == {"batchItemFailures": []}
    assert len(receiver.received) == 1
    assert len(announcements(queues)) == 1
    assert spy.visibility == [30]


@pytest.fixture
def handler_without_crm(aws: dict[str, str], queues: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    environ = {**aws, "PARCOURS_HANDOFF_DEAD_LETTER_QUEUE_URL": queues["handoff-dlq"]}
    save_contact(Settings.from_environ(environ))
    yield from handler_of("functions.handoff.app", environ, monkeypatch)


def test_without_a_crm_the_event_is_still_announced(
    handler_without_crm: Any, queues: dict[str, str], receiver: CrmReceiver
) -> None:
    assert invoke(handler_without_crm, record(message().to_json())) == {"batchItemFailures": []}
    assert receiver.received == []
    assert [e["detail"]["crm"] for e in announcements(queues)] == ["not_configured"]


def test_an_erased_contact_is_neither_posted_nor_announced(
    handler: Any, receiver: CrmReceiver, queues: dict[str, str]
) -> None:
    tables(get_settings()).contacts(contact_id="c1").delete()
    assert invoke(handler, record(message().to_json())) == {"batchItemFailures": []}
    assert receiver.received == []
    assert announcements(queues) == []


# ---- the template ----------------------------------------------------------------------------------------------


def test_the_handoff_function_knows_its_dlq_and_the_receive_count_its_queue_redrives_after() -> None:
    from infra import samtemplate

    resources = samtemplate.load()["Resources"]
    function = resources["HandoffFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    redrive = resources["CrmHandoffQueue"]["Properties"]["RedrivePolicy"]
    assert variables["PARCOURS_HANDOFF_MAX_RECEIVE_COUNT"] == redrive["maxReceiveCount"]
    assert variables["PARCOURS_HANDOFF_DEAD_LETTER_QUEUE_URL"] == {"Ref": "CrmHandoffDeadLetterQueue"}
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["CrmHandoffDeadLetterQueue", "Arn"]}
    assert function["Events"]["Queue"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    alarm = resources["CrmHandoffDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["CrmHandoffDeadLetterQueue", "QueueName"]}}
    ]
    process = resources["ProcessFunction"]["Properties"]
    assert process["Environment"]["Variables"]["PARCOURS_HANDOFF_QUEUE_URL"] == {"Ref": "CrmHandoffQueue"}


def test_a_lead_whose_address_only_the_browser_key_gave_is_not_handed_off(
    settings: Settings, queues: dict[str, str]
) -> None:
    """Anyone may type any address into a page's form: the public key's lead reaches the CRM only once a trusted
    source gives the same address or the person confirms it (double opt-in)."""
    # Given a contact made by the browser key, qualified by the behaviour it reported
    t = tables(settings)
    made_up = contacts.upsert(ContactFacts(email="victim@example.com", identity_trusted=False), t, NOW)
    assert made_up is not None
    assert made_up.email_unverified is True

    # Then its qualification queues nothing
    assert handoff.enqueue(qualified(), made_up, settings) is None
    assert messages(queues["handoff"]) == []

    # When the shop (a trusted source) gives the same address, the next qualification goes
    vouched = contacts.upsert(ContactFacts(email="victim@example.com", source_id="shopify#7"), t, NOW)
    assert vouched is not None
    assert vouched.contact_id == made_up.contact_id
    assert t.contacts.get(vouched.contact_id).email_unverified is None
    assert handoff.enqueue(qualified(), vouched, settings) is not None
