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
