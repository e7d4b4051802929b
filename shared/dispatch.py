"""Starting scenarios from events: one execution per (scenario, contact, trigger event), started once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from shared import clients
from shared.consent import refusal_for_marketing_email
from shared.events import Event
from shared.settings import Settings
from shared.storage import ContactModel

CATALOGUE = Path(__file__).resolve().parent.parent / "scenarios" / "compiled" / "catalogue.json"


class DispatchError(RuntimeError):
    """Step Functions refused a start for a reason a retry of the message may fix."""


@dataclass(frozen=True)
class Entry:
    scenario: str
    trigger_event: str
    consent: str


@dataclass(frozen=True)
class Outcome:
    scenario: str
    execution: str
    started: bool
    reason: str


@lru_cache(maxsize=2)
def catalogue(path: Path = CATALOGUE) -> tuple[Entry, ...]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        Entry(scenario=name, trigger_event=spec["trigger"]["event"], consent=spec["entry"]["consent"])
        for name, spec in sorted(data.items())
    )


def execution_name(scenario: str, contact_id: str, event_id: str) -> str:
    """Deterministic and within Step Functions' rules (80 characters of [A-Za-z0-9-_])."""
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    return f"{scenario}-{contact_id}-{digest}"[:80]


def bucket(scenario: str, contact_id: str) -> int:
    """0-99, stable for a contact in a scenario: the same A/B variant every time they enter."""
    return int(hashlib.sha256(f"{scenario}:{contact_id}".encode()).hexdigest()[:8], 16) % 100


def start_matching(
    event: Event, contact: ContactModel, settings: Settings, entries: tuple[Entry, ...]
) -> list[Outcome]:
    outcomes = []
    for entry in entries:
        if entry.trigger_event != event.type:
            continue
        name = execution_name(entry.scenario, contact.contact_id, event.event_id)
        refusal = refusal_for_marketing_email(contact) if entry.consent == "email" else None
        if refusal is not None:
            outcomes.append(Outcome(entry.scenario, name, started=False, reason=refusal))
            continue
        outcomes.append(_start(entry.scenario, name, event, contact, settings))
    return outcomes


def _start(scenario: str, name: str, event: Event, contact: ContactModel, settings: Settings) -> Outcome:
    execution_input = {
        "contact_id": contact.contact_id,
        "bucket": bucket(scenario, contact.contact_id),
        "trigger": {"type": event.type, "event_id": event.event_id, "properties": event.properties},
    }
    try:
        clients.stepfunctions(settings.region).start_execution(
            stateMachineArn=settings.state_machine_prefix + scenario,
            name=name,
            input=json.dumps(execution_input, sort_keys=True),
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ExecutionAlreadyExists":
            return Outcome(scenario, name, started=False, reason="already started for this event")
        raise DispatchError(f"{scenario}: {code}") from error
    return Outcome(scenario, name, started=True, reason="trigger matched")
