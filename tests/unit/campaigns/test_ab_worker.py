"""A campaign's A/B test through the campaign queue's worker under moto: the sample mailed with its variants, the rest
held once whatever is redelivered; the decision made once on the reports' counts, after the wait; the winner to the
rest, each person once; a cancelled test sends the rest nothing."""

from __future__ import annotations

import dataclasses
import email
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import boto3
import pytest
from moto.ses.models import ses_backends

from shared import clock
from shared.campaigns import ab, delivery, document
from shared.clock import Clock
from shared.reports import store as report_store
from shared.settings import Settings
from tests.unit.campaigns.test_delivery import DOCUMENT, person, queued

SUBJECTS = {"a": "Subject A", "b": "Subject B"}
AB_DOCUMENT = {
    **DOCUMENT,
    "ab": {"variants": [{"subject": SUBJECTS["a"]}, {"subject": SUBJECTS["b"]}], "sample": "50%", "wait": "2h"},
}


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    """As tests/unit/campaigns/test_delivery.py's: SES's domain verified, the campaign queue, 1,000 emails a second."""
    boto3.client("ses", region_name="eu-west-3").verify_domain_identity(Domain="boutique.example")
    url = boto3.client("sqs", region_name="eu-west-3").create_queue(QueueName="campaigns")["QueueUrl"]
    return Settings.from_environ(
        {**aws, "PARCOURS_CAMPAIGN_QUEUE_URL": url, "PARCOURS_LINK_SECRET": "secret", "PARCOURS_CAMPAIGN_RATE": "1000"}
    )


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The clock, driven: the test moves it on. SQS's delays are left out (moto counts them in real seconds): the
    worker puts back what is not due yet, by its `due`."""
    monkeypatch.setattr(delivery, "_delay", lambda due, now: 0)
    moment = [Clock().now().timestamp()]
    clock.drive(lambda: moment[0])
    yield moment
    clock.drive(None)


def run(settings: Settings, bodies: list[str] | None = None) -> list[str]:
    """Every message handled until only messages not due yet are left, which stay on the queue; answers the bodies
    handled."""
    handled = []
    todo = bodies if bodies is not None else [m["Body"] for m in queued(settings)]
    while todo:
        for body in todo:
            delivery.work(settings, body)
            handled.append(body)
        todo = [m["Body"] for m in queued(settings)]
        if all(json.loads(b).get("due") and _later(b) for b in todo):
            sqs = boto3.client("sqs", region_name="eu-west-3")
            for body in todo:  # back where they were
                sqs.send_message(QueueUrl=str(settings.campaign_queue_url), MessageBody=body)
            break
    return handled


def _later(body: str) -> bool:
    return datetime.fromisoformat(json.loads(body)["due"]) > Clock().now() + timedelta(seconds=1)


def mailed() -> dict[str, str]:
    """Each address mailed, with the subject it got (every message, in order: a second one would show)."""
    found: dict[str, str] = {}
    for message in ses_backends["123456789012"]["eu-west-3"].sent_messages:
        parsed = email.message_from_string(message.raw_data, policy=policy.default)
        to = message.destinations[0]
        assert to not in found, f"{to} mailed twice"
        found[to] = str(parsed["Subject"])
    return found


def drawn(people: list[str]) -> dict[str, str | None]:
    test = document.ab_of(AB_DOCUMENT["ab"])
    return {f"{p}@example.com": ab.assign("spring", test, p) for p in people}


def counted(settings: Settings, day: str, variant: str, **values: int) -> None:
    """What the reports would have counted for the campaign's variant (their counting is tested apart)."""
    boto3.client("dynamodb", region_name="eu-west-3").put_item(
        TableName=str(settings.reports_table),
        Item={
            "report": {"S": report_store.report_id("campaign.spring")},
            "key": {"S": report_store.counter_key(day, "email", variant)},
            **{name: {"N": str(n)} for name, n in values.items()},
        },
    )


def start(settings: Settings, moment: list[float]) -> datetime:
    started = datetime.fromtimestamp(moment[0], UTC)
    delivery.save(settings, json.dumps(AB_DOCUMENT).encode(), started)
    delivery.start(settings, "spring", started)
    return started


def test_the_sample_gets_the_variants_the_rest_waits_then_gets_the_winner_once(
    settings: Settings, now: list[float]
) -> None:
    # Given 30 people on the list and an A/B test of two subjects on half of them
    people = [person(settings, f"p{n:02d}") for n in range(30)]
    draw = drawn(people)
    started = start(settings, now)

    # When the page is read and the sample's chunks sent
    handled = run(settings)

    # Then each person of the sample got their variant's subject; the rest nothing
    sample = {to: SUBJECTS[name] for to, name in draw.items() if name is not None}
    assert mailed() == sample
    status = delivery.status(settings, "spring")
    held = sum(1 for name in draw.values() if name is None)
    assert (status["audience"], status["sent"], status["ab"]["held"], status["ab"]["phase"]) == (
        30,
        len(sample),
        held,
        "waiting",
    )
    assert status["status"] == "sending"
    # And the decision is due the wait after the sample's last send
    waited = datetime.fromisoformat(status["ab"]["decide_at"]) - started
    assert timedelta(hours=2) < waited < timedelta(hours=2, seconds=1)  # the sample: a few ms at 1,000 a second

    # When SQS delivers the page again
    run(settings, [body for body in handled if json.loads(body)["kind"] == "page"])

    # Then nobody is held twice nor mailed twice
    assert delivery.status(settings, "spring")["ab"]["held"] == held

    # When the reports have counted b's emails clicked and a's not, and the wait is over
    day = started.date().isoformat()
    n_a = sum(1 for name in draw.values() if name == "a")
    n_b = sum(1 for name in draw.values() if name == "b")
    counted(settings, day, "a", sent=n_a, clicked=0)
    counted(settings, day, "b", sent=n_b, clicked=n_b)
    now[0] += 2 * 3600 + 60
    run(settings)

    # Then the rest got b's subject, each person once (mailed() fails on a second email)
    assert mailed() == {to: SUBJECTS[name or "b"] for to, name in draw.items()}
    status = delivery.status(settings, "spring")
    test = status["ab"]
    assert (test["phase"], test["winner"]) == ("decided", "b")
    assert (n_a, n_b) == (8, 6)  # the draw of these 30 people for this campaign (a hash: the same each run)
    assert test["significant"] is True  # 6 of 6 against 0 of 8: Fisher's p = 0.0003
    assert test["decision"]["verdict"].startswith("b wins on click rate")
    assert (status["sent"], status["status"]) == (30, "sent")

    # And a decision message delivered again decides nothing new and mails no one
    run(settings, [json.dumps({"kind": "decide", "campaign": "spring"})])
    assert len(mailed()) == 30
    assert delivery.status(settings, "spring")["ab"]["decision"] == test["decision"]


def test_a_close_result_still_sends_the_better_variant_and_says_it_was_not_significant(
    settings: Settings, now: list[float]
) -> None:
    people = [person(settings, f"q{n:02d}") for n in range(12)]
    draw = drawn(people)
    started = start(settings, now)
    run(settings)
    day = started.date().isoformat()
    counted(settings, day, "a", sent=50, clicked=6)  # 12 % against 10 %: chance could do that
    counted(settings, day, "b", sent=50, clicked=5)
    now[0] += 3 * 3600
    run(settings)
    test = delivery.status(settings, "spring")["ab"]
    assert (test["winner"], test["significant"]) == ("a", False)
    assert "not significantly" in test["decision"]["verdict"]
    assert mailed() == {to: SUBJECTS[name or "a"] for to, name in draw.items()}


def test_a_test_cancelled_while_it_waits_sends_the_rest_nothing(settings: Settings, now: list[float]) -> None:
    people = [person(settings, f"r{n:02d}") for n in range(12)]
    draw = drawn(people)
    started = start(settings, now)
    run(settings)
    delivery.cancel(settings, "spring", started)
    now[0] += 3 * 3600
    run(settings)
    assert set(mailed()) == {to for to, name in draw.items() if name is not None}
    assert queued(settings) == []
    assert delivery.status(settings, "spring")["ab"]["winner"] is None


def test_a_message_of_another_kind_is_refused() -> None:
    with pytest.raises(delivery.InvalidMessage):
        delivery.Message.from_json(json.dumps({"kind": "shout", "campaign": "spring"}))
    message: dict[str, Any] = {"kind": "rest", "campaign": "spring", "index": 2, "variant": "b"}
    assert delivery.Message.from_json(json.dumps(message)).variant == "b"


def test_the_rest_of_a_campaign_at_an_instant_is_paced_from_the_decision(
    settings: Settings, now: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rate of 2 emails a second and an A/B test at an instant a minute away
    settings = dataclasses.replace(settings, campaign_rate=2.0)
    people = [person(settings, f"s{n:02d}") for n in range(20)]
    held = sum(1 for name in drawn(people).values() if name is None)
    at = datetime.fromtimestamp(now[0], UTC) + timedelta(minutes=1)
    delivery.save(settings, json.dumps({**AB_DOCUMENT, "when": {"at": at.isoformat()}}).encode(), at)
    delivery.start(settings, "spring", at - timedelta(minutes=1))
    now[0] += 61
    run(settings)  # the sample, at the instant
    put: list[dict[str, Any]] = []
    real = delivery._queue

    def recorded(given: Settings, messages: list[tuple[delivery.Message, int]]) -> None:
        put.extend(json.loads(message.to_json()) for message, _ in messages)
        real(given, messages)

    monkeypatch.setattr(delivery, "_queue", recorded)

    # When the decision comes, hours after the instant
    now[0] += 3 * 3600
    decided = datetime.fromtimestamp(now[0], UTC)
    run(settings)

    # Then the rest's chunks are spaced at the rate from the decision on, not all due at once (a chunk handled
    # before its moment is put back as it was: counted once here)
    rest = {tuple(c["contacts"]): c for c in put if c["kind"] == "chunk" and c["variant"] == "rest:a"}  # no count: a
    assert sum(len(people) for people in rest) == held
    dues = sorted(datetime.fromisoformat(c["due"]) for c in rest.values())
    assert dues[0] >= decided
    assert (dues[-1] - dues[0]).total_seconds() == pytest.approx((held - 1) // 2, abs=1)
