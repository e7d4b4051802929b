"""Product images and links from a site's own events reach the received email (the local outbox), over real HTTP."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from html.parser import HTMLParser

from infra.localprocess import RunningLocal
from infra.webhook_client import post_generic, post_tracking
from tests.conftest import GENERIC_SECRETS, WRITE_KEY
from tests.e2e.test_shopify_webhook import unique_email


class Tags(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str | None] = []
        self.images: list[tuple[str | None, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag == "a":
            self.links.append(given.get("href"))
        if tag == "img":
            self.images.append((given.get("src"), given.get("alt")))


def test_a_cart_sent_through_the_tracking_api_is_reminded_with_its_product_images_and_links(
    local: RunningLocal,
) -> None:
    # Given a visitor who subscribed on the site, then started a checkout (Segment's e-commerce spec)
    user, email = uuid.uuid4().hex, unique_email("cartimg")
    consent = {"state": "subscribed", "opt_in_level": "single_opt_in"}
    checkout = {
        "checkout_id": uuid.uuid4().hex,
        "value": 44.85,
        "currency": "EUR",
        "recovery_url": "https://boutique.example/cart/recover",
        "products": [
            {
                "product_id": "carnet",
                "name": "Carnet A5",
                "price": 14.95,
                "quantity": 3,
                "image_url": "https://cdn.boutique.example/carnet.jpg",
                "url": "https://boutique.example/products/carnet",
            },
            {"product_id": "x", "name": "Stylo", "price": 0, "quantity": 1, "url": "javascript:alert(1)"},
        ],
    }
    batch = {
        "batch": [
            {"type": "identify", "userId": user, "traits": {"email": email, "email_marketing_consent": consent}},
            {"type": "track", "userId": user, "event": "Checkout Started", "properties": checkout},
        ]
    }
    started = local.now()
    assert post_tracking(local.api_url, "/v1/batch", batch, WRITE_KEY).status == 200

    # Then the reminder an hour later shows the product's image, linked with its name to its page
    local.advance(to=started + timedelta(hours=1))
    [reminder] = [m for m in local.outbox(to=email) if m["step"] == "e1-reminder"]
    assert datetime.fromisoformat(reminder["sent_at"]) == (started + timedelta(hours=1)).replace(microsecond=0)
    tags = Tags(reminder["html"])
    assert ("https://cdn.boutique.example/carnet.jpg", "Carnet A5") in tags.images
    assert tags.links.count("https://boutique.example/products/carnet") == 2  # the image and the name
    assert "Carnet A5 (https://boutique.example/products/carnet)" in reminder["text"]
    assert "javascript:" not in reminder["html"]  # dropped when the event came in
    assert "Stylo" in reminder["text"]


def test_an_order_posted_by_a_site_is_thanked_with_its_product_images_and_links(local: RunningLocal) -> None:
    # Given a shop's own checkout that posts the order, with the buyer's consent, its lines and recommendations
    email = unique_email("orderimg")
    order = {
        "id": uuid.uuid4().hex,
        "type": "order.placed",
        "contact": {
            "email": email,
            "id": uuid.uuid4().hex,
            "first_name": "Léa",
            "locale": "en",
            "email_consent": {"state": "granted", "level": "single_opt_in"},
        },
        "properties": {
            "order_id": "A-1042",
            "order_name": "#A-1042",
            "total": "29.90",
            "currency": "EUR",
            "lines": [
                {
                    "name": "Stylo plume",
                    "quantity": 1,
                    "price": "29.90",
                    "image": "https://boutique.example/img/stylo.jpg",
                    "url": "https://boutique.example/p/stylo",
                }
            ],
            "recommendations": [
                {
                    "name": "Encre bleue",
                    "image": "https://boutique.example/img/encre.jpg",
                    "url": "https://boutique.example/p/encre",
                    "price": "6.50",
                }
            ],
        },
    }
    ordered = local.now()
    answer = post_generic(local.api_url, json.dumps(order).encode(), GENERIC_SECRETS[0])
    assert answer.status == 202

    # Then the thank-you email, sent at once, shows the line's image, linked with its name to the product
    local.advance(seconds=0)  # the queued order is processed
    [thanks] = [m for m in local.outbox(to=email) if m["step"] == "e1-thanks"]
    assert datetime.fromisoformat(thanks["sent_at"]) == ordered.replace(microsecond=0)
    tags = Tags(thanks["html"])
    assert ("https://boutique.example/img/stylo.jpg", "Stylo plume") in tags.images
    assert tags.links.count("https://boutique.example/p/stylo") == 2
    assert thanks["subject"] == "Thank you for your order #A-1042!"
