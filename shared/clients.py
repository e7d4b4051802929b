"""Low-level boto3 clients, created on first use and kept for the container's life (decision 5)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient


@cache
def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def sqs(region: str) -> SQSClient:
    return _client("sqs", region)  # type: ignore[no-any-return]


def s3(region: str) -> Any:
    """S3 (the answers to Shopify's data requests); no type stubs are pinned for it."""
    return _client("s3", region)


def dynamodb(region: str) -> DynamoDBClient:
    """The low-level client, where an item is read and written as DynamoDB's JSON (the reports' counters and the
    stream records they are counted from: shared.reports)."""
    return _client("dynamodb", region)  # type: ignore[no-any-return]


def sesv2(region: str) -> SESV2Client:
    return _client("sesv2", region)  # type: ignore[no-any-return]


def stepfunctions(region: str) -> SFNClient:
    return _client("stepfunctions", region)  # type: ignore[no-any-return]


def sns(region: str) -> SNSClient:
    return _client("sns", region)  # type: ignore[no-any-return]


def events(region: str) -> Any:
    """EventBridge (the CRM handoff's `contact.qualified`); no type stubs are pinned for it."""
    return _client("events", region)
