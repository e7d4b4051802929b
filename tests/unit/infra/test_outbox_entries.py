"""The local outbox reads back what SES took: a short-lined email sent as 8bit, and a long subject folded."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.local.outbox import _email_entry
from shared.messages import mailer
from shared.messages.templates import RenderedEmail


def test_an_8bit_email_with_a_folded_subject_reads_back_as_written() -> None:
    subject = "[TEST] Black Friday : -30 % sur toute la boutique, aujourd'hui seulement, à saisir"
    envelope = mailer.Envelope(
        sender_name="La Boutique",
        sender_address="bonjour@boutique.example",
        to="ana@agency.example",
        unsubscribe_url="https://x.example/unsubscribe?t=test",
        unsubscribe_mailto="mailto:bonjour@boutique.example",
        scenario="campaign.spring",
        step="test",
        sent_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
    )
    email = RenderedEmail(subject=subject, preheader="", html="<p>Déjà là</p>", text="Déjà là", locale="fr")
    raw = mailer.build_message(envelope, email).as_bytes().decode("utf-8")
    assert "8bit" in raw  # short lines: no quoted-printable
    entry = _email_entry(raw)
    assert entry["subject"] == subject
    assert entry["text"].strip() == "Déjà là"
    assert "Déjà là" in entry["html"]


def test_a_folded_subject_between_plain_and_encoded_words_keeps_one_space() -> None:
    raw = (
        "Subject: Votre prochaine commande vous ouvre le cercle des clients\n =?utf-8?q?fid=C3=A8les?=\n"
        "To: a@example.com\nContent-Type: text/plain; charset=utf-8\n\nBonjour\n"
    )
    assert _email_entry(raw)["subject"] == "Votre prochaine commande vous ouvre le cercle des clients fidèles"
