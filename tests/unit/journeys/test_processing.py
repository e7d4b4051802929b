import contextvars
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from shared.clock import Clock
from shared.events import Event
from shared.journeys import dispatch, enrolments, processing
from shared.settings import Settings
from shared.sources import shopify
from shared.storage import ContactModel, tables
from tests.conftest import sample_json

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    boto3.client("stepfunctions", region_name="eu-west-3").create_state_machine(
        name="parcours-welcome", definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn"
    )
    return Settings.from_environ(aws)


def shopify_event(sample: str, topic: str = "customers/create", event_id: str = "evt-1") -> Event:
    headers = {"x-shopify-topic": topic, "x-shopify-event-id": event_id}
    return shopify.to_event(headers, sample_json(f"shopify/{sample}"), NOW)


def executions() -> list[str]:
    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]


def test_a_new_subscriber_is_stored_with_its_event_and_enters_the_welcome_scenario(settings: Settings) -> None:
    result = processing.process(shopify_event("customers-create.json"), settings, Clock())

    assert result.contact_id is not None
    assert [(o.scenario, o.started) for o in result.outcomes] == [("welcome", True)]
    name = dispatch.execution_name("welcome", result.contact_id, "shopify#evt-1")
    assert executions() == [name]
    history = list(tables(settings).events.query(result.contact_id))
    assert [(e.type, e.source) for e in history] == [("contact.subscribed", "shopify")]


def test_the_same_event_processed_again_starts_nothing_new(settings: Settings) -> None:
    processing.process(shopify_event("customers-create.json"), settings, Clock())
    processing.process(shopify_event("customers-create.json"), settings, Clock())
    # Step Functions answers a repeated start of a running execution (same name, same input) with that execution.
    assert len(executions()) == 1


def test_a_contact_without_marketing_consent_does_not_enter_a_marketing_scenario(settings: Settings) -> None:
    result = processing.process(shopify_event("customers-create-no-consent.json"), settings, Clock())
    assert [(o.started, o.reason) for o in result.outcomes] == [(False, "no marketing consent")]
    assert executions() == []


def test_an_unrecognised_topic_is_recorded_without_effect(settings: Settings) -> None:
    result = processing.process(shopify_event("products-create.json", "products/create"), settings, Clock())
    assert result.contact_id is None
    assert result.recorded
    assert [e.properties["topic"] for e in tables(settings).events.query("_unattributed#shopify")] == [
        "products/create"
    ]
    assert tables(settings).contacts.count() == 0
    assert executions() == []


def test_a_customer_redact_request_is_recorded_apart_with_ids_and_erases_the_customer(settings: Settings) -> None:
    processing.process(shopify_event("customers-create.json"), settings, Clock())
    result = processing.process(shopify_event("customers-redact.json", "customers/redact", "evt-2"), settings, Clock())
    assert not result.compliance  # carried out by itself: nothing for the operator, no alarm
    assert result.contact_id is None
    [request] = tables(settings).events.query("_compliance#shopify")
    assert request.properties["topic"] == "customers/redact"
    assert request.properties["customer_id"] == 7281290412345
    assert tables(settings).contacts.count() == 0
    [erasure] = tables(settings).events.query("_erasure")
    assert (erasure.source, erasure.properties["removed"]["contacts"]) == ("shopify:customers/redact", 1)


def test_a_shop_redact_request_erases_the_shops_contacts_and_a_data_request_is_for_the_operator(
    settings: Settings,
) -> None:
    processing.process(shopify_event("customers-create.json"), settings, Clock())
    asked = processing.process(
        shopify_event("customers-data_request.json", "customers/data_request", "evt-2"), settings, Clock()
    )
    assert asked.compliance  # alarmed: the operator sends the export
    assert tables(settings).contacts.count() == 1
    shop = processing.process(shopify_event("shop-redact.json", "shop/redact", "evt-3"), settings, Clock())
    assert not shop.compliance
    assert tables(settings).contacts.count() == 0


def test_execution_names_are_deterministic_and_allowed_by_step_functions() -> None:
    name = dispatch.execution_name("abandoned-cart", "0" * 32, "shopify#" + "x" * 200)
    assert name == dispatch.execution_name("abandoned-cart", "0" * 32, "shopify#" + "x" * 200)
    assert len(name) <= 80
    assert all(c.isalnum() or c in "-_" for c in name)


def test_a_long_scenario_id_keeps_execution_names_distinct_per_event() -> None:
    scenario = "x" * 40
    names = {dispatch.execution_name(scenario, "c" * 32, f"shopify#{n}") for n in range(100)}
    assert len(names) == 100
    assert all(len(name) <= 80 for name in names)


@pytest.mark.parametrize("known", [False, True], ids=["new-contact", "known-contact"])
def test_an_order_retried_after_a_later_step_failed_is_counted_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    # Given (for one case) a customer already known, and a Step Functions start that fails once after the contact
    # and its history were written (SQS then delivers the event again)
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = replace(settings, queue_url=url)  # the scoring's and the lists' own events go there
    if known:
        processing.process(shopify_event("customers-create.json", event_id="evt-0"), settings, Clock())
    order = shopify_event("orders-create.json", "orders/create", "evt-order")
    failures = iter([RuntimeError("StartExecution throttled")])

    def fails_once(*args: object, **kwargs: object) -> list[dispatch.Outcome]:
        for failure in failures:
            raise failure
        return []  # the post-purchase and loyalty scenarios are not deployed here

    monkeypatch.setattr(dispatch, "start_matching", fails_once)
    with pytest.raises(RuntimeError):
        processing.process(order, settings, Clock())

    # When the same event is processed again (a moment later: before, its record's key was the processing time)
    result = processing.process(order, settings, Clock())

    # Then the order counts once, its history record is there once, and the retry did what the first attempt missed
    assert result.contact_id is not None
    contact = tables(settings).contacts.get(result.contact_id)
    assert (contact.orders_count, contact.total_spent) == (1, float(order.properties["total"]))
    history = [e.type for e in tables(settings).events.query(result.contact_id)]
    assert history.count("order.placed") == 1
    assert result.recorded


def test_an_abandoned_checkout_s_recovery_link_stays_out_of_the_execution_input(settings: Settings) -> None:
    from shared.journeys import bearer

    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    sfn.create_state_machine(
        name="parcours-abandoned-cart", definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn"
    )
    processing.process(shopify_event("customers-create.json"), settings, Clock())
    checkout = shopify_event("checkouts-create.json", "checkouts/create", "evt-2")
    link = checkout.properties["recovery_url"]
    assert isinstance(link, str)
    assert "recover?key=" in link
    result = processing.process(checkout, settings, Clock())
    assert ("abandoned-cart", True) in [(o.scenario, o.started) for o in result.outcomes]

    [started] = sfn.list_executions(stateMachineArn=settings.state_machine_prefix + "abandoned-cart")["executions"]
    execution_input = sfn.describe_execution(executionArn=started["executionArn"])["input"]
    assert link not in execution_input
    assert "recover?key=" not in execution_input
    trigger = json.loads(execution_input)["trigger"]
    assert trigger["withheld"]["links"] == ["recovery_url"]
    assert result.contact_id is not None
    restored = bearer.restore(trigger, result.contact_id, tables(settings).events)  # what the send Task does
    assert restored["properties"]["recovery_url"] == link


def test_a_crash_between_the_write_and_the_start_starts_the_scenario_once_on_redelivery(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first delivery whose transaction is written, then the function dies before Step Functions is called
    event = shopify_event("customers-create.json")
    start = dispatch.start
    crash = iter([RuntimeError("the function timed out")])

    def dies_once(*args: Any, **kwargs: Any) -> None:
        for error in crash:
            raise error
        start(*args, **kwargs)

    monkeypatch.setattr(dispatch, "start", dies_once)
    with pytest.raises(RuntimeError):
        processing.process(event, settings, Clock())
    assert executions() == []
    [mark] = tables(settings).marks.scan()  # written with the contact: the event is processed

    # When SQS delivers it again, and once more after that
    again = processing.process(event, settings, Clock())
    processing.process(event, settings, Clock())

    # Then the welcome started once, under the event's name, and the contact was written once
    [contact] = tables(settings).contacts.scan()
    assert executions() == [dispatch.execution_name("welcome", contact.contact_id, "shopify#evt-1")]
    assert (again.again, [(o.scenario, o.started) for o in again.outcomes]) == (True, [("welcome", True)])
    assert [e.type for e in tables(settings).events.query(contact.contact_id)] == ["contact.subscribed"]
    assert mark.id == "event#shopify#evt-1"
    assert contact.contact_id not in json.dumps(mark.result)  # the answer a redelivery gives names no one


def test_a_redelivery_costs_one_read_and_writes_nothing(settings: Settings) -> None:
    from infra.bench import counting_dynamodb

    event = shopify_event("customers-create.json")
    processing.process(event, settings, Clock())
    with counting_dynamodb() as calls:
        processing.process(event, settings, Clock())
    assert dict(calls) == {"BatchGetItem": 1}


def every_scenario() -> None:
    """An order starts loyalty and post-purchase: their state machines, doing nothing."""
    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    for name in ("post-purchase", "loyalty", "abandoned-cart"):
        sfn.create_state_machine(name=f"parcours-{name}", definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn")


def test_two_deliveries_of_one_order_at_once_count_it_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a known customer, and their order delivered twice at the same moment: the second delivery is read
    # while the first decides, and written before it
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = replace(settings, queue_url=url)
    every_scenario()
    processing.process(shopify_event("customers-create.json", event_id="evt-0"), settings, Clock())
    order = shopify_event("orders-create.json", "orders/create", "evt-order")
    decide = processing.decide
    racing = iter([True])

    def interleaved(*args: Any, **kwargs: Any) -> processing.Result:
        answer = decide(*args, **kwargs)
        for _ in racing:
            processing.process(order, settings, Clock())  # the other delivery, in full, meanwhile
        return answer

    monkeypatch.setattr(processing, "decide", interleaved)

    # When both are processed
    first = processing.process(order, settings, Clock())

    # Then the order counts once: the later writer found the event's mark and wrote nothing
    assert first.again
    [contact] = tables(settings).contacts.scan()
    assert (contact.orders_count, contact.total_spent) == (1, float(order.properties["total"]))
    assert [e.type for e in tables(settings).events.query(contact.contact_id)].count("order.placed") == 1


def test_two_orders_of_one_customer_at_once_both_count(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a known customer whose second order is written while the first is being decided on the contact as read
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = replace(settings, queue_url=url)
    every_scenario()
    processing.process(shopify_event("customers-create.json", event_id="evt-0"), settings, Clock())
    first = shopify_event("orders-create.json", "orders/create", "evt-order-1")
    second = shopify_event("orders-create.json", "orders/create", "evt-order-2")
    second = replace(second, properties={**second.properties, "order_id": "second"})
    decide = processing.decide
    racing = iter([True])

    def interleaved(*args: Any, **kwargs: Any) -> processing.Result:
        answer = decide(*args, **kwargs)
        for _ in racing:
            processing.process(second, settings, Clock())
        return answer

    monkeypatch.setattr(processing, "decide", interleaved)

    # When the first is written: its condition on the counters as read fails, and it is read and decided again
    result = processing.process(first, settings, Clock())

    # Then both orders count
    assert not result.again
    [contact] = tables(settings).contacts.scan()
    assert contact.orders_count == 2
    assert contact.total_spent == 2 * float(first.properties["total"])


def test_a_capped_scenario_filled_between_the_read_and_the_write_is_decided_again_without_a_place(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the welcome capped at 1 contact, its last place taken by another contact while this event is decided
    [welcome] = [entry for entry in dispatch.catalogue() if entry.scenario == "welcome"]
    monkeypatch.setattr(dispatch, "catalogue", lambda: (replace(welcome, cap=1),))
    t = tables(settings)
    decide = processing.decide
    racing = iter([True])

    def interleaved(*args: Any, **kwargs: Any) -> processing.Result:
        answer = decide(*args, **kwargs)
        for _ in racing:  # the other contact's start, written at once (outside this event's writes)
            assert contextvars.Context().run(enrolments.take_place, t, "welcome", 1)
        return answer

    monkeypatch.setattr(processing, "decide", interleaved)

    # When the event's transaction meets the full counter
    result = processing.process(shopify_event("customers-create.json"), settings, Clock())

    # Then nothing passed the cap: the event was decided again, the contact stored without entering
    assert [(o.scenario, o.started, o.reason) for o in result.outcomes] == [("welcome", False, "entry cap reached")]
    assert executions() == []
    assert enrolments.running(t, "welcome") == 1
    assert result.contact_id is not None
    assert [e.type for e in t.events.query(result.contact_id)] == ["contact.subscribed"]
    assert list(t.enrolments.query(result.contact_id)) == []


def test_an_event_both_goal_and_trigger_of_a_full_capped_scenario_hands_the_place_over(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the welcome capped at 1, re-entered always, and reached as a goal by its own trigger event
    [welcome] = [entry for entry in dispatch.catalogue() if entry.scenario == "welcome"]
    capped = replace(welcome, cap=1, re_entry="always", goal_event=welcome.trigger_event)
    monkeypatch.setattr(dispatch, "catalogue", lambda: (capped,))
    t = tables(settings)
    first = processing.process(shopify_event("customers-create.json", event_id="evt-1"), settings, Clock())
    assert [(o.scenario, o.started) for o in first.outcomes] == [("welcome", True)]

    # When the same customer's next event stops their execution (a goal) and starts a new one (a trigger)
    second = processing.process(shopify_event("customers-create.json", event_id="evt-2"), settings, Clock())

    # Then the place the goal freed is the new execution's: one contact in, never more than the cap
    assert [(o.started, o.reason) for o in second.outcomes] == [
        (False, f"goal {welcome.trigger_event} reached"),
        (True, "trigger matched"),
    ]
    assert enrolments.running(t, "welcome") == 1
    assert len(executions()) == 2


def test_a_consent_withdrawn_between_the_read_and_the_write_starts_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a subscriber whose checkout is being decided when they unsubscribe (another event, written meanwhile)
    every_scenario()
    processing.process(shopify_event("customers-create.json", event_id="evt-0"), settings, Clock())
    [contact] = tables(settings).contacts.scan()
    decide = processing.decide
    racing = iter([True])

    def interleaved(*args: Any, **kwargs: Any) -> processing.Result:
        answer = decide(*args, **kwargs)
        for _ in racing:
            tables(settings).contacts(contact_id=contact.contact_id).update(
                actions=[ContactModel.email_consent.state.set("denied")]  # type: ignore[attr-defined]
            )
        return answer

    monkeypatch.setattr(processing, "decide", interleaved)

    # When the checkout's transaction meets the withdrawal
    checkout = shopify_event("checkouts-create.json", "checkouts/create", "evt-2")
    result = processing.process(checkout, settings, Clock())

    # Then it was decided again on the consent as it is: the abandoned cart does not start
    assert [(o.scenario, o.started, o.reason) for o in result.outcomes] == [
        ("abandoned-cart", False, "no marketing consent")
    ]
    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    arn = settings.state_machine_prefix + "abandoned-cart"
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    assert [e.type for e in tables(settings).events.query(contact.contact_id)].count("checkout.started") == 1
