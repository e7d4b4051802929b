"""One event's writes (shared.writes): all in one transaction with the event's mark, or none; a condition that no
longer holds names what moved. And the first read (storage.get_together): items of several tables in one request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.bench import counting_dynamodb
from shared import writes
from shared.settings import Settings
from shared.storage import ContactModel, Tables, get_together, tables

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def t(aws: dict[str, str]) -> Tables:
    return tables(Settings.from_environ(aws))


def gathered(t: Tables, event_id: str = "shopify#1") -> writes.Writes:
    return writes.Writes(mark=t.marks(id=f"event#{event_id}", expiration=NOW + timedelta(days=7)))


def stored(t: Tables, contact_id: str) -> ContactModel:
    return t.contacts.get(contact_id, consistent_read=True)


def test_everything_an_event_writes_goes_in_one_request_with_its_mark(t: Tables) -> None:
    # Given a new contact, its identity, its history record and a list membership gathered for one event
    contact = t.contacts(contact_id="c1", email="camille@example.com", created_at=NOW, updated_at=NOW)
    unit = gathered(t)
    unit.keep(contact, None)
    unit.create(t.identities(identity="email#camille@example.com", contact_id="c1"))
    unit.create(t.events(contact_id="c1", at_id=f"{NOW.isoformat()}#shopify#1", type="contact.subscribed", source="s"))
    unit.put(t.list_members(list_name="vip", contact_id="c1", joined_at=NOW, origin="rule"))

    # When it is written
    with counting_dynamodb() as calls:
        unit.commit()

    # Then one TransactWriteItems wrote the five items
    assert dict(calls) == {"TransactWriteItems": 1}
    assert stored(t, "c1").email == "camille@example.com"
    assert t.identities.get("email#camille@example.com").contact_id == "c1"
    assert t.marks.get("event#shopify#1") is not None
    assert t.list_members.count("vip") == 1


def test_a_mark_already_there_writes_nothing_and_says_processed(t: Tables) -> None:
    gathered(t).commit()  # an earlier delivery
    unit = gathered(t)
    unit.put(t.list_members(list_name="vip", contact_id="c1", joined_at=NOW, origin="rule"))
    with pytest.raises(writes.Processed):
        unit.commit()
    assert t.list_members.count("vip") == 0


def test_a_condition_that_no_longer_holds_names_its_item_and_nothing_is_written(t: Tables) -> None:
    # Given an identity another event claimed between this event's read and its write
    t.identities(identity="email#camille@example.com", contact_id="other").save()
    unit = gathered(t)
    unit.keep(t.contacts(contact_id="c1", created_at=NOW, updated_at=NOW), None)
    unit.create(t.identities(identity="email#camille@example.com", contact_id="c1"), label="identity")

    # When the event's writes meet it
    with pytest.raises(writes.Changed) as changed:
        unit.commit()

    # Then the claim is named, and neither the contact nor the mark was written
    assert changed.value.label == "identity"
    assert t.contacts.count() == 0
    assert t.marks.count() == 0


def test_a_known_contact_is_written_as_what_changed_keeping_a_list_joined_meanwhile(t: Tables) -> None:
    # Given a contact read in one list, and another list joined by a scenario's step after that read
    t.contacts(
        contact_id="c1", email="camille@example.com", lists={"a"}, score=5, created_at=NOW, updated_at=NOW
    ).save()
    contact = stored(t, "c1")
    before = contact.serialize()
    t.contacts(contact_id="c1").update(actions=[ContactModel.lists.add({"b"})])

    # When the event joins a third list and changes the score, under the condition that the score is as read
    contact.lists = {"a", "c"}
    contact.score = 7
    unit = gathered(t)
    unit.keep(contact, before)
    unit.condition(ContactModel.score == 5)
    unit.commit()

    # Then both lists joined are kept, and the score is the event's
    after = stored(t, "c1")
    assert (after.lists, after.score) == ({"a", "b", "c"}, 7)


def test_a_contact_changed_against_a_decision_fails_the_write_as_the_contact(t: Tables) -> None:
    t.contacts(contact_id="c1", score=5, created_at=NOW, updated_at=NOW).save()
    contact = stored(t, "c1")
    before = contact.serialize()
    t.contacts(contact_id="c1").update(actions=[ContactModel.score.set(9)])  # another event scored meanwhile
    contact.score = 7
    unit = gathered(t)
    unit.keep(contact, before)
    unit.condition(ContactModel.score == 5)
    with pytest.raises(writes.Changed) as changed:
        unit.commit()
    assert changed.value.label == writes.CONTACT
    assert stored(t, "c1").score == 9


def test_two_updates_of_one_item_are_one_operation(t: Tables) -> None:
    # Given an enrolment a goal closes and whose wait ends, in the same event
    arn = "arn:aws:states:eu-west-3:123456789012:execution:parcours-s:x"
    enrolment = t.enrolments(contact_id="c1", key="s#x", scenario="s", execution_arn=arn, status="active")
    enrolment.waiting_event, enrolment.started_at, enrolment.expires_at = "order.placed", NOW, NOW + timedelta(days=1)
    enrolment.save()
    enrolment = t.enrolments.get("c1", "s#x")
    unit = gathered(t)
    unit.update(enrolment, [type(enrolment).status.set("converted")])
    unit.update(enrolment, [type(enrolment).waiting_event.remove()])
    unit.commit()  # DynamoDB refuses two operations on one item in a transaction
    after = t.enrolments.get("c1", "s#x")
    assert after.status == "converted"
    assert not after.waiting_event


def test_the_first_read_gets_items_of_several_tables_in_one_request(t: Tables) -> None:
    t.identities(identity="email#camille@example.com", contact_id="c1").save()
    t.marks(id="event#shopify#1").save()
    keys = [
        (t.marks, "event#shopify#1", None),
        (t.identities, "email#camille@example.com", None),
        (t.identities, "phone#+33600000000", None),  # nobody's: absent from the answer
        (t.suppressions, "nohash", None),
    ]
    with counting_dynamodb() as calls:
        found = get_together(keys, consistent=[t.suppressions])
    assert dict(calls) == {"BatchGetItem": 1}
    assert set(found) == {keys[0], keys[1]}
    assert found[keys[1]].contact_id == "c1"  # type: ignore[attr-defined]


def test_more_items_than_a_transaction_holds_are_all_written(t: Tables) -> None:
    # Given an event joining a contact to more lists than one transaction's 100 items
    unit = gathered(t)
    unit.keep(t.contacts(contact_id="c1", created_at=NOW, updated_at=NOW), None)
    for n in range(120):
        unit.put(t.list_members(list_name=f"list-{n}", contact_id="c1", joined_at=NOW, origin="rule"))
    unit.commit()
    assert sum(t.list_members.count(f"list-{n}") for n in range(120)) == 120
    assert t.contacts.count() == 1
    assert t.marks.count() == 1


def test_a_first_list_joined_keeps_one_a_scenario_joined_meanwhile(t: Tables) -> None:
    t.contacts(contact_id="c1", created_at=NOW, updated_at=NOW).save()  # in no list when read
    contact = stored(t, "c1")
    before = contact.serialize()
    t.contacts(contact_id="c1").update(actions=[ContactModel.lists.add({"b"})])
    contact.lists = {"a"}
    unit = gathered(t)
    unit.keep(contact, before)
    unit.commit()
    assert stored(t, "c1").lists == {"a", "b"}


def test_a_contact_a_decision_read_but_nothing_changed_is_checked_not_written(t: Tables) -> None:
    t.contacts(contact_id="c1", score=5, created_at=NOW, updated_at=NOW).save()
    contact = stored(t, "c1")
    unit = gathered(t)
    unit.keep(contact, contact.serialize())
    unit.condition(ContactModel.score == 4)  # no longer as read
    with pytest.raises(writes.Changed) as changed:
        unit.commit()
    assert changed.value.label == writes.CONTACT
    unit = gathered(t)
    unit.keep(contact, contact.serialize())
    unit.condition(ContactModel.score == 5)
    unit.put(t.list_members(list_name="vip", contact_id="c1", joined_at=NOW, origin="rule"))
    unit.commit()
    assert t.list_members.count("vip") == 1


def test_a_list_read_in_another_order_is_no_change_and_the_rest_is_written() -> None:
    from shared.items import changes

    # Given a contact whose lists DynamoDB answered in the other order than the model lists them now
    contact = ContactModel(
        contact_id="c1", lists={"newsletter", "clients", "vip"}, score=5, created_at=NOW, updated_at=NOW
    )
    before = contact.serialize()
    before["lists"] = {"SS": list(reversed(before["lists"]["SS"]))}
    # When only its score changed
    contact.score = 6
    # Then the update writes the score alone (an empty DELETE of no list would be refused by DynamoDB)
    assert [action.serialize({}, {}) for action in changes(contact, before)] == [
        action.serialize({}, {}) for action in [ContactModel.score.set(6)]
    ]
