"""A person's erasure as processing sees it: an event in flight meanwhile brings nobody back, a later one may."""

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.clock import Clock
from shared.journeys import privacy, processing
from shared.settings import Settings
from shared.storage import tables
from tests.unit.journeys.test_processing import NOW, settings, shopify_event

__all__ = ["settings"]  # the fixture, shared with the processing tests


def test_an_event_received_before_the_erasure_does_not_bring_the_person_back(settings: Settings) -> None:
    first = processing.process(shopify_event("customers-create.json"), settings, Clock())
    assert first.contact_id is not None
    erased = privacy.erase(settings, privacy.Who(email="camille.martin@example.com"), NOW + timedelta(hours=1), "test")
    assert erased["removed"]["contacts"] == 1

    # Received before the erasure (queued meanwhile), processed after it: dropped, nothing written
    in_flight = shopify_event("customers-update.json", "customers/update", "evt-2")
    result = processing.process(in_flight, settings, Clock())
    assert (result.contact_id, result.recorded, result.dropped) == (None, False, "received before its person's erasure")
    t = tables(settings)
    assert list(t.contacts.scan()) == []
    assert list(t.identities.scan()) == []

    # Received after it: a new contact, whose address stays suppressed
    later = replace(in_flight, event_id="shopify#evt-3", received_at=(NOW + timedelta(hours=2)).isoformat())
    again = processing.process(later, settings, Clock())
    assert again.contact_id not in (None, first.contact_id)
    (entry,) = t.suppressions.scan()
    assert (entry.reason, entry.erased_at) == ("erased", NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({}, "exactly one of email, phone, contact_id or shopify_id"),
        ({"email": "a@b.example", "contact_id": "abc"}, "exactly one of"),
        ({"email": 42}, "email must be a string"),
        ({"email": "nobody"}, "email is not an email address"),
        ({"phone": "0612345678"}, "phone must be an E.164 number"),
        ({"contact_id": "a/b"}, "contact_id is not a contact id"),
        ({"shopify_id": "gid://x"}, "shopify_id must be a Shopify customer id"),
    ],
)
def test_a_request_that_names_no_one_clearly_is_refused_naming_the_field(given: dict[str, object], named: str) -> None:
    with pytest.raises(privacy.PersonError, match=named) as refused:
        privacy.Who.from_request(given)
    assert refused.value.status == 400
