"""Starting and stopping scenarios from events: re-entry rules, goals, the enrolment records."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared.events import Event
from shared.journeys import dispatch, enrolments
from shared.settings import Settings
from shared.sources import shopify
from shared.storage import Consent, ContactModel, tables
from tests.conftest import sample_json

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WAIT = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}})
CART = dispatch.Entry("abandoned-cart", "checkout.started", "email", "after:604800", "order.placed")
THANKS = dispatch.Entry("post-purchase", "order.placed", "email", "always", None)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    for name in ("abandoned-cart", "post-purchase"):
        sfn.create_state_machine(name=f"parcours-{name}", definition=WAIT, roleArn="arn:aws:iam::123456789012:role/r")
    return Settings.from_environ(aws)


@pytest.fixture
def contact(settings: Settings) -> ContactModel:
    contact = tables(settings).contacts(contact_id="c1", email="c@example.com", created_at=NOW, updated_at=NOW)
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="test", at=NOW)
    contact.save()
    return contact


def event(topic: str, sample: str, event_id: str) -> Event:
    headers = {"x-shopify-topic": topic, "x-shopify-event-id": event_id}
    return shopify.to_event(headers, sample_json(f"shopify/{sample}"), NOW)


def status(settings: Settings, arn: str) -> str:
    return str(boto3.client("stepfunctions", region_name="eu-west-3").describe_execution(executionArn=arn)["status"])


def test_an_order_stops_the_running_abandoned_cart_as_a_conversion(settings: Settings, contact: ContactModel) -> None:
    # Given a contact in the abandoned-cart scenario
    checkout = event("checkouts/create", "checkouts-create.json", "e1")
    [started] = dispatch.start_matching(checkout, contact, settings, (CART, THANKS), NOW)
    assert started.started
    [enrolment] = enrolments.of(tables(settings), "c1", "abandoned-cart")
    assert enrolment.status == "active"

    # When the order arrives
    order = event("orders/create", "orders-create.json", "e2")
    [stopped] = dispatch.stop_on_goals(order, contact, settings, (CART, THANKS), NOW)

    # Then the execution is stopped and counted as converted by that event
    assert stopped.reason == "goal order.placed reached"
    assert status(settings, enrolment.execution_arn) == "ABORTED"
    [enrolment] = enrolments.of(tables(settings), "c1", "abandoned-cart")
    assert (enrolment.status, enrolment.goal_event) == ("converted", "order.placed")
    assert enrolments.goal_reached(tables(settings), "c1", "abandoned-cart", enrolment.execution_arn)


def test_a_goal_after_the_scenario_ended_is_not_a_conversion(settings: Settings, contact: ContactModel) -> None:
    dispatch.start_matching(event("checkouts/create", "checkouts-create.json", "e1"), contact, settings, (CART,), NOW)
    [enrolment] = enrolments.of(tables(settings), "c1", "abandoned-cart")
    boto3.client("stepfunctions", region_name="eu-west-3").stop_execution(executionArn=enrolment.execution_arn)
    [outcome] = dispatch.stop_on_goals(
        event("orders/create", "orders-create.json", "e2"), contact, settings, (CART,), NOW
    )
    assert outcome.reason == "had already finished"
    assert enrolments.of(tables(settings), "c1", "abandoned-cart")[0].status == "finished"


def test_re_entry_after_a_duration_waits_that_long(settings: Settings, contact: ContactModel) -> None:
    first = dispatch.start_matching(
        event("checkouts/create", "checkouts-create.json", "e1"), contact, settings, (CART,), NOW
    )
    soon = dispatch.start_matching(
        event("checkouts/create", "checkouts-create.json", "e2"), contact, settings, (CART,), NOW + timedelta(days=2)
    )
    later = dispatch.start_matching(
        event("checkouts/create", "checkouts-create.json", "e3"), contact, settings, (CART,), NOW + timedelta(days=8)
    )
    assert [first[0].started, soon[0].started, later[0].started] == [True, False, True]
    assert "re_entry" in soon[0].reason


def test_re_entry_never_lets_a_contact_in_once(settings: Settings, contact: ContactModel) -> None:
    once = dispatch.Entry("post-purchase", "order.placed", "email", "never", None)
    first = dispatch.start_matching(event("orders/create", "orders-create.json", "e1"), contact, settings, (once,), NOW)
    second = dispatch.start_matching(
        event("orders/create", "orders-create.json", "e2"), contact, settings, (once,), NOW + timedelta(days=400)
    )
    assert (first[0].started, second[0].started) == (True, False)


def test_the_same_trigger_event_twice_starts_once(settings: Settings, contact: ContactModel) -> None:
    order = event("orders/create", "orders-create.json", "e1")
    dispatch.start_matching(order, contact, settings, (THANKS,), NOW)
    [again] = dispatch.start_matching(order, contact, settings, (THANKS,), NOW)
    assert (again.started, again.reason) == (False, "already started for this event")
    assert len(enrolments.of(tables(settings), "c1", "post-purchase")) == 1


def test_buckets_are_stable_and_spread() -> None:
    buckets = [dispatch.bucket("welcome", f"contact-{i}") for i in range(2000)]
    assert buckets[:50] == [dispatch.bucket("welcome", f"contact-{i}") for i in range(50)]
    share_a = sum(1 for b in buckets if b < 30) / len(buckets)
    assert 0.25 < share_a < 0.35


@pytest.mark.parametrize(
    ("where", "starts"),
    [
        ({"total": {"gt": 50}}, True),
        ({"total": {"gt": 60}}, False),
        ({"currency": "EUR"}, True),
        ({"currency": {"in": ["GBP", "USD"]}}, False),
        ({"total": {"lte": "59.80"}}, True),
        ({"order_name": {"exists": True}}, True),
        ({"coupon": {"exists": True}}, False),
        ({"order_name": {"contains": "#10"}}, True),
        ({"order_name": {"contains": "#99"}}, False),
    ],
)
def test_a_trigger_filter_on_event_properties_decides_who_enters(
    settings: Settings, contact: ContactModel, where: dict[str, object], starts: bool
) -> None:
    big_orders = dispatch.Entry("post-purchase", "order.placed", "email", "always", None, where)
    outcomes = dispatch.start_matching(
        event("orders/create", "orders-create.json", "e1"), contact, settings, (big_orders,), NOW
    )
    assert bool(outcomes) == starts


CAPPED = dispatch.Entry("post-purchase", "order.placed", "email", "always", "order.paid", cap=3)


def contacts(settings: Settings, count: int) -> list[ContactModel]:
    made = []
    for number in range(count):
        contact = tables(settings).contacts(
            contact_id=f"k{number}", email=f"k{number}@example.com", created_at=NOW, updated_at=NOW
        )
        contact.email_consent = Consent(state="granted", level="single_opt_in", source="test", at=NOW)
        contact.save()
        made.append(contact)
    return made


@pytest.fixture
def atomic_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write to an item atomically; moto checks and writes without a lock, so two
    threads can both pass a condition. The lock gives moto the guarantee AWS gives, nothing more."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("update_item", "put_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def serialised(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


@pytest.mark.usefixtures("atomic_writes")
def test_concurrent_starts_never_let_more_contacts_in_than_the_cap(settings: Settings) -> None:
    people = contacts(settings, 12)
    ready = threading.Barrier(len(people))

    def enter(contact: ContactModel) -> dispatch.Outcome:
        order = event("orders/create", "orders-create.json", f"order-{contact.contact_id}")
        ready.wait()  # all at once
        [outcome] = dispatch.start_matching(order, contact, settings, (CAPPED,), NOW)
        return outcome

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        outcomes = list(pool.map(enter, people))
    assert sum(outcome.started for outcome in outcomes) == 3
    assert {outcome.reason for outcome in outcomes if not outcome.started} == {"entry cap reached"}
    assert enrolments.running(tables(settings), "post-purchase") == 3
    refused = [person for person, outcome in zip(people, outcomes, strict=True) if not outcome.started]
    assert all(enrolments.of(tables(settings), p.contact_id, "post-purchase") == [] for p in refused)


def test_a_goal_that_stops_a_capped_execution_frees_its_place_once(settings: Settings) -> None:
    first, second, third = contacts(settings, 3)[:3]
    one_place = dispatch.Entry("post-purchase", "order.placed", "email", "always", "order.paid", cap=1)
    enter = [
        dispatch.start_matching(
            event("orders/create", "orders-create.json", f"o-{c.contact_id}"), c, settings, (one_place,), NOW
        )[0]
        for c in (first, second)
    ]
    assert [o.reason for o in enter] == ["trigger matched", "entry cap reached"]

    paid = event("orders/paid", "orders-create.json", "paid-1")
    [stopped] = dispatch.stop_on_goals(paid, first, settings, (one_place,), NOW)
    assert stopped.reason == "goal order.paid reached"
    assert enrolments.running(tables(settings), "post-purchase") == 0
    assert enrolments.of(tables(settings), first.contact_id, "post-purchase")[0].status == "converted"
    # the execution's Leave Task, arriving late (the stop raced it), frees nothing more
    arn = enrolments.of(tables(settings), first.contact_id, "post-purchase")[0].execution_arn
    assert not enrolments.finish(
        tables(settings), first.contact_id, "post-purchase", arn, None, NOW, capped=True, region="eu-west-3"
    )
    assert enrolments.running(tables(settings), "post-purchase") == 0

    [admitted] = dispatch.start_matching(
        event("orders/create", "orders-create.json", "o-third"), third, settings, (one_place,), NOW
    )
    assert admitted.started


def test_a_start_step_functions_refuses_gives_the_place_back(settings: Settings, contact: ContactModel) -> None:
    missing = dispatch.Entry("no-such-machine", "order.placed", "email", "always", None, cap=1)
    with pytest.raises(dispatch.DispatchError):
        dispatch.start_matching(event("orders/create", "orders-create.json", "e1"), contact, settings, (missing,), NOW)
    assert enrolments.running(tables(settings), "no-such-machine") == 0
    assert enrolments.of(tables(settings), "c1", "no-such-machine") == []


def test_any_event_of_a_goal_list_stops_the_scenario_and_the_catalogue_reads_the_list(
    settings: Settings, contact: ContactModel, tmp_path: Path
) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(
        json.dumps(
            {
                "abandoned-cart": {
                    "trigger": {"event": "checkout.started", "where": None},
                    "entry": {"consent": "email", "re_entry": "always"},
                    "goal": {"event": "email.opened", "events": ["email.opened", "email.clicked"]},
                    "category": "marketing",
                }
            }
        )
    )
    [entry] = dispatch.catalogue(path)
    assert entry.goal_events == ("email.opened", "email.clicked")
    dispatch.start_matching(event("checkouts/create", "checkouts-create.json", "e1"), contact, settings, (entry,), NOW)
    click = Event("ses#1", "email.clicked", "ses", "feedback", NOW.isoformat(), NOW.isoformat())
    [stopped] = dispatch.stop_on_goals(click, contact, settings, (entry,), NOW)
    assert stopped.reason == "goal email.clicked reached"
    assert enrolments.of(tables(settings), "c1", "abandoned-cart")[0].goal_event == "email.clicked"


@pytest.mark.parametrize(
    ("condition", "enters"),
    [
        ({"in_list": "vip"}, True),
        ({"not_in_list": "vip"}, False),
        ({"all": [{"attribute": "orders_count", "equals": 0}, {"consent": "email"}]}, True),
        ({"event": "checkout.started", "at_least": 1, "within": 86400}, True),  # the checkout it was just sent
        ({"event": "order.placed", "at_least": 1, "within": 86400}, False),
    ],
)
def test_the_entry_condition_decides_who_enters(
    settings: Settings, contact: ContactModel, condition: dict[str, Any], enters: bool
) -> None:
    # Given a contact in the vip list with no order, whose checkout is in its history
    contact.update(actions=[ContactModel.lists.add({"vip"})])
    tables(settings).events(contact_id="c1", at_id=f"{NOW.isoformat()}#e1", type="checkout.started", source="t").save()
    only_some = dispatch.Entry("abandoned-cart", "checkout.started", "email", "always", None, condition=condition)
    # When the checkout's event is dispatched
    checkout = event("checkouts/create", "checkouts-create.json", "e1")
    [outcome] = dispatch.start_matching(checkout, contact, settings, (only_some,), NOW + timedelta(minutes=1))
    # Then the contact enters only if the condition holds, and is told why not otherwise
    assert outcome.started is enters
    assert enters or outcome.reason == "entry condition not met (entry.if)"
    assert len(enrolments.of(tables(settings), "c1", "abandoned-cart")) == (1 if enters else 0)


def test_a_goal_condition_met_by_any_later_event_stops_the_execution_as_a_conversion(
    settings: Settings, contact: ContactModel
) -> None:
    # Given a contact in a scenario whose goal is to become a customer (a list), not yet in it
    until_customer = dispatch.Entry(
        "abandoned-cart", "checkout.started", "email", "always", None, goal_condition={"in_list": "customers"}
    )
    checkout = event("checkouts/create", "checkouts-create.json", "e1")
    [started] = dispatch.start_matching(checkout, contact, settings, (until_customer,), NOW)
    assert started.started
    # When an event comes while the condition does not hold, nothing stops
    assert dispatch.stop_on_goals(checkout, contact, settings, (until_customer,), NOW) == []
    # Then once the contact joined the list, the next event about it ends the execution as a conversion
    contact.update(actions=[ContactModel.lists.add({"customers"})])
    update = event("checkouts/update", "checkouts-create.json", "e2")
    [stopped] = dispatch.stop_on_goals(update, contact, settings, (until_customer,), NOW)
    assert stopped.reason == "goal goal.if reached"
    [enrolment] = enrolments.of(tables(settings), "c1", "abandoned-cart")
    assert (enrolment.status, enrolment.goal_event) == ("converted", "goal.if")
    assert status(settings, enrolment.execution_arn) == "ABORTED"
    # and a contact who already meets the goal does not enter again
    [refused] = dispatch.start_matching(
        event("checkouts/create", "checkouts-create.json", "e3"), contact, settings, (until_customer,), NOW
    )
    assert (refused.started, refused.reason) == (False, "goal already reached (goal.if)")
