"""SigV4 for the IAM-authorised admin routes: the CLI signs its calls with botocore, and the local runtime checks
them the way API Gateway's AWS_IAM authoriser does (the local credentials are the only identity it knows).

A signature covers the method, path, query, the headers it names (host and x-amz-date at least) and the body's
SHA-256; it is valid 15 minutes around its x-amz-date.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shared import clock

SERVICE = "execute-api"
LOCAL_REGION = "eu-west-3"
LOCAL_CREDENTIALS = Credentials("local", "local")  # what `parcours local` gives every process it runs
SKEW = timedelta(minutes=15)
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


class _SignedAt(SigV4Auth):
    """botocore's signer, at a given instant: its own add_auth reads the machine's clock."""

    def __init__(self, credentials: Credentials, region: str, at: datetime) -> None:
        super().__init__(credentials, SERVICE, region)
        self.at = at

    def add_auth(self, request: AWSRequest) -> None:
        """SigV4Auth.add_auth, with its timestamp taken from `at` (its steps are not in botocore's stubs)."""
        steps: Any = self
        request.context["timestamp"] = self.at.astimezone(UTC).strftime(SIGV4_TIMESTAMP)
        steps._modify_request_before_signing(request)
        signature = self.signature(self.string_to_sign(request, self.canonical_request(request)), request)
        steps._inject_signature_to_request(request, signature)


def sign(
    method: str,
    url: str,
    body: bytes,
    credentials: Credentials,
    region: str,
    headers: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    """The headers to send: the caller's, plus x-amz-date, (x-amz-security-token) and Authorization; signed `at`
    (by default the real instant, which API Gateway checks against its own clock)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    _SignedAt(credentials, region, at or _wall_now()).add_auth(request)
    return dict(request.headers.items())


def _wall_now() -> datetime:
    return datetime.fromtimestamp(clock.wall_time(), UTC)


def refusal(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials = LOCAL_CREDENTIALS,
    region: str = LOCAL_REGION,
    now: datetime | None = None,
) -> str | None:
    """None when the request carries a valid signature by `credentials`; else why API Gateway would answer 403."""
    lowered = {name.lower(): value for name, value in headers.items()}
    found = AUTHORIZATION.match(lowered.get("authorization", "").strip())
    if found is None:
        return "Missing Authentication Token"
    if found["key"] != credentials.access_key or found["service"] != SERVICE or found["region"] != region:
        return "The security token included in the request is invalid"
    stamp = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "Signature expired or x-amz-date missing"
    if abs((now or _wall_now()) - signed_at) > SKEW or found["day"] != stamp[:8]:
        return "Signature expired or x-amz-date missing"
    names = found["headers"].split(";")
    if "host" not in names or any(name not in lowered for name in names):
        return "The request signature we calculated does not match the signature you provided"
    request = AWSRequest(method=method, url=url, data=body, headers={name: lowered[name] for name in names})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(credentials, SERVICE, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, found["signature"]):
        return "The request signature we calculated does not match the signature you provided"
    return None
