"""template.yaml: read with CloudFormation's short tags, made runnable locally, translated by aws-sam-translator."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader (libyaml's when PyYAML has it: ten times faster, and tests read the template hundreds of times)
    plus the short forms of intrinsic functions (`!Ref`, `!Sub`, `!GetAtt` ...)."""


def _intrinsic(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if tag == "Ref":
            return {"Ref": value}
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{tag}": value}

    return construct


for _tag in (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Not",
    "Equals",
    "Join",
    "Select",
    "Split",
    "And",
    "Or",
    "FindInMap",
    "ImportValue",
    "Base64",
    "GetAZs",
    "Condition",
    "Cidr",
):
    _CfnLoader.add_constructor(f"!{_tag}", _intrinsic(_tag))


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)
    return data


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id
    iam: bool = False  # `Auth: {Authorizer: AWS_IAM}`: API Gateway requires a valid SigV4 signature


def http_routes(template: dict[str, Any]) -> list[Route]:
    """The HttpApi events of the template's functions: what API Gateway would route."""
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                iam = (props.get("Auth") or {}).get("Authorizer") == "AWS_IAM"
                routes.append(Route(props["Method"].upper(), props["Path"], logical_id, iam))
    return routes


@dataclass(frozen=True)
class DailySchedule:
    function: str  # logical id
    hour: int  # UTC
    minute: int


DAILY_CRON = re.compile(r"^cron\((\d{1,2}) (\d{1,2}) \* \* \? \*\)$")


def daily_schedules(template: dict[str, Any]) -> list[DailySchedule]:
    """The functions' ScheduleV2 events, which the local runtime plays (only daily crons, in UTC, exist)."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] != "ScheduleV2":
                continue
            props = event["Properties"]
            match = DAILY_CRON.match(str(props.get("ScheduleExpression", "")))
            if not match or props.get("ScheduleExpressionTimezone", "UTC") != "UTC":
                raise ValueError(f"{logical_id}.{name}: the local runtime plays daily cron(M H * * ? *) in UTC only")
            found.append(DailySchedule(logical_id, int(match.group(2)), int(match.group(1))))
    return found


def state_machines(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            yield logical_id, resource["Properties"]


def for_local(template: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The same stack, with code and definitions inlined: the local runtime runs the handlers in-process.

    `definitions` maps a DefinitionUri to its ASL (freshly compiled, so local always runs the current YAML).
    The dependencies layer is dropped: locally the virtual environment holds the same pinned packages.
    """
    local = copy.deepcopy(template)
    function_globals = local.get("Globals", {}).get("Function", {})
    function_globals.pop("CodeUri", None)
    function_globals.pop("Layers", None)
    resources = local["Resources"]
    for logical_id in [name for name, res in resources.items() if res["Type"] == "AWS::Serverless::LayerVersion"]:
        del resources[logical_id]
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props.pop("CodeUri", None)
            props.pop("Layers", None)
            props["InlineCode"] = "# parcours local runtime: this handler runs in-process from the checkout\n"
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            uri = props.pop("DefinitionUri")
            props["Definition"] = definitions[uri]
    return local


class _NoManagedPolicies:
    """aws-sam-translator asks IAM for managed policy ARNs; offline, it falls back to its built-in names."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    translated: dict[str, Any] = transform(template, parameters, _NoManagedPolicies())
    _apply_definition_substitutions(translated)
    return translated


def _apply_definition_substitutions(translated: dict[str, Any]) -> None:
    """CloudFormation applies DefinitionSubstitutions; moto does not, so the same is said with Fn::Sub."""
    for resource in translated["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        substitutions = props.pop("DefinitionSubstitutions", None)
        definition = props["DefinitionString"]
        if isinstance(definition, dict) and "Fn::Join" in definition:
            separator, lines = definition["Fn::Join"]
            definition = separator.join(lines)
        props["DefinitionString"] = _substitute(definition, substitutions or {})


def _substitute(definition: str, substitutions: dict[str, Any]) -> Any:
    """`${Name}` placeholders replaced by their values (intrinsics stay for CloudFormation to resolve).

    Fn::Join rather than Fn::Sub: moto's Fn::Sub turns the `$$` of `$$.Execution.Id` into `$`.
    """
    parts: list[Any] = []
    for index, piece in enumerate(re.split(r"\$\{([A-Za-z0-9_]+)\}", definition)):
        if index % 2 == 0:
            parts.append(piece)
        elif piece in substitutions:
            parts.append(substitutions[piece])
        else:
            parts.append("${" + piece + "}")
    return {"Fn::Join": ["", parts]} if len(parts) > 1 else definition


def dumps(template: dict[str, Any]) -> str:
    return json.dumps(template, indent=1, sort_keys=True)
