"""A campaign's pages and chunks, each message handled as the campaign queue's worker handles it, under moto: who is
mailed and why the others are not, once per person whatever is redelivered, at the sending rate."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto.ses.models import ses_backends

from shared.campaigns import delivery
from shared.campaigns.errors import CampaignRequestError
from shared.clock import Clock
from shared.journeys import pacing
from shared.settings import Settings
from shared.storage import Consent, Preferences, tables

LIST = "newsletter"
DOCUMENT = {"id": "spring", "email": "promotions/black-friday", "topic": "promotions", "audience": {"list": LIST}}


def sent_to() -> list[str]:
    return sorted(m.destinations[0] for m in ses_backends["123456789012"]["eu-west-3"].sent_messages)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    boto3.client("ses", region_name="eu-west-3").verify_domain_identity(Domain="boutique.example")
    url = boto3.client("sqs", region_name="eu-west-3").create_queue(QueueName="campaigns")["QueueUrl"]
    return Settings.from_environ(
        {**aws, "PARCOURS_CAMPAIGN_QUEUE_URL": url, "PARCOURS_LINK_SECRET": "secret", "PARCOURS_CAMPAIGN_RATE": "1000"}
    )


def person(settings: Settings, name: str, on_list: bool = True, consent: str | None = "granted", **fields: Any) -> str:
    now = Clock().now()
    t = tables(settings)
    contact = t.contacts(
        contact_id=name, email=f"{name}@example.com", created_at=now, updated_at=now, locale="fr", **fields
    )
    if consent:
        contact.email_consent = Consent(state=consent, level="single_opt_in", source="test", at=now)
    if on_list:
        contact.lists = {LIST, *(fields.get("lists") or ())}
        t.list_members(LIST, name, joined_at=now, origin="test").save()
    contact.save()
    return name


def queued(settings: Settings) -> list[dict[str, Any]]:
    """The messages visible on the campaign queue now (a delayed one shows at its moment), taken off it."""
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = str(settings.campaign_queue_url)
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            found.append(dict(message))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def run(settings: Settings, bodies: list[str] | None = None) -> list[str]:
    """Every message handled until the queue is empty (delays ignored: the worker puts back what is not due);
    answers the bodies handled."""
    handled = []
    todo = bodies if bodies is not None else [m["Body"] for m in queued(settings)]
    while todo:
        for body in todo:
            delivery.work(settings, body)
            handled.append(body)
        todo = [m["Body"] for m in queued(settings)]
        if all(json.loads(b).get("due") and _later(b) for b in todo):
            break
    return handled


def _later(body: str) -> bool:
    return datetime.fromisoformat(json.loads(body)["due"]) > Clock().now() + timedelta(seconds=1)


def save_and_start(settings: Settings, document: dict[str, Any] | None = None) -> None:
    now = Clock().now()
    chosen: dict[str, Any] = document or DOCUMENT
    delivery.save(settings, json.dumps(chosen).encode(), now)
    delivery.start(settings, str(chosen["id"]), now)


def test_each_person_is_mailed_or_counted_by_the_reason_the_send_gives(settings: Settings) -> None:
    # Given a list whose members are in every situation the scenarios' send checks
    now = Clock().now()
    person(settings, "ok")
    person(settings, "never", consent=None)
    person(settings, "left", consent="denied")
    off = Preferences(topics_off={"promotions"}, source="preferences", at=now)
    person(settings, "no-promos", preferences=off)
    person(settings, "bounced", suppressed=True)
    week = [pacing.Sent(now - timedelta(days=n), "email", "promotions", f"k{n}").encode() for n in (1, 2)]
    person(settings, "capped", recent_sends=week, sends_recorded=2)
    monthly = Preferences(frequency="monthly", source="preferences", at=now)
    lately = [pacing.Sent(now - timedelta(days=3), "email", "newsletter", "k").encode()]
    person(settings, "monthly", preferences=monthly, recent_sends=lately, sends_recorded=1)
    person(settings, "loyal", lists={"clients-fideles"})
    person(settings, "elsewhere", on_list=False)

    # When a campaign to the list, without the loyal customers, is sent
    save_and_start(settings, {**DOCUMENT, "audience": {"list": LIST, "exclude": {"lists": ["clients-fideles"]}}})
    run(settings)

    # Then one email went, and the status counts everyone else by reason
    assert sent_to() == ["ok@example.com"]
    status = delivery.status(settings, "spring")
    assert (status["audience"], status["sent"], status["excluded"], status["failed"]) == (8, 1, 1, 0)
    assert status["skipped"] == {
        "total": 6,
        "no_consent": 1,
        "unsubscribed": 1,
        "unsubscribed_topic": 1,
        "suppressed": 1,
        "frequency_cap": 1,
        "preference": 1,
    }
    assert (status["status"], status["progress"]) == ("sent", 1.0)


def test_a_page_or_chunk_delivered_twice_mails_and_counts_no_one_twice(settings: Settings) -> None:
    for name in ("a", "b", "c"):
        person(settings, name)
    person(settings, "d", consent=None)
    save_and_start(settings)
    handled = run(settings)
    assert [json.loads(body)["kind"] for body in handled] == ["page", "chunk"]

    run(settings, handled)  # SQS delivers each again

    assert sent_to() == ["a@example.com", "b@example.com", "c@example.com"]
    status = delivery.status(settings, "spring")
    assert (status["audience"], status["sent"], status["skipped"]["total"]) == (4, 3, 1)
    assert queued(settings) == []  # the page, handled already, queued no chunk again


def test_chunks_are_spaced_at_the_sending_rate_and_wait_for_their_moment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rate of 2 emails a second and 7 people
    slow = Settings.from_environ({**_environ(settings), "PARCOURS_CAMPAIGN_RATE": "2"})
    for n in range(7):
        person(slow, f"p{n}")
    save_and_start(slow)
    [page] = queued(slow)
    put: list[tuple[dict[str, Any], int]] = []
    real = delivery._queue

    def recorded(given: Settings, messages: list[tuple[delivery.Message, int]]) -> None:
        put.extend((json.loads(message.to_json()), delay) for message, delay in messages)
        real(given, messages)

    monkeypatch.setattr(delivery, "_queue", recorded)

    # When the page is read
    read_at = Clock().now()
    delivery.work(slow, page["Body"])

    # Then 4 chunks of 2 (one a second) are queued, each delayed to its place in line
    chunks = [(c, delay) for c, delay in put if c["kind"] == "chunk"]
    assert [len(c["contacts"]) for c, _ in chunks] == [2, 2, 2, 1]
    offsets = [(datetime.fromisoformat(c["due"]) - read_at).total_seconds() for c, _ in chunks]
    assert [round(o) for o in offsets] == [0, 1, 2, 3]
    assert [delay for _, delay in chunks] == [0, 1, 2, 3]  # SQS's DelaySeconds, whole seconds up

    # And a chunk handled before its moment goes back on the queue, sending nothing
    put.clear()
    delivery.work(slow, json.dumps(chunks[3][0]))
    assert sent_to() == []
    assert [c for c, _ in put] == [chunks[3][0]]


def test_in_the_contacts_quiet_hours_the_email_waits_for_them_to_end(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given email quiet hours (sending.yaml) around the contact's present hour, Paris time
    local = Clock().now().astimezone(ZoneInfo("Europe/Paris"))
    quiet = f"{(local - timedelta(hours=1)):%H:%M}-{(local + timedelta(hours=2)):%H:%M}"
    rules = {"caps": [], "when_capped": "defer", "quiet_hours": quiet}
    monkeypatch.setattr(delivery, "compiled", lambda: {"lists": [], "pacing": {"promotions": rules}})
    person(settings, "sleeper")
    save_and_start(settings)
    put: list[dict[str, Any]] = []
    real = delivery._queue

    def recorded(given: Settings, messages: list[tuple[delivery.Message, int]]) -> None:
        put.extend(json.loads(message.to_json()) for message, _ in messages)
        real(given, messages)

    monkeypatch.setattr(delivery, "_queue", recorded)

    # When the campaign's chunk comes
    run(settings)

    # Then nothing is sent nor counted yet: the chunk is queued again for the end of the quiet hours
    assert sent_to() == []
    status = delivery.status(settings, "spring")
    assert (status["sent"], status["skipped"]["total"], status["status"]) == (0, 0, "sending")
    [*_, again] = put
    assert again["contacts"] == ["sleeper"]
    ends = datetime.fromisoformat(again["due"]).astimezone(ZoneInfo("Europe/Paris"))
    assert f"{ends:%H:%M}" == quiet.split("-")[1]


def test_a_condition_audience_reads_the_contacts_it_holds_for(settings: Settings) -> None:
    person(settings, "customer", on_list=False, orders_count=2)
    person(settings, "prospect", on_list=False)
    save_and_start(settings, {**DOCUMENT, "audience": {"if": {"attribute": "orders_count", "gte": 1}}})
    run(settings)
    assert sent_to() == ["customer@example.com"]
    assert delivery.status(settings, "spring")["audience"] == 1


def test_a_campaign_goes_out_once_and_is_not_changed_after(settings: Settings) -> None:
    person(settings, "a")
    save_and_start(settings)
    with pytest.raises(CampaignRequestError) as again:
        delivery.start(settings, "spring", Clock().now())
    assert again.value.status == 409
    with pytest.raises(CampaignRequestError) as changed:
        delivery.save(settings, json.dumps(DOCUMENT).encode(), Clock().now())
    assert changed.value.status == 409
    with pytest.raises(CampaignRequestError) as unknown:
        delivery.start(settings, "nothing", Clock().now())
    assert unknown.value.status == 404


def test_the_api_knows_a_list_by_what_fills_it_or_by_its_members(settings: Settings) -> None:
    # `newsletter` is declared (scenarios/declarations.yaml); a list filled only through the admin API is known by
    # its members
    assert delivery.save(settings, json.dumps(DOCUMENT).encode(), Clock().now())["status"] == "created"
    vip = {**DOCUMENT, "id": "vip", "audience": {"list": "vip-only"}}
    with pytest.raises(CampaignRequestError) as refused:
        delivery.save(settings, json.dumps(vip).encode(), Clock().now())
    assert (refused.value.status, refused.value.field) == (400, "audience.list")
    now = Clock().now()
    tables(settings).list_members("vip-only", "a", joined_at=now, origin="admin").save()
    assert delivery.save(settings, json.dumps(vip).encode(), Clock().now())["status"] == "created"
    with pytest.raises(CampaignRequestError) as not_json:
        delivery.save(settings, b"{", Clock().now())
    assert not_json.value.status == 400


def _environ(settings: Settings) -> dict[str, str]:
    import os

    return {
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        "AWS_REGION": settings.region,
        "PARCOURS_CONTACTS_TABLE": settings.contacts_table,
        "PARCOURS_IDENTITIES_TABLE": settings.identities_table,
        "PARCOURS_EVENTS_TABLE": settings.events_table,
        "PARCOURS_SENDS_TABLE": settings.sends_table,
        "PARCOURS_ENROLMENTS_TABLE": settings.enrolments_table,
        "PARCOURS_DATES_TABLE": settings.dates_table,
        "PARCOURS_SUPPRESSIONS_TABLE": settings.suppressions_table,
        "PARCOURS_DISCOUNT_CODES_TABLE": settings.discount_codes_table,
        "PARCOURS_LIST_MEMBERS_TABLE": settings.list_members_table,
        "PARCOURS_IDEMPOTENCY_TABLE": settings.idempotency_table,
        "PARCOURS_REPORTS_TABLE": settings.reports_table,
        "PARCOURS_CAMPAIGNS_TABLE": settings.campaigns_table or "",
        "PARCOURS_CAMPAIGN_QUEUE_URL": settings.campaign_queue_url or "",
        "PARCOURS_QUEUE_URL": settings.queue_url,
        "PARCOURS_STATE_MACHINE_PREFIX": settings.state_machine_prefix,
        "PARCOURS_FROM_ADDRESS": settings.from_address,
        "PARCOURS_CONFIGURATION_SET": settings.configuration_set,
        "PARCOURS_PUBLIC_BASE_URL": settings.public_base_url,
        "PARCOURS_SENDER_NAME": settings.sender_name,
        "PARCOURS_POSTAL_ADDRESS": settings.postal_address,
        "PARCOURS_LINK_SECRET": "secret",
        "PARCOURS_SUPPRESSION_KEY": settings.suppression_key or "",
    }


def test_a_persons_file_holds_their_campaign_outcomes_and_their_erasure_removes_them(settings: Settings) -> None:
    from shared.journeys import privacy

    # Given a campaign sent to two people
    person(settings, "a")
    person(settings, "b")
    save_and_start(settings)
    run(settings)
    now = Clock().now()

    # Then a's file shows it, and a's erasure removes it; the campaign's counts stay (they name no one)
    [held] = privacy.export(settings, privacy.Who(contact_id="a"), now)["people"]
    assert [(o["campaign"], o["outcome"]) for o in held["stores"]["campaigns"]] == [("spring", "sent")]
    erased = privacy.erase(settings, privacy.Who(contact_id="a"), now, "test")
    assert erased["removed"]["campaigns"] == 1
    assert privacy.campaign_outcomes(settings, "a") == []
    assert [o["outcome"] for o in privacy.campaign_outcomes(settings, "b")] == ["sent"]
    assert delivery.status(settings, "spring")["sent"] == 2
