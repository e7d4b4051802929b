from datetime import UTC, datetime

import pytest

from shared.clock import Clock
from shared.messages.templates import render_page
from shared.people import links, subscriptions
from shared.people.consent import refusal_for_marketing_email
from shared.settings import Settings
from shared.storage import Consent, tables

SECRET = "link-secret"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    settings = Settings.from_environ(aws)
    contact = tables(settings).contacts(
        contact_id="c1", email="lou@example.com", locale="en", created_at=NOW, updated_at=NOW
    )
    contact.email_consent = Consent(state="granted", level="confirmed_opt_in", source="shopify", at=NOW)
    contact.save()
    return settings


def test_a_genuine_link_unsubscribes_with_proof_and_a_repeat_is_harmless(settings: Settings) -> None:
    link = subscriptions.holder(links.token("c1", "all", SECRET), settings, SECRET)
    assert link == subscriptions.LinkHolder("c1", "all", "en")

    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is True
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is False

    stored = tables(settings).contacts.get("c1")
    assert refusal_for_marketing_email(stored) == "no marketing consent"
    assert [(c.state, c.source) for c in stored.consent_history] == [("denied", "unsubscribe:one-click")]


def test_a_forged_link_names_no_one(settings: Settings) -> None:
    assert subscriptions.holder("c1.all.forged", settings, SECRET) is None


def test_the_link_of_an_erased_contact_changes_nothing(settings: Settings) -> None:
    link = subscriptions.holder(links.token("gone", "all", SECRET), settings, SECRET)
    assert link is not None
    assert link.locale == "fr"  # the default, since nothing is known of them
    assert subscriptions.unsubscribe(link, "unsubscribe:page", settings, Clock()) is False


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize(
    ("state", "words"), [("confirm", '<form method="post"'), ("done", "marketing"), ("invalid", "not valid|pas valide")]
)
def test_the_unsubscribe_page_renders_in_each_state_and_language(locale: str, state: str, words: str) -> None:
    html = render_page(
        "unsubscribe",
        locale,
        {"state": state, "action": "/unsubscribe?t=x&y", "sender": {"name": "B", "postal_address": "Paris"}},
    )
    assert f'lang="{locale}"' in html
    assert any(word in html for word in words.split("|"))
    assert "/unsubscribe?t=x&amp;y" in html or state != "confirm"


def _fill(settings: Settings, padding: int) -> bool:
    """Contact c1 holding about 390 KB of custom attributes and `padding` more bytes; False if DynamoDB refuses it."""
    from pynamodb.exceptions import PutError

    contact = tables(settings).contacts.get("c1")
    contact.attributes = {**{f"a{n}": "x" * 1000 for n in range(390)}, "padding": "p" * padding}
    try:
        contact.save()
    except PutError:
        return False
    return True


def test_an_unsubscribe_succeeds_whatever_else_a_large_contact_holds(settings: Settings) -> None:
    assert _fill(settings, 1000)
    link = subscriptions.LinkHolder("c1", "all", "en")
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is True
    stored = tables(settings).contacts.get("c1", consistent_read=True)
    assert refusal_for_marketing_email(stored) == "no marketing consent"
    assert [(c.state, c.source) for c in stored.consent_history] == [("denied", "unsubscribe:one-click")]
    assert len(stored.attributes.as_dict()) == 391  # nothing else touched


def test_an_unsubscribe_takes_effect_even_on_a_contact_at_dynamodbs_item_limit(settings: Settings) -> None:
    low, high = 0, 20_000  # the largest padding DynamoDB stores: the contact is then within bytes of 400 KB
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _fill(settings, middle) else (low, middle)
    assert _fill(settings, low)
    link = subscriptions.LinkHolder("c1", "all", "en")
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is True
    stored = tables(settings).contacts.get("c1", consistent_read=True)
    assert refusal_for_marketing_email(stored) == "no marketing consent"
    assert (stored.email_consent.state, stored.email_consent.source) == ("denied", "unsubscribe:one-click")
    # The history's new entry did not fit: the current statement is the proof, and it is written.
    assert stored.consent_history == []
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is False


def test_an_unsubscribe_never_recreates_a_contact_erased_meanwhile(settings: Settings) -> None:
    contacts = tables(settings).contacts
    contact = contacts.get("c1")
    contact.delete()
    from shared.events import ConsentFacts

    statement = ConsentFacts(state="denied", level=None, at=NOW.isoformat(), source="unsubscribe:page")
    assert subscriptions._record(contact, statement, NOW, withdrawal=True) is False
    assert contacts.count() == 0


def test_an_unsubscribe_through_a_scenario_email_is_recorded_once_in_the_history_naming_that_email(
    settings: Settings,
) -> None:
    origin = links.Origin("abandoned-cart", "e2-help", "b")
    link = subscriptions.holder(links.token("c1", "all", SECRET, origin), settings, SECRET)
    assert link is not None
    assert link.origin == origin
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is True
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock()) is False  # nothing changed
    [record] = list(tables(settings).events.query("c1"))
    assert record.type == "email.unsubscribed"
    assert record.properties == {
        "topic": "unsubscribe:one-click",
        "scenario": "abandoned-cart",
        "step": "e2-help",
        "variant": "b",
    }
    assert record.expires_at is not None


def test_an_unsubscribe_through_an_older_link_writes_no_record(settings: Settings) -> None:
    link = subscriptions.holder(links.token("c1", "all", SECRET), settings, SECRET)
    assert link is not None
    assert subscriptions.unsubscribe(link, "unsubscribe:page", settings, Clock()) is True
    assert list(tables(settings).events.query("c1")) == []
