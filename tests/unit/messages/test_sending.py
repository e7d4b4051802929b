import dataclasses
import email
import email.policy
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.ses.models import ses_backends

from shared import outbox
from shared.clock import Clock
from shared.journeys import pacing
from shared.messages import mailer, sending
from shared.people import links, suppression
from shared.settings import Settings
from shared.storage import Consent, get_or_none, tables
from tests.conftest import SUPPRESSION_KEY

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = suppression.HashKey(SUPPRESSION_KEY.encode())


def sent() -> list[Any]:
    return ses_backends["123456789012"]["eu-west-3"].sent_messages


def request(**overrides: str) -> sending.SendRequest:
    payload = {
        "scenario": "welcome",
        "step": "e1-welcome",
        "template": "welcome/1-welcome",
        "category": "marketing",
        "topic": "newsletter",
        "execution": "arn:aws:states:eu-west-3:123456789012:execution:parcours-welcome:x",
        "contact_id": "c1",
        **overrides,
    }
    return sending.SendRequest.from_payload(payload)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    settings = Settings.from_environ(aws)
    boto3.client("ses", region_name="eu-west-3").verify_domain_identity(Domain="boutique.example")
    return settings


def add_contact(settings: Settings, consent: str | None = "granted", **fields: Any) -> None:
    t = tables(settings)
    contact = t.contacts(
        contact_id="c1",
        email="camille@example.com",
        first_name="Camille",
        locale="fr",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )
    if consent:
        contact.email_consent = Consent(state=consent, level="single_opt_in", source="test", at=NOW)
    contact.save()


def test_a_consenting_contact_gets_the_email_once_even_if_the_task_is_retried(settings: Settings) -> None:
    add_contact(settings)
    first = sending.send_email(request(), settings, Clock(), "secret", KEY)
    again = sending.send_email(request(), settings, Clock(), "secret", KEY)
    assert first["status"] == "sent"
    assert again["status"] == "duplicate"
    assert len(sent()) == 1
    assert "Subject: Bienvenue, Camille !" in sent()[0].raw_data


def test_the_same_step_in_another_execution_is_another_send(settings: Settings) -> None:
    add_contact(settings)
    sending.send_email(request(), settings, Clock(), "secret", KEY)
    sending.send_email(request(execution="arn:...:other"), settings, Clock(), "secret", KEY)
    assert len(sent()) == 2


@pytest.mark.parametrize(
    ("consent", "fields", "reason"),
    [
        (None, {}, "no marketing consent"),
        ("denied", {}, "no marketing consent"),
        ("unknown", {}, "no marketing consent"),
        ("granted", {"suppressed": True}, "address suppressed"),
    ],
)
def test_marketing_email_is_skipped_without_consent_or_when_suppressed(
    settings: Settings, consent: str | None, fields: dict[str, Any], reason: str
) -> None:
    add_contact(settings, consent, **fields)
    assert sending.send_email(request(), settings, Clock(), "secret", KEY) == {"status": "skipped", "reason": reason}
    assert sent() == []


def test_a_contact_erased_since_the_scenario_started_is_skipped(settings: Settings) -> None:
    assert sending.send_email(request(), settings, Clock(), "secret", KEY)["reason"] == "contact not found"


def test_when_ses_refuses_nothing_is_recorded_as_sent_so_a_retry_can_send(settings: Settings) -> None:
    add_contact(settings)
    ses = boto3.client("ses", region_name="eu-west-3")
    ses.delete_identity(Identity="boutique.example")
    with pytest.raises(mailer.SendRefused):
        sending.send_email(request(), settings, Clock(), "secret", KEY)
    ses.verify_domain_identity(Domain="boutique.example")
    assert sending.send_email(request(), settings, Clock(), "secret", KEY)["status"] == "sent"


def test_an_incomplete_payload_names_the_missing_field() -> None:
    with pytest.raises(sending.InvalidRequest, match="contact_id"):
        sending.SendRequest.from_payload({"scenario": "welcome", "step": "e1", "template": "t", "execution": "x"})


def test_a_message_of_a_topic_the_contact_turned_off_is_skipped_with_the_reason(settings: Settings) -> None:
    from shared.storage import Preferences

    add_contact(settings)
    contact = tables(settings).contacts.get("c1")
    contact.update(
        actions=[
            tables(settings).contacts.preferences.set(
                Preferences(topics_off={"cart-reminders"}, frequency="all", source="preferences", at=NOW)
            )
        ]
    )
    cart = request(scenario="abandoned-cart", step="e1", template="abandoned-cart/1-reminder", topic="cart-reminders")
    assert sending.send_email(cart, settings, Clock(), "secret", KEY) == {
        "status": "skipped",
        "reason": "topic cart-reminders turned off in the preference centre",
    }
    assert sending.send_email(request(), settings, Clock(), "secret", KEY)["status"] == "sent"  # welcome: newsletter
    assert len(sent()) == 1
    transactional = request(scenario="confirm-subscription", step="confirm", template="confirm-subscription/confirm")
    turned_off_all = tables(settings).contacts.get("c1")
    turned_off_all.update(
        actions=[
            tables(settings).contacts.preferences.set(
                Preferences(topics_off={"newsletter", "promotions", "cart-reminders", "tips"}, source="p", at=NOW)
            )
        ]
    )
    confirm = sending.send_email(
        sending.SendRequest.from_payload({**transactional.__dict__, "category": "transactional", "topic": None}),
        settings,
        Clock(),
        "s",
        KEY,
    )
    assert confirm["status"] == "sent"  # no topic stops a transactional email


def test_every_email_carries_a_preferences_link_to_the_preference_centre(settings: Settings) -> None:
    add_contact(settings)
    sending.send_email(request(), settings, Clock(), "secret", KEY)
    message = email.message_from_string(sent()[0].raw_data, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = f"https://mail.boutique.example/preferences?t={links.token('c1', 'preferences', 'secret')}"
    assert f'<a href="{link}">Gérer mes préférences</a>' in html
    assert f"Gérer mes préférences ({link})" in text


ONE_A_DAY = {"caps": [{"max": 1, "seconds": 86400}], "when_capped": "defer"}


def paced(step: str, execution: str = "arn:...:x", **rules: Any) -> sending.SendRequest:
    request_ = request(step=step, execution=execution)
    return dataclasses.replace(request_, pacing={**ONE_A_DAY, **rules})


def test_a_second_marketing_email_within_the_cap_s_window_is_deferred_until_the_first_leaves_it(
    settings: Settings,
) -> None:
    # Given a contact who got the welcome email (it is counted on the contact)
    add_contact(settings)
    assert sending.send_email(paced("e1-welcome"), settings, Clock(), "secret", KEY)["status"] == "sent"
    [entry] = tables(settings).contacts.get("c1").recent_sends or []
    assert entry.split("|")[1:3] == ["email", "newsletter"]

    # When another scenario's email is due within the day, under a cap of one a day
    answer = sending.send_email(paced("e2-value", execution="arn:...:other"), settings, Clock(), "secret", KEY)

    # Then it is deferred for (about) a day, nothing is sent nor claimed, and a retry of the first is a duplicate
    assert answer["status"] == "deferred"
    assert 86400 - 60 <= answer["seconds"] <= 86400
    assert answer["reason"] == "frequency cap: 1 email per 1d"
    assert len(sent()) == 1
    assert outbox_item(settings, "arn:...:other", "e2-value") is None
    assert sending.send_email(paced("e1-welcome"), settings, Clock(), "secret", KEY)["status"] == "duplicate"


def test_a_scenario_that_skips_capped_sends_answers_capped_and_sends_nothing(settings: Settings) -> None:
    add_contact(settings)
    sending.send_email(paced("e1-welcome"), settings, Clock(), "secret", KEY)
    answer = sending.send_email(paced("e2-value", when_capped="skip"), settings, Clock(), "secret", KEY)
    assert answer == {"status": "capped", "reason": "frequency cap: 1 email per 1d"}
    assert len(sent()) == 1


def test_a_transactional_email_is_never_held_back_nor_counted(settings: Settings) -> None:
    add_contact(settings)
    sending.send_email(paced("e1-welcome"), settings, Clock(), "secret", KEY)
    receipt = request(step="confirm", category="transactional", execution="arn:...:t")
    assert sending.send_email(receipt, settings, Clock(), "secret", KEY)["status"] == "sent"
    assert len(tables(settings).contacts.get("c1").recent_sends or []) == 1


def test_a_send_counted_by_another_task_meanwhile_makes_this_one_retry_and_decide_again(settings: Settings) -> None:
    # Given the contact as a send Task read it
    add_contact(settings)
    t = tables(settings)
    stale = t.contacts.get("c1")
    # When another Task counts a send first
    fresh = t.contacts.get("c1")
    assert pacing.record(fresh, pacing.Sent(NOW, "email", "newsletter", "other-key"))
    # Then the stale one's count is refused (it re-reads and decides again), and the log holds one entry
    assert not pacing.record(stale, pacing.Sent(NOW, "email", "newsletter", "this-key"))
    assert len(t.contacts.get("c1").recent_sends or []) == 1


def test_two_sends_at_the_same_moment_never_both_squeeze_under_the_cap(settings: Settings) -> None:
    # Given a send Task that read the contact (no send yet), under a cap of one a day
    add_contact(settings)
    t = tables(settings)
    stale = t.contacts.get("c1")
    # When another scenario's send is counted first
    assert pacing.record(t.contacts.get("c1"), pacing.Sent(NOW, "email", "newsletter", "other-key"))
    # Then this one reads the contact again, decides again, and is deferred rather than counted
    answer = sending.count_send(t, paced("e2-value"), "email", stale, settings, NOW)
    assert answer is not None
    assert answer["status"] == "deferred"
    assert len(t.contacts.get("c1").recent_sends or []) == 1
    # And under a cap of three a day, with two already counted, this one is counted too
    stale = t.contacts.get("c1")
    assert pacing.record(t.contacts.get("c1"), pacing.Sent(NOW, "email", "newsletter", "third-key"))
    three_a_day = dataclasses.replace(paced("e2-value"), pacing={**ONE_A_DAY, "caps": [{"max": 3, "seconds": 86400}]})
    assert sending.count_send(t, three_a_day, "email", stale, settings, NOW) is None
    assert len(t.contacts.get("c1").recent_sends or []) == 3


def outbox_item(settings: Settings, execution: str, step: str) -> Any:
    return get_or_none(tables(settings).sends, outbox.send_id(execution, step))


def test_an_email_ses_refuses_does_not_count_against_the_cap(settings: Settings) -> None:
    # Given SES refusing the first marketing email (the sending domain not verified)
    add_contact(settings)
    ses = boto3.client("ses", region_name="eu-west-3")
    ses.delete_identity(Identity="boutique.example")
    with pytest.raises(mailer.SendRefused):
        sending.send_email(paced("e1-welcome"), settings, Clock(), "secret", KEY)
    assert tables(settings).contacts.get("c1").recent_sends == []
    # When the domain is fixed, Then another scenario's email is not held back by the one that never went out
    ses.verify_domain_identity(Domain="boutique.example")
    answer = sending.send_email(paced("e2-value", execution="arn:...:other"), settings, Clock(), "secret", KEY)
    assert answer["status"] == "sent"


# ---- the suppression key: keyed hash, and no email without it --------------------------------------------------


def test_an_address_is_suppressed_under_its_keyed_hash_and_an_entry_under_the_plain_sha256_matches_nothing(
    settings: Settings,
) -> None:
    import hashlib

    add_contact(settings)
    t = tables(settings)
    plain = hashlib.sha256(b"camille@example.com").hexdigest()  # an entry from before the keyed hash
    t.suppressions(address_hash=plain, reason="permanent_bounce:General", suppressed_at=NOW).save()
    assert sending.send_email(request(), settings, Clock(), "secret", KEY)["status"] == "sent"  # no match
    keyed = suppression.address_hash(KEY, "camille@example.com")
    t.suppressions(address_hash=keyed, reason="complaint:abuse", suppressed_at=NOW).save()
    assert sending.send_email(request(execution="arn:...:other"), settings, Clock(), "secret", KEY) == {
        "status": "skipped",
        "reason": "address suppressed",
    }


def test_without_the_suppression_key_the_act_function_sends_nothing_and_fails_the_step_naming_the_parameter(
    settings: Settings,
) -> None:
    from aws_lambda_powertools.utilities import parameters

    from shared.messages import actions
    from shared.settings import ConfigurationError

    add_contact(settings)
    parameters.clear_caches()
    keyless = dataclasses.replace(
        settings, suppression_key=None, suppression_key_parameter="/parcours/test/suppression-key", link_secret="s"
    )
    payload = {"action": "send_email", **request().__dict__}
    with pytest.raises(ConfigurationError, match=r"/parcours/test/suppression-key .*not found"):
        actions.perform(payload, keyless)
    assert sent() == []  # not sent unchecked
    assert list(tables(settings).sends.scan()) == []  # nor claimed: the step runs whole once the key is there
    assert actions.perform(payload, dataclasses.replace(settings, link_secret="s"))["status"] == "sent"
    assert len(sent()) == 1


def outcomes(settings: Settings, execution: str, step: str) -> dict[str, Any]:
    """The outcomes recorded beside a send for the reports (shared.outbox.record_outcome), by status."""
    key = outbox.send_id(execution, step)
    found = {}
    for status in outbox.OUTCOMES:
        item = get_or_none(tables(settings).sends, f"{key}#{status}")
        if item is not None:
            found[status] = (item.scenario, item.step, item.variant, item.channel)
    return found


def test_a_deferred_or_capped_send_is_recorded_once_for_the_reports_and_a_sent_one_writes_no_outcome(
    settings: Settings,
) -> None:
    add_contact(settings)
    sending.send_email(paced("e1-welcome"), settings, Clock(), "secret", KEY)
    assert outcomes(settings, "arn:...:x", "e1-welcome") == {}  # the normal path writes nothing more
    deferred = dataclasses.replace(paced("e2-value", execution="arn:...:other"), variant="b")
    for _ in range(3):  # the state machine waits and asks again: one deferred send
        assert sending.send_email(deferred, settings, Clock(), "secret", KEY)["status"] == "deferred"
    assert outcomes(settings, "arn:...:other", "e2-value") == {"deferred": ("welcome", "e2-value", "b", "email")}
    sending.send_email(paced("e3", execution="arn:...:third", when_capped="skip"), settings, Clock(), "secret", KEY)
    assert outcomes(settings, "arn:...:third", "e3") == {"capped": ("welcome", "e3", None, "email")}


def test_an_email_ses_refuses_is_recorded_failed_for_the_reports(settings: Settings) -> None:
    add_contact(settings)
    boto3.client("ses", region_name="eu-west-3").delete_identity(Identity="boutique.example")
    with pytest.raises(mailer.SendRefused):
        sending.send_email(request(), settings, Clock(), "secret", KEY)
    assert outcomes(settings, request().execution, "e1-welcome") == {"failed": ("welcome", "e1-welcome", None, "email")}


def test_the_unsubscribe_link_names_the_email_it_is_in_under_its_mac(settings: Settings) -> None:
    add_contact(settings)
    sending.send_email(dataclasses.replace(request(), variant="b"), settings, Clock(), "secret", KEY)
    message = email.message_from_string(sent()[-1].raw_data, policy=email.policy.default)
    token = message["List-Unsubscribe"].split("t=", 1)[1].split(">", 1)[0]
    from urllib.parse import unquote

    link = links.read(unquote(token), "secret")
    assert link == links.Link("c1", "all", links.Origin("welcome", "e1-welcome", "b"))
