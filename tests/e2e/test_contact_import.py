"""`parcours contacts import` against the local runtime: a shop's subscribers from another tool arrive with their
consent proof, through the rules every source follows (suppression, a person's own unsubscribe, identities merged,
lists), start no scenario unless asked, and a second import of the same file changes nothing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, signed
from tests.conftest import SHOPIFY_SECRET, address_hash
from tests.e2e.test_shopify_webhook import customer, unique_email
from tests.e2e.test_unsubscribe import fetch

LIST = "imported-news"


def contact(local: RunningLocal, email: str) -> dict[str, Any]:
    """The contact's item as DynamoDB holds it (None when no identity names the address)."""
    dynamodb = local.client("dynamodb")
    ids = local.physical_ids()
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    if "Item" not in identity:
        return {}
    key = {"contact_id": identity["Item"]["contact_id"]}
    item: dict[str, Any] = dynamodb.get_item(TableName=ids["ContactsTable"], Key=key, ConsistentRead=True)["Item"]
    return item


def consent_of(item: dict[str, Any]) -> dict[str, str | None]:
    consent = item["email_consent"]["M"]
    return {name: consent.get(name, {}).get("S") for name in ("state", "level", "source", "wording", "at")}


def import_file(local: RunningLocal, path: Path, *flags: str) -> int:
    return cli.main(["contacts", "import", str(path), "--api", local.api_url, "--region", "eu-west-3", *flags])


def test_an_import_keeps_consent_proof_honours_suppression_and_unsubscribes_merges_and_starts_nothing_unasked(
    local: RunningLocal, local_credentials: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, silent, known, suppressed, left = (
        unique_email(prefix) for prefix in ("new", "silent", "known", "bounced", "left")
    )
    # Given a Shopify customer who is "not subscribed" (known), one who unsubscribed with one click (left)
    post_shopify(local.api_url, "customers/create", customer(known, "not_subscribed"), SHOPIFY_SECRET, uuid.uuid4().hex)
    post_shopify(local.api_url, "customers/create", customer(left), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)
    [welcome] = local.outbox(to=left)
    link = re.match(r"<([^>]+)>", welcome["headers"]["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert fetch(link, b"List-Unsubscribe=One-Click")[0] == 200
    known_id = contact(local, known)["contact_id"]
    # ... and an address suppressed by a hard bounce (its contact since erased: only the hashed entry is left)
    local.client("dynamodb").put_item(
        TableName=local.physical_ids()["SuppressionsTable"],
        Item={
            "address_hash": {"S": str(address_hash(suppressed))},  # keyed: the session's PARCOURS_SUPPRESSION_KEY
            "reason": {"S": "permanent_bounce:General"},
            "suppressed_at": {"S": "2026-01-05T10:00:00.000000+0000"},
        },
    )

    # When a Brevo export is imported, written by Excel in France (BOM, semicolons), one row bad
    rows = [
        "email;first_name;lists;consent_state;consent_level;consent_date;consent_proof",
        f"{new};Camille;{LIST};granted;confirmed;2025-03-02 10:15:00;Formulaire newsletter v3",
        f"{silent};Hugo;{LIST};;;;",
        f"{known};Louise;;granted;single;2025-06-01T08:00:00+02:00;Caisse, case cochée",
        f"{suppressed};Jules;;granted;single;2025-01-01;Jeu concours",
        f"{left};Inès;;granted;confirmed;2026-11-20;Ancien formulaire",
        "not-an-address;Nobody;;;;;",
    ]
    path = tmp_path / "brevo-export.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    assert import_file(local, path) == 1  # one row refused
    err = capsys.readouterr().err
    assert "refused: brevo-export.csv:7: email: not a valid email address" in err
    assert "6/6 rows" in err  # the progress line (not a terminal here: plain lines)
    local.advance(seconds=0)  # the queued rows are processed

    # Then the contacts exist with their consent proof, asserted by the import
    assert consent_of(contact(local, new)) == {
        "state": "granted",
        "level": "confirmed_opt_in",
        "source": "import:brevo-export.csv",
        "wording": "Formulaire newsletter v3",
        "at": "2025-03-02T10:15:00.000000+0000",
    }
    assert contact(local, silent)["first_name"]["S"] == "Hugo"
    assert "email_consent" not in contact(local, silent)
    assert contact(local, "not-an-address") == {}
    # the Shopify customer is the same contact, with the file's name; the shop's "not subscribed" (never asked:
    # unknown), newer than the file's grant, stands
    merged = contact(local, known)
    assert (merged["contact_id"], merged["first_name"]["S"]) == (known_id, "Louise")
    assert (consent_of(merged)["state"], consent_of(merged)["source"]) == ("unknown", "shopify:customers/create")
    # the person's own unsubscribe stands: the file's later grant is the operator's claim, not an opt-in
    assert consent_of(contact(local, left))["state"] == "denied"
    # the list is filled
    members = signed("GET", f"{local.api_url}/v1/lists/{LIST}/members").body["members"]
    assert sorted(member["email"] for member in members) == sorted([new, silent])
    # and no scenario started: nothing was sent to anyone imported, even days later
    local.advance(seconds=3 * 86400)
    assert [m for m in local.outbox() if m["to"] in (new, silent, known, suppressed)] == []
    assert len(local.outbox(to=left)) == 1  # the welcome before the unsubscribe, nothing after

    # When the same file is imported again
    everyone = (new, silent, known, suppressed, left)
    before = ([contact(local, email) for email in everyone], members, len(local.outbox()))
    assert import_file(local, path) == 1
    local.advance(seconds=0)
    # Then nothing changed: the same items, the same members, no message
    after_members = signed("GET", f"{local.api_url}/v1/lists/{LIST}/members").body["members"]
    assert ([contact(local, email) for email in everyone], after_members, len(local.outbox())) == before

    # When it is imported with --start-scenarios
    assert import_file(local, path, "--start-scenarios") == 1
    local.advance(seconds=0)
    # Then the welcome series starts for those who consent and may be mailed, and only them
    welcomed = {m["to"] for m in local.outbox() if m["scenario"] == "welcome" and m["to"] in everyone}
    assert welcomed == {new, left}  # left: the welcome from before the unsubscribe
    assert [m["step"] for m in local.outbox(to=new)] == ["e1-welcome"]
    assert [m["step"] for m in local.outbox(to=left)] == ["e1-welcome"]  # none since the unsubscribe

    # And a second start-scenarios import sends nothing more
    sent = len(local.outbox())
    assert import_file(local, path, "--start-scenarios") == 1
    local.advance(seconds=0)
    assert len(local.outbox()) == sent
