"""Draws a compiled scenario: Mermaid text (README, pull requests) and a standalone SVG file.

Drawn from the ASL itself, so the picture is what Step Functions runs. Retry and Catch edges are left out: every
Task may end in "Step failed" after its retries, which the legend says once. So is a marketing send's loop
through its Catch of HeldBack, the two Passes reading the seconds and its Wait (a send the sending habits defer
waits, then tries again): the send is drawn going on to its next step, which keeps the picture a tree read top-down.
The last step ends the execution itself (`End`): no end state is drawn after it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


def folded(definition: dict[str, Any]) -> set[str]:
    """The states of the held-back loops, not drawn: what each send's Catch of HeldBack leads to, up to its Wait
    (which leads back to the send)."""
    states = definition["States"]
    hidden: set[str] = set()
    for name, state in states.items():
        for catch in state.get("Catch", []):
            if catch["ErrorEquals"] == ["HeldBack"]:
                target = catch["Next"]
                while target != name and target not in hidden:
                    hidden.add(target)
                    target = states[target]["Next"]
    return hidden


def edges(definition: dict[str, Any]) -> list[Edge]:
    states = definition["States"]
    hidden = folded(definition)
    found = []
    for name, state in states.items():
        if name in hidden:
            continue
        if state["Type"] == "Choice":
            low, default = 0, "no"
            for choice in state["Choices"]:
                if "BooleanEquals" in choice:
                    found.append(Edge(name, choice["Next"], "yes"))
                elif "NumericEquals" in choice:  # a choose step's case
                    found.append(Edge(name, choice["Next"], f"case {int(choice['NumericEquals']) + 1}"))
                    default = "else"
                else:
                    bound = int(choice["NumericLessThan"])
                    found.append(Edge(name, choice["Next"], f"{bound - low}%"))
                    low, default = bound, f"{100 - bound}%"
            found.append(Edge(name, state["Default"], default))
        elif "Next" in state:
            timeouts = [c["Next"] for c in state.get("Catch", []) if c["ErrorEquals"] == ["States.Timeout"]]
            found.append(Edge(name, state["Next"], "event" if timeouts else ""))
            found.extend(Edge(name, target, "timeout") for target in timeouts)
    return found


def _drawn(definition: dict[str, Any]) -> list[str]:
    """The states on the drawn paths from the start (the failure path, a capped scenario's "Leave after a failure"
    then "Step failed", is said in words instead)."""
    outgoing: dict[str, list[str]] = {}
    for edge in edges(definition):
        outgoing.setdefault(edge.source, []).append(edge.target)
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(outgoing.get(name, []))
    return [name for name in definition["States"] if name in seen]


def mermaid(definition: dict[str, Any]) -> str:
    names = _drawn(definition)
    ids = {name: f"s{index}" for index, name in enumerate(names)}
    shapes = {"Task": ('["', '"]'), "Wait": ('(["', '"])'), "Choice": ('{"', '"}'), "Succeed": ('(("', '"))')}
    lines = ["flowchart TD"]
    for name in names:
        opening, closing = shapes.get(definition["States"][name]["Type"], ('["', '"]'))
        lines.append(f"  {ids[name]}{opening}{name.replace(chr(34), '#quot;')}{closing}")
    for edge in edges(definition):
        if edge.source in ids and edge.target in ids:
            arrow = f" -->|{edge.label}| " if edge.label else " --> "
            lines.append(f"  {ids[edge.source]}{arrow}{ids[edge.target]}")
    return "\n".join(lines) + "\n"


def _ranks(definition: dict[str, Any], names: list[str]) -> dict[str, int]:
    """Longest distance from the start: every arrow points down (the graph has no cycles)."""
    rank = {definition["StartAt"]: 0}
    outgoing: dict[str, list[str]] = {}
    for edge in edges(definition):
        outgoing.setdefault(edge.source, []).append(edge.target)
    for _ in names:  # relax |V| times: enough for a DAG
        for source, targets in outgoing.items():
            if source in rank:
                for target in targets:
                    rank[target] = max(rank.get(target, 0), rank[source] + 1)
    return rank


def svg(definition: dict[str, Any], title: str) -> str:
    names = _drawn(definition)
    rank = _ranks(definition, names)
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(rank[name], []).append(name)
    width, height, gap_x, gap_y = 220, 44, 40, 36
    columns = max(len(row) for row in rows.values())
    canvas_width = columns * (width + gap_x) + gap_x
    position = {}
    for level, row in rows.items():
        offset = (canvas_width - len(row) * (width + gap_x) + gap_x) / 2
        for index, name in enumerate(row):
            position[name] = (offset + index * (width + gap_x), 60 + level * (height + gap_y))
    canvas_height = 60 + len(rows) * (height + gap_y) + 30
    long_jumps = sum(1 for e in edges(definition) if e.target in rank and rank[e.target] - rank[e.source] > 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_width + 16 * long_jumps + 8:.0f}" '
        f'height="{canvas_height}" '
        f'font-family="Helvetica,Arial,sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#52525b"/></marker></defs>',
        f'<text x="{gap_x}" y="28" font-size="15" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="{gap_x}" y="46" fill="#71717a">Every task retries, then may end in “Step failed”.</text>',
    ]
    lane = canvas_width
    for edge in edges(definition):
        if edge.source not in position or edge.target not in position:
            continue
        (x1, y1), (x2, y2) = position[edge.source], position[edge.target]
        if rank[edge.target] - rank[edge.source] <= 1:
            start, end = (x1 + width / 2, y1 + height), (x2 + width / 2, y2)
            parts.append(
                f'<line x1="{start[0]:.0f}" y1="{start[1]:.0f}" x2="{end[0]:.0f}" y2="{end[1]:.0f}" '
                'stroke="#52525b" marker-end="url(#arrow)"/>'
            )
            label_at = ((start[0] + end[0]) / 2 + 4, (start[1] + end[1]) / 2)
        else:  # a long jump goes round the right side, in a lane of its own, never across other boxes
            lane += 16
            points = [
                (x1 + width, y1 + height / 2),
                (lane, y1 + height / 2),
                (lane, y2 + height / 2),
                (x2 + width, y2 + height / 2),
            ]
            path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="#52525b" marker-end="url(#arrow)"/>')
            label_at = (x1 + width + 4, y1 + height / 2 - 4)
        if edge.label:
            parts.append(
                f'<text x="{label_at[0]:.0f}" y="{label_at[1]:.0f}" fill="#2563eb">{html.escape(edge.label)}</text>'
            )
    fills = {"Task": "#dbeafe", "Wait": "#fef9c3", "Choice": "#fce7f3", "Succeed": "#dcfce7"}
    for name, (x, y) in position.items():
        kind = definition["States"][name]["Type"]
        radius = 20 if kind in ("Wait", "Succeed") else 4
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{width}" height="{height}" rx="{radius}" '
            f'fill="{fills.get(kind, "#f4f4f5")}" stroke="#52525b"/>'
        )
        parts.append(
            f'<text x="{x + width / 2:.0f}" y="{y + height / 2 + 4:.0f}" text-anchor="middle">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
