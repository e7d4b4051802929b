"""The local runtime's check of SigV4 signatures on IAM-authorised routes, as API Gateway's AWS_IAM authoriser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.credentials import Credentials

from infra import sigv4

URL = "http://127.0.0.1:3000/v1/lists/press/add"
BODY = b'{"email": "lou@example.com"}'
AT = datetime.now(UTC)  # botocore signs at the real time


def signed_at(at: datetime, credentials: Credentials = sigv4.LOCAL_CREDENTIALS, **kwargs: str) -> dict[str, str]:
    headers = sigv4.sign("POST", URL, BODY, credentials, kwargs.get("region", sigv4.LOCAL_REGION))
    return {**headers, "Host": "127.0.0.1:3000"}  # as the HTTP client sends it


def test_a_request_signed_with_the_local_credentials_passes() -> None:
    assert sigv4.refusal("POST", URL, signed_at(AT), BODY, now=AT + timedelta(minutes=2)) is None


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "now", "message"),
    [
        ("POST", URL, {}, BODY, AT, "Missing Authentication Token"),
        ("POST", URL, signed_at(AT, Credentials("someone", "local")), BODY, AT, "security token"),
        ("POST", URL, signed_at(AT, region="us-east-1"), BODY, AT, "security token"),
        ("POST", URL, signed_at(AT, Credentials("local", "guess")), BODY, AT, "does not match"),
        ("POST", URL, signed_at(AT), b'{"email": "other@example.com"}', AT, "does not match"),
        ("POST", URL.replace("press", "vip"), signed_at(AT), BODY, AT, "does not match"),
        ("GET", URL, signed_at(AT), BODY, AT, "does not match"),
        ("POST", URL, signed_at(AT), BODY, AT + timedelta(minutes=20), "expired"),
    ],
)
def test_an_unsigned_forged_or_replayed_request_is_refused(
    method: str, url: str, headers: dict[str, str], body: bytes, now: datetime, message: str
) -> None:
    refusal = sigv4.refusal(method, url, headers, body, now=now)
    assert refusal is not None
    assert message in refusal
