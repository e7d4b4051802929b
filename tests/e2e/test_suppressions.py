"""Suppressions over the local runtime: a hard bounce through SES's feedback path suppresses the address,
`parcours suppressions show` says why, a lift needs a reason and is recorded with who lifted it, and the series'
next email goes out again."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, signed
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_shopify_webhook import at_a_whole_second, customer, unique_email


def run(capsys: pytest.CaptureFixture[str], local: RunningLocal, *args: str) -> tuple[int, str, str]:
    code = cli.main(["suppressions", *args, "--api", local.api_url, "--region", "eu-west-3"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_hard_bounce_is_shown_lifted_with_a_reason_and_the_next_email_goes(
    local: RunningLocal, local_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a subscriber whose first welcome email bounced for good (SES -> SNS -> the feedback function)
    email = unique_email("bounced")
    subscribed = at_a_whole_second(local)
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    assert local.ses_event(to=email, step="e1-welcome", type="bounce")[0] == 202

    # When the operator looks the address up
    code, out, _ = run(capsys, local, "show", email.upper())
    shown = json.loads(out)

    # Then it is suppressed, since the bounce, by a permanent bounce, and the contact carries the flag
    assert code == 0
    assert shown["suppressed"] is True
    assert shown["entry"]["reason"] == "permanent_bounce:General"
    assert shown["entry"]["why"] == "a permanent (hard) bounce (General)"
    assert shown["contact"]["suppressed"] is True
    assert email not in out  # the answer names the address by its hash only

    # When a lift comes without a reason: refused, nothing changes
    code, _, err = run(capsys, local, "lift", email)
    assert code == 1
    assert "400" in err
    assert "reason is required" in err
    code, _, err = run(capsys, local, "lift", email, "--reason", "   ")
    assert (code, "reason is required" in err) == (1, True)
    assert json.loads(run(capsys, local, "show", email)[1])["suppressed"] is True

    # When it comes with a reason
    code, out, _ = run(capsys, local, "lift", email, "--reason", "mailbox fixed, the customer asked by phone")
    lifted = json.loads(out)

    # Then the entry and the flag are gone, and the lift is recorded with the caller's IAM identity
    assert code == 0
    assert lifted["suppressed"] is False
    assert lifted["contact"]["suppressed"] is False
    [record] = lifted["lifts"]
    assert record["reason"] == "mailbox fixed, the customer asked by phone"
    assert record["lifted_by"].endswith(":user/local")
    assert record["suppression_reason"] == "permanent_bounce:General"

    # And the series' next email goes out at its moment
    local.advance(to=subscribed + timedelta(days=2))
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome", "e2-value"]


def test_an_address_nobody_suppressed(local: RunningLocal) -> None:
    email = unique_email("never-bounced")
    shown = signed("POST", f"{local.api_url}/v1/suppressions/show", json.dumps({"email": email}).encode())
    assert (shown.status, shown.body["suppressed"], shown.body["entry"]) == (200, False, None)
    body = json.dumps({"email": email, "reason": "just in case"}).encode()
    lifted = signed("POST", f"{local.api_url}/v1/suppressions/lift", body)
    assert (lifted.status, lifted.body) == (404, {"error": "this address is not suppressed"})


def test_the_suppression_routes_answer_only_signed_calls(local: RunningLocal) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{local.api_url}/v1/suppressions/show",
        data=b'{"email": "a@example.com"}',
        headers={"content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
