"""What the public subscription routes write to DynamoDB, recorded against moto, is what template.yaml lets their
function do: UpdateItem on contacts naming only the attributes of its dynamodb:Attributes condition, and no other
write (moto does not enforce IAM: a new attribute written here fails this test instead of a 403 in AWS)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from infra import samtemplate
from shared.clock import Clock
from shared.people import links, subscriptions, topics
from shared.settings import Settings
from shared.storage import Consent, tables

SECRET = "link-secret"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
READS = {"GetItem"}  # the policy allows GetItem and UpdateItem only: no other call may appear


def _allowed_attributes() -> set[str]:
    statements = samtemplate.load()["Resources"]["SubscriptionFunction"]["Properties"]["Policies"][0]["Statement"]
    (update,) = [statement for statement in statements if statement["Action"] == "dynamodb:UpdateItem"]
    return set(update["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])


@pytest.fixture
def calls(
    aws: dict[str, str], dynamodb_requests: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return dynamodb_requests


def _names(kwargs: dict[str, Any]) -> set[str]:
    """The attribute names a request touches: its keys, and every name in its expressions."""
    aliases = kwargs.get("ExpressionAttributeNames", {})
    expressions = " ".join(kwargs.get(key, "") for key in ("UpdateExpression", "ConditionExpression"))
    return set(kwargs.get("Key", {})) | {aliases[alias] for alias in re.findall(r"#\w+", expressions)}


def _contact(settings: Settings, level: str, unverified: bool) -> None:
    contact = tables(settings).contacts(
        contact_id="c1", email="lou@example.com", locale="en", created_at=NOW, updated_at=NOW, score=12
    )
    contact.email_consent = Consent(state="granted", level=level, source="shopify", at=NOW)
    contact.email_unverified = unverified or None
    contact.save()


def test_the_subscription_flows_update_only_the_attributes_their_function_may_write(
    aws: dict[str, str], calls: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> None:
    settings = Settings.from_environ(aws)
    _contact(settings, "single_opt_in", unverified=True)
    calls.clear()
    link = subscriptions.holder(links.token("c1", "all", SECRET), settings, SECRET)
    assert link is not None

    assert subscriptions.confirm(link, settings, Clock()) == "confirmed"
    assert subscriptions.save_preferences(link, [topics.TOPICS[0]], topics.FREQUENCIES[-1], settings, Clock())
    assert subscriptions.unsubscribe(link, "unsubscribe:one-click", settings, Clock())
    assert subscriptions.resubscribe(link, True, settings, Clock())

    assert {operation for operation, _, _ in calls} == READS | {"UpdateItem"}
    writes = [(operation, kwargs) for operation, kwargs, _ in calls if operation not in READS]
    assert writes, "the flows wrote nothing: this test reads nothing"
    assert {operation for operation, _ in writes} == {"UpdateItem"}
    written = set().union(*(_names(kwargs) for _, kwargs in writes))
    assert written <= _allowed_attributes(), written - _allowed_attributes()
    assert {"email_consent", "consent_history", "email_unverified", "preferences"} <= written
