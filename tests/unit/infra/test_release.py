"""Deployment from the console: the template's descriptions and Serverless Application Repository metadata, the
Makefile targets `sam build` runs, and the packaged template created by the local emulation's CloudFormation."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from infra import release, samtemplate

ROOT = Path(__file__).resolve().parents[3]
REGION = "eu-west-3"
MAKE = shutil.which("make") or "make"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return samtemplate.load()


def test_every_parameter_and_output_has_a_description_and_required_ones_say_so(template: dict[str, Any]) -> None:
    undescribed = [f"Parameters.{n}" for n, p in template["Parameters"].items() if not p.get("Description")]
    undescribed += [f"Outputs.{n}" for n, o in template["Outputs"].items() if not o.get("Description")]
    assert undescribed == []
    required = [n for n, p in template["Parameters"].items() if "Default" not in p]
    assert required == ["SenderEmail", "PostalAddress"]
    for name in required:
        assert template["Parameters"][name]["Description"].startswith("Required.")


def test_every_parameter_is_in_a_console_group(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])


def test_the_version_and_the_urls_are_pyprojects(template: dict[str, Any]) -> None:
    sar = template["Metadata"][release.SAR]
    about = release.project()
    assert (sar["SemanticVersion"], sar["HomePageUrl"], sar["SourceCodeUrl"]) == (
        about.version,
        about.home_page,
        about.source,
    )
    assert sar["SpdxLicenseId"] == "Apache-2.0"
    assert (ROOT / sar["LicenseUrl"]).read_text(encoding="utf-8").lstrip().startswith("Apache License")
    assert (ROOT / sar["ReadmeUrl"]).exists()


def test_functions_and_layer_are_built_by_the_makefile(template: dict[str, Any]) -> None:
    for name, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            assert resource.get("Metadata", {}).get("BuildMethod") == "makefile", name
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "build-%Function:" in makefile
    assert "build-DependenciesLayer:" in makefile


def test_the_layer_leaves_out_the_sdk_the_runtime_ships() -> None:
    listed = subprocess.run(
        [MAKE, "-s", "layer-requirements"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    pinned = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line
    }
    assert pinned - names == {"boto3", "botocore", "s3transfer", "urllib3"}
    assert {"aws_lambda_powertools", "pynamodb", "jinja2", "css-inline", "python-dateutil"} <= names
    dry = subprocess.run(
        [MAKE, "-n", "build-DependenciesLayer", "ARTIFACTS_DIR=/tmp/layer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--platform manylinux2014_aarch64", "--python-version 3.12", "--only-binary=:all:", "--no-deps"):
        assert flag in dry


def _function_artifact(target: Path) -> None:
    subprocess.run(
        [MAKE, "-s", "build-IngestFunction", f"ARTIFACTS_DIR={target}"], cwd=ROOT, check=True, capture_output=True
    )


def test_the_function_artifact_holds_the_code_and_compiled_scenarios(tmp_path: Path) -> None:
    _function_artifact(tmp_path / "fn")
    assert (tmp_path / "fn" / "functions" / "ingest" / "app.py").exists()
    assert (tmp_path / "fn" / "shared" / "__init__.py").exists()
    assert (tmp_path / "fn" / "scenarios" / "compiled" / "welcome.asl.json").exists()
    assert (tmp_path / "fn" / "templates").is_dir()
    # Bytecode for the functions' runtime only (Lambda's folder is read-only: without it every cold start compiles
    # every module), none of the working tree's caches; with no python3.12 on the machine, sources alone.
    compiled = {pyc.name for pyc in (tmp_path / "fn").rglob("*.pyc")}
    if compiled:
        sources = list((tmp_path / "fn").rglob("*.py"))
        assert all(pyc.parent.name == "__pycache__" for pyc in (tmp_path / "fn").rglob("*.pyc"))
        assert all((py.parent / "__pycache__" / f"{py.stem}.cpython-312.pyc").exists() for py in sources)
        assert all(name.endswith(".cpython-312.pyc") for name in compiled)


def _built(tmp_path: Path, template: dict[str, Any]) -> Path:
    """What `sam build` leaves: a folder per function and for the layer, the template naming them (the layer's
    wheels are stood in for by one file: installing them needs the network)."""
    build = tmp_path / ".aws-sam" / "build"
    _function_artifact(build / "shared-code")
    built = json.loads(json.dumps(template))
    for name, resource in built["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            (build / name).symlink_to(build / "shared-code", target_is_directory=True)
            props["CodeUri"] = name
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            (build / name / "python").mkdir(parents=True)
            (build / name / "python" / "placeholder.py").write_text("", encoding="utf-8")
            props["ContentUri"] = name
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            props["DefinitionUri"] = str(Path("../..") / props["DefinitionUri"])
    sar = built["Metadata"][release.SAR]
    for field in ("LicenseUrl", "ReadmeUrl"):
        (tmp_path / sar[field]).write_bytes((ROOT / sar[field]).read_bytes())
        sar[field] = f"../../{sar[field]}"
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    (build / "template.yaml").write_text(json.dumps(built), encoding="utf-8")
    return build / "template.yaml"


@mock_aws
def test_the_packaged_template_has_only_s3_uris_passes_cfn_lint_and_is_created(
    tmp_path: Path, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="releases", CreateBucketConfiguration={"LocationConstraint": REGION})
    packaged = release.package(_built(tmp_path, template), s3, "releases")

    stored = s3.get_object(Bucket="releases", Key=packaged.key)["Body"].read().decode()
    assert stored == packaged.text
    again = yaml.safe_load(stored)
    uris = [
        resource["Properties"].get(field)
        for resource in again["Resources"].values()
        for field in ("CodeUri", "ContentUri", "DefinitionUri")
        if field in resource.get("Properties", {})
    ]
    sar = again["Metadata"][release.SAR]
    uris += [sar["LicenseUrl"], sar["ReadmeUrl"]]
    assert len(uris) == 11 + 1 + 10 + 2  # functions (campaigns added one), the layer, state machines, licence, readme
    assert all(uri.startswith("s3://releases/parcours/") for uri in uris), uris
    assert "CodeUri" not in again["Globals"]["Function"]
    for uri in uris:  # each one is there
        s3.head_object(Bucket="releases", Key=uri.removeprefix("s3://releases/"))

    from cfnlint.api import lint

    assert [str(match) for match in lint(stored)] == []

    # moto's CloudFormation does not read a state machine's DefinitionS3Location: the definition is read back from
    # the bucket and inlined, as the local runtime inlines it (samtemplate.for_local).
    for _, props in samtemplate.state_machines(again):
        key = props.pop("DefinitionUri").removeprefix("s3://releases/")
        props["Definition"] = json.loads(s3.get_object(Bucket="releases", Key=key)["Body"].read())
    parameters = {
        "SenderEmail": "bonjour@boutique.example",
        "PostalAddress": "12 rue des Artisans, 75011 Paris",
        "ManageSendingDomain": "false",  # moto skips AWS::SES::EmailIdentity (infra/local/runtime.py)
    }
    translated = samtemplate.translate(again, parameters)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="parcours",
        TemplateBody=samtemplate.dumps(translated),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    assert cloudformation.describe_stacks(StackName="parcours")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    functions = boto3.client("lambda", region_name=REGION).list_functions()["Functions"]
    assert len(functions) == 11
    assert all(f["Runtime"] == "python3.12" and f["CodeSize"] > 100_000 for f in functions)  # the code from S3


def test_quick_create_url() -> None:
    url = release.quick_create_url("releases", "parcours/0.1.0/template.yaml", "eu-west-3")
    assert url == (
        "https://console.aws.amazon.com/cloudformation/home?region=eu-west-3#/stacks/quickcreate"
        "?templateURL=https%3A%2F%2Freleases.s3.eu-west-3.amazonaws.com%2Fparcours%2F0.1.0%2Ftemplate.yaml"
        "&stackName=parcours"
    )


def test_the_readme_names_what_the_serverless_application_repository_refuses(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    translated = samtemplate.translate(
        samtemplate.for_local(template, {uri: _SUCCEED for uri in _definition_uris(template)}),
        {"SenderEmail": "a@b.example", "PostalAddress": "x"},
    )
    types = {resource["Type"] for resource in translated["Resources"].values()}
    types |= {resource["Type"] for resource in template["Resources"].values()}
    present = release.SAR_UNSUPPORTED & types
    assert present, "release.SAR_UNSUPPORTED names types the template no longer has"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Deploy from the console", 1)[1].split("\n## ", 1)[0]
    for kind in sorted(present):
        assert f"`{kind}`" in section, kind


_SUCCEED = {"StartAt": "done", "States": {"done": {"Type": "Succeed"}}}


def _definition_uris(template: dict[str, Any]) -> list[str]:
    return [props["DefinitionUri"] for _, props in samtemplate.state_machines(template)]
