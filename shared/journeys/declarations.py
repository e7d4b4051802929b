"""What scenarios may name beyond themselves: declarations.yaml (lists and attributes filled from outside), lists.yaml
(the dynamic lists), and the checks across every file of a scenarios folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.events import (
    LIST_JOINED,
    LIST_LEFT,
    SCHEDULED,
)
from shared.journeys.reading import (
    keyed,
    read_condition,
    read_file,
    shown,
)
from shared.journeys.scenario import Choose, If, ListChange, Scenario, ScenarioError, Split, Step, WaitForEvent
from shared.people.conditions import LIST_NAME, NAME

DECLARATIONS = "declarations.yaml"


@dataclass(frozen=True)
class Declarations:
    """Lists and custom attributes filled outside the scenarios (sources, imports, the admin API)."""

    lists: frozenset[str]
    attributes: frozenset[str]


def load_declarations(path: Path) -> Declarations:
    """Reads scenarios/declarations.yaml (absent: nothing declared); mistakes name file, line and column."""
    if not path.exists():
        return Declarations(frozenset(), frozenset())
    reader, top = read_file(path)
    if top is None:
        return Declarations(frozenset(), frozenset())
    root = reader.mapping(top, "the declarations", ("lists", "attributes"), ())
    found: dict[str, frozenset[str]] = {}
    for section, pattern in (("lists", LIST_NAME), ("attributes", NAME)):
        at = root.get(section)
        if at is None or at.value is None:
            found[section] = frozenset()
            continue
        entries = reader.mapping(at, section, tuple(at.value) if isinstance(at.value, dict) else (), ())
        for key, value in entries.items():
            if not pattern.match(key):
                raise reader.fail(value, f"{key!r} is not a {section[:-1]} name")
            if not isinstance(value.value, str) or not value.value.strip():
                raise reader.fail(value, f"say what {key!r} holds and who fills it, in a sentence")
        found[section] = frozenset(entries)
    return Declarations(found["lists"], found["attributes"])


def check_references(scenarios: list[Scenario], declared: Declarations, scenarios_dir: Path) -> None:
    """A list or custom attribute read somewhere must be written by some scenario or declared: a typo in a
    list name would otherwise make a branch silently never taken."""
    written = {(r.kind, r.name) for s in scenarios for r in s.references if r.writes}
    written |= {("list", name) for name in declared.lists} | {("attribute", name) for name in declared.attributes}
    for scenario in scenarios:
        for ref in scenario.references:
            if not ref.writes and (ref.kind, ref.name) not in written:
                filler = "adds contacts to it" if ref.kind == "list" else "sets it"
                raise ScenarioError(
                    shown(scenarios_dir / scenario.source),
                    ref.line,
                    ref.column,
                    f"{ref.kind} {ref.name!r} is read here but no scenario {filler}; fix the name, or declare it "
                    f"under `{ref.kind}s:` in {shown(scenarios_dir / DECLARATIONS)} if something else fills it",
                )


LISTS = "lists.yaml"
LIST_RULE_REFUSED = {
    "consent": "consent is checked when a message is sent, not kept in a list",
    "opened": "opened reads a message of a scenario's execution; a list has none",
    "clicked": "clicked reads a message of a scenario's execution; a list has none",
    "age": "age changes with the date alone; a list rule does not read it (use a date trigger)",
}


@dataclass(frozen=True)
class DynamicList:
    """A list whose members a rule decides (scenarios/lists.yaml), kept current by shared.people.lists."""

    name: str
    description: str
    condition: dict[str, Any]
    line: int = field(default=0, compare=False)
    reads: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)  # lists read, where written


def load_lists(path: Path) -> dict[str, DynamicList]:
    """Reads scenarios/lists.yaml, the dynamic lists (absent: none); mistakes name file, line and column.
    The references to other lists are checked against the scenarios by `check_lists`."""
    if not path.exists():
        return {}
    reader, top = read_file(path)
    if top is None:
        return {}
    root = reader.mapping(top, "the lists file", ("lists",), ())
    section = root.get("lists")
    if section is None or section.value is None:
        return {}
    if not isinstance(section.value, dict):
        raise reader.fail(section, "lists maps each list name to {description, if: CONDITION}")
    found: dict[str, DynamicList] = {}
    for list_name, at in section.value.items():
        if not LIST_NAME.match(list_name):
            raise reader.fail(at, f"{list_name!r} is not a list name: lower-case letters, digits and dashes")
        spec = reader.mapping(at, f"list {list_name}", ("description", "if"), ("description", "if"))
        description = reader.text(spec["description"], f"{list_name}.description")
        for key, refused in keyed(spec["if"], tuple(LIST_RULE_REFUSED)):
            raise reader.fail(refused, f"{list_name}.if: {LIST_RULE_REFUSED[key]}")
        condition = read_condition(reader, spec["if"], f"{list_name}.if")
        for _, value in keyed(spec["if"], ("event",)):
            if value.value in SCHEDULED:
                raise reader.fail(value, f"{list_name}.if: {value.value} is emitted for scenarios by the daily run")
            if value.value in (LIST_JOINED, LIST_LEFT):
                raise reader.fail(value, f"{list_name}.if: read a list's members with in_list, not its events")
        reads = tuple(
            (str(value.value), value.line, value.column) for _, value in keyed(spec["if"], ("in_list", "not_in_list"))
        )
        found[list_name] = DynamicList(list_name, description, condition, at.line, reads)
    return found


def list_reads(condition: Any) -> set[str]:
    """The lists a condition reads (in_list, not_in_list)."""
    found: set[str] = set()
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key in ("in_list", "not_in_list") and isinstance(value, str):
                found.add(value)
            elif key != "where":
                found |= list_reads(value)
    elif isinstance(condition, list):
        for part in condition:
            found |= list_reads(part)
    return found


def _list_changes(steps: tuple[Step, ...]) -> list[ListChange]:
    found: list[ListChange] = []
    for step in steps:
        if isinstance(step, ListChange):
            found.append(step)
        elif isinstance(step, If):
            found += _list_changes(step.then) + _list_changes(step.otherwise)
        elif isinstance(step, Choose):
            for case in step.cases:
                found += _list_changes(case.steps)
            found += _list_changes(step.otherwise)
        elif isinstance(step, Split):
            for variant in step.variants:
                found += _list_changes(variant.steps)
        elif isinstance(step, WaitForEvent):
            found += _list_changes(step.on_event) + _list_changes(step.on_timeout)
    return found


def check_lists(
    dynamic: dict[str, DynamicList], scenarios: list[Scenario], declared: Declarations, scenarios_dir: Path
) -> list[str]:
    """The dynamic lists against everything else: no scenario adds to or removes from one by hand, none is also
    declared as filled from outside, every list a rule reads exists (dynamic, written by a scenario or declared),
    and no list depends on itself through others. Returns the dynamic lists in an order where each comes after
    the lists it reads (shared.people.lists evaluates them so)."""
    where = shown(scenarios_dir / LISTS)
    for scenario in scenarios:
        for change in _list_changes(scenario.steps):
            if change.list in dynamic:
                verb = "adds to" if change.add else "removes from"
                raise ScenarioError(
                    where,
                    dynamic[change.list].line,
                    1,
                    f"list {change.list!r} is dynamic (its rule decides who is in it) but scenario {scenario.id!r} "
                    f"{verb} it at step {change.id!r}; rename one of them",
                )
    for name, rule in dynamic.items():
        if name in declared.lists:
            raise ScenarioError(
                where,
                rule.line,
                1,
                f"list {name!r} is dynamic but also declared in {DECLARATIONS} as filled from outside; "
                "remove one of them",
            )
    written = {r.name for s in scenarios for r in s.references if r.kind == "list" and r.writes}
    known = set(dynamic) | written | declared.lists
    for name, rule in dynamic.items():
        for read, line, column in rule.reads:
            if read not in known:
                raise ScenarioError(
                    where,
                    line,
                    column,
                    f"list {name!r} reads list {read!r}, which is neither dynamic, nor added to by a scenario, "
                    f"nor declared in {DECLARATIONS}",
                )
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name) :], name]
            raise ScenarioError(
                where,
                dynamic[name].line,
                1,
                f"lists depend on each other in a cycle: {' -> '.join(cycle)}; a list cannot decide its own members",
            )
        state[name] = "visiting"
        for read in sorted(list_reads(dynamic[name].condition) & set(dynamic)):
            visit(read, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in dynamic:
        visit(name, [])
    return order
