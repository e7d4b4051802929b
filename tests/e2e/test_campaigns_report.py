"""Campaigns in the reports, over the local runtime: a campaign sent to a list, its email clicked, then an order
placed: the signed report route shows the campaign as a row of its own (`kind: campaign`) beside the scenarios, with
its send, its click and the order's revenue attributed to it as to a scenario's email; `parcours report` and the HTML
page show it too."""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, signed
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_campaigns import campaign, campaign_mail, subscriber
from tests.e2e.test_cart_to_order import with_email


def report(local: RunningLocal, query: str) -> Any:
    return signed("GET", f"{local.api_url}/v1/reports/scenarios?{query}")


def test_a_campaign_is_a_row_of_the_report_with_the_revenue_its_click_earned(
    local: RunningLocal, local_credentials: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a subscriber on a list, and a campaign to it, sent
    members = f"rp-{uuid.uuid4().hex[:8]}"
    buyer = subscriber(local, "report", members)
    campaign_id = f"rp-{uuid.uuid4().hex[:8]}"
    document = {
        "id": campaign_id,
        "name": "Spring sale",
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": members},
    }
    assert campaign(local, document).status == 201
    day = local.now().astimezone(UTC).date().isoformat()
    quiet = report(local, f"from={day}&to={day}")
    assert quiet.status == 200, quiet.body
    assert [s for s in quiet.body["scenarios"] if s["kind"] == "campaign" and s["id"] == campaign_id] == []  # a draft
    assert signed("POST", f"{local.api_url}/v1/campaigns/{campaign_id}/send", b"").status == 202
    local.advance(seconds=60)
    assert [m["to"] for m in campaign_mail(local, campaign_id)] == [buyer]

    # When the buyer clicks the campaign's email, then orders 58.50 EUR
    assert local.ses_event(to=buyer, step="email", type="click", link="https://boutique.example/sale")[0] == 202
    local.advance(seconds=300)
    order: dict[str, Any] = json.loads(with_email("orders-create.json", buyer))
    order.update(id=uuid.uuid4().int % 10**13, total_price="58.50", currency="EUR", presentment_currency="EUR")
    placed = post_shopify(local.api_url, "orders/create", json.dumps(order).encode(), SHOPIFY_SECRET, uuid.uuid4().hex)
    assert placed.body["type"] == "order.placed"
    local.advance(seconds=0)

    # Then the report shows the campaign beside the scenarios, its send, click, order and revenue
    last = local.now().astimezone(UTC).date().isoformat()
    answer = report(local, f"from={day}&to={last}")
    assert answer.status == 200, answer.body
    kinds = {s["kind"] for s in answer.body["scenarios"]}
    assert kinds == {"scenario", "campaign"}
    [row] = [s for s in answer.body["scenarios"] if s["kind"] == "campaign" and s["id"] == campaign_id]
    assert (row["name"], row["report"], row["sent"], row["clicked"]) == ("Spring sale", f"campaign.{campaign_id}", 1, 1)
    assert (row["orders"], row["revenue"]) == (1, {"EUR": 58.5})
    assert [(step["id"], step["sent"], step["orders"]) for step in row["steps"]] == [("email", 1, 1)]
    assert row["splits"] == []
    assert row["started_at"][:10] == day
    # And the welcome scenario the buyer entered is still a scenario row; the account's emails count the campaign's
    assert answer.body["deliverability"]["total"]["sent"] >= 2

    # And asked for alone, the campaign is the one row; an unknown campaign is refused naming the parameter
    alone = report(local, f"from={day}&to={last}&campaign={campaign_id}")
    assert [(s["kind"], s["id"], s["revenue"]) for s in alone.body["scenarios"]] == [
        ("campaign", campaign_id, {"EUR": 58.5})
    ]
    refused = report(local, f"from={day}&to={last}&campaign=never-sent")
    assert (refused.status, refused.body["field"]) == (400, "campaign")

    # And `parcours report` lists it in its table and its page
    page = tmp_path / "report.html"
    arguments = ["report", "--from", day, "--to", last, "--campaign", campaign_id, "--html", str(page)]
    assert cli.main([*arguments, "--api", local.api_url, "--region", "eu-west-3"]) == 0
    shown = capsys.readouterr().out
    [line] = [line for line in shown.splitlines() if line.startswith(f"campaign.{campaign_id}")]
    assert "58.50 EUR" in line
    html = page.read_text(encoding="utf-8")
    assert "Spring sale" in html
    assert f"campaign {campaign_id}" in html
    assert "1 campaigns" in html
