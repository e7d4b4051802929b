"""The CRM handoff over `parcours local`: a contact.qualified event, queued as the scoring queues it, reaches the
CRM (a real HTTP server) as one signed POST with the documented payload, again later with the same delivery id
when the CRM answered 503, and an EventBridge rule (created here in moto) receives contact.qualified once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from shared.events import CONTACT_QUALIFIED, PAGE_VIEWED, SCORE_CHANGED, ContactFacts, Event
from shared.people import handoff
from shared.sources.ingestion import group_and_dedup_ids
from shared.storage import Tables
from tests.conftest import CRM_SECRET
from tests.crm_receiver import CrmReceiver, Received
from tests.scenarios.conftest import add_contact, stack_tables

SQL = {"lifecycle_stage": "sql", "qualified_at": "2026-11-24T10:00:00+00:00"}  # what the scoring wrote


@pytest.fixture
def store(local: RunningLocal, monkeypatch: pytest.MonkeyPatch) -> Tables:
    return stack_tables(local, monkeypatch)


@pytest.fixture
def subscribed(local: RunningLocal) -> Iterator[str]:
    """A queue behind an EventBridge rule on the default bus, for parcours' contact.qualified events."""
    sqs = local.client("sqs")
    events = local.client("events")
    name = f"crm-subscriber-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["parcours"], "detail-type": ["contact.qualified"]}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    yield url
    events.remove_targets(Rule=name, Ids=["queue"])
    events.delete_rule(Name=name)


def queue(local: RunningLocal, event_type: str, contact_id: str, properties: dict[str, Any], source: str) -> str:
    """An event about the contact on the events queue, as shared/messages/actions.py `_emit` puts parcours' own, at the
    runtime's now."""
    now = local.now().isoformat()
    event = Event(
        event_id=f"{source}#{event_type}#{uuid.uuid4().hex}",
        type=event_type,
        source=source,
        topic="test",
        occurred_at=now,
        received_at=now,
        contact=ContactFacts(contact_id=contact_id),
        properties=properties,
    )
    group, dedup = group_and_dedup_ids(event)
    local.client("sqs").send_message(
        QueueUrl=local.physical_ids()["EventsQueue"],
        MessageBody=event.to_json(),
        MessageGroupId=group,
        MessageDeduplicationId=dedup,
    )
    return event.event_id


def qualify(local: RunningLocal, contact_id: str, score: int) -> str:
    properties = {"score": score, "stage": "sql", "qualified_at": "2026-11-24T10:00:00+00:00"}
    return queue(local, CONTACT_QUALIFIED, contact_id, properties, "parcours")


def posts(local: RunningLocal, crm: CrmReceiver, delivery: str) -> list[Received]:
    """What the CRM received of a delivery, once the runtime is idle (the handoff is polled from its queue)."""
    local.advance(seconds=0)
    return crm.for_delivery(delivery)


def announced(local: RunningLocal, url: str, contact_id: str) -> list[dict[str, Any]]:
    """The contact.qualified events the subscriber's queue received about the contact (EventBridge delivers to it
    within PutEvents: all there once the runtime is idle)."""
    local.advance(seconds=0)
    sqs = local.client("sqs")
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            body = json.loads(message["Body"])
            if body["detail"]["contact_id"] == contact_id:
                found.append(body)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_qualified_lead_reaches_the_crm_once_signed_and_eventbridge_once(
    local: RunningLocal, store: Tables, crm: CrmReceiver, subscribed: str
) -> None:
    # Given a lead with some behaviour and two score changes with their reasons in its history
    email = f"lead.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent=None, score=60, last_name="Martin", attributes=SQL)
    # (a second apart: events recorded at one instant are ordered by their ids in the history)
    queue(local, PAGE_VIEWED, contact_id, {"path": "/blog/guide", "url": "https://boutique.example/blog/guide"}, "test")
    local.advance(seconds=1)
    queue(
        local, SCORE_CHANGED, contact_id, {"old": 30, "new": 45, "points": 15, "reason": "pricing-viewed"}, "parcours"
    )
    local.advance(seconds=1)
    queue(
        local, SCORE_CHANGED, contact_id, {"old": 45, "new": 60, "points": 15, "reason": "pricing-viewed"}, "parcours"
    )
    local.advance(seconds=1)

    # When the scoring's contact.qualified event is processed
    event_id = qualify(local, contact_id, 60)

    # Then the CRM receives one POST, signed with the CRM secret, naming its delivery
    delivery = handoff.delivery_id(event_id)
    [post] = posts(local, crm, delivery)
    assert post.verifies_with(CRM_SECRET)
    assert post.headers["content-type"] == "application/json"
    # with the documented payload: the moment, the score, the profile, the reasons and the recent behaviour
    body = post.json()
    assert {k: body[k] for k in ("type", "version", "delivery", "event_id", "stage", "score", "qualified_at")} == {
        "type": "contact.qualified",
        "version": 1,
        "delivery": delivery,
        "event_id": event_id,
        "stage": "sql",
        "score": 60,
        "qualified_at": "2026-11-24T10:00:00+00:00",
    }
    assert (body["contact"]["contact_id"], body["contact"]["email"], body["contact"]["last_name"]) == (
        contact_id,
        email,
        "Martin",
    )
    assert [(r["old"], r["new"], r["points"], r["reason"]) for r in body["reasons"]] == [
        (30, 45, 15, "pricing-viewed"),
        (45, 60, 15, "pricing-viewed"),
    ]
    assert [(e["type"], e["properties"]["path"]) for e in body["recent_events"]] == [("page.viewed", "/blog/guide")]
    # and EventBridge carries contact.qualified once, without personal data
    [announcement] = announced(local, subscribed, contact_id)
    assert (announcement["source"], announcement["detail-type"]) == ("parcours", "contact.qualified")
    assert announcement["detail"] == {
        "version": 1,
        "event_id": event_id,
        "delivery": delivery,
        "contact_id": contact_id,
        "score": 60,
        "stage": "sql",
        "qualified_at": "2026-11-24T10:00:00+00:00",
        "crm": "accepted",
    }
    assert email not in json.dumps(announcement)
    # and nothing more reached the CRM about it, not even when a retry would have come
    local.advance(seconds=handoff.backoff(1))
    assert len(crm.for_delivery(delivery)) == 1


def test_a_crm_answering_503_gets_the_lead_again_later_with_the_same_delivery_id(
    local: RunningLocal, store: Tables, crm: CrmReceiver, subscribed: str
) -> None:
    # Given a CRM that answers its next request with 503
    email = f"busy.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent=None, score=55, attributes=SQL)
    crm.answer(503)

    # When a lead qualifies
    event_id = qualify(local, contact_id, 55)

    # Then the CRM gets it a second time, exactly the first backoff (30 s) later, with the same delivery id, and
    # takes it
    delivery = handoff.delivery_id(event_id)
    assert len(posts(local, crm, delivery)) == 1
    local.advance(seconds=handoff.backoff(1) - 1)
    assert len(crm.for_delivery(delivery)) == 1
    local.advance(seconds=1)
    first, second = crm.for_delivery(delivery)
    assert first.headers["x-parcours-delivery"] == second.headers["x-parcours-delivery"] == delivery
    assert second.verifies_with(CRM_SECRET)
    assert first.json()["event_id"] == second.json()["event_id"] == event_id
    # and EventBridge hears of it once, after the CRM accepted it
    assert [a["detail"]["crm"] for a in announced(local, subscribed, contact_id)] == ["accepted"]
    assert len(crm.for_delivery(delivery)) == 2


def test_a_refused_handoff_waits_in_its_dlq_and_reaches_the_crm_once_redriven(
    local: RunningLocal, store: Tables, crm: CrmReceiver, subscribed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a CRM that refuses the next request (a wrong secret, a schema it rejects...)
    email = f"refused.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent=None, score=70, attributes=SQL)
    crm.answer(422)
    event_id = qualify(local, contact_id, 70)
    delivery = handoff.delivery_id(event_id)
    assert len(posts(local, crm, delivery)) == 1

    # When the operator lists the handoff's dead-letter queue
    listed = dlq(local, capsys, "list", "--queue", "handoff")[1]
    # Then the handoff is there with its reason, nothing personal, and EventBridge heard nothing
    [row] = [line for line in listed.splitlines() if event_id in line]
    assert "refused: CrmRefused: CRM answered 422" in row
    assert email not in listed
    assert announced(local, subscribed, contact_id) == []

    # When the cause is fixed and the handoff redriven
    code, out = dlq(local, capsys, "redrive", "--queue", "handoff", "--id", event_id)
    assert code == 0
    assert event_id in out
    # Then the CRM gets it again under the same delivery id, and EventBridge once
    assert len(posts(local, crm, delivery)) == 2
    assert [a["detail"]["crm"] for a in announced(local, subscribed, contact_id)] == ["accepted"]
    assert event_id not in dlq(local, capsys, "list", "--queue", "handoff")[1]


def dlq(local: RunningLocal, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["dlq", *args, "--endpoint-url", local.aws_endpoint, "--region", "eu-west-3"])
    return code, capsys.readouterr().out


def test_a_lead_that_opens_clicks_and_views_pricing_is_handed_to_sales_once(
    local: RunningLocal, store: Tables, crm: CrmReceiver, subscribed: str
) -> None:
    """The issue's end to end: the scoring (scenarios/scoring.yaml) makes the lead SQL, the handoff tells the CRM."""
    # Given a contact with no score yet
    email = f"hot.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent="granted")
    # When it opens three emails, clicks three links and views the pricing page twice (3 x 2 + 3 x 5 + 2 x 15 = 51)
    for n in range(3):
        queue(local, "email.opened", contact_id, {"scenario": "welcome", "step": f"e{n}", "message_id": f"o{n}"}, "ses")
        queue(local, "email.clicked", contact_id, {"scenario": "welcome", "step": f"e{n}", "link": "x"}, "ses")
    for _ in range(2):
        queue(
            local, PAGE_VIEWED, contact_id, {"path": "/pricing", "url": "https://boutique.example/pricing"}, "tracking"
        )

    # Then the CRM receives one signed handoff, with the score's reasons
    def handoffs() -> list[Received]:
        return [r for r in list(crm.received) if r.json().get("contact", {}).get("contact_id") == contact_id]

    local.advance(seconds=0)
    [post] = handoffs()
    assert post.verifies_with(CRM_SECRET)
    body = post.json()
    assert (body["type"], body["stage"]) == ("contact.qualified", "sql")
    assert body["score"] >= 50
    assert sorted({r["reason"] for r in body["reasons"]}) == ["email-clicked", "email-opened", "pricing-viewed"]
    # and lead-nurturing adds the lead to the sales list
    contact = store.contacts.get(contact_id, consistent_read=True)
    assert "sales-qualified" in (contact.lists or ())
    assert (contact.attributes.as_dict() if contact.attributes else {}).get("lifecycle_stage") == "sql"
    # and nothing more reached the CRM about it, not even when a retry would have come
    local.advance(seconds=handoff.backoff(1))
    assert len(handoffs()) == 1
