"""The preference centre and double opt-in over HTTP: links taken from received emails, as a person clicks them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from infra.localprocess import RunningLocal
from infra.webhook_client import post_generic
from tests.e2e.test_generic_webhook import NEW, signup, stored_contact
from tests.e2e.test_scenario_start import start
from tests.e2e.test_shopify_webhook import unique_email
from tests.e2e.test_unsubscribe import fetch


def link(message: dict[str, Any], path: str) -> str:
    found = re.search(rf'href="([^"]*{path}\?t=[^"]+)"', message["html"])
    assert found is not None, f"no {path} link in {message['scenario']}/{message['step']}"
    return found.group(1)


def signed_up(local: RunningLocal, email: str) -> list[dict[str, Any]]:
    """A site signup that asks for double opt-in (single opt-in consent): the welcome and the confirmation, both
    sent at once."""
    body = json.loads(signup(email, properties={"double_opt_in": True}))
    now = local.now()
    assert post_generic(local.api_url, json.dumps(body).encode(), NEW).status == 202
    local.advance(seconds=0)  # the queued signup is processed
    messages = local.outbox(to=email)
    assert sorted((m["scenario"], m["step"]) for m in messages) == [
        ("confirm-subscription", "confirm"),
        ("welcome", "e1-welcome"),
    ]
    assert {datetime.fromisoformat(m["sent_at"]) for m in messages} == {now.replace(microsecond=0)}
    return messages


def test_a_link_scanner_fetching_the_confirmation_link_confirms_nothing_only_the_button_does(
    local: RunningLocal,
) -> None:
    # Given a site signup that asks for double opt-in
    email = unique_email("confirming")
    messages = signed_up(local, email)
    [confirmation] = [m for m in messages if m["scenario"] == "confirm-subscription"]
    assert stored_contact(local, email)["email_consent"]["M"]["level"]["S"] == "single_opt_in"
    url = link(confirmation, "/confirm")

    # When a forged or tampered token is used (GET or POST), it is refused and nothing changes
    token = url.split("t=", 1)[1]
    contact_id, scope, mac = token.rsplit(".", 2)
    for forged in (f"{contact_id}.{scope}.{mac[:-2]}AA", f"{contact_id}.preferences.{mac}", "nonsense"):
        for body in (None, b"confirm=yes"):
            status, page = fetch(f"{local.api_url}/confirm?t={forged}", body)
            assert status == 403
            assert "pas valide" in page
    assert stored_contact(local, email)["email_consent"]["M"]["level"]["S"] == "single_opt_in"

    # When a mail scanner fetches the link (twice), it gets a page with a button and nothing changes
    for _ in range(2):
        status, page = fetch(url)
        assert status == 200
        assert '<form method="post"' in page
        assert "Je confirme vouloir recevoir les emails marketing" in page
    contact = stored_contact(local, email)
    assert contact["email_consent"]["M"]["level"]["S"] == "single_opt_in"
    assert [c["M"]["level"]["S"] for c in contact["consent_history"]["L"]] == ["single_opt_in"]

    # When the person presses the button (the form posts back to the page's own address), twice
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action is not None
    posted = local.api_url + action.group(1).replace("&amp;", "&")
    status, page = fetch(posted, b"confirm=yes")
    assert (status, "inscription est confirmée" in page) == (200, True)
    assert fetch(posted, b"confirm=yes")[0] == 200

    # Then the consent is confirmed once, with its proof
    contact = stored_contact(local, email)
    proof = contact["email_consent"]["M"]
    assert (proof["state"]["S"], proof["level"]["S"], proof["source"]["S"]) == (
        "granted",
        "confirmed_opt_in",
        "double-opt-in",
    )
    assert proof["wording"]["S"].startswith("Je confirme vouloir recevoir")
    assert [c["M"]["level"]["S"] for c in contact["consent_history"]["L"]] == ["single_opt_in", "confirmed_opt_in"]


def test_a_topic_turned_off_in_the_preference_centre_is_not_sent_while_another_topic_is(local: RunningLocal) -> None:
    # Given a subscriber who received the first welcome email (topic newsletter)
    email = unique_email("choosy")
    messages = signed_up(local, email)
    [welcome] = [m for m in messages if m["scenario"] == "welcome"]
    url = link(welcome, "/preferences")
    assert "Gérer mes préférences" in welcome["html"]

    # A tampered token is refused and changes nothing
    contact_id, scope, mac = url.split("t=", 1)[1].rsplit(".", 2)  # contact_id: with its key id
    tampered = f"{local.api_url}/preferences?t={contact_id}.{scope}.{mac[:-2]}AA"
    assert fetch(tampered, b"do=save&frequency=all")[0] == 403
    assert "preferences" not in stored_contact(local, email)

    # When they open the preference centre from the email and untick the newsletter
    status, page = fetch(url)
    assert status == 200
    assert 'name="topic" value="newsletter" checked' in page
    form = urlencode({"do": "save", "topic": ["promotions", "cart-reminders", "tips"], "frequency": "all"}, True)
    status, page = fetch(url, form.encode())
    assert status == 200
    assert "Vos préférences sont enregistrées." in page
    assert 'value="newsletter">' in page
    assert 'value="all" checked' in page

    # And the app starts onboarding for them (topic tips), whose second email comes 3 days later
    started = local.now()
    assert start(local, "onboarding", {"email": email, "request_id": uuid.uuid4().hex})[0] == 202
    local.advance(to=started + timedelta(days=3))

    # Then the tips were sent, at once and on the third day, and the welcome series' J+2 email (due before
    # onboarding's J+3) was not
    later = local.outbox(to=email)
    onboarding = [(m["step"], datetime.fromisoformat(m["sent_at"])) for m in later if m["scenario"] == "onboarding"]
    assert [moment for _, moment in onboarding] == [
        started.replace(microsecond=0),
        (started + timedelta(days=3)).replace(microsecond=0),
    ]
    assert onboarding[0][0] == "e1-welcome"
    assert [m["step"] for m in later if m["scenario"] == "welcome"] == ["e1-welcome"]
    prefs = stored_contact(local, email)["preferences"]["M"]
    assert (prefs["topics_off"]["SS"], prefs["frequency"]["S"], prefs["source"]["S"]) == (
        ["newsletter"],
        "all",
        "preferences",
    )
