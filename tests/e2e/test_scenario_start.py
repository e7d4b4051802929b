"""POST /v1/scenarios/{scenario}/start: an app starts a scenario for a person (IAM-authorised in AWS)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import signed


def start(local: RunningLocal, scenario: str, body: object) -> tuple[int, dict[str, object]]:
    """IAM-authorised: signed with SigV4 (the local runtime checks it as API Gateway does)."""
    answer = signed("POST", f"{local.api_url}/v1/scenarios/{scenario}/start", json.dumps(body).encode())
    return answer.status, answer.body


def test_an_app_starts_onboarding_for_a_new_account(local: RunningLocal) -> None:
    # Given a new account whose app asks for onboarding
    email = f"signup.{uuid.uuid4().hex[:8]}@example.com"
    now = local.now()
    consent = {"state": "granted", "level": "confirmed_opt_in", "at": now.isoformat()}
    status, body = start(
        local,
        "onboarding",
        {"email": email, "first_name": "Lou", "locale": "en", "consent": consent, "request_id": "signup-1"},
    )
    assert (status, body["scenario"]) == (202, "onboarding")

    # Then the welcome goes out at once (the execution runs after the answer: advance lets it finish)
    local.advance(seconds=0)
    [welcome] = local.outbox(to=email)
    assert (welcome["scenario"], welcome["step"]) == ("onboarding", "e1-welcome")
    assert welcome["subject"] == "Welcome, Lou: your account is ready"
    assert datetime.fromisoformat(welcome["sent_at"]) == now.replace(microsecond=0)

    # And the same request again (a retry) starts nothing new
    assert start(local, "onboarding", {"email": email, "consent": consent, "request_id": "signup-1"})[0] == 202
    local.advance(seconds=0)
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]


@pytest.mark.parametrize(
    ("scenario", "body", "status", "words"),
    [
        ("nope", {"email": "a@example.com"}, 404, "no scenario 'nope'"),
        ("welcome", {"email": "a@example.com"}, 404, "such scenarios: onboarding"),
        ("onboarding", {"first_name": "Lou"}, 400, "field email"),
        ("onboarding", {"email": "a@example.com", "properties": [1]}, 400, "field properties"),
        (
            "onboarding",
            {"email": "a@example.com", "properties": {"recommendations": "Gourde"}},
            400,
            "field properties.recommendations must be a list of objects",
        ),
        ("onboarding", {"email": "a@example.com", "attributes": ["1990-03-15"]}, 400, "field attributes"),
        ("onboarding", {"email": "a@example.com", "consent": {"state": "maybe"}}, 400, "field consent"),
        ("onboarding", [1, 2], 400, "JSON object"),
    ],
)
def test_a_bad_start_request_names_the_problem(
    local: RunningLocal, scenario: str, body: object, status: int, words: str
) -> None:
    answer_status, answer = start(local, scenario, body)
    assert answer_status == status
    assert words in str(answer["error"])
