"""The console's way in: the template `sam build` made, with its artifacts uploaded to an S3 bucket and every local
path replaced by an S3 URI (what `sam package` does), the template itself uploaded, and CloudFormation's quick-create
link for it. Plain boto3, so that `parcours package` works against the local emulation's S3 as against AWS."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import yaml

from infra import samtemplate

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / ".aws-sam" / "build" / "template.yaml"
STACK_NAME = "parcours"
SAR = "AWS::ServerlessRepo::Application"

# Resource types the template makes (after the SAM transform) that the Serverless Application Repository does not
# accept (its "List of supported AWS resources"): `sam publish` is refused while the template has them. The README
# ("Deploy from the console") says what an operator does instead; a test keeps this list and the README in step.
SAR_UNSUPPORTED = frozenset(
    {
        "AWS::SES::ConfigurationSet",
        "AWS::SES::ConfigurationSetEventDestination",
        "AWS::SES::EmailIdentity",
        "AWS::Scheduler::Schedule",
    }
)


class S3(Protocol):
    def put_object(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Project:
    version: str
    home_page: str
    source: str


def project(root: Path = ROOT) -> Project:
    """pyproject.toml's version and URLs: the one place they are written."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    urls = data.get("urls", {})
    return Project(data["version"], urls["Homepage"], urls["Source"])


def zip_folder(folder: Path) -> bytes:
    """A deterministic zip of a built artifact (sorted names, fixed dates): the same code gives the same key."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


@dataclass(frozen=True)
class Packaged:
    template: dict[str, Any]
    text: str
    key: str  # the packaged template's key in the bucket
    uploads: list[str]  # every key written


class _Uploader:
    def __init__(self, s3: S3, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix.strip("/")
        self.keys: list[str] = []

    def put(self, body: bytes, suffix: str) -> str:
        name = f"{hashlib.sha256(body).hexdigest()[:32]}{suffix}"
        key = f"{self.prefix}/{name}" if self.prefix else name
        if key not in self.keys:  # the functions share one artifact: uploaded once
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            self.keys.append(key)
        return f"s3://{self.bucket}/{key}"


def _local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith(("s3://", "https://", "http://"))


def package(built: Path, s3: S3, bucket: str, prefix: str = "parcours", root: Path = ROOT) -> Packaged:
    """Uploads what the built template names by local path and returns the template naming them by S3 URI."""
    template = copy.deepcopy(samtemplate.load(built))
    base = built.parent
    up = _Uploader(s3, bucket, prefix)
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function" and _local(props.get("CodeUri")):
            props["CodeUri"] = up.put(zip_folder(base / props["CodeUri"]), ".zip")
        elif kind == "AWS::Serverless::LayerVersion" and _local(props.get("ContentUri")):
            props["ContentUri"] = up.put(zip_folder(base / props["ContentUri"]), ".zip")
        elif kind == "AWS::Serverless::StateMachine" and _local(props.get("DefinitionUri")):
            props["DefinitionUri"] = up.put((base / props["DefinitionUri"]).read_bytes(), ".json")
    function_globals = template.get("Globals", {}).get("Function", {})
    if _local(function_globals.get("CodeUri")):  # a stand-in every function overrides (template.yaml)
        del function_globals["CodeUri"]
    about = project(root)
    sar = template.get("Metadata", {}).get(SAR)
    if sar is not None:
        for field in ("LicenseUrl", "ReadmeUrl"):
            if _local(sar.get(field)):
                sar[field] = up.put((base / sar[field]).read_bytes(), Path(sar[field]).suffix or ".txt")
        sar.update(SemanticVersion=about.version, HomePageUrl=about.home_page, SourceCodeUrl=about.source)
    text = yaml.safe_dump(template, sort_keys=False, allow_unicode=True, width=120)
    key = f"{prefix.strip('/')}/{about.version}/template.yaml".lstrip("/")
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
    return Packaged(template, text, key, [*up.keys, key])


def template_url(bucket: str, key: str, region: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def quick_create_url(bucket: str, key: str, region: str, stack_name: str = STACK_NAME) -> str:
    """CloudFormation console's quick-create page for the packaged template: parameters to fill, then Create."""
    url = quote(template_url(bucket, key, region), safe="")
    return (
        f"https://console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/quickcreate?templateURL={url}&stackName={stack_name}"
    )


def s3_client(region: str, endpoint_url: str | None = None) -> Any:
    import boto3

    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
