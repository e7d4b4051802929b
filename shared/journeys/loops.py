"""Scenarios that trigger each other without end, refused when the scenarios are compiled (parcours compile,
validate).

What a scenario's steps cause, as processing would (shared.journeys.processing):
  add_score                 score.changed {points, reason: the step}
  add_to_list, remove_from  list.joined / list.left {list}
  set_attribute             list.joined / list.left of the dynamic lists whose rule reads that attribute
  send_email                email.delivered, opened, clicked, bounced, complained, rejected, rendering_failed
                            {scenario, step}: SES reports a delivery by itself, and mail scanners and Apple Mail
                            open and click without anyone reading
and what processing derives from each of those: a scoring rule on the event (scoring.yaml) -> score.changed
{points, reason: the rule}; a dynamic list whose rule counts the event, reads the score it moved or the list it
changed (lists.yaml) -> list.joined / list.left. A scenario's trigger, with its `where` tested on what is known of
the event's properties (a property whose value depends on the contact, such as a score's old and new, may match),
then says which scenarios the event may start.

A loop is a cycle of "X may start Y" in which every scenario lets a contact in again at once: `re_entry: always`,
or `after` less than a day. One lap leads into the next for ever, each starting an execution (and sending its
emails) for the same contact. A scenario with `re_entry: never` ends the cycle (it enters once per contact), and so
does one with `after` a day or more (the lap stops at its refusal; a contact comes round at most once per period,
the rhythm its author chose). Lifecycle stages (stage.changed, contact.qualified) only move forward: no cycle
through them repeats. The run-time guard (shared.sources.ingestion, CHAIN_LIMIT) bounds whatever this cannot see.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.events import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINED,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    EMAIL_REJECTED,
    EMAIL_RENDERING_FAILED,
    LIST_JOINED,
    LIST_LEFT,
    SCORE_CHANGED,
)
from shared.journeys.declarations import DynamicList
from shared.journeys.reading import shown
from shared.journeys.scenario import (
    AddScore,
    Choose,
    If,
    ListChange,
    Scenario,
    ScenarioError,
    SendEmail,
    SetAttribute,
    Split,
    Step,
    WaitForEvent,
)
from shared.people import lists, scoring
from shared.people.conditions import matches

AT_ONCE = 86400  # `re_entry: after` less than a day lets a contact back in before a lap is over
EMAIL_FEEDBACK = (
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    EMAIL_CLICKED,
    EMAIL_BOUNCED,
    EMAIL_COMPLAINED,
    EMAIL_REJECTED,
    EMAIL_RENDERING_FAILED,
)


@dataclass(frozen=True)
class Emitted:
    """An event a scenario's step causes, what is known of its properties, and how it comes about (in words)."""

    event: str
    known: tuple[tuple[str, Any], ...]
    how: str
    line: int
    column: int


def walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step, branches included."""
    for step in steps:
        yield step
        if isinstance(step, If):
            yield from walk(step.then)
            yield from walk(step.otherwise)
        elif isinstance(step, Choose):
            for case in step.cases:
                yield from walk(case.steps)
            yield from walk(step.otherwise)
        elif isinstance(step, Split):
            for variant in step.variants:
                yield from walk(variant.steps)
        elif isinstance(step, WaitForEvent):
            yield from walk(step.on_event)
            yield from walk(step.on_timeout)


def _list_events(rule: lists.Rule, how: str, line: int, column: int) -> list[Emitted]:
    return [
        Emitted(
            kind,
            (("list", rule.name),),
            f"{how}, which may move the contact in or out of dynamic list {rule.name}",
            line,
            column,
        )
        for kind in (LIST_JOINED, LIST_LEFT)
    ]


def emissions(scenario: Scenario, dynamic: dict[str, DynamicList], rules: scoring.Config) -> list[Emitted]:
    """The events the scenario's steps may cause, directly or through the scoring and the dynamic lists."""
    listed = [lists.rule_of(rule.name, rule.condition) for rule in dynamic.values()]
    found: list[Emitted] = []
    for step in walk(scenario.steps):
        if isinstance(step, AddScore):
            known: tuple[tuple[str, Any], ...] = (("points", step.points), ("reason", step.id))
            found.append(
                Emitted(SCORE_CHANGED, known, f"adds {step.points:+d} points (step {step.id})", step.line, step.column)
            )
        elif isinstance(step, ListChange):
            verb = "adds to" if step.add else "removes from"
            kind = LIST_JOINED if step.add else LIST_LEFT
            how = f"{verb} list {step.list} (step {step.id})"
            found.append(Emitted(kind, (("list", step.list),), how, step.line, step.column))
        elif isinstance(step, SetAttribute):
            for rule in listed:
                if step.name in rule.fields:
                    how = f"sets {step.name} (step {step.id})"
                    found += _list_events(rule, how, step.line, step.column)
        elif isinstance(step, SendEmail):
            known = (("scenario", scenario.id), ("step", step.id))
            for kind in EMAIL_FEEDBACK:
                how = f"sends an email (step {step.id}), which SES reports as {kind}"
                found.append(Emitted(kind, known, how, step.line, step.column))
    # What processing derives from them (the dynamic lists do not depend on each other in a cycle: this ends)
    todo, seen = list(found), {(e.event, e.known) for e in found}
    while todo:
        event = todo.pop(0)
        derived: list[Emitted] = []
        if event.event not in scoring.OWN_EVENTS:
            for scored in rules.rules:
                if scored.event == event.event and may_match(scored.where, event.known):
                    known = (("points", scored.points), ("reason", scored.id))
                    how = f"{event.how}, which scoring rule {scored.id} scores {scored.points:+d}"
                    derived.append(Emitted(SCORE_CHANGED, known, how, event.line, event.column))
        moved = dict(event.known).get("list") if event.event in (LIST_JOINED, LIST_LEFT) else None
        for dynamic_list in listed:
            if (
                event.event in dynamic_list.events
                or (event.event == SCORE_CHANGED and "score" in dynamic_list.fields)
                or (moved is not None and moved in dynamic_list.lists)
            ):
                derived += _list_events(dynamic_list, event.how, event.line, event.column)
        for emitted in derived:
            if (emitted.event, emitted.known) not in seen:
                seen.add((emitted.event, emitted.known))
                found.append(emitted)
                todo.append(emitted)
    return found


def may_match(where: dict[str, Any] | None, known: tuple[tuple[str, Any], ...]) -> bool:
    """Whether a trigger's (or rule's) filter may hold on an event of which only `known` properties are certain."""
    values = dict(known)
    return all(matches({name: test}, values) for name, test in (where or {}).items() if name in values)


def at_once(scenario: Scenario) -> bool:
    """Whether a contact may enter the scenario again before a lap of a cycle is over."""
    if scenario.re_entry == "always":
        return True
    if scenario.re_entry.startswith("after:"):
        return int(scenario.re_entry.partition(":")[2]) < AT_ONCE
    return False


def starts(scenario: Scenario, event: Emitted) -> bool:
    return scenario.trigger_event == event.event and may_match(scenario.trigger_where, event.known)


def check(
    scenarios: list[Scenario], dynamic: dict[str, DynamicList], rules: scoring.Config, scenarios_dir: Path
) -> None:
    """Refuses scenarios that trigger each other without end (see the module's docstring), naming the cycle at the
    step of its first scenario that sets it going."""
    looping = sorted((s for s in scenarios if at_once(s)), key=lambda s: s.id)
    edges: dict[str, list[tuple[str, Emitted]]] = {}
    for scenario in looping:
        edges[scenario.id] = [
            (other.id, event)
            for event in emissions(scenario, dynamic, rules)
            for other in looping
            if starts(other, event)
        ]
    by_id = {s.id: s for s in looping}
    for first in looping:  # the cycle through the first scenario (by id) that has one, from it
        cycle = _cycle_from(first.id, edges)
        if cycle is not None:
            raise _error(cycle, by_id, scenarios_dir)


def _cycle_from(start: str, edges: dict[str, list[tuple[str, Emitted]]]) -> list[tuple[str, Emitted]] | None:
    """The shortest way back to `start` (breadth first): each hop as (the scenario, the event that starts the
    next); None when there is none."""
    paths: dict[str, list[tuple[str, Emitted]]] = {start: []}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for target, event in edges.get(current, []):
            path = [*paths[current], (current, event)]
            if target == start:
                return path
            if target not in paths:
                paths[target] = path
                queue.append(target)
    return None


def _error(cycle: list[tuple[str, Emitted]], by_id: dict[str, Scenario], scenarios_dir: Path) -> ScenarioError:
    names = [name for name, _ in cycle]
    hops = []
    for index, (name, event) in enumerate(cycle):
        following = names[(index + 1) % len(names)]
        again = " again" if following == names[0] and index == len(cycle) - 1 else ""
        hops.append(f"{name} {event.how}, which starts {following}{again}")
    entries = ", ".join(f"{n}: {_re_entry(by_id[n])}" for n in dict.fromkeys(names))
    if len(names) == 1:
        head = f"scenario {names[0]} triggers itself without end"
    else:
        head = f"scenarios {' -> '.join([*names, names[0]])} trigger each other without end"
    first = cycle[0][1]
    return ScenarioError(
        shown(scenarios_dir / by_id[names[0]].source),
        first.line or 1,
        first.column or 1,
        f"{head}: {'; '.join(hops)}; each lets the contact in again at once ({entries}). Make one of them "
        "`re_entry: never` (or `after` a day or more), or narrow a trigger's `where` so the cycle is broken",
    )


def _re_entry(scenario: Scenario) -> str:
    if scenario.re_entry.startswith("after:"):
        return f"re_entry: after {scenario.re_entry.partition(':')[2]}s"
    return f"re_entry: {scenario.re_entry}"
