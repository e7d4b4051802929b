"""`parcours codes load|status`: a deployment's pools of unique discount codes (shared/messages/discounts.py).

Finds the table as `parcours dlq` finds the queues: the stack's output DiscountCodesTableName, read with the usual
AWS credentials, or through the endpoint `parcours local` prints (no credentials needed there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from infra.deadletters import LOCAL_REGION
from shared.storage import DiscountCodeModel


class CodesError(RuntimeError):
    """The table cannot be found: the message says what to check."""


def table(endpoint_url: str | None, region: str | None, stack: str) -> type[DiscountCodeModel]:
    """The stack's discount codes table, as a model bound to it (and to the endpoint, when one is given)."""
    local = endpoint_url is not None and urlsplit(endpoint_url).hostname in ("127.0.0.1", "localhost")
    region = region or boto3.Session().region_name or (LOCAL_REGION if local else None)
    if region is None:
        raise CodesError("no AWS region: pass --region or set AWS_REGION")
    if local and boto3.Session().get_credentials() is None:
        # The local runtime takes any credentials; PynamoDB reads them from the environment (this process only).
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    cloudformation: Any = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint_url)
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as error:  # botocore's ClientError, or no endpoint at all
        raise CodesError(f"cannot read stack {stack!r}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    name = outputs.get("DiscountCodesTableName")
    if not name:
        raise CodesError(f"stack {stack!r} has no output DiscountCodesTableName (deploy this version first)")
    meta = type("Meta", (), {"table_name": name, "region": region, "host": endpoint_url})
    return type("DiscountCodeModel", (DiscountCodeModel,), {"Meta": meta})


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CodesError(f"cannot read {path}: {error}") from None
