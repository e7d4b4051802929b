"""README "Soft opt-in": who a soft-opt-in scenario may email without an explicit opt-in, and who it may not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import ConsentFacts
from shared.people import consent
from shared.storage import Consent, ContactModel

T = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def customer(orders: int = 1, state: str | None = None, *, suppressed: bool = False) -> ContactModel:
    contact = ContactModel(contact_id="c1", email="lou@example.com", orders_count=orders, suppressed=suppressed)
    if state is not None:
        record(contact, state, T)
    return contact


def record(contact: ContactModel, state: str, at: datetime, source: str = "shopify:customers/update") -> None:
    facts = ConsentFacts(state, "single_opt_in" if state == "granted" else None, at.isoformat(), source)
    assert consent.record(contact, facts, by_the_person=True)


def test_a_customer_who_never_objected_gets_the_soft_opt_in_scenario_and_no_other() -> None:
    contact = customer(state="unknown")  # Shopify's not_subscribed: never asked, never objected
    assert consent.refusal_for_marketing_email(contact, soft_opt_in=True) is None
    assert consent.refusal_for_marketing_email(contact) == "no marketing consent"


def test_a_contact_without_an_order_needs_an_explicit_opt_in() -> None:
    refusal = consent.refusal_for_marketing_email(customer(orders=0), soft_opt_in=True)
    assert refusal == "no marketing consent and no order (soft opt-in is for customers)"


def test_an_unsubscribe_ends_soft_opt_in_for_good_even_after_new_orders() -> None:
    contact = customer()
    record(contact, "denied", T, source="unsubscribe")
    contact.orders_count = 5
    assert consent.refusal_for_marketing_email(contact, soft_opt_in=True) == (
        "objected to marketing email: soft opt-in ended"
    )


def test_a_denial_that_a_later_statement_replaced_still_counts_as_an_objection() -> None:
    contact = customer()
    record(contact, "denied", T, source="ses:complaint")
    record(contact, "unknown", T + timedelta(days=1))  # e.g. a shop's "pending" afterwards: no new opt-in
    assert consent.objected(contact)
    assert consent.refusal_for_marketing_email(contact, soft_opt_in=True) is not None


def test_a_new_explicit_opt_in_after_an_unsubscribe_mails_again() -> None:
    contact = customer()
    record(contact, "denied", T, source="unsubscribe")
    record(contact, "granted", T + timedelta(days=30), source="preferences")
    assert consent.refusal_for_marketing_email(contact, soft_opt_in=True) is None
    assert consent.refusal_for_marketing_email(contact) is None


def test_soft_opt_in_never_reaches_a_suppressed_address() -> None:
    refusal = consent.refusal_for_marketing_email(customer(suppressed=True), soft_opt_in=True)
    assert refusal == "address suppressed"


def test_soft_opt_in_says_nothing_of_sms() -> None:
    contact = customer()
    contact.phone = "+33612345678"
    assert consent.refusal_for_marketing_email(contact, soft_opt_in=True) is None
    assert consent.refusal_for_marketing_sms(contact) == "no SMS marketing consent"


def test_a_denial_stored_without_history_counts_too() -> None:
    contact = customer()
    contact.email_consent = Consent(state="denied", level=None, source="woocommerce:order.created", at=T)
    assert consent.objected(contact)
