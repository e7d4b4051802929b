"""An SMS campaign's pages and chunks as the campaign queue's worker handles them, under moto, at chosen instants:
who gets the SMS (with the stop mention) and why the others do not; the French commercial SMS hours and the quiet
hours deferring people to the next allowed moment, never skipping them; the SMS rate."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from moto.sns.models import sns_backends

from infra import campaigns_cli
from shared.campaigns import delivery
from shared.clock import wall_time
from shared.journeys import pacing
from shared.settings import Settings
from shared.storage import Consent, Preferences, get_or_none, tables

LIST = "newsletter"
DOCUMENT = {"id": "flash", "sms": "promotions/black-friday", "topic": "promotions", "audience": {"list": LIST}}
PARIS = ZoneInfo("Europe/Paris")
TUESDAY_10 = datetime(2027, 1, 12, 10, tzinfo=PARIS)
SUNDAY_11 = datetime(2027, 1, 10, 11, tzinfo=PARIS)
MONDAY_8 = datetime(2027, 1, 11, 8, tzinfo=PARIS)


def texts() -> list[tuple[str, str]]:
    """(number, text) of every SMS SNS accepted, in order."""
    return list(sns_backends["123456789012"]["eu-west-3"].sms_messages.values())


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    return Settings.from_environ(
        {
            **aws,
            "PARCOURS_CAMPAIGN_QUEUE_URL": "https://sqs.eu-west-3.amazonaws.com/123456789012/campaigns",
            "PARCOURS_LINK_SECRET": "secret",
            "PARCOURS_CAMPAIGN_SMS_RATE": "1000",
        }
    )


def at(settings: Settings, moment: datetime) -> Settings:
    """The same deployment, its clock standing at `moment` (and running on from it)."""
    return dataclasses.replace(settings, clock_start=moment.timestamp(), clock_epoch=wall_time())


def person(
    settings: Settings, name: str, phone: str | None = "+33612345678", sms: str | None = "granted", **fields: Any
) -> str:
    now = settings.clock().now()
    t = tables(settings)
    contact = t.contacts(contact_id=name, email=f"{name}@example.com", created_at=now, updated_at=now, locale="fr")
    contact.phone = phone
    for key, value in fields.items():
        setattr(contact, key, value)
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="test", at=now)
    if sms:
        contact.sms_consent = Consent(state=sms, level="single_opt_in", source="test", at=now)
    contact.lists = {LIST, *(fields.get("lists") or ())}
    t.list_members(LIST, name, joined_at=now, origin="test").save()
    contact.save()
    return name


class Queue:
    """The campaign queue, in memory: what the worker queued with its delay, handed back when due."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.messages: list[dict[str, Any]] = []
        monkeypatch.setattr(delivery, "_queue", self.put)

    def put(self, settings: Settings, messages: list[tuple[delivery.Message, int]]) -> None:
        self.messages.extend(json.loads(message.to_json()) for message, _delay in messages)

    def run(self, settings: Settings) -> None:
        """Every message due by the settings' clock handled, and those they queue that are due too."""
        while due := [m for m in self.messages if not m["due"] or self.due(m) <= settings.clock().now()]:
            for message in due:
                self.messages.remove(message)
                delivery.work(settings, json.dumps(message))

    @staticmethod
    def due(message: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(message["due"])


def start(settings: Settings, document: dict[str, Any] = DOCUMENT) -> None:
    now = settings.clock().now()
    delivery.save(settings, json.dumps(document).encode(), now)
    delivery.start(settings, str(document["id"]), now)


def test_each_person_gets_the_sms_with_the_stop_mention_or_is_counted_by_reason(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given, on a Tuesday at 10:00 in Paris, a list whose members are in every situation the SMS send checks
    tuesday = at(settings, TUESDAY_10)
    now = tuesday.clock().now()
    person(tuesday, "ok", first_name="Léa")
    person(tuesday, "no-phone", phone=None)
    person(tuesday, "bad-phone", phone="0612345678")
    person(tuesday, "email-only", sms=None)
    person(tuesday, "replied-stop", sms="denied")
    person(tuesday, "sns-opted-out", phone="+33612345699")  # moto: numbers ending in 99 are on SNS's opt-out list
    person(tuesday, "no-promos", preferences=Preferences(topics_off={"promotions"}, source="preferences", at=now))
    today = [pacing.Sent(now - timedelta(hours=2), "sms", "newsletter", "k").encode()]
    person(tuesday, "capped", phone="+33612345670", recent_sends=today, sends_recorded=1)  # 1 SMS a day at most
    person(tuesday, "loyal", phone="+33612345671", lists={"clients-fideles"})
    queue = Queue(monkeypatch)

    # When an SMS campaign to the list, without the loyal customers, is sent
    start(tuesday, {**DOCUMENT, "audience": {"list": LIST, "exclude": {"lists": ["clients-fideles"]}}})
    queue.run(tuesday)

    # Then one SMS went, naming the sender and ending with how to stop
    [(number, text)] = texts()
    assert number == "+33612345678"
    assert text.startswith(f"{settings.sender_name} : Léa, c'est le Black Friday")
    assert text.endswith(f"\n{settings.sms_stop_text}")
    # And the status counts everyone else by reason, and is done
    status = delivery.status(tuesday, "flash")
    assert (status["channel"], status["sms"], status["email"]) == ("sms", "promotions/black-friday", "")
    assert (status["audience"], status["sent"], status["excluded"], status["failed"]) == (9, 1, 1, 0)
    assert status["skipped"] == {
        "total": 7,
        "no_phone": 1,
        "invalid_phone": 1,
        "no_consent": 1,
        "unsubscribed": 2,
        "unsubscribed_topic": 1,
        "frequency_cap": 1,
    }
    assert (status["status"], status["progress"]) == ("sent", 1.0)
    assert campaigns_cli.summary(status).startswith("campaign flash: sent, now, SMS promotions/black-friday\n")
    # And SNS's opt-out is mirrored on the contact, as a scenario's SMS does
    mirrored = get_or_none(tables(settings).contacts, "sns-opted-out")
    assert mirrored is not None
    assert mirrored.sms_consent is not None
    assert mirrored.sms_consent.state == "denied"

    # And the same chunk delivered again sends nothing more and counts no one twice
    queue.messages.append({"kind": "chunk", "campaign": "flash", "contacts": ["ok", "no-phone"], "due": ""})
    queue.run(tuesday)
    assert len(texts()) == 1
    assert delivery.status(tuesday, "flash")["sent"] == 1


def first_open_day(day: date) -> date:
    while day.weekday() == 6 or day in pacing.french_holidays(day.year):
        day += timedelta(days=1)
    return day


@pytest.mark.parametrize(
    ("started", "opens"),
    [
        (SUNDAY_11, MONDAY_8),  # no commercial SMS on Sundays
        (datetime(2027, 1, 9, 20, 30, tzinfo=PARIS), MONDAY_8),  # Saturday after 20:00, then Sunday
        (datetime(2026, 12, 25, 10, tzinfo=PARIS), datetime(2026, 12, 26, 8, tzinfo=PARIS)),  # Christmas, a Friday
        (datetime(2027, 1, 12, 6, tzinfo=PARIS), datetime(2027, 1, 12, 8, tzinfo=PARIS)),  # before 08:00
    ],
)
def test_a_campaign_started_when_french_sms_are_not_allowed_goes_out_at_the_next_opening(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, started: datetime, opens: datetime
) -> None:
    # Given two consenting people with French numbers, and an SMS campaign started when no commercial SMS may go
    assert opens.date() == first_open_day(started.date() + timedelta(days=1 if started.hour >= 20 else 0))
    then = at(settings, started)
    person(then, "a", phone="+33612345601")
    person(then, "b", phone="+33612345602")
    queue = Queue(monkeypatch)
    start(then)
    queue.run(then)

    # Then nothing goes, nobody is counted as skipped: both wait on the line from the next opening
    assert texts() == []
    waiting = delivery.status(then, "flash")
    assert (waiting["audience"], waiting["done"], waiting["status"]) == (2, 0, "sending")
    assert [Queue.due(m) for m in queue.messages] == [opens]

    # When the clock reaches that opening, both get it
    queue.run(at(settings, opens - timedelta(seconds=2)))
    assert texts() == []
    queue.run(at(settings, opens))
    assert sorted(number for number, _ in texts()) == ["+33612345601", "+33612345602"]
    assert delivery.status(at(settings, opens), "flash")["sent"] == 2


def test_a_number_abroad_waits_for_the_end_of_its_own_quiet_hours_not_for_paris(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given, on a Sunday at 13:00 in Paris (21:00 in Tokyo), a Tokyo contact with a Japanese number: the French rule
    # is not theirs; the SMS quiet hours (21:00-08:00 where they live) are
    then = at(settings, SUNDAY_11 + timedelta(hours=2))
    person(then, "tokyo", phone="+819012345678", attributes={"timezone": "Asia/Tokyo"})
    person(then, "paris", phone="+33612345601")
    queue = Queue(monkeypatch)
    start(then)
    queue.run(then)
    assert texts() == []

    # Then the Tokyo contact gets it at 08:00 Tokyo time (Monday 00:00 in Paris), the Paris one at Monday 08:00
    tokyo_8 = datetime.combine(MONDAY_8.date(), time(8), ZoneInfo("Asia/Tokyo"))
    assert sorted(Queue.due(m) for m in queue.messages) == [tokyo_8, MONDAY_8]
    queue.run(at(settings, tokyo_8))
    assert [number for number, _ in texts()] == ["+819012345678"]
    queue.run(at(settings, MONDAY_8))
    assert [number for number, _ in texts()] == ["+819012345678", "+33612345601"]


def test_an_sms_campaign_goes_at_the_sms_rate_not_the_email_rate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given emails at 1,000 a second and SMS at 2 a second, and five people
    slow = at(dataclasses.replace(settings, campaign_rate=1000.0, campaign_sms_rate=2.0), TUESDAY_10)
    for n in range(5):
        person(slow, f"p{n}", phone=f"+3361234560{n}")
    queue = Queue(monkeypatch)
    start(slow)
    [page] = queue.messages
    queue.messages.clear()
    read_at = slow.clock().now()

    # When the page is read
    delivery.work(slow, json.dumps(page))

    # Then three chunks of two, one a second
    assert [len(m["contacts"]) for m in queue.messages] == [2, 2, 1]
    assert [round((Queue.due(m) - read_at).total_seconds()) for m in queue.messages] == [0, 1, 2]


def test_sms_campaigns_have_their_own_rate_setting(aws: dict[str, str]) -> None:
    assert Settings.from_environ(aws).campaign_sms_rate == 20.0
    assert Settings.from_environ({**aws, "PARCOURS_CAMPAIGN_SMS_RATE": "5"}).campaign_sms_rate == 5.0
    with pytest.raises(Exception, match="PARCOURS_CAMPAIGN_SMS_RATE must be positive"):
        Settings.from_environ({**aws, "PARCOURS_CAMPAIGN_SMS_RATE": "0"})


def test_the_api_refuses_an_sms_missing_unrendered_or_too_long_naming_the_field(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.campaigns import sms
    from shared.campaigns.errors import CampaignRequestError

    def refusal(document: dict[str, Any]) -> CampaignRequestError:
        with pytest.raises(CampaignRequestError) as refused:
            delivery.save(settings, json.dumps(document).encode(), settings.clock().now())
        return refused.value

    missing = refusal({**DOCUMENT, "sms": "promotions/none"})
    assert (missing.status, missing.field) == (400, "sms")
    assert "no SMS template 'promotions/none'" in str(missing)
    unrendered = refusal({**DOCUMENT, "sms": "abandoned-cart/1-reminder"})  # reads the trigger a campaign has not
    assert unrendered.field == "sms"
    assert "1-reminder.fr.txt:1" in str(unrendered)
    both = refusal({**DOCUMENT, "email": "promotions/black-friday"})
    assert both.field == "sms"
    assert "not both" in str(both)
    monkeypatch.setattr(sms, "MAX_SEGMENTS", 0)  # the shipped SMS, with the deployment's stop mention, is one
    too_long = refusal(DOCUMENT)
    assert too_long.field == "sms"
    assert "1 segments, a campaign's SMS is at most 0" in str(too_long)
