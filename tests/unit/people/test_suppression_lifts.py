"""An operator sees why an address is suppressed and lifts it with a reason; the lift is kept without the address,
and never gives back a consent the person withdrew."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.events import ConsentFacts
from shared.people import consent, suppression
from shared.people.errors import SuppressionRequestError
from shared.settings import Settings
from shared.storage import Consent, ContactModel, Tables, tables
from tests.conftest import SUPPRESSION_KEY

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
ADDRESS = "camille.durand@example.com"
OPERATOR = "arn:aws:iam::123456789012:user/ops"
KEY = suppression.HashKey(SUPPRESSION_KEY.encode())


@pytest.fixture
def t(aws: dict[str, str]) -> Tables:
    return tables(Settings.from_environ(aws))


def add_contact(t: Tables, contact_id: str = "c0ffee", email: str = ADDRESS) -> None:
    contact = t.contacts(contact_id=contact_id, email=email, created_at=NOW, updated_at=NOW)
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="shopify", at=NOW)
    contact.consent_history = [contact.email_consent]
    contact.save()
    t.identities(identity=f"email#{email}", contact_id=contact_id).save()


def hard_bounce(t: Tables, contact_id: str | None = "c0ffee") -> None:
    bounce = {"bounceType": "Permanent", "bounceSubType": "NoEmail"}
    assert suppression.on_bounce(t, KEY, contact_id, "msg-1", [ADDRESS], bounce, NOW).status == "suppressed"


def stored(t: Tables, contact_id: str = "c0ffee") -> ContactModel:
    return t.contacts.get(contact_id, consistent_read=True)


def test_show_says_since_when_and_why_and_the_contacts_flag(t: Tables) -> None:
    add_contact(t)
    hard_bounce(t)
    shown = suppression.status(t, KEY, " Camille.Durand@Example.com ")
    assert shown["suppressed"] is True
    assert shown["entry"] == {
        "reason": "permanent_bounce:NoEmail",
        "why": "a permanent (hard) bounce (NoEmail)",
        "since": NOW.isoformat(),
    }
    assert shown["contact"]["suppressed"] is True
    assert shown["contact"]["why"] == "a permanent (hard) bounce (NoEmail)"
    assert ADDRESS not in json.dumps(shown)  # the hash names it, never the address


def test_a_complaint_reads_as_one_and_its_consent_withdrawal_shows(t: Tables) -> None:
    add_contact(t)
    suppression.on_complaint(t, KEY, "c0ffee", [ADDRESS], {"complaintFeedbackType": "abuse"}, NOW)
    shown = suppression.status(t, KEY, ADDRESS)
    assert shown["entry"]["why"] == "a spam complaint (abuse)"
    assert (shown["contact"]["email_consent"], shown["contact"]["email_consent_source"]) == ("denied", "ses:complaint")


def test_an_address_nobody_suppressed_shows_not_suppressed_and_cannot_be_lifted(t: Tables) -> None:
    add_contact(t)
    assert suppression.status(t, KEY, ADDRESS)["suppressed"] is False
    with pytest.raises(SuppressionRequestError) as refused:
        suppression.lift(t, KEY, ADDRESS, "asked by the person", OPERATOR, LATER)
    assert (refused.value.status, str(refused.value)) == (404, "this address is not suppressed")


def test_a_lift_removes_the_entry_and_the_flag_and_is_recorded_without_the_address(t: Tables) -> None:
    add_contact(t)
    hard_bounce(t)
    answer = suppression.lift(t, KEY, ADDRESS, "  mailbox fixed, asked by phone  ", OPERATOR, LATER)
    assert not suppression.is_suppressed(t, KEY, ADDRESS)
    assert stored(t).suppressed is False
    assert stored(t).suppressed_reason is None
    assert consent.refusal_for_marketing_email(stored(t)) is None  # consent was granted: mailed again
    assert answer["suppressed"] is False
    assert answer["lifts"] == [
        {
            "reason": "mailbox fixed, asked by phone",
            "lifted_at": LATER.isoformat(),
            "lifted_by": OPERATOR,
            "suppression_reason": "permanent_bounce:NoEmail",
            "suppressed_at": NOW.isoformat(),
        }
    ]
    record = t.suppression_lifts.get(suppression.LIFTS_PREFIX + str(suppression.address_hash(KEY, ADDRESS)))
    assert ADDRESS not in json.dumps(record.serialize())


def test_lifts_accumulate_when_an_address_is_suppressed_again(t: Tables) -> None:
    add_contact(t)
    hard_bounce(t)
    suppression.lift(t, KEY, ADDRESS, "first", OPERATOR, LATER)
    hard_bounce(t)
    suppression.lift(t, KEY, ADDRESS, "second", OPERATOR, LATER + timedelta(days=1))
    assert [lifted["reason"] for lifted in suppression.status(t, KEY, ADDRESS)["lifts"]] == ["first", "second"]


def test_lifting_a_complaint_leaves_the_consent_withdrawn(t: Tables) -> None:
    add_contact(t)
    suppression.on_complaint(t, KEY, "c0ffee", [ADDRESS], {"complaintFeedbackType": "abuse"}, NOW)
    suppression.lift(t, KEY, ADDRESS, "complained by mistake, said so by email", OPERATOR, LATER)
    assert stored(t).suppressed is False
    assert stored(t).email_consent.state == "denied"
    assert consent.refusal_for_marketing_email(stored(t)) == "no marketing consent"
    assert consent.refusal_for_marketing_email(stored(t), soft_opt_in=True) is not None  # an objection, for good
    consent.record(
        contact := stored(t),
        ConsentFacts("granted", "confirmed_opt_in", LATER.isoformat(), "double-opt-in"),
        by_the_person=True,
    )
    assert consent.refusal_for_marketing_email(contact) is None  # only a new opt-in mails them again


def test_an_erased_contacts_entry_is_lifted_alone(t: Tables) -> None:
    hard_bounce(t, contact_id=None)  # no contact holds the address (erased, or never one)
    assert suppression.status(t, KEY, ADDRESS)["contact"] is None
    suppression.lift(t, KEY, ADDRESS, "re-subscribed through the shop", OPERATOR, LATER)
    assert not suppression.is_suppressed(t, KEY, ADDRESS)


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (None, "reason is required"),
        ("", "reason is required"),
        ("   ", "reason is required"),
        (42, "reason is required"),
        ("x" * 501, "reason is 501 characters; at most 500"),
        ("fixed\nby me", "control character"),
    ],
)
def test_a_lift_without_a_proper_reason_is_refused_and_changes_nothing(t: Tables, reason: object, words: str) -> None:
    add_contact(t)
    hard_bounce(t)
    with pytest.raises(SuppressionRequestError) as refused:
        suppression.lift(t, KEY, ADDRESS, reason, OPERATOR, LATER)
    assert refused.value.status == 400
    assert words in str(refused.value)
    assert suppression.is_suppressed(t, KEY, ADDRESS)
    assert stored(t).suppressed is True


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "the body is JSON"),
        (b'{"reason": "x"}', 400, "the body is JSON"),
        (b'{"email": "a@b.co", "reason": "x", "extra": 1}', 400, "the body is JSON"),
        (b'{"email": "not an address", "reason": "x"}', 400, "email is not an email address"),
        (b'{"email": "nobody@example.com", "reason": "x"}', 404, "not suppressed"),
    ],
)
def test_bad_lift_requests_name_the_problem(aws: dict[str, str], body: bytes, status: int, words: str) -> None:
    with pytest.raises(SuppressionRequestError) as refused:
        suppression.admin_lift(Settings.from_environ(aws), body, OPERATOR, LATER)
    assert refused.value.status == status
    assert words in str(refused.value)
