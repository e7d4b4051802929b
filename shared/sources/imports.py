"""Contact import: a CSV file of existing subscribers (from Brevo, Mailchimp, Klaviyo...), read by the CLI and
turned, row by row, into the same events every other source queues (README "Import").

The CLI reads the file (`read`: encoding, delimiter, header, duplicates) and posts its rows in signed batches to
`POST /v1/contacts/import`; the admin function turns each row into an event (`to_event`), which passes the same
checks as any source's (shared.sources.validation) before it is queued for the process function. A row's event id
is the digest of what it says: the same row imported again is the same event, dropped by the processing's
idempotency (7 days), so a re-import changes nothing.

Consent in a file is the operator's claim: it keeps the file's date and proof, and says who asserted it (source
`import:<file name>`); it never undoes a stored denial (shared.people.consent).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.events import (
    CONTACT_IMPORTED,
    CONTACT_SUBSCRIBED,
    ConsentFacts,
    ContactFacts,
    Event,
    normalise_phone,
)
from shared.sources import validation
from shared.sources.validation import InputError

COLUMNS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "lists",
    "consent_state",
    "consent_level",
    "consent_date",
    "consent_proof",
)
ATTRIBUTE_PREFIX = "attributes."  # attributes.birthday, attributes.plan_type: custom attributes
CONSENT_STATES = ("granted", "denied")
LEVELS = {
    "single": "single_opt_in",
    "single_opt_in": "single_opt_in",
    "confirmed": "confirmed_opt_in",
    "confirmed_opt_in": "confirmed_opt_in",
    "double": "confirmed_opt_in",
}
MAX_CELL = 2048  # characters of any value (a proof's wording is at most validation.MAX_WORDING)
MAX_BATCH_ROWS = 500  # rows per request to the admin route
MAX_BATCH_NAME = 100
SOURCE = "import"
_LOCALE = re.compile(r"^[A-Za-z]{2}([-_][A-Za-z0-9]{2,8})?$")
_DELIMITERS = (",", ";", "\t")
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@dataclass(frozen=True)
class Problem:
    """A refused row (or the file itself, line 0 when it has none): its line, the column at fault, why."""

    line: int
    column: str | None
    error: str

    def text(self, name: str) -> str:
        where = f"{name}:{self.line}" if self.line else name
        return f"{where}: {self.column + ': ' if self.column else ''}{self.error}"


@dataclass(frozen=True)
class Row:
    line: int  # the line the row starts on, as an editor numbers the file (the header is line 1)
    values: dict[str, str]


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # rows refused before they are sent


class FileError(ValueError):
    """The file cannot be read as an import (no header, an unknown column, not UTF-8...)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.error)
        self.problem = problem


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte order mark
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise FileError(
            Problem(line, None, 'is not UTF-8 text (Excel: save as "CSV UTF-8"; LibreOffice: character set UTF-8)')
        ) from None


def _delimiter(header: str) -> str:
    """Comma, or the semicolon Excel writes where the decimal separator is a comma (France), or a tab: the one that
    splits the header into the most known columns (ties: the most fields)."""

    def score(delimiter: str) -> tuple[int, int]:
        names = [name.strip().lower() for name in header.split(delimiter)]
        known = sum(1 for name in names if name in COLUMNS or name.startswith(ATTRIBUTE_PREFIX))
        return known, len(names)

    return max(_DELIMITERS, key=score)


def header_of(names: list[str], mapping: Mapping[str, str]) -> list[str | None]:
    """The columns of a header, renamed by `mapping` (a source's header -> a column, or "-" to leave it out: None);
    FileError naming the first unknown or repeated column."""
    lowered = {key.strip().lower(): value for key, value in mapping.items()}
    if any("@" in name for name in names):
        raise FileError(Problem(1, None, "no header: line 1 holds an address; the first line names the columns"))
    columns: list[str | None] = []
    for name in names:
        given = name.strip()
        column = lowered.get(given.lower(), given.lower())
        if column == "-":
            columns.append(None)
            continue
        if column.startswith(ATTRIBUTE_PREFIX):
            column = ATTRIBUTE_PREFIX + column[len(ATTRIBUTE_PREFIX) :]
        elif column not in COLUMNS:
            raise FileError(
                Problem(
                    1,
                    given or "(empty)",
                    f"unknown column; the columns are {', '.join(COLUMNS)} and {ATTRIBUTE_PREFIX}<name>; "
                    "rename it with --map 'HEADER=column', or leave it out with --map 'HEADER=-'",
                )
            )
        if column in columns:
            raise FileError(Problem(1, given, "column given twice"))
        columns.append(column)
    if "email" not in columns and "phone" not in columns:
        raise FileError(
            Problem(1, None, f"no header naming an email or phone column (first line: {','.join(names)[:80]!r})")
        )
    return columns


def read(raw: bytes, mapping: Mapping[str, str] | None = None) -> Parsed:
    """The rows of a CSV file, each with its line; refused here: a row whose field count is not the header's, and
    an address (or a phone, without address) already on an earlier row. FileError when the file cannot be read."""
    text = _text(raw)
    if not text.strip():
        raise FileError(Problem(0, None, "the file is empty: a header line, then one row per contact"))
    first = text.lstrip("\r\n").partition("\n")[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    parsed = Parsed()
    seen: dict[str, int] = {}
    try:
        names = next(reader)
        while not any(name.strip() for name in names):  # blank lines before the header
            names = next(reader)
        columns = header_of(names, mapping or {})
        line = reader.line_num + 1
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (Excel leaves some at the end)
            if len(cells) != len(columns):
                parsed.problems.append(Problem(start, None, f"{len(cells)} fields where the header has {len(columns)}"))
                continue
            values = {column: cell for column, cell in zip(columns, cells, strict=True) if column is not None}
            identity = values.get("email", "").strip().lower() or values.get("phone", "").strip()
            if identity and identity in seen:
                column = "email" if values.get("email", "").strip() else "phone"
                parsed.problems.append(Problem(start, column, f"already on line {seen[identity]}: that row is kept"))
                continue
            if identity:
                seen[identity] = start
            parsed.rows.append(Row(start, values))
    except csv.Error as error:
        raise FileError(Problem(reader.line_num, None, f"not CSV this importer can read: {error}")) from None
    return parsed


# ------------------------------------------------------------------------------------------------------ a row


def _cell(values: Mapping[str, Any], column: str) -> str | None:
    value = values.get(column)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(column, "must be text")
    if len(value) > MAX_CELL:
        raise InputError(column, f"is longer than {MAX_CELL} characters")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI:
            raise InputError(column, f"holds a control character (U+{ord(char):04X})")
    return value.strip() or None


def _moment(text: str, column: str, latest: datetime) -> str:
    """A date (midnight UTC) or an ISO 8601 time (without an offset: UTC, as exports write it), not in the future."""
    rule = "must be a date or time such as 2024-03-15 or 2024-03-15T09:30:00+01:00"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(column, rule) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > latest + validation.CONSENT_AHEAD:
        raise InputError(column, f"is in the future ({latest.isoformat()} now): a consent is dated when it was given")
    if moment < validation.EARLIEST:
        raise InputError(column, f"must be after {validation.EARLIEST.date().isoformat()}")
    return moment.isoformat()


def _consent(values: Mapping[str, Any], batch: str, now: datetime, latest: datetime) -> ConsentFacts | None:
    state = (_cell(values, "consent_state") or "").lower() or None
    level_text = (_cell(values, "consent_level") or "").lower() or None
    date = _cell(values, "consent_date")
    proof = _cell(values, "consent_proof")
    if state is None:
        if level_text or date or proof:
            raise InputError("consent_state", "is empty while consent_level, consent_date or consent_proof is given")
        return None
    if state not in CONSENT_STATES:
        raise InputError("consent_state", f"must be granted or denied (or empty: nothing known), not {state!r}")
    level = None
    if level_text is not None:
        level = LEVELS.get(level_text)
        if level is None:
            raise InputError("consent_level", f"must be single or confirmed (or empty), not {level_text!r}")
    if proof is not None and len(proof) > validation.MAX_WORDING:
        raise InputError("consent_proof", f"must be at most {validation.MAX_WORDING} characters")
    if date is None and state == "granted":
        raise InputError("consent_date", "is required when consent_state is granted: when was it given?")
    at = _moment(date, "consent_date", latest) if date is not None else now.isoformat()
    return ConsentFacts(state, level, at, f"{SOURCE}:{batch}", proof, explicit=date is not None)


def _lists(values: Mapping[str, Any], refusal: Callable[[str], str | None]) -> list[str]:
    text = _cell(values, "lists")
    names = [name.strip() for name in re.split(r"[|,]", text or "") if name.strip()]
    for name in names:
        reason = refusal(name)
        if reason is not None:
            raise InputError("lists", f"{name!r}: {reason}")
    return sorted(set(names))


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for column in values:
        if column.startswith(ATTRIBUTE_PREFIX):
            value = _cell(values, column)
            if value is not None:
                given[column[len(ATTRIBUTE_PREFIX) :]] = value
    zone = _cell(values, "timezone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError("timezone", f"{zone!r} is not an IANA time zone such as Europe/Paris") from None
        given["timezone"] = zone
    kept, _ = validation.limit_attributes(given, ATTRIBUTE_PREFIX, fields={"timezone": "timezone"})
    return kept


def _name(values: Mapping[str, Any], column: str) -> str | None:
    name = _cell(values, column)
    if name is not None and len(name) > validation.MAX_NAME:
        raise InputError(column, f"is longer than {validation.MAX_NAME} characters")
    return name


def check_batch_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_BATCH_NAME:
        raise InputError("batch", f"must be the file's name, 1 to {MAX_BATCH_NAME} characters")
    return _cell({"batch": name}, "batch") or ""


def to_event(
    values: Mapping[str, Any],
    batch: str,
    start_scenarios: bool,
    now: datetime,
    latest: datetime,
    list_refusal: Callable[[str], str | None],
) -> Event:
    """The event of one row, as every source's passes validation; InputError naming the column otherwise.

    `contact.subscribed` when the import is to start scenarios (the welcome series starts for those who consent),
    else `contact.imported`, which no scenario can be triggered by. `list_refusal` says why a list name cannot be
    joined (a dynamic list, a malformed name) or None."""
    unknown = sorted(c for c in values if c not in COLUMNS and not c.startswith(ATTRIBUTE_PREFIX))
    if unknown:
        raise InputError(unknown[0], "unknown column")
    email = validation.valid_email(_cell(values, "email"), "email")
    phone_text = _cell(values, "phone")
    phone = normalise_phone(phone_text) if phone_text is not None else None
    if phone_text is not None and phone is None:
        raise InputError("phone", "must be an international number (E.164) such as +33612345678")
    if email is None and phone is None:
        raise InputError("email", "is empty: a row needs an email address (or a phone number)")
    locale = _cell(values, "locale")
    if locale is not None and not _LOCALE.match(locale):
        raise InputError("locale", f"{locale!r} is not a language such as fr, en or fr-FR")
    facts = ContactFacts(
        email=email,
        first_name=_name(values, "first_name"),
        last_name=_name(values, "last_name"),
        locale=locale[:2].lower() if locale else None,
        phone=phone,
        email_consent=_consent(values, batch, now, latest),
        attributes=_attributes(values) or None,
    )
    properties = {"lists": _lists(values, list_refusal), "batch": batch}
    said = {**vars(facts), "email_consent": None, "lists": properties["lists"], "start": start_scenarios}
    consent = facts.email_consent
    said["consent"] = None if consent is None else [consent.state, consent.level, consent.wording, consent.explicit]
    if consent is not None and consent.explicit:
        said["consent"].append(consent.at)
    digest = hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()[:40]
    event = Event(
        event_id=f"{SOURCE}#{digest}",
        type=CONTACT_SUBSCRIBED if start_scenarios else CONTACT_IMPORTED,
        source=SOURCE,
        topic=f"{SOURCE}:{batch}",
        occurred_at=now.isoformat(),
        received_at=now.isoformat(),
        contact=facts,
        properties=properties,
    )
    try:
        return validation.checked(event, latest)
    except InputError as error:  # a field of the event: named by its column
        column = error.field.removeprefix("contact.").removeprefix("email_consent.")
        raise InputError(
            {"at": "consent_date", "attributes": ATTRIBUTE_PREFIX}.get(column, column), error.rule
        ) from None


def receive(
    body: Any, now: datetime, latest: datetime, list_refusal: Callable[[str], str | None]
) -> tuple[list[Event], list[Problem]]:
    """A batch the CLI posts, `{batch, start_scenarios, rows: [{line, values}]}`: the events of its good rows and
    the problems of the others. InputError when the batch itself is not that shape (the whole request is 400)."""
    if not isinstance(body, dict):
        raise InputError("body", "must be {batch, start_scenarios, rows: [{line, values}]}")
    batch = check_batch_name(body.get("batch"))
    start = body.get("start_scenarios", False)
    if not isinstance(start, bool):
        raise InputError("start_scenarios", "must be true or false")
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_BATCH_ROWS:
        raise InputError("rows", f"must be a list of 1 to {MAX_BATCH_ROWS} rows")
    events: list[Event] = []
    problems: list[Problem] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("values"), dict):
            raise InputError(f"rows[{index}]", "must be {line, values: {column: text}}")
        line = row.get("line")
        line = line if isinstance(line, int) and not isinstance(line, bool) else index
        try:
            events.append(to_event(row["values"], batch, start, now, latest, list_refusal))
        except InputError as error:
            problems.append(Problem(line, error.field, error.rule))
    return events, problems
