"""Generic signed webhooks: the Stripe signature (rotation, replay window) and the documented event shape."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.clock import Clock
from shared.people import consent
from shared.sources import generic, ingestion
from shared.sources.signatures import timestamped_signature
from shared.storage import ContactModel
from tests.conftest import sample_json

NEW, OLD = "secret-new", "secret-old"
NOW = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW


def body(**changes: Any) -> bytes:
    payload = {**sample_json("generic/form-submitted.json"), **changes}
    return json.dumps(payload).encode()


def receive(raw: bytes, signed_with: str = NEW, at: datetime = NOW, secrets: list[str] | None = None) -> Any:
    signature = timestamped_signature(raw, signed_with, int(at.timestamp()))
    headers = {"content-type": "application/json", "x-parcours-signature": signature}
    return ingestion.receive_generic(raw, headers, secrets or [NEW, OLD], FixedClock(), NOW.timestamp())


def test_a_form_submission_becomes_form_submitted_with_its_contact_and_consent_proof() -> None:
    event = receive(body())
    assert (event.type, event.source, event.topic) == ("form.submitted", "generic", "form.submitted")
    assert event.event_id == "generic#evt_01JDX4M8V2K9Q7RZ3T6W"
    assert event.occurred_at == "2026-11-24T09:12:31Z"
    assert event.properties == {"form": "livre-blanc-emballages", "page": "/ressources/livre-blanc"}
    contact = event.contact
    assert (contact.email, contact.phone, contact.locale) == ("lea.dubois@example.com", "+33612345678", "fr")
    assert contact.source_id == "generic#site-user-8812"
    assert contact.attributes == {"company_size": "11-50", "timezone": "Europe/Paris"}
    proof = contact.email_consent
    assert (proof.state, proof.level, proof.source) == ("granted", "single_opt_in", "generic:form.submitted")
    assert proof.wording is not None
    assert proof.wording.startswith("newsletter-form v3")


def test_the_consent_proof_keeps_the_wording_the_person_agreed_to() -> None:
    facts = receive(body()).contact.email_consent
    contact = ContactModel(contact_id="c1", created_at=NOW, updated_at=NOW)
    assert consent.record(contact, facts)
    assert contact.email_consent.wording == facts.wording
    assert contact.consent_history[0].wording == facts.wording


def test_a_contact_without_consent_data_is_granted_none() -> None:
    payload = sample_json("generic/form-submitted.json")
    del payload["contact"]["email_consent"]
    event = receive(json.dumps(payload).encode())
    assert event.contact.email_consent is None


def test_either_secret_of_a_rotation_verifies() -> None:
    assert receive(body(), signed_with=OLD).type == "form.submitted"
    assert receive(body(), signed_with=NEW).type == "form.submitted"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={int(NOW.timestamp())}",
        timestamped_signature(b"another body", NEW, int(NOW.timestamp())),
        timestamped_signature(b"{}", "not-our-secret", int(NOW.timestamp())),
    ],
)
def test_a_missing_or_forged_signature_is_401(header: str | None) -> None:
    raw = body()
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["x-parcours-signature"] = header
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_generic(raw, headers, [NEW], FixedClock(), NOW.timestamp())
    assert rejected.value.status == 401


@pytest.mark.parametrize("seconds", [-301, 301, 3600])
def test_a_replay_outside_the_300_second_tolerance_is_401(seconds: int) -> None:
    at = datetime.fromtimestamp(NOW.timestamp() + seconds, UTC)
    with pytest.raises(ingestion.Rejected) as rejected:
        receive(body(), at=at)
    assert rejected.value.status == 401
    assert "300 s" in rejected.value.reason


def test_a_signature_within_the_tolerance_verifies() -> None:
    assert receive(body(), at=datetime.fromtimestamp(NOW.timestamp() - 299, UTC)).type == "form.submitted"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "field id"),
        ({"id": ""}, "field id"),
        ({"id": "x" * 201}, "field id"),
        ({"type": None}, "field type"),
        ({"type": ["form.submitted"]}, "field type"),
        ({"properties": ["a"]}, "field properties"),
        ({"contact": "lea@example.com"}, "field contact must be an object"),
        ({"contact": {"email": "not-an-address"}}, "contact.email: not a valid email address"),
        ({"contact": {"phone": "06 12 34 56 78"}}, "field contact.phone must be in E.164"),
        ({"contact": {"first_name": 3.5}}, "field contact.first_name"),
        ({"contact": {"attributes": ["vip"]}}, "field contact.attributes"),
        ({"contact": {"email_consent": {"state": "yes"}}}, "field contact.email_consent"),
        ({"contact": {"email_consent": {"state": "granted", "level": "double"}}}, "contact.email_consent.level"),
        ({"contact": {"email_consent": {"state": "granted", "at": "yesterday"}}}, "contact.email_consent.at"),
        ({"contact": {"sms_consent": True}}, "field contact.sms_consent"),
        ({"properties": {"lines": {"name": "Mug"}}}, "field properties.lines must be a list of objects"),
        ({"properties": {"recommendations": ["Mug"]}}, "field properties.recommendations[0] must be an object"),
    ],
)
def test_a_signed_body_that_breaks_the_shape_is_400_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ingestion.Rejected) as rejected:
        receive(body(**changes))
    assert rejected.value.status == 400
    assert field in rejected.value.reason


def test_a_body_that_is_not_an_object_is_400() -> None:
    with pytest.raises(ingestion.Rejected) as rejected:
        receive(b"[1, 2]")
    assert (rejected.value.status, rejected.value.reason) == (400, "body must be a JSON object")


def test_malformed_json_is_400_after_the_signature_is_checked() -> None:
    with pytest.raises(ingestion.Rejected) as rejected:
        receive(b"{not json")
    assert rejected.value.status == 400
    assert "not JSON" in rejected.value.reason


@pytest.mark.parametrize("kind", ["list.joined", "score.changed", "email.opened", "invoice.sent"])
def test_a_type_a_site_may_not_send_is_recorded_without_contact_nor_effect(kind: str) -> None:
    event = receive(body(type=kind))
    assert (event.type, event.topic, event.contact) == ("unrecognised", kind, None)


def test_every_type_a_site_may_send_is_in_the_catalogue() -> None:
    from shared.events import CATALOGUE

    assert set(generic.SOURCE_TYPES) <= set(CATALOGUE)


def order_with_products() -> dict[str, Any]:
    """An order as a shop's form or app posts it, with its lines and the products it recommends after it."""
    return {
        **sample_json("generic/form-submitted.json"),
        "type": "order.placed",
        "properties": {
            "order_id": "A-1042",
            "currency": "EUR",
            "lines": [
                {
                    "name": "Carnet A5",
                    "quantity": 2,
                    "price": "14.95",
                    "image": "https://boutique.example/img/carnet.jpg",
                    "url": "https://boutique.example/p/carnet",
                }
            ],
            "recommendations": [
                {
                    "name": "Recharges",
                    "image": "https://boutique.example/img/recharges.jpg",
                    "url": "https://boutique.example/p/recharges",
                    "price": 6.5,
                },
                {"name": "Étui <cuir>", "url": "javascript:alert(document.cookie)"},
                {"image": "https://boutique.example/img/anonymous.jpg"},
            ]
            + [{"name": f"Produit {n}"} for n in range(10)],
        },
    }


def test_an_order_s_lines_and_recommendations_are_cleaned_into_the_documented_shape() -> None:
    event = receive(json.dumps(order_with_products()).encode())
    assert event.type == "order.placed"
    assert event.properties["lines"] == [
        {
            "name": "Carnet A5",
            "variant": None,
            "quantity": 2,
            "price": "14.95",
            "product_id": None,
            "image": "https://boutique.example/img/carnet.jpg",
            "url": "https://boutique.example/p/carnet",
        }
    ]
    recommended = event.properties["recommendations"]
    assert len(recommended) == 6  # the first six with a name; one without a name shows nothing
    assert recommended[0] == {
        "name": "Recharges",
        "image": "https://boutique.example/img/recharges.jpg",
        "url": "https://boutique.example/p/recharges",
        "price": "6.5",
    }
    assert recommended[1] == {"name": "Étui <cuir>", "image": None, "url": None, "price": None}  # javascript: dropped
    assert event.properties["order_id"] == "A-1042"  # the other properties as sent


def test_the_cross_sell_email_shows_the_recommendations_an_order_event_brought() -> None:
    from infra.validation import SAMPLE_CONTEXT
    from shared.messages.templates import render_email

    event = receive(json.dumps(order_with_products()).encode())
    trigger = {"type": event.type, "event_id": event.event_id, "properties": event.properties}
    email = render_email("post-purchase/4-cross-sell", "en", {**SAMPLE_CONTEXT, "trigger": trigger})
    assert "To go with Carnet A5, we chose these for you:" in email.text
    assert '<a href="https://boutique.example/p/recharges"' in email.html
    assert 'src="https://boutique.example/img/recharges.jpg"' in email.html
    assert "6.5 EUR" in email.text
    assert "Étui &lt;cuir&gt;" in email.html
    assert "javascript" not in email.html
    assert "Produit 3" in email.text  # six at most
    assert "Produit 4" not in email.text


def test_an_order_without_the_shop_only_properties_still_renders_the_thank_you_email() -> None:
    from infra.validation import SAMPLE_CONTEXT
    from shared.messages.templates import render_email

    payload = {**sample_json("generic/form-submitted.json"), "type": "order.placed", "properties": {"total": "9"}}
    event = receive(json.dumps(payload).encode())
    assert event.properties == {
        "total": "9",
        "lines": [],
        "currency": None,
        "order_id": None,
        "order_name": None,
        "status_url": None,  # the catalogue's keys, null when the site does not say: templates read them
        "discount_code": None,
    }
    trigger = {"type": event.type, "event_id": event.event_id, "properties": event.properties}
    email = render_email("post-purchase/1-thanks", "fr", {**SAMPLE_CONTEXT, "trigger": trigger})
    assert email.subject == "Merci pour votre commande !"
