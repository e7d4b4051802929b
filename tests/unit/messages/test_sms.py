"""send_sms steps against moto's SNS: who gets an SMS, what it says, how it is typed, and that it goes out once."""

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError
from moto.sns.models import sns_backends

from infra.local import InvocationContext
from shared import clients, clock
from shared.clock import Clock
from shared.events import normalise_phone
from shared.journeys import enrolments
from shared.messages import actions, sms
from shared.messages.mailer import SendDeferred, SendRefused
from shared.messages.sending import InvalidRequest, SendRequest
from shared.settings import Settings, get_settings
from shared.storage import Consent, tables
from tests.conftest import handler_of
from tests.unit.functions.test_process_metrics import metrics_of

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PHONE = "+33612345678"
OPTED_OUT = "+33612345699"  # moto's SNS lists every number ending in 99 as opted out
EXECUTION = "arn:aws:states:eu-west-3:123456789012:execution:parcours-abandoned-cart:x"
TRIGGER = {"type": "checkout.started", "properties": {"recovery_url": "https://boutique.example/r/1"}}


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    return Settings.from_environ(aws)


@pytest.fixture
def published(aws: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """The Publish calls as the SNS client made them (moto keeps the number and text, not the attributes)."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    events = clients.sns("eu-west-3").meta.events
    events.register("provide-client-params.sns.Publish", record, unique_id="test-sms-published")
    yield calls
    events.unregister("provide-client-params.sns.Publish", unique_id="test-sms-published")


def delivered() -> list[tuple[str, str]]:
    return list(sns_backends["123456789012"]["eu-west-3"].sms_messages.values())


def add_contact(settings: Settings, sms_consent: str | None = "granted", **fields: Any) -> None:
    contact = tables(settings).contacts(
        contact_id="c1",
        email="camille@example.com",
        locale="fr",
        created_at=NOW,
        updated_at=NOW,
        **{"phone": PHONE, "first_name": "Camille", **fields},
    )
    if sms_consent:
        contact.sms_consent = Consent(state=sms_consent, level="single_opt_in", source="test", at=NOW)
    contact.save()


def request(**overrides: Any) -> SendRequest:
    payload = {
        "scenario": "abandoned-cart",
        "step": "s1-reminder",
        "template": "abandoned-cart/1-reminder",
        "category": "marketing",
        "execution": EXECUTION,
        "contact_id": "c1",
        "trigger": TRIGGER,
        **overrides,
    }
    return sms.request_from(payload)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),  # the trunk 0, dialled only from within the country
        ("+1 (415) 555-0100", "+14155550100"),
        ("0033612345678", "+33612345678"),
        ("+1 415 555 0100", "+14155550100"),
        ("+123456789012345", "+123456789012345"),  # 15 digits: the most E.164 allows
        ("+1234567890123456", None),  # 16 digits
        ("06 12 34 56 78", None),  # national: which country?
        ("+0612345678", None),  # no country code starts with 0
        ("+3", None),
        ("+33 6 12 AB 56 78", None),
        ("", None),
        (None, None),
        (33612345678, None),
    ],
)
def test_only_e164_numbers_are_kept_after_removing_spacing(raw: object, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


def test_a_consenting_contact_gets_the_sms_once_even_if_the_task_is_retried(
    settings: Settings, published: list[dict[str, Any]]
) -> None:
    add_contact(settings)
    first = sms.send_sms(request(), settings, Clock())
    again = sms.send_sms(request(), settings, Clock())
    assert first["status"] == "sent"
    assert again == {"status": "duplicate", "reason": "this step was already sent for this execution"}
    [(to, text)] = delivered()
    assert to == PHONE
    assert text.startswith("La Boutique : Camille, votre panier vous attend.")
    assert "https://boutique.example/r/1" in text
    record = tables(settings).sends.get(sms_send_id())
    assert (record.channel, record.status, record.message_id) == ("sms", "sent", first["message_id"])
    assert (first["encoding"], first["segments"]) == ("GSM-7", 1)  # é is in GSM-7: one 160-septet segment
    assert (record.encoding, record.segments) == ("GSM-7", 1)


def test_a_name_outside_gsm_7_makes_the_sms_ucs_2_and_its_segments_are_recorded_for_cost(
    settings: Settings,
) -> None:
    add_contact(settings, first_name="Jérôme")  # ô is not in GSM-7: the whole SMS goes as UCS-2, 67 per segment
    answer = sms.send_sms(request(), settings, Clock())
    [(_, text)] = delivered()
    assert 70 < len(text) <= 134
    assert (answer["encoding"], answer["segments"]) == ("UCS-2", 2)
    record = tables(settings).sends.get(sms_send_id())
    assert (record.encoding, record.segments) == ("UCS-2", 2)


def sms_send_id(execution: str = EXECUTION, step: str = "s1-reminder") -> str:
    from shared.outbox import send_id

    return send_id(execution, step)


def test_the_same_step_in_another_execution_is_another_sms(settings: Settings) -> None:
    add_contact(settings)
    sms.send_sms(request(), settings, Clock())
    sms.send_sms(request(execution=EXECUTION + "-again"), settings, Clock())
    assert len(delivered()) == 2


def test_a_marketing_sms_is_promotional_and_ends_with_the_stop_mention(
    settings: Settings, published: list[dict[str, Any]]
) -> None:
    add_contact(settings)
    sms.send_sms(request(), settings, Clock())
    [(_, text)] = delivered()
    assert text.endswith("\nSTOP : répondez STOP")
    assert text.count("STOP") == 2  # the keyword, named once
    [call] = published
    assert call["MessageAttributes"] == {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"}}


def test_the_stop_mention_and_the_sender_id_come_from_the_settings(
    aws: dict[str, str], published: list[dict[str, Any]]
) -> None:
    settings = Settings.from_environ(
        {**aws, "PARCOURS_SMS_STOP_TEXT": "STOP au 36180", "PARCOURS_SMS_SENDER_ID": "Boutique"}
    )
    add_contact(settings)
    sms.send_sms(request(), settings, Clock())
    [(_, text)] = delivered()
    assert text.endswith("\nSTOP au 36180")
    assert published[0]["MessageAttributes"]["AWS.SNS.SMS.SenderID"] == {
        "DataType": "String",
        "StringValue": "Boutique",
    }


def test_a_template_that_already_ends_with_the_stop_mention_gets_it_once() -> None:
    assert sms.with_stop_mention("Hello\nSTOP au 36180\n", "STOP au 36180") == "Hello\nSTOP au 36180"
    assert sms.with_stop_mention("Hello", "STOP au 36180") == "Hello\nSTOP au 36180"


def test_a_transactional_sms_needs_no_sms_consent_is_transactional_and_has_no_stop_mention(
    settings: Settings, published: list[dict[str, Any]]
) -> None:
    add_contact(settings, sms_consent=None)
    assert sms.send_sms(request(category="transactional"), settings, Clock())["status"] == "sent"
    [(_, text)] = delivered()
    assert "STOP" not in text
    assert published[0]["MessageAttributes"]["AWS.SNS.SMS.SMSType"]["StringValue"] == "Transactional"


@pytest.mark.parametrize(
    ("category", "consent", "fields", "reason"),
    [
        ("marketing", None, {}, "no SMS marketing consent"),
        ("marketing", "denied", {}, "no SMS marketing consent"),
        ("marketing", "unknown", {}, "no SMS marketing consent"),
        ("marketing", "granted", {"phone": None}, "no phone number"),
        ("transactional", None, {"phone": None}, "no phone number"),
        (
            "marketing",
            "granted",
            {"phone": "06 12 34 56 78"},
            "phone number not in E.164 format (+ country code, at most 15 digits)",
        ),
        (
            "transactional",
            None,
            {"phone": "+33612345678901234"},
            "phone number not in E.164 format (+ country code, at most 15 digits)",
        ),
    ],
)
def test_an_sms_that_may_not_go_is_skipped_with_its_reason(
    settings: Settings, category: str, consent: str | None, fields: dict[str, Any], reason: str
) -> None:
    add_contact(settings, consent, **fields)
    assert sms.send_sms(request(category=category), settings, Clock()) == {"status": "skipped", "reason": reason}
    assert delivered() == []


@pytest.mark.parametrize("category", ["marketing", "transactional"])
def test_a_suppressed_email_address_does_not_stop_the_contact_s_sms(settings: Settings, category: str) -> None:
    # Given a contact whose email bounced for good, and who agreed to SMS
    add_contact(settings, "granted", suppressed=True, suppressed_reason="permanent_bounce:General")
    # Then the SMS still goes: the bounce was the mailbox's, not the phone's
    assert sms.send_sms(request(category=category), settings, Clock())["status"] == "sent"
    assert len(delivered()) == 1


def test_a_contact_erased_since_the_scenario_started_is_skipped(settings: Settings) -> None:
    assert sms.send_sms(request(), settings, Clock()) == {"status": "skipped", "reason": "contact not found"}


def test_a_goal_reached_meanwhile_stops_the_sms(settings: Settings) -> None:
    add_contact(settings)
    t = tables(settings)
    enrolments.record(t, "c1", "abandoned-cart", EXECUTION, NOW)
    enrolments.close(enrolments.of(t, "c1", "abandoned-cart")[0], "order.placed", NOW)
    assert sms.send_sms(request(), settings, Clock()) == {"status": "skipped", "reason": "goal reached"}
    assert delivered() == []


@pytest.mark.parametrize("category", ["marketing", "transactional"])
def test_a_number_on_the_sns_opt_out_list_is_skipped_and_the_opt_out_mirrored_on_the_contact(
    settings: Settings, category: str
) -> None:
    add_contact(settings, phone=OPTED_OUT)
    result = sms.send_sms(request(category=category), settings, Clock())
    assert result == {"status": "skipped", "reason": "the number opted out of SMS (SNS opt-out list)"}
    assert delivered() == []
    contact = tables(settings).contacts.get("c1", consistent_read=True)
    assert (contact.sms_consent.state, contact.sms_consent.source) == ("denied", "sns:opt-out")
    assert [c.source for c in contact.sms_consent_history] == ["sns:opt-out"]
    assert contact.email_consent is None  # email consent is another channel's
    # Once mirrored, a later step changes nothing more.
    sms.send_sms(request(category=category, step="s2"), settings, Clock())
    assert len(tables(settings).contacts.get("c1", consistent_read=True).sms_consent_history) == 1


class _BusySns:
    def publish(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "Throttled", "Message": "slow down"}}, "Publish")


class _RefusingSns:
    def publish(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "InvalidParameter", "Message": "no"}}, "Publish")


def test_sns_throttling_is_retryable_and_a_refusal_is_not() -> None:
    with pytest.raises(SendDeferred):
        sms.publish(_BusySns(), PHONE, "hi", "Promotional", None)  # type: ignore[arg-type]
    with pytest.raises(SendRefused):
        sms.publish(_RefusingSns(), PHONE, "hi", "Promotional", None)  # type: ignore[arg-type]


def test_a_refused_publish_releases_the_claim_so_a_retry_can_send(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contact(settings)
    real = sms.publish

    def refuse(*args: Any) -> str:
        raise SendDeferred("Throttled")

    monkeypatch.setattr(sms, "publish", refuse)
    with pytest.raises(SendDeferred):
        sms.send_sms(request(), settings, Clock())
    monkeypatch.setattr(sms, "publish", real)
    assert sms.send_sms(request(), settings, Clock())["status"] == "sent"


def test_an_incomplete_payload_names_the_missing_field() -> None:
    with pytest.raises(InvalidRequest, match="send_sms payload lacks the field contact_id"):
        sms.request_from({"scenario": "s", "step": "s1", "template": "t", "execution": "x"})
    with pytest.raises(InvalidRequest, match="send_sms category 'promo'"):
        sms.request_from(
            {"scenario": "s", "step": "s1", "template": "t", "execution": "x", "contact_id": "c", "category": "promo"}
        )


def test_a_malformed_sender_id_is_a_configuration_error(aws: dict[str, str]) -> None:
    from shared.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="PARCOURS_SMS_SENDER_ID"):
        Settings.from_environ({**aws, "PARCOURS_SMS_SENDER_ID": "La Boutique Paris"})


@pytest.fixture
def act(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from handler_of("functions.act.app", aws, monkeypatch)


def test_the_act_function_counts_the_segments_sent_so_their_cost_can_be_summed(
    act: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    add_contact(settings, first_name="Jérôme")
    payload = {**request().__dict__, "action": "send_sms"}
    answer = act(payload, InvocationContext.of("act"))
    assert (answer["status"], answer["segments"], answer["encoding"]) == ("sent", 2, "UCS-2")
    metrics = metrics_of(capsys.readouterr().out)
    assert (metrics["SmsSent"], metrics["SmsSegments"]) == ([1.0], [2.0])
    act(payload, InvocationContext.of("act"))  # a retried Task: nothing sent, nothing more to pay
    assert "SmsSegments" not in metrics_of(capsys.readouterr().out)


SUNDAY_NOON = datetime(2026, 11, 29, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
FRENCH_HOURS = {"caps": [], "when_capped": "skip", "french_hours": "08:00-20:00"}


@dataclasses.dataclass(frozen=True)
class Stopped(Clock):
    """The one clock, stopped at an instant."""

    at: datetime = SUNDAY_NOON

    def now(self) -> datetime:
        return self.at


def test_a_marketing_sms_to_a_french_number_on_sunday_waits_for_monday_8_even_in_a_skipping_scenario(
    settings: Settings, published: list[dict[str, Any]]
) -> None:
    add_contact(settings)
    answer = sms.send_sms(dataclasses.replace(request(), pacing=FRENCH_HOURS), settings, Stopped())
    assert answer["status"] == "deferred"
    assert answer["until"] == "2026-11-30T08:00:00+01:00"
    assert answer["seconds"] == 20 * 3600
    assert published == []


def test_the_act_function_counts_each_deferral(
    act: Any, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contact(settings)
    monkeypatch.setenv("PARCOURS_CLOCK_EPOCH", repr(clock.wall_time()))
    monkeypatch.setenv("PARCOURS_CLOCK_START", repr(SUNDAY_NOON.timestamp()))
    get_settings.cache_clear()
    payload = {**request().__dict__, "pacing": FRENCH_HOURS, "action": "send_sms"}
    # the deferral is an error the send's Task Catches (its Wait, then the Task again), carrying the seconds
    with pytest.raises(actions.HeldBack) as held:
        act(payload, InvocationContext.of("act"))
    assert held.value.answer["status"] == "deferred"
    assert held.value.answer["seconds"] > 0
    assert metrics_of(capsys.readouterr().out)["SmsDeferred"] == [1.0]
