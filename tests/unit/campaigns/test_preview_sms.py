"""An SMS campaign's preview and test send under moto: the text as the contact would get it (stop mention, encoding,
segments), and a test to given numbers only, marked, neither counted nor claimed."""

from __future__ import annotations

import json

import pytest

from shared.campaigns import delivery, preview
from shared.campaigns.errors import CampaignRequestError
from shared.settings import Settings
from shared.storage import tables
from tests.unit.campaigns.test_delivery_sms import DOCUMENT, TUESDAY_10, at, person, settings, texts

__all__ = ["settings"]  # the fixture, shared with the SMS delivery tests

STOP = "STOP : répondez STOP"


@pytest.fixture
def saved(settings: Settings) -> Settings:
    """A Tuesday morning, the SMS campaign saved (a draft), and Chloé, a contact with a French mobile number."""
    settings = at(settings, TUESDAY_10)
    delivery.save(settings, json.dumps(DOCUMENT).encode(), settings.clock().now())
    person(settings, "chloe", phone="+33612345678", first_name="Chloé")
    t = tables(settings)
    t.identities(identity="email#chloe@example.com", contact_id="chloe").save()
    t.identities(identity="phone#+33612345678", contact_id="chloe").save()
    return settings


def test_the_preview_is_the_text_she_would_get_with_its_segments(saved: Settings) -> None:
    answer = preview.preview(saved, "flash", b'{"email": "chloe@example.com"}')

    assert (answer["channel"], answer["phone"], answer["locale"]) == ("sms", "+33612345678", "fr")
    assert answer["text"].endswith(f"\n{STOP}")
    assert "html" not in answer
    assert (answer["encoding"], answer["segments"]) == ("GSM-7", 1)
    assert texts() == []  # a preview sends nothing


def test_a_test_goes_to_the_given_numbers_only_marked_and_counts_no_one(saved: Settings) -> None:
    # When a test goes to Chloé's number (written as people write it) and a colleague's
    body = {"to": ["+33 6 12 34 56 78", "+33698765432"]}
    answer = preview.test(saved, "flash", json.dumps(body).encode(), saved.clock().now())

    # Then both numbers get the text, "[TEST]" first, and the campaign is still an unsent draft
    assert [number for number, _text in texts()] == ["+33612345678", "+33698765432"]
    assert all(text.startswith("[TEST] ") and text.endswith(STOP) for _number, text in texts())
    assert [sent["to"] for sent in answer["sent"]] == ["+33612345678", "+33698765432"]
    status = delivery.status(saved, "flash")
    assert (status["status"], status["sent"]) == ("draft", 0)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b'{"to": "06 12 34 56 78"}', "to[0]", "international form"),
        (b'{"to": "chloe@example.com"}', "to[0]", "international form"),
        (b'{"to": []}', "to", "a phone number or a list"),
    ],
)
def test_a_test_to_what_is_not_a_number_is_refused_by_field(
    saved: Settings, body: bytes, field: str, words: str
) -> None:
    with pytest.raises(CampaignRequestError) as refused:
        preview.test(saved, "flash", body, saved.clock().now())
    assert (refused.value.status, refused.value.field) == (400, field)
    assert words in str(refused.value)
    assert texts() == []
