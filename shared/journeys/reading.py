"""YAML read with line numbers, so that every mistake in a scenario, sending.yaml, scoring.yaml, lists.yaml or
declarations.yaml names its file, line and column; and the pieces these files write alike (times of day, conditions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.journeys.scenario import KNOWN_EVENTS, TIME_OF_DAY, ScenarioError, parse_duration
from shared.people.conditions import ConditionError, check


class Located:
    """A parsed YAML value with the place it came from."""

    def __init__(self, value: Any, line: int, column: int) -> None:
        self.value, self.line, self.column = value, line, column


def locate(node: yaml.Node, path: str) -> Located:
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Located] = {}
        for key, value in node.value:
            if str(key.value) in mapping:
                raise ScenarioError(
                    path, key.start_mark.line + 1, key.start_mark.column + 1, f"key {key.value!r} is repeated"
                )
            mapping[str(key.value)] = locate(value, path)
        return Located(mapping, line, column)
    if isinstance(node, yaml.SequenceNode):
        return Located([locate(item, path) for item in node.value], line, column)
    return Located(yaml.SafeLoader("").construct_object(node), line, column)  # typed: 2d text, 5 int, true bool


class Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, at: Located, message: str) -> ScenarioError:
        return ScenarioError(self.path, at.line, at.column, message)

    def mapping(
        self, at: Located, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, Located]:
        if not isinstance(at.value, dict):
            raise self.fail(at, f"{what} must be a mapping of keys to values")
        for key, value in at.value.items():
            if key not in allowed:
                raise self.fail(value, f"unknown key {key!r} in {what}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in at.value:
                raise self.fail(at, f"{what} needs the key {key!r}")
        return at.value

    def text(self, at: Located, what: str) -> str:
        if not isinstance(at.value, str) or not at.value.strip():
            raise self.fail(at, f"{what} must be a non-empty text")
        return at.value.strip()

    def choice(self, at: Located, what: str, choices: tuple[str, ...]) -> str:
        value = self.text(at, what)
        if value not in choices:
            raise self.fail(at, f"{what} must be one of {', '.join(choices)}, not {value!r}")
        return value


def shown(path: Path) -> str:
    """The path as the user would type it: relative to where they stand when it is below."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def compose(path: Path, name: str) -> yaml.Node | None:
    """The file's YAML tree, with places; a YAML mistake is a ScenarioError at its line and column."""
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError(name, line, column, f"not valid YAML: {error.problem}") from None
    return node


def time_of_day(reader: Reader, at: Located) -> str:
    value = at.value
    if isinstance(value, int):
        raise reader.fail(at, 'write the time in quotes, e.g. time: "10:00" (YAML reads 10:00 as a number)')
    if not isinstance(value, str) or not TIME_OF_DAY.match(value):
        raise reader.fail(at, f'time {value!r} is not a time of day such as "10:00"')
    return value


def plain(at: Located) -> Any:
    if isinstance(at.value, dict):
        return {key: plain(value) for key, value in at.value.items()}
    if isinstance(at.value, list):
        return [plain(item) for item in at.value]
    return at.value


def durations(condition: Any) -> Any:
    """Behaviour conditions say `within: 180d`; the compiled condition carries seconds."""
    if isinstance(condition, list):
        return [durations(part) for part in condition]
    if not isinstance(condition, dict):
        return condition
    converted = {key: durations(value) for key, value in condition.items()}
    if "within" in converted and isinstance(converted["within"], str):
        seconds = parse_duration(converted["within"])
        if seconds is None or seconds <= 0:
            raise ConditionError(f"within {converted['within']!r} is not a duration such as 30d")
        converted["within"] = seconds
    return converted


def events_known(condition: Any) -> None:
    if isinstance(condition, list):
        for part in condition:
            events_known(part)
    elif isinstance(condition, dict):
        if "event" in condition and condition["event"] not in KNOWN_EVENTS:
            raise ConditionError(f"unknown event {condition['event']!r}; known events: {', '.join(KNOWN_EVENTS)}")
        for value in condition.values():
            events_known(value)


def keyed(at: Located, keys: tuple[str, ...]) -> list[tuple[str, Located]]:
    """The values of these keys anywhere in a condition (`opened`, `clicked`, `age`), with where each was written."""
    found: list[tuple[str, Located]] = []
    if isinstance(at.value, dict):
        for key, value in at.value.items():
            if key in keys:
                found.append((key, value))
            elif key != "where":  # an event filter names event properties, not conditions
                found += keyed(value, keys)
    elif isinstance(at.value, list):
        for item in at.value:
            found += keyed(item, keys)
    return found


def read_file(path: Path) -> tuple[Reader, Located | None]:
    """A file's reader (named as the user would type the path) and its located root, None when the file is empty."""
    name = shown(path)
    node = compose(path, name)
    return Reader(name), None if node is None else locate(node, name)


def read_condition(reader: Reader, at: Located, what: str) -> dict[str, Any]:
    """A condition as written (`within: 30d`), checked, in its compiled form (seconds); a mistake names its place."""
    try:
        condition: dict[str, Any] = durations(plain(at))
        check(condition, what)
        events_known(condition)
    except ConditionError as error:
        raise reader.fail(at, str(error)) from None
    return condition
