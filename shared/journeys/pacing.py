"""When a marketing message may go out (REQUIREMENTS.md, "Sending habits" and "SMS out"): frequency caps per
channel and topic over rolling windows, the contact's own frequency choice, quiet hours in the contact's time
zone, and the French rule for commercial SMS (Monday to Saturday, 08:00-20:00 Europe/Paris, not on public
holidays).

The rules come from `scenarios/sending.yaml`, compiled into each marketing send step's payload: a send Task
answers `deferred` with the moment it may go, and the state machine waits for it (no polling), then asks again.
Transactional messages carry no rules: nothing here holds them back, and they count against no cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.easter import easter

from shared.people import moments
from shared.storage import ContactModel, Tables, get_or_none, update_if

CHANNELS = ("email", "sms")
WHEN_CAPPED = ("defer", "skip")
KEPT = timedelta(days=31)  # how long a send stays in the contact's log: the longest window a rule may use
FREQUENCY_CAPS = {"weekly": 7 * 86400, "monthly": 30 * 86400}  # the preference centre's choice: one per period
PARIS = ZoneInfo("Europe/Paris")
FRENCH_PREFIX = "+33"


class PacingError(ValueError):
    """A compiled pacing payload this function does not understand (a compiler bug)."""


@dataclass(frozen=True)
class Cap:
    """At most `max` messages on `channel` (of `topic`, or any) in any `seconds`-long window."""

    channel: str
    max: int
    seconds: int
    topic: str | None = None


@dataclass(frozen=True)
class Hours:
    """A daily span of local time from `start` to `end`; it wraps midnight when `end` is not after `start`."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


FRENCH_SMS_HOURS = Hours(time(8), time(20))


@dataclass(frozen=True)
class Policy:
    """The deployment's sending habits, as `scenarios/sending.yaml` states them."""

    caps: tuple[Cap, ...] = ()
    quiet_hours: dict[str, Hours] = field(default_factory=dict)  # channel -> the hours to hold messages back
    french_sms_hours: Hours = FRENCH_SMS_HOURS

    def payload(self, channel: str, topic: str | None, when_capped: str) -> dict[str, Any]:
        """What a marketing send step of `channel` carries in its compiled payload."""
        rules: dict[str, Any] = {
            "caps": [
                {"max": cap.max, "seconds": cap.seconds, **({"topic": cap.topic} if cap.topic else {})}
                for cap in self.caps
                if cap.channel == channel and cap.topic in (None, topic)
            ],
            "when_capped": when_capped,
        }
        quiet = self.quiet_hours.get(channel)
        if quiet is not None:
            rules["quiet_hours"] = quiet.label()
        if channel == "sms":
            rules["french_hours"] = self.french_sms_hours.label()
        return rules


def _hours(text: str) -> Hours:
    start, _, end = text.partition("-")
    try:
        return Hours(time.fromisoformat(start), time.fromisoformat(end))
    except ValueError:
        raise PacingError(f"hours {text!r}: write HH:MM-HH:MM") from None


@dataclass(frozen=True)
class Rules:
    """One send step's compiled rules, read back by the send Task."""

    caps: tuple[Cap, ...]
    when_capped: str = "defer"
    quiet_hours: Hours | None = None
    french_hours: Hours | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any] | None, channel: str) -> Rules | None:
        """None for a transactional step (no `pacing` in its payload)."""
        if not payload:
            return None
        try:
            caps = tuple(
                Cap(channel, int(cap["max"]), int(cap["seconds"]), cap.get("topic") or None)
                for cap in payload.get("caps") or ()
            )
            when_capped = str(payload.get("when_capped", "defer"))
            if when_capped not in WHEN_CAPPED:
                raise PacingError(f"when_capped {when_capped!r}")
            quiet = _hours(str(payload["quiet_hours"])) if payload.get("quiet_hours") else None
            french = _hours(str(payload["french_hours"])) if payload.get("french_hours") else None
        except (KeyError, TypeError, ValueError) as error:
            raise PacingError(f"pacing payload: {error}") from None
        return cls(caps, when_capped, quiet, french)


@dataclass(frozen=True)
class Sent:
    """One marketing message in the contact's log (`ContactModel.recent_sends`)."""

    at: datetime
    channel: str
    topic: str | None
    key: str  # the outbox's send id: a retried send does not count against itself

    def encode(self) -> str:
        return f"{int(self.at.timestamp())}|{self.channel}|{self.topic or ''}|{self.key}"

    @classmethod
    def decode(cls, text: str) -> Sent | None:
        parts = text.split("|", 3)
        if len(parts) != 4 or not parts[0].isdigit():
            return None
        return cls(datetime.fromtimestamp(int(parts[0]), tz=UTC), parts[1], parts[2] or None, parts[3])


def log_of(contact: ContactModel) -> list[Sent]:
    return [sent for text in contact.recent_sends or () if (sent := Sent.decode(text)) is not None]


@dataclass(frozen=True)
class Decision:
    """`send` now, `defer` until a moment, or `skip`; `reason` names the rule that held the message back."""

    action: str
    reason: str | None = None
    until: datetime | None = None


def french_holidays(year: int) -> frozenset[date]:
    """France's eleven public holidays (Alsace-Moselle's two more are not counted)."""
    monday = easter(year) + timedelta(days=1)
    fixed = ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25))
    moving = (monday, monday + timedelta(days=38), monday + timedelta(days=49))  # Ascension, Whit Monday
    return frozenset({date(year, month, day) for month, day in fixed} | set(moving))


def next_french_sms_time(now: datetime, hours: Hours) -> datetime:
    """`now` when a commercial SMS may go to a French number, else the next opening: Monday to Saturday within
    `hours`, Paris time, on a day that is not a public holiday."""
    local = now.astimezone(PARIS)
    for days in range(15):
        day = local.date() + timedelta(days=days)
        if day.weekday() == 6 or day in french_holidays(day.year):
            continue
        opening = datetime.combine(day, hours.start, tzinfo=PARIS)
        closing = datetime.combine(day, hours.end, tzinfo=PARIS)
        if local < opening:
            return opening
        if local < closing:
            return now
    raise ValueError("no opening in two weeks")  # unreachable: at most three closed days in a row


def _cap_frees(cap: Cap, log: list[Sent], topic: str | None, at: datetime, key: str) -> datetime:
    """`at` if one more message fits under the cap then, else when the oldest message in the way leaves the window."""
    window = timedelta(seconds=cap.seconds)
    times = sorted(
        sent.at
        for sent in log
        if sent.channel == cap.channel
        and sent.key != key
        and (cap.topic is None or sent.topic == topic)
        and at - window < sent.at <= at
    )
    if len(times) < cap.max:
        return at
    return times[len(times) - cap.max] + window


def decide(
    rules: Rules,
    *,
    channel: str,
    topic: str | None,
    log: list[Sent],
    key: str,
    now: datetime,
    tz: ZoneInfo,
    frequency: str | None = None,
    phone: str | None = None,
) -> Decision:
    """Whether the message goes now; if not, until when it waits (or that it is skipped, by the scenario's rule).

    The French SMS hours always defer, whatever the scenario says: a commercial SMS is postponed, never dropped.
    """
    caps = [(cap, f"frequency cap: {cap.max} {channel} per {_span(cap.seconds)}") for cap in rules.caps]
    if channel == "email" and frequency in FREQUENCY_CAPS:
        caps.append((Cap("email", 1, FREQUENCY_CAPS[frequency]), f"the contact chose {frequency} emails"))
    french = rules.french_hours if channel == "sms" and phone and phone.startswith(FRENCH_PREFIX) else None

    def held(at: datetime) -> tuple[datetime, list[str]]:
        """The earliest moment from `at` that every rule allows, and the rules that hold the message at `at`."""
        latest, reasons = at, list[str]()
        for cap, reason in caps:
            frees = _cap_frees(cap, log, topic, at, key)
            if frees > at:
                latest, reasons = max(latest, frees), [*reasons, reason]
        if rules.quiet_hours is not None and rules.quiet_hours.contains(at.astimezone(tz).time()):
            ends = moments.next_moment(at, rules.quiet_hours.end, (), tz)
            latest, reasons = max(latest, ends), [*reasons, f"quiet hours {rules.quiet_hours.label()}"]
        if french is not None:
            opens = next_french_sms_time(at, french)
            if opens > at:
                latest = max(latest, opens)
                reasons.append(f"French SMS hours (Mon-Sat {french.label()} Paris time, not on public holidays)")
        return latest, reasons

    until, reasons = held(now)
    if not reasons:
        return Decision("send")
    habits = [reason for reason in reasons if not reason.startswith("French")]
    if rules.when_capped == "skip" and habits:
        return Decision("skip", habits[0])
    for _ in range(20):  # each rule may push the moment into another's span: settle on one they all allow
        later, pushed = held(until)
        if not pushed:
            break
        until = later
    return Decision("defer", "; ".join(reasons), until)


def _span(seconds: int) -> str:
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else f"{seconds // 3600}h"


def _rewrite(contact: ContactModel, entries: list[str]) -> bool:
    """Replaces the contact's log if no other send was counted since it was read (the count is its version)."""
    count = contact.sends_recorded
    condition = ContactModel.sends_recorded.does_not_exist() if count is None else ContactModel.sends_recorded == count
    return update_if(
        contact,
        [ContactModel.recent_sends.set(entries), ContactModel.sends_recorded.set((count or 0) + 1)],
        condition,
    )


def record(contact: ContactModel, sent: Sent) -> bool:
    """Adds a send to the contact's log, dropping what is older than any window; False when another send to
    this contact was recorded since the contact was read (then the caller re-reads and decides again)."""
    kept = [s.encode() for s in log_of(contact) if s.at > sent.at - KEPT and s.key != sent.key]
    return _rewrite(contact, [*kept, sent.encode()])


def forget(t: Tables, contact_id: str, key: str) -> None:
    """Takes a send that did not go out (SES or SNS refused it) off the contact's log, so it holds back no other
    message; best effort: if another send is counted at that moment, the entry ages out with the window."""
    contact = get_or_none(t.contacts, contact_id, consistent=True)
    if contact is None:
        return
    kept = [sent.encode() for sent in log_of(contact) if sent.key != key]
    if len(kept) != len(contact.recent_sends or ()):
        _rewrite(contact, kept)
