"""The preference centre and double opt-in: signed links per scope, each change and its proof, through the
subscription function's own handler (API Gateway HTTP API events) and the shared functions."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from infra.local import InvocationContext
from shared.clock import Clock
from shared.people import links, subscriptions
from shared.people.consent import refusal_for_marketing_email
from shared.settings import Settings, get_settings
from shared.storage import Consent, ContactModel, tables

# A page view publishes no metric: Powertools says so, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SECRET = "link-secret"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in {
        **aws,
        "PARCOURS_LINK_SECRET": SECRET,
        "POWERTOOLS_METRICS_NAMESPACE": "parcours",
        "POWERTOOLS_SERVICE_NAME": "parcours",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    contact = tables(settings).contacts(
        contact_id="c1", email="lou@example.com", locale="en", created_at=NOW, updated_at=NOW
    )
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="generic:contact.subscribed", at=NOW)
    contact.save()
    yield settings
    get_settings.cache_clear()


def call(method: str, path: str, token: str, form: dict[str, Any] | None = None) -> dict[str, Any]:
    """The subscription function's answer to an HTTP API (payload 2.0) request, as API Gateway sends it."""
    from functions.subscription import app

    body = urlencode(form or {}, doseq=True)
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": f"t={quote(token)}",
        "queryStringParameters": {"t": token},
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": body,
        "isBase64Encoded": False,
    }
    answer: dict[str, Any] = app.lambda_handler(
        event, InvocationContext.of("parcours-SubscriptionFunction", timeout=10)
    )
    return answer


def stored(settings: Settings) -> ContactModel:
    return tables(settings).contacts.get("c1", consistent_read=True)


def test_the_preference_page_shows_the_topics_in_the_contacts_language(settings: Settings) -> None:
    answer = call("GET", "/preferences", links.token("c1", "preferences", SECRET))
    assert answer["statusCode"] == 200
    html = answer["body"]
    assert 'lang="en"' in html
    assert '<form method="post"' in html
    assert "<script" not in html
    for topic in ("newsletter", "promotions", "cart-reminders", "tips"):
        assert f'name="topic" value="{topic}" checked' in html
    assert 'name="frequency" value="all" checked' in html
    assert "Unsubscribe from all marketing emails" in html


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/preferences", "preferences"),
        ("POST", "/preferences", "preferences"),
        ("GET", "/confirm", "confirm"),
        ("POST", "/confirm", "confirm"),
        ("GET", "/unsubscribe", "all"),
        ("POST", "/unsubscribe", "all"),
    ],
)
def test_a_forged_tampered_or_other_scope_token_is_refused_and_changes_nothing(
    settings: Settings, method: str, path: str, scope: str
) -> None:
    genuine = links.token("c1", scope, SECRET)
    other_scope = "confirm" if scope != "confirm" else "preferences"
    forged = [
        genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"),  # tampered MAC
        links.token("c1", scope, "another-secret"),  # signed with another key
        genuine.replace("c1.", "c2.", 1),  # another contact under the same MAC
        links.token("c1", other_scope, SECRET),  # a genuine link, for another route
        "nonsense",
    ]
    for token in forged:
        answer = call(method, path, token, {"do": "unsubscribe", "List-Unsubscribe": "One-Click", "confirm": "yes"})
        assert answer["statusCode"] == 403, token
    contact = stored(settings)
    assert (contact.email_consent.state, contact.email_consent.level) == ("granted", "single_opt_in")
    assert contact.preferences is None


def test_turning_topics_off_and_the_frequency_are_stored_with_their_proof(settings: Settings) -> None:
    token = links.token("c1", "preferences", SECRET)
    answer = call("POST", "/preferences", token, {"do": "save", "topic": ["newsletter", "tips"], "frequency": "weekly"})
    assert answer["statusCode"] == 200
    assert "Your preferences are saved." in answer["body"]
    assert 'value="promotions">' in answer["body"]  # shown unticked now

    contact = stored(settings)
    assert contact.preferences.topics_off == {"promotions", "cart-reminders"}
    assert (contact.preferences.frequency, contact.preferences.source) == ("weekly", "preferences")
    assert len(contact.preferences_history) == 1
    assert refusal_for_marketing_email(contact) is None  # topics off is not an unsubscribe
    assert subscriptions.topic_refusal(contact, "promotions") == "topic promotions turned off in the preference centre"
    assert subscriptions.topic_refusal(contact, "newsletter") is None
    assert subscriptions.topic_refusal(contact, None) is None  # transactional

    # The same form again adds no history; turning a topic back on is another change
    call("POST", "/preferences", token, {"do": "save", "topic": ["newsletter", "tips"], "frequency": "weekly"})
    assert len(stored(settings).preferences_history) == 1
    call(
        "POST",
        "/preferences",
        token,
        {"do": "save", "topic": ["newsletter", "tips", "promotions"], "frequency": "weekly"},
    )
    contact = stored(settings)
    assert contact.preferences.topics_off == {"cart-reminders"}
    assert len(contact.preferences_history) == 2


@pytest.mark.parametrize(
    "form",
    [
        {"do": "save", "topic": ["newsletter", "spam"], "frequency": "all"},
        {"do": "save", "topic": ["newsletter"], "frequency": "hourly"},
        {"do": "delete-everything"},
    ],
)
def test_a_crafted_form_is_refused_with_400_and_changes_nothing(settings: Settings, form: dict[str, Any]) -> None:
    answer = call("POST", "/preferences", links.token("c1", "preferences", SECRET), form)
    assert answer["statusCode"] == 400
    assert "could not be saved" in answer["body"]
    assert stored(settings).preferences is None


def test_unsubscribe_from_everything_then_resubscribe_records_each_statement(settings: Settings) -> None:
    token = links.token("c1", "preferences", SECRET)
    answer = call("POST", "/preferences", token, {"do": "unsubscribe"})
    assert answer["statusCode"] == 200
    assert "no longer receive our marketing emails" in answer["body"]
    assert "I agree to receive marketing emails from La Boutique again." in answer["body"]  # the resubscribe box
    assert refusal_for_marketing_email(stored(settings)) == "no marketing consent"

    # Resubscribing needs the box ticked
    refused = call("POST", "/preferences", token, {"do": "resubscribe"})
    assert refused["statusCode"] == 400
    assert "Tick the box" in refused["body"]
    assert stored(settings).email_consent.state == "denied"

    answer = call("POST", "/preferences", token, {"do": "resubscribe", "consent": "yes"})
    assert answer["statusCode"] == 200
    contact = stored(settings)
    assert refusal_for_marketing_email(contact) is None
    proof = contact.email_consent
    assert (proof.state, proof.level, proof.source) == ("granted", "single_opt_in", "preferences")
    assert proof.wording == "I agree to receive marketing emails from La Boutique again."
    assert [(c.state, c.source) for c in contact.consent_history] == [
        ("denied", "preferences"),
        ("granted", "preferences"),
    ]


def test_resubscribing_does_not_lift_a_suppression(settings: Settings) -> None:
    contact = stored(settings)
    contact.update(actions=[ContactModel.suppressed.set(True)])
    link = subscriptions.LinkHolder("c1", "preferences", "en")
    subscriptions.unsubscribe(link, "preferences", settings, Clock())
    subscriptions.resubscribe(link, True, settings, Clock())
    assert refusal_for_marketing_email(stored(settings)) == "address suppressed"
    assert (
        "write to us to reactivate it" in call("GET", "/preferences", links.token("c1", "preferences", SECRET))["body"]
    )


def test_the_confirmation_link_shows_a_button_and_only_its_post_records_confirmed_opt_in(settings: Settings) -> None:
    token = links.token("c1", "confirm", SECRET)

    # A GET (the person's click, or a mail scanner fetching every link) shows the button and changes nothing
    page = call("GET", "/confirm", token)
    assert page["statusCode"] == 200
    assert page["headers"]["Cache-Control"] == "no-store"
    assert '<form method="post" action="/confirm?t=' in page["body"]
    assert 'name="confirm" value="yes"' in page["body"]
    assert "I confirm I want to receive marketing emails from La Boutique." in page["body"]  # the button
    assert "<script" not in page["body"]
    assert call("GET", "/confirm", token)["statusCode"] == 200
    untouched = stored(settings)
    assert (untouched.email_consent.level, len(untouched.consent_history or [])) == ("single_opt_in", 0)

    # A POST without the button's field (an empty POST) changes nothing either
    empty = call("POST", "/confirm", token)
    assert (empty["statusCode"], '<form method="post"' in empty["body"]) == (400, True)
    assert stored(settings).email_consent.level == "single_opt_in"

    # The button's POST records it, with its proof
    first = call("POST", "/confirm", token, {"confirm": "yes"})
    assert first["statusCode"] == 200
    assert "your subscription is confirmed" in first["body"]
    assert '<form method="post"' not in first["body"]
    contact = stored(settings)
    proof = contact.email_consent
    assert (proof.state, proof.level, proof.source) == ("granted", "confirmed_opt_in", "double-opt-in")
    assert proof.wording == "I confirm I want to receive marketing emails from La Boutique."
    assert proof.at is not None

    # A second POST changes nothing; the GET page now says it is done
    again = call("POST", "/confirm", token, {"confirm": "yes"})
    assert again["statusCode"] == 200
    assert len(stored(settings).consent_history) == len(contact.consent_history) == 1
    shown = call("GET", "/confirm", token)
    assert ("your subscription is confirmed" in shown["body"], '<form method="post"' in shown["body"]) == (True, False)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_confirmation_link_used_after_an_unsubscribe_does_not_undo_it(settings: Settings, method: str) -> None:
    subscriptions.unsubscribe(subscriptions.LinkHolder("c1", "all", "en"), "unsubscribe:page", settings, Clock())
    answer = call(method, "/confirm", links.token("c1", "confirm", SECRET), {"confirm": "yes"})
    assert answer["statusCode"] == 200
    assert "nothing changed" in answer["body"]
    assert '<form method="post"' not in answer["body"]
    assert stored(settings).email_consent.state == "denied"


def test_the_link_of_an_erased_contact_confirms_nothing_and_stores_no_preference(settings: Settings) -> None:
    assert call("GET", "/confirm", links.token("gone", "confirm", SECRET))["statusCode"] == 404
    assert call("POST", "/confirm", links.token("gone", "confirm", SECRET), {"confirm": "yes"})["statusCode"] == 404
    gone = links.token("gone", "preferences", SECRET)
    assert call("GET", "/preferences", gone)["statusCode"] == 404
    answer = call("POST", "/preferences", gone, {"do": "save", "topic": ["tips"], "frequency": "all"})
    assert answer["statusCode"] == 404
    assert "ne connaissons plus cette adresse" in answer["body"]  # the default locale: nothing is known of them
    assert tables(settings).contacts.count() == 1


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("state", ["form", "saved", "unsubscribed", "resubscribed", "needs-consent", "refused"])
def test_the_preference_page_renders_in_each_state_and_language(settings: Settings, locale: str, state: str) -> None:
    from shared.messages.templates import render_page

    view = subscriptions.PreferencesView(topics_on=("tips",), frequency="monthly", subscribed=False, suppressed=True)
    html = render_page(
        "preferences",
        locale,
        {
            "state": state,
            "action": "/preferences?t=x&y",
            "topics": ("newsletter", "tips"),
            "frequencies": ("all", "monthly"),
            "view": view,
            "resubscribe_wording": "WORDING",
            "sender": {"name": "B", "postal_address": "Paris"},
        },
    )
    assert f'lang="{locale}"' in html
    assert "/preferences?t=x&amp;y" in html
    assert 'name="topic" value="tips" checked' in html
    assert 'value="newsletter">' in html
    assert 'name="frequency" value="monthly" checked' in html
    assert "WORDING" in html


@pytest.mark.parametrize(
    ("locale", "sentence"),
    [
        ("fr", "Je confirme vouloir recevoir les emails marketing de La Boutique."),
        ("en", "I confirm I want to receive marketing emails from La Boutique."),
    ],
)
def test_the_confirmation_page_offers_its_button_in_the_contact_s_language(
    settings: Settings, locale: str, sentence: str
) -> None:
    contact = stored(settings)
    contact.locale = locale
    contact.save()
    page = call("GET", "/confirm", links.token("c1", "confirm", SECRET))["body"]
    assert f'lang="{locale}"' in page
    assert f">{sentence}</button>" in page
