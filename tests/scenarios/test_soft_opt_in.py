"""Soft opt-in executed: a customer who never opted in gets the soft-opt-in scenario's email, with the one-click
unsubscribe, and not another scenario's; after unsubscribing, never again, even after a new order."""

from __future__ import annotations

import re
import urllib.request
import uuid

from infra.localprocess import RunningLocal
from shared.storage import Tables
from tests.scenarios.conftest import add_contact, deploy_fixture, described, start


def one_click(url: str) -> int:
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_a_customer_gets_the_soft_opt_in_offer_only_until_they_unsubscribe(local: RunningLocal, store: Tables) -> None:
    # Given a customer with an order and no consent statement at all, and two offers: one with soft opt-in on
    email = f"customer.{uuid.uuid4().hex[:8]}@example.com"
    contact_id = add_contact(store, email, consent=None, orders_count=1)
    soft = deploy_fixture(local, "soft-offers")
    other = deploy_fixture(local, "soft-offers", id="other-offers", soft_opt_in=False)

    # When both run
    executions = [start(local, soft, contact_id), start(local, other, contact_id)]
    local.advance(seconds=0)

    # Then only the soft-opt-in scenario's email goes out, and it carries the one-click unsubscribe
    assert [described(local, execution)["status"] for execution in executions] == ["SUCCEEDED", "SUCCEEDED"]
    [offer] = local.outbox(to=email)
    assert offer["scenario"] == "soft-offers"
    assert offer["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.match(r"<([^>]+)>", offer["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert url.replace("&", "&amp;") in offer["html"]  # the visible link, as in every marketing email

    # When the customer unsubscribes in one click, then orders again
    assert one_click(url) == 200
    contact = store.contacts.get(contact_id, consistent_read=True)
    contact.update(actions=[store.contacts.orders_count.set(2)])

    # Then the soft-opt-in scenario never mails them again
    again = start(local, soft, contact_id)
    local.advance(seconds=0)
    assert described(local, again)["status"] == "SUCCEEDED"
    assert [message["scenario"] for message in local.outbox(to=email)] == ["soft-offers"]
