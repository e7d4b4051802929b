import dataclasses
from datetime import UTC, datetime

from shared.messages import mailer
from shared.messages.templates import RenderedEmail
from shared.people import links

SECRET = "link-secret"


def test_a_token_names_its_contact_and_scope() -> None:
    assert links.verify(links.token("c0ffee", "all", SECRET), SECRET) == ("c0ffee", "all")


def test_a_forged_or_tampered_token_is_refused() -> None:
    genuine = links.token("c0ffee", "all", SECRET)
    kid, contact, scope, mac = genuine.split(".")
    assert links.verify(f"{kid}.someoneelse.{scope}.{mac}", SECRET) is None
    assert links.verify(f"{kid}.{contact}.newsletter.{mac}", SECRET) is None
    assert links.verify(genuine, "another-secret") is None
    for junk in ("", "a.b", "a..c", "a.b.c.d", "a.b.c.d.e", f"{kid}.{contact}.{scope}."):
        assert links.verify(junk, SECRET) is None


def envelope() -> mailer.Envelope:
    return mailer.Envelope(
        sender_name="La Boutique",
        sender_address="bonjour@boutique.example",
        to="camille@example.com",
        unsubscribe_url="https://mail.boutique.example/unsubscribe?t=abc",
        unsubscribe_mailto="mailto:bonjour@boutique.example?subject=unsubscribe%20abc",
        scenario="welcome",
        step="e1-welcome",
        sent_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
    )


EMAIL = RenderedEmail(subject="Bienvenue !", preheader="", html="<p>Bonjour</p>", text="Bonjour\n", locale="fr")


def test_marketing_email_carries_the_rfc_8058_headers_once_each() -> None:
    message = mailer.build_message(envelope(), EMAIL)
    assert message.get_all("List-Unsubscribe") == [
        "<https://mail.boutique.example/unsubscribe?t=abc>, <mailto:bonjour@boutique.example?subject=unsubscribe%20abc>"
    ]
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]


def test_the_message_has_text_and_html_parts_the_sender_and_the_simulated_date() -> None:
    message = mailer.build_message(envelope(), EMAIL)
    assert message["From"] == "La Boutique <bonjour@boutique.example>"
    assert message["Date"] == "Tue, 24 Nov 2026 09:00:00 +0000"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert (message["X-Parcours-Scenario"], message["X-Parcours-Step"]) == ("welcome", "e1-welcome")


def test_ses_tags_map_every_event_back_to_the_contact_step_and_variant_in_the_characters_ses_allows() -> None:
    tagged = dataclasses.replace(envelope(), variant="b", contact_id="c0ffee", step="e1 welcome/été")
    assert tagged.tags() == [
        {"Name": "scenario", "Value": "welcome"},
        {"Name": "step", "Value": "e1_welcome__t_"},
        {"Name": "variant", "Value": "b"},
        {"Name": "contact", "Value": "c0ffee"},
    ]
    assert [tag["Name"] for tag in envelope().tags()] == ["scenario", "step"]  # no variant, no contact: not tagged
    assert mailer.tag_value("a.b@c-d_e") == "a.b@c-d_e"
    assert len(mailer.tag_value("x" * 300)) == 256


def test_a_name_with_a_line_break_gives_one_subject_header_and_no_other() -> None:
    from email import message_from_bytes

    from infra import validation
    from shared.messages.templates import render_email

    context = {**validation.SAMPLE_CONTEXT, "first_name": "O'Brien & Co\r\nBcc: victim@example.com"}
    message = mailer.build_message(envelope(), render_email("welcome/1-welcome", "en", context))
    parsed = message_from_bytes(message.as_bytes())
    assert parsed.get_all("Subject") == ["Welcome, O'Brien & Co Bcc: victim@example.com!"]
    assert parsed.get_all("Bcc") is None
