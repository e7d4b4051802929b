"""A person's erasure as processing sees it: an event in flight meanwhile brings nobody back, a later one may."""

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.clock import Clock
from shared.journeys import privacy, processing
from shared.people import suppression
from shared.settings import ConfigurationError, Settings
from shared.storage import tables
from tests.conftest import address_hash
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


# ---- the tombstone, under the keyed hash -------------------------------------------------------------------------


def test_the_tombstone_is_written_and_read_under_the_keyed_hash_only(settings: Settings) -> None:
    import hashlib

    processing.process(shopify_event("customers-create.json"), settings, Clock())
    privacy.erase(settings, privacy.Who(email="camille.martin@example.com"), NOW + timedelta(hours=1), "test")
    t = tables(settings)
    (entry,) = t.suppressions.scan()
    assert entry.address_hash == address_hash("camille.martin@example.com")
    assert entry.address_hash != hashlib.sha256(b"camille.martin@example.com").hexdigest()
    # Read back with the deployment's key; another deployment's key finds nothing (nor would a dictionary)
    received = NOW.isoformat()
    assert privacy.erased_before(t, suppression.hash_key(settings), "Camille.Martin@example.com", received)
    other = suppression.HashKey(b"another-deployment-key-of-32-characters")
    assert not privacy.erased_before(t, other, "camille.martin@example.com", received)


def test_a_plain_sha256_tombstone_from_before_the_keyed_hash_no_longer_matches(settings: Settings) -> None:
    import hashlib

    t = tables(settings)
    plain = hashlib.sha256(b"camille.martin@example.com").hexdigest()
    t.suppressions(address_hash=plain, reason="erased", suppressed_at=NOW, erased_at=NOW + timedelta(hours=1)).save()
    result = processing.process(shopify_event("customers-create.json"), settings, Clock())
    assert result.dropped is None  # no deployment holds such entries: nothing migrates them (README)
    assert result.contact_id is not None


@pytest.fixture
def keyless(settings: Settings) -> Settings:
    """The deployment with its suppression key's SSM parameter not created (moto's SSM holds none)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    return replace(settings, suppression_key=None, suppression_key_parameter="/parcours/test/suppression-key")


def test_without_the_key_an_erasure_or_export_touches_nothing_and_names_the_parameter(
    settings: Settings, keyless: Settings
) -> None:
    first = processing.process(shopify_event("customers-create.json"), settings, Clock())
    who = privacy.Who(email="camille.martin@example.com")
    with pytest.raises(ConfigurationError, match=r"/parcours/test/suppression-key .*not found"):
        privacy.erase(keyless, who, NOW + timedelta(hours=1), "test")
    with pytest.raises(ConfigurationError, match="/parcours/test/suppression-key"):
        privacy.export(keyless, who, NOW)
    t = tables(settings)
    assert t.contacts.get(first.contact_id) is not None  # nothing deleted without its tombstone
    assert list(t.suppressions.scan()) == []
    assert list(t.events.query(privacy.ERASURE_OWNER)) == []


def test_without_the_key_an_event_with_an_address_raises_to_be_retried_and_writes_nothing(
    settings: Settings, keyless: Settings
) -> None:
    with pytest.raises(ConfigurationError, match="/parcours/test/suppression-key"):
        processing.process(shopify_event("customers-create.json"), keyless, Clock())
    t = tables(settings)
    assert list(t.contacts.scan()) == []
    assert list(t.identities.scan()) == []
    assert processing.process(shopify_event("customers-create.json"), settings, Clock()).contact_id is not None
