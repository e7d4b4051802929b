"""The paths through a compiled scenario, and the state transitions each costs: every state entered is one billed
transition (Standard workflows). Counted from the ASL alone, down every branch: a Choice's each way out, a
wait_for's event and its timeout. What only happens sometimes is left out and priced apart: a Task's retries, a send
held back (shared.journeys.compiler: its Catch of HeldBack), a failure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SENDS = {"send_email": "email", "send_sms": "sms"}
TIMEOUT = "States.Timeout"


@dataclass(frozen=True)
class Path:
    """One way through: the states entered in order, and what its Tasks asked the act function to do."""

    states: tuple[str, ...]
    kinds: tuple[str, ...]  # each state's Type
    actions: tuple[str, ...]

    @property
    def transitions(self) -> int:
        return len(self.states)

    def sent(self, channel: str) -> int:
        return sum(1 for action in self.actions if SENDS.get(action) == channel)

    @property
    def messages(self) -> int:
        return sum(1 for action in self.actions if action in SENDS)

    @property
    def waits(self) -> int:
        return self.kinds.count("Wait")


def paths(definition: dict[str, Any]) -> list[Path]:
    """Every path from the start to an end, in the ASL's order (the first way out of each state first)."""
    return list(_walk(definition["States"], definition["StartAt"], Path((), (), ())))


def _walk(states: dict[str, Any], name: str, before: Path) -> Iterator[Path]:
    if name in before.states:  # never in a compiled scenario: only a held-back send loops, through a Catch not followed
        raise ValueError(f"the path loops back to {name}")
    state = states[name]
    actions = before.actions
    if state["Type"] == "Task":
        actions = (*actions, str(state.get("Parameters", {}).get("Payload", {}).get("action", "")))
    path = Path((*before.states, name), (*before.kinds, state["Type"]), actions)
    if state["Type"] in ("Succeed", "Fail") or state.get("End"):
        yield path
        return
    following = [choice["Next"] for choice in state.get("Choices", [])]
    following += [state[key] for key in ("Default", "Next") if key in state]
    following += [catch["Next"] for catch in state.get("Catch", []) if catch["ErrorEquals"] == [TIMEOUT]]
    for target in following:
        yield from _walk(states, target, path)


def floor(path: Path) -> int:
    """The least a path can cost with Step Functions doing the waiting: one Task per message, one Wait between."""
    return path.messages + path.waits
