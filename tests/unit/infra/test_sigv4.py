"""The local runtime's check of SigV4 signatures on IAM-authorised routes, as API Gateway's AWS_IAM authoriser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.credentials import Credentials

from infra import sigv4

URL = "http://127.0.0.1:3000/v1/lists/press/add"
BODY = b'{"email": "lou@example.com"}'
AT = datetime(2026, 11, 24, 9, 0, 7, tzinfo=UTC)  # every request here is signed then, and checked near it


def signed_at(at: datetime, credentials: Credentials = sigv4.LOCAL_CREDENTIALS, **kwargs: str) -> dict[str, str]:
    headers = sigv4.sign("POST", URL, BODY, credentials, kwargs.get("region", sigv4.LOCAL_REGION), at=at)
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


def test_a_request_signed_a_day_apart_is_refused_though_within_fifteen_minutes() -> None:
    """Just before midnight UTC, signed for the next day's scope: the date in the credential must be x-amz-date's."""
    late = datetime(2027, 12, 31, 23, 59, 30, tzinfo=UTC)
    headers = signed_at(late)
    assert sigv4.refusal("POST", URL, headers, BODY, now=late + timedelta(minutes=1)) is None
    forged = {**headers, "Authorization": headers["Authorization"].replace("/20271231/", "/20280101/")}
    refusal = sigv4.refusal("POST", URL, forged, BODY, now=late + timedelta(minutes=1))
    assert refusal is not None
    assert "expired" in refusal


def test_by_default_a_request_is_signed_and_checked_at_the_real_instant() -> None:
    """The CLI signs and API Gateway checks on their wall clocks (shared.clock.wall_time), not the simulated one."""
    headers = sigv4.sign("POST", URL, BODY, sigv4.LOCAL_CREDENTIALS, sigv4.LOCAL_REGION)
    assert sigv4.refusal("POST", URL, {**headers, "Host": "127.0.0.1:3000"}, BODY) is None
