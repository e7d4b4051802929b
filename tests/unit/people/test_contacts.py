from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.events import ConsentFacts, ContactFacts
from shared.people import contacts
from shared.people.consent import refusal_for_marketing_email
from shared.settings import Settings
from shared.storage import ContactModel, save_changes, tables

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FACTS = ContactFacts(
    email="camille@example.com",
    first_name="Camille",
    locale="fr",
    source_id="shopify#1",
    email_consent=ConsentFacts(
        state="granted", level="single_opt_in", at="2026-11-24T08:00:00+00:00", source="shopify:customers/create"
    ),
    updated_at="2026-11-24T08:00:00+00:00",
)


def test_a_new_contact_is_created_and_found_again_by_email_or_source_id(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    first = contacts.upsert(FACTS, t, NOW)
    assert first is not None
    by_email = contacts.upsert(ContactFacts(email="camille@example.com"), t, NOW)
    by_source = contacts.upsert(ContactFacts(source_id="shopify#1"), t, NOW)
    assert by_email is not None
    assert by_source is not None
    assert first.contact_id == by_email.contact_id == by_source.contact_id
    assert t.contacts.count() == 1


def test_consent_is_kept_with_its_proof_and_history(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contacts.upsert(FACTS, t, NOW)
    withdrawn = replace(
        FACTS,
        email_consent=ConsentFacts("denied", None, "2026-11-25T08:00:00+00:00", "shopify:customers/update"),
        updated_at="2026-11-25T08:00:00+00:00",
    )
    contact = contacts.upsert(withdrawn, t, NOW)
    assert contact is not None
    stored = t.contacts.get(contact.contact_id)
    assert stored.email_consent.state == "denied"
    assert [c.state for c in stored.consent_history] == ["granted", "denied"]
    assert stored.consent_history[0].source == "shopify:customers/create"
    assert refusal_for_marketing_email(stored) == "no marketing consent"


def test_an_older_update_arriving_late_changes_nothing(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contacts.upsert(replace(FACTS, updated_at="2026-11-24T10:00:00+00:00"), t, NOW)
    late = replace(
        FACTS,
        first_name="Old name",
        updated_at="2026-11-24T07:00:00+00:00",
        email_consent=ConsentFacts("denied", None, "2026-11-24T07:00:00+00:00", "shopify:customers/update"),
    )
    contact = contacts.upsert(late, t, NOW)
    assert contact is not None
    stored = t.contacts.get(contact.contact_id)
    assert stored.first_name == "Camille"
    assert stored.email_consent.state == "granted"


def test_facts_that_identify_no_one_create_no_contact(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    assert contacts.upsert(ContactFacts(first_name="Anonymous"), t, NOW) is None
    assert t.contacts.count() == 0


def test_orders_are_counted_with_the_amount_spent(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contacts.upsert(FACTS, t, NOW, "order.placed", {"total": "59.80"})  # a new contact's first order
    contact = contacts.upsert(FACTS, t, NOW, "order.placed", {"total": "10"})
    assert contact is not None
    stored = t.contacts.get(contact.contact_id)
    assert stored.orders_count == 2
    assert round(stored.total_spent, 2) == 69.80
    assert contact.orders_count == 2  # the object in hand is refreshed for the scenarios it starts
    assert stored.first_order_at == NOW


def test_the_first_order_time_stays_and_the_last_order_time_moves(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    later = NOW + timedelta(days=30)
    contacts.upsert(FACTS, t, NOW, "order.placed", {"total": "12"})
    contact = contacts.upsert(FACTS, t, later, "order.placed", {"total": "15"})
    assert contact is not None
    stored = t.contacts.get(contact.contact_id)
    assert (stored.first_order_at, stored.last_order_at) == (NOW, later)


def test_an_event_moves_its_counters_in_the_same_write_as_the_contact(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    # Given a contact who views two pages, one of them twice, then leaves a cart
    contacts.upsert(FACTS, t, NOW, "page.viewed", {"path": "/tarifs", "url": "https://boutique.example/tarifs"})
    contacts.upsert(FACTS, t, NOW, "page.viewed", {"path": "/tarifs"})
    contacts.upsert(FACTS, t, NOW, "page.viewed", {"path": "/carnets"})
    later = NOW + timedelta(hours=1)
    contact = contacts.upsert(
        FACTS, t, later, "checkout.started", {"completed": False, "recovery_url": "https://boutique.example/r/1"}
    )
    assert contact is not None
    stored = t.contacts.get(contact.contact_id)
    # Then the pages of interest are counted, and the cart and the last visit are kept
    assert stored.pages.as_dict() == {"/tarifs": 2, "/carnets": 1}
    assert (stored.last_cart_at, stored.last_cart_url) == (later, "https://boutique.example/r/1")
    assert stored.last_seen_at == later


def test_a_shop_editing_a_customer_is_not_the_person_being_seen(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(FACTS, t, NOW, "contact.updated", {})
    assert contact is not None
    assert t.contacts.get(contact.contact_id).last_seen_at is None


def test_the_pages_of_interest_are_bounded(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    for n in range(contacts.MAX_PAGES + 5):
        contact = contacts.upsert(FACTS, t, NOW, "page.viewed", {"path": f"/p/{n}"})
    contact = contacts.upsert(FACTS, t, NOW, "page.viewed", {"path": "/p/0"})
    assert contact is not None
    pages = t.contacts.get(contact.contact_id).pages.as_dict()
    assert len(pages) == contacts.MAX_PAGES
    assert pages["/p/0"] == 2  # a known path still counts
    assert "/p/52" not in pages


def test_opens_and_clicks_keep_their_own_last_time(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(FACTS, t, NOW)
    assert contact is not None
    contacts.record_engagement(contact, NOW + timedelta(hours=1))
    contacts.record_engagement(contact, NOW + timedelta(hours=2), clicked=True)
    stored = t.contacts.get(contact.contact_id)
    assert stored.last_opened_at == NOW + timedelta(hours=1)
    assert stored.last_clicked_at == NOW + timedelta(hours=2)


def test_a_phone_and_sms_consent_are_kept_with_their_own_history(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    granted = ConsentFacts("granted", "single_opt_in", "2026-11-24T08:00:00+00:00", "shopify:customers/create")
    contacts.upsert(replace(FACTS, phone="+33612345678", sms_consent=granted), t, NOW)
    denied = ConsentFacts("denied", None, "2026-11-25T08:00:00+00:00", "shopify:customers/update")
    contact = contacts.upsert(replace(FACTS, sms_consent=denied), t, NOW)
    assert contact is not None
    stored = t.contacts.get(contact.contact_id)
    assert stored.phone == "+33612345678"  # facts without a phone keep the known one
    assert stored.sms_consent.state == "denied"
    assert [(c.state, c.source) for c in stored.sms_consent_history] == [
        ("granted", "shopify:customers/create"),
        ("denied", "shopify:customers/update"),
    ]
    assert stored.email_consent.state == "granted"  # SMS consent is another channel's
    assert [c.state for c in stored.consent_history] == ["granted"]


def test_a_source_update_keeps_what_a_scenario_wrote_meanwhile(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(FACTS, t, NOW)
    assert contact is not None
    # Given the process function has read the contact for a source's event
    seen = t.contacts.get(contact.contact_id)
    before = seen.serialize()
    # When a scenario's step adds points and a list meanwhile
    t.contacts.get(contact.contact_id).update(
        actions=[ContactModel.score.add(15), ContactModel.lists.add({"sales-qualified"})]
    )
    # and the source's change is then saved
    seen.first_name = "Camille-Rose"
    save_changes(seen, before)
    # Then both are kept
    stored = t.contacts.get(contact.contact_id)
    assert stored.first_name == "Camille-Rose"
    assert (stored.score, stored.lists) == (15, {"sales-qualified"})


def test_a_contact_removed_attribute_is_removed(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(replace(FACTS, phone="+33612345678"), t, NOW)
    assert contact is not None
    seen = t.contacts.get(contact.contact_id)
    before = seen.serialize()
    seen.phone = None
    save_changes(seen, before)
    assert t.contacts.get(contact.contact_id).phone is None


def test_a_contact_and_its_event_record_are_written_together_or_not_at_all(aws: dict[str, str]) -> None:
    from shared.storage import EventModel, StorageError, _bind

    t = tables(Settings.from_environ(aws))
    known = contacts.upsert(FACTS, t, NOW)
    assert known is not None
    nowhere = _bind(EventModel, "no-such-table", "eu-west-3")  # the record's write is bound to fail

    def history(owner: str) -> EventModel:
        return nowhere(contact_id=owner, at_id=f"{NOW.isoformat()}#e1", type="page.viewed", source="tracking")

    # When the record cannot be written, the contact's change is not written either
    with pytest.raises(StorageError):
        contacts.upsert(replace(FACTS, first_name="Camille-Rose"), t, NOW, "page.viewed", {"path": "/"}, history)
    assert t.contacts.get(known.contact_id).first_name == "Camille"
    # And a record that can be written lands with the contact's change
    ok = contacts.upsert(
        replace(FACTS, first_name="Camille-Rose"),
        t,
        NOW,
        "page.viewed",
        {"path": "/"},
        lambda owner: t.events(contact_id=owner, at_id=f"{NOW.isoformat()}#e2", type="page.viewed", source="x"),
    )
    assert ok is not None
    assert t.contacts.get(known.contact_id).first_name == "Camille-Rose"
    assert [e.at_id for e in t.events.query(known.contact_id)] == [f"{NOW.isoformat()}#e2"]


def test_an_untrusted_source_never_changes_a_known_contacts_email_or_phone(aws: dict[str, str]) -> None:
    # Given a contact known by its email, phone and a tracking user id
    t = tables(Settings.from_environ(aws))
    known = ContactFacts(email="victim@example.com", phone="+33612345678", source_id="segment#u1")
    victim = contacts.upsert(known, t, NOW)
    assert victim is not None

    # When the public browser key claims another email and phone for that user id, with a first name
    claim = ContactFacts(
        email="attacker@example.com",
        phone="+33700000000",
        first_name="Mallory",
        source_id="segment#u1",
        identity_trusted=False,
    )
    contacts.upsert(claim, t, NOW)

    # Then the contact keeps its own email and phone (its profile field changed), and the attacker's address
    # leads to no one: a later event about it does not find the victim
    stored = t.contacts.get(victim.contact_id)
    assert (stored.email, stored.phone, stored.first_name) == ("victim@example.com", "+33612345678", "Mallory")
    assert {i.identity for i in t.identities.scan()} == {"email#victim@example.com", "phone#+33612345678", "segment#u1"}
    again = contacts.upsert(ContactFacts(email="attacker@example.com"), t, NOW)
    assert again is not None
    assert again.contact_id != victim.contact_id


def test_an_untrusted_source_may_give_a_contact_its_first_email(aws: dict[str, str]) -> None:
    """A visitor who signs up in the browser: the address is new to everyone, and it becomes the contact's."""
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(
        ContactFacts(email="new@example.com", source_id="segment#u2", identity_trusted=False), t, NOW
    )
    assert contact is not None
    assert t.contacts.get(contact.contact_id).email == "new@example.com"
    found = contacts.upsert(ContactFacts(email="new@example.com"), t, NOW)
    assert found is not None
    assert found.contact_id == contact.contact_id


def test_a_trusted_source_changes_a_contacts_email(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(ContactFacts(email="old@example.com", source_id="shopify#9"), t, NOW)
    assert contact is not None
    contacts.upsert(ContactFacts(email="new@example.com", source_id="shopify#9"), t, NOW)
    assert t.contacts.get(contact.contact_id).email == "new@example.com"


@pytest.mark.parametrize("name", ["lifecycle_stage", "qualified_at", "score", "orders_count", "email"])
def test_no_source_sets_what_parcours_keeps(aws: dict[str, str], name: str) -> None:
    """A `lifecycle_stage: sql` from any source would qualify the lead for the CRM without a point scored."""
    t = tables(Settings.from_environ(aws))
    contact = contacts.upsert(ContactFacts(email="a@example.com", attributes={name: "sql", "plan": "pro"}), t, NOW)
    assert contact is not None
    assert t.contacts.get(contact.contact_id).attributes.as_dict() == {"plan": "pro"}


def test_two_first_events_for_one_new_address_at_once_end_as_one_contact(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two first events for one new address, from the shop and the site, processed at the same moment: the
    # site's is read while the shop's is being written (it finds no one, then the shop's contact lands)
    t = tables(Settings.from_environ(aws))
    shop = ContactFacts(email="new@example.com", source_id="shopify#5", email_consent=FACTS.email_consent)
    site = ContactFacts(email="new@example.com", source_id="segment#u5", first_name="Camille")
    find = contacts._find

    def interleaved(
        keys: list[str], t_: object, deciding: list[str] | None = None, read: dict[str, str] | None = None
    ) -> tuple[str | None, dict[str, str]]:
        answer = find(keys, t, deciding, read)
        if "segment#u5" in keys and answer[0] is None:
            monkeypatch.setattr(contacts, "_find", find)
            contacts.upsert(shop, t, NOW)  # the other event wins the race meanwhile
        return answer

    monkeypatch.setattr(contacts, "_find", interleaved)

    # When both are processed
    contact = contacts.upsert(site, t, NOW)

    # Then there is one contact, holding both events' facts, found by every identity
    assert contact is not None
    assert t.contacts.count() == 1
    stored = t.contacts.get(contact.contact_id)
    assert (stored.first_name, stored.email_consent.state) == ("Camille", "granted")
    assert {i.identity: i.contact_id for i in t.identities.scan()} == dict.fromkeys(
        ["email#new@example.com", "shopify#5", "segment#u5"], contact.contact_id
    )


def test_an_identity_whose_contact_is_not_written_yet_is_completed_not_duplicated(aws: dict[str, str]) -> None:
    """The other event claimed the address and has not written its contact yet (or failed between the two): this
    event creates the contact under that id, and the other, when it writes, starts again and updates it."""
    t = tables(Settings.from_environ(aws))
    t.identities(identity="email#new@example.com", contact_id="c-other").save()
    contact = contacts.upsert(ContactFacts(email="new@example.com", first_name="Camille"), t, NOW)
    assert contact is not None
    assert contact.contact_id == "c-other"
    assert t.contacts.get("c-other").first_name == "Camille"
    assert t.contacts.count() == 1


def test_a_contact_keeps_at_most_its_limit_of_custom_attributes_however_many_events_name_new_ones(
    aws: dict[str, str],
) -> None:
    t = tables(Settings.from_environ(aws))
    for batch in range(3):  # 150 names over three events, each within the ingest's 50
        given = {f"b{batch}_{n}": "x" * 100 for n in range(50)}
        contact = contacts.upsert(ContactFacts(email="camille@example.com", attributes=given), t, NOW)
    assert contact is not None
    held = t.contacts.get(contact.contact_id, consistent_read=True).attributes.as_dict()
    assert len(held) == contacts.MAX_CONTACT_ATTRIBUTES
    assert "b2_0" not in held
    # A name it holds is still updated, a new one is still dropped.
    contacts.upsert(ContactFacts(email="camille@example.com", attributes={"b0_0": "new", "c": 1}), t, NOW)
    held = t.contacts.get(contact.contact_id, consistent_read=True).attributes.as_dict()
    assert (held["b0_0"], "c" in held) == ("new", False)


def test_a_contact_s_custom_attributes_stay_within_their_total_size() -> None:
    known = {f"a{n}": "x" * 1000 for n in range(30)}
    merged, dropped = contacts.bounded_attributes(known, {f"n{n}": "y" * 1000 for n in range(10)})
    assert len(merged) == 32  # 32 KB in all
    assert dropped == 8
