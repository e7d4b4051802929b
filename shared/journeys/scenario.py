"""The scenario language: the model a scenario file is read into (shared.journeys.loader and .steps), which the
compiler trusts, and the words and limits of the language.

Build-time only (the CLI and the tests); no Lambda imports this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.events import (
    CATALOGUE,
)
from shared.people.topics import DEFAULT_TOPIC

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
DAY_OFFSET = re.compile(r"^([+-]?)(\d+)\s*(d|w)$")
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
ONE_YEAR = 365 * 86400
KNOWN_EVENTS = CATALOGUE


class ScenarioError(ValueError):
    """A scenario problem at a place in a file, with a hint on how to fix it."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path, self.line, self.column, self.message = path, line, column, message


@dataclass(frozen=True)
class Discount:
    """A send step's discount code: the same `code` for everyone, or each contact's own from a loaded `pool`."""

    code: str | None = None
    pool: str | None = None


@dataclass(frozen=True)
class SendEmail:
    id: str
    template: str
    discount: Discount | None = None
    line: int = field(default=0, compare=False, repr=False)  # where the step starts, for validate's messages
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class SendSms:
    id: str
    template: str  # templates/sms/<template>.<locale>.txt


@dataclass(frozen=True)
class NotifyCrm:
    """POSTs a signed notification of this type (a slug such as `qualified`) to the configured CRM."""

    id: str
    type: str


@dataclass(frozen=True)
class Wait:
    seconds: int
    text: str  # as written, e.g. "2d"


@dataclass(frozen=True)
class SetAttribute:
    id: str
    name: str
    value: Any
    line: int = field(default=0, compare=False, repr=False)  # where the step starts, for validate's messages
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class AddScore:
    id: str
    points: int
    line: int = field(default=0, compare=False, repr=False)  # where the step starts, for validate's messages
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class ListChange:
    id: str
    list: str
    add: bool
    line: int = field(default=0, compare=False, repr=False)  # where the step starts, for validate's messages
    column: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class If:
    id: str
    condition: dict[str, Any]
    then: tuple[Step, ...]
    otherwise: tuple[Step, ...]


@dataclass(frozen=True)
class Case:
    condition: dict[str, Any]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Choose:
    """A multi-way branch: the first case whose condition holds, else `otherwise`; one evaluation for all."""

    id: str
    cases: tuple[Case, ...]
    otherwise: tuple[Step, ...]


@dataclass(frozen=True)
class Variant:
    name: str
    percent: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Split:
    id: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class WaitForEvent:
    """Waits until the contact does `event` or `timeout_seconds` pass, whichever comes first."""

    id: str
    event: str
    timeout_seconds: int
    on_event: tuple[Step, ...]
    on_timeout: tuple[Step, ...]


@dataclass(frozen=True)
class WaitUntil:
    """Waits until the next local time of day, on allowed weekdays, in the contact's time zone."""

    id: str
    at: str  # "HH:MM"
    weekdays: tuple[str, ...]  # empty: every day


@dataclass(frozen=True)
class WaitUntilDate:
    """Waits until a day at a local time of day: a date attribute's day (`yearly`: its next anniversary) plus an
    offset in days; with no attribute, the day a date trigger's event names (the leading wait of such scenarios)."""

    id: str
    attribute: str | None
    yearly: bool
    offset_days: int
    at: str  # "HH:MM"


@dataclass(frozen=True)
class Unsubscribe:
    """Withdraws the contact's marketing consent for the channel, with the scenario and step as its source."""

    id: str
    channel: str  # email


@dataclass(frozen=True)
class DateTrigger:
    """A date attribute's yearly anniversary (plus an offset in days) at a local time of day."""

    attribute: str
    at: str
    offset_days: int = 0


@dataclass(frozen=True)
class Exit:
    """Leaves the scenario here (the execution succeeds)."""


Step = (
    SendEmail
    | Choose
    | SendSms
    | NotifyCrm
    | Wait
    | WaitUntil
    | WaitUntilDate
    | SetAttribute
    | AddScore
    | ListChange
    | If
    | Split
    | WaitForEvent
    | Unsubscribe
    | Exit
)
ACTIONS = (
    "send_email",
    "wait",
    "wait_until",
    "wait_for",
    "if",
    "choose",
    "split",
    "set_attribute",
    "add_score",
    "add_to_list",
    "remove_from_list",
    "send_sms",
    "notify_crm",
    "unsubscribe",
    "exit",
)


@dataclass(frozen=True)
class Reference:
    """A list or custom attribute a scenario reads or writes, where it is written (for the cross-file check)."""

    kind: Literal["list", "attribute"]
    name: str
    writes: bool
    line: int
    column: int


@dataclass(frozen=True)
class Scenario:
    id: str
    name: str
    description: str
    category: Literal["marketing", "transactional"]
    trigger_event: str
    entry_consent: Literal["email", "none"]
    steps: tuple[Step, ...]
    source: str
    re_entry: str = "never"  # never | always | after:<seconds>
    topic: str | None = DEFAULT_TOPIC  # what the preference centre turns off (None: transactional)
    when_capped: str = "defer"  # a send held by a cap or quiet hours waits (defer) or is dropped (skip)
    goal_event: str | None = None  # the first of goal_events
    trigger_where: dict[str, Any] | None = None
    references: tuple[Reference, ...] = ()
    entry_cap: int | None = None  # at most this many contacts in the scenario at once
    trigger_date: DateTrigger | None = None  # date triggers: the daily schedule emits date.reached
    inactive_days: int | None = None  # inactivity triggers: the daily schedule emits contact.inactive
    goal_events: tuple[str, ...] = ()
    entry_condition: dict[str, Any] | None = None  # entry.if: checked on the contact when the trigger matches
    goal_condition: dict[str, Any] | None = None  # goal.if: met, the contact leaves (checked on each of its events)
    soft_opt_in: bool = False  # its emails may reach customers who never objected, without opt-in (README)


def parse_duration(text: str) -> int | None:
    match = DURATION.match(text.strip())
    if not match:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]
