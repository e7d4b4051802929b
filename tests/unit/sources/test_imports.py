"""Contact import: a CSV file read (encoding, delimiter, header, duplicates) and each row turned into the event every
source queues, or refused with its line and column while the other rows go in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import CONTACT_IMPORTED, CONTACT_SUBSCRIBED
from shared.sources import imports
from shared.sources.imports import FileError, Problem
from shared.sources.validation import InputError

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HEADER = "email,first_name,last_name,phone,locale,timezone,lists,consent_state,consent_level,consent_date,consent_proof"


def no_refusal(name: str) -> str | None:
    """The admin route's check of a list name (a static list's name, not a dynamic list)."""
    from shared.people.lists import static_refusal

    return static_refusal(name)


def event_of(start: bool = False, **values: Any) -> Any:
    return imports.to_event({"email": "camille@example.com", **values}, "brevo.csv", start, NOW, NOW, no_refusal)


def refusal(**values: Any) -> tuple[str, str]:
    with pytest.raises(InputError) as raised:
        event_of(**values)
    return raised.value.field, raised.value.rule


def read(text: str | bytes, mapping: dict[str, str] | None = None) -> imports.Parsed:
    return imports.read(text.encode() if isinstance(text, str) else text, mapping)


# ---- a good row -------------------------------------------------------------------------------------------------


def test_a_row_becomes_a_contact_event_with_its_consent_proof_asserted_by_the_import() -> None:
    event = event_of(
        first_name="Camille",
        phone="+33 6 12 34 56 78",
        locale="fr-FR",
        timezone="Europe/Paris",
        lists="newsletter|vip",
        consent_state="granted",
        consent_level="confirmed",
        consent_date="2024-03-15 10:30:00",
        consent_proof="Formulaire newsletter v2, case cochée",
        **{"attributes.birthday": "1990-03-15"},  # type: ignore[arg-type]
    )
    assert (event.type, event.source) == (CONTACT_IMPORTED, "import")
    facts = event.contact
    assert (facts.email, facts.first_name, facts.phone, facts.locale) == (
        "camille@example.com",
        "Camille",
        "+33612345678",
        "fr",
    )
    assert facts.attributes == {"birthday": "1990-03-15", "timezone": "Europe/Paris"}
    consent = facts.email_consent
    assert (consent.state, consent.level, consent.source, consent.wording, consent.explicit) == (
        "granted",
        "confirmed_opt_in",
        "import:brevo.csv",
        "Formulaire newsletter v2, case cochée",
        True,
    )
    assert consent.at == "2024-03-15T10:30:00+00:00"  # no offset: UTC, as exports write it
    assert event.properties["lists"] == ["newsletter", "vip"]


def test_only_the_flag_makes_an_imported_row_a_signup_that_starts_scenarios() -> None:
    assert event_of(start=True).type == CONTACT_SUBSCRIBED
    assert event_of(start=False).type == CONTACT_IMPORTED


def test_the_same_row_is_the_same_event_whatever_the_file_is_called_so_a_re_import_changes_nothing() -> None:
    one = imports.to_event({"email": "a@example.com"}, "one.csv", False, NOW, NOW, no_refusal)
    again = imports.to_event({"email": " A@example.com "}, "renamed.csv", False, NOW.replace(hour=12), NOW, no_refusal)
    other = imports.to_event({"email": "a@example.com", "first_name": "A"}, "one.csv", False, NOW, NOW, no_refusal)
    assert one.event_id == again.event_id != other.event_id


def test_a_denial_without_a_date_is_dated_by_the_import_and_undoes_no_one_s_later_grant_by_itself() -> None:
    consent = event_of(consent_state="denied").contact.email_consent
    assert (consent.state, consent.at, consent.explicit) == ("denied", NOW.isoformat(), False)


# ---- bad rows: each named by its column ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "column", "words"),
    [
        ({"email": "not-an-address"}, "email", "not a valid email"),
        ({"email": "a" * 250 + "@example.com"}, "email", "not a valid email"),
        ({"email": ""}, "email", "needs an email"),
        ({"phone": "06 12 34 56 78"}, "phone", "E.164"),
        ({"consent_state": "subscribed"}, "consent_state", "granted or denied"),
        ({"consent_state": "granted", "consent_level": "triple", "consent_date": "2024-01-01"}, "consent_level", ""),
        ({"consent_state": "granted"}, "consent_date", "required"),
        ({"consent_state": "granted", "consent_date": "2026-12-01"}, "consent_date", "future"),
        ({"consent_state": "granted", "consent_date": "15/03/2024"}, "consent_date", "date or time"),
        ({"consent_state": "granted", "consent_date": "1999-12-31"}, "consent_date", "after 2000"),
        ({"consent_level": "single"}, "consent_state", "is empty"),
        ({"timezone": "Paris"}, "timezone", "IANA"),
        ({"locale": "français"}, "locale", "language"),
        ({"lists": "VIP clients"}, "lists", "VIP clients"),
        ({"lists": "bought-after-promotion"}, "lists", "dynamic"),
        ({"first_name": "C" * 201}, "first_name", "longer than 200"),
        ({"last_name": "x" * 3000}, "last_name", "longer than 2048"),
        ({"attributes.plan": "x" * 1025}, "attributes.plan", "1024 bytes"),
        ({"attributes.Plan Type": "pro"}, "attributes.Plan Type", "lower-case"),
        ({"consent_state": "granted", "consent_date": "2024-01-01", "consent_proof": "p" * 2001}, "consent_proof", ""),
        ({"first_name": "Camille\r\nBcc: x@example.com"}, "first_name", "control character (U+000D)"),
        ({"last_name": "Martin\u202e"}, "last_name", "control character (U+202E)"),
        ({"nickname": "Cam"}, "nickname", "unknown column"),
    ],
)
def test_a_bad_row_is_refused_naming_its_column(values: dict[str, str], column: str, words: str) -> None:
    field, rule = refusal(**values)
    assert field == column
    assert words in rule


def test_a_batch_answers_each_bad_row_by_its_line_and_queues_the_others() -> None:
    body = {
        "batch": "export.csv",
        "rows": [
            {"line": 2, "values": {"email": "good@example.com"}},
            {"line": 3, "values": {"email": "bad"}},
            {"line": 5, "values": {"email": "also.good@example.com", "timezone": "Mars/Olympus"}},
        ],
    }
    events, problems = imports.receive(body, NOW, NOW, no_refusal)
    assert [event.contact.email for event in events if event.contact] == ["good@example.com"]
    assert [(p.line, p.column) for p in problems] == [(3, "email"), (5, "timezone")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"rows": [{"values": {}}]}, "batch"),
        ({"batch": "f.csv", "rows": []}, "rows"),
        ({"batch": "f.csv", "rows": [{"values": {}}] * 501}, "rows"),
        ({"batch": "f.csv", "start_scenarios": "yes", "rows": [{"values": {}}]}, "start_scenarios"),
        ({"batch": "f.csv", "rows": ["email"]}, "rows[0]"),
    ],
)
def test_a_malformed_batch_is_refused_whole(body: Any, field: str) -> None:
    with pytest.raises(InputError) as raised:
        imports.receive(body, NOW, NOW, no_refusal)
    assert raised.value.field == field


# ---- the file --------------------------------------------------------------------------------------------------


def test_rows_keep_their_line_numbers_through_quoted_newlines_and_blank_lines() -> None:
    parsed = read(
        "email,consent_state,consent_date,consent_proof\n"
        'a@example.com,granted,2024-01-01,"line one\nline two"\n'
        "\n"
        "b@example.com,,,\n"
    )
    assert [(row.line, row.values["email"]) for row in parsed.rows] == [(2, "a@example.com"), (5, "b@example.com")]


def test_a_byte_order_mark_and_semicolons_as_excel_writes_them_in_france_are_read() -> None:
    text = "\ufeffemail;first_name;consent_state;consent_date\r\nchloe@example.com;Chloé;granted;2024-01-01\r\n"
    parsed = read(text.encode("utf-8"))
    assert parsed.rows[0].values == {
        "email": "chloe@example.com",
        "first_name": "Chloé",
        "consent_state": "granted",
        "consent_date": "2024-01-01",
    }


def test_a_second_row_for_the_same_address_is_refused_and_the_first_kept() -> None:
    parsed = read("email,first_name\na@example.com,A\nb@example.com,B\nA@Example.com ,Again\n")
    assert [row.line for row in parsed.rows] == [2, 3]
    assert parsed.problems == [Problem(4, "email", "already on line 2: that row is kept")]


def test_a_row_with_more_or_fewer_fields_than_the_header_is_refused_by_its_line() -> None:
    parsed = read("email,first_name\na@example.com,A,extra\nb@example.com\nc@example.com,C\n")
    assert [row.line for row in parsed.rows] == [4]
    assert [(p.line, p.error) for p in parsed.problems] == [
        (2, "3 fields where the header has 2"),
        (3, "1 fields where the header has 2"),
    ]


def test_another_tool_s_headers_are_renamed_with_a_map_and_left_out_with_a_dash() -> None:
    text = "Email Address,First Name,OPTIN_IP\na@example.com,Ann,10.0.0.1\n"
    parsed = read(text, {"email address": "email", "First Name": "first_name", "OPTIN_IP": "-"})
    assert parsed.rows[0].values == {"email": "a@example.com", "first_name": "Ann"}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"a@example.com,Ann\nb@example.com,Bob\n", "no header"),
        (b"first_name,last_name\nAnn,Lee\n", "no header naming an email or phone"),
        (b"email,nickname\na@example.com,Annie\n", "unknown column"),
        (b"email,email\na@example.com,b@example.com\n", "twice"),
        ("email,first_name\na@example.com,Chlo\u00e9\n".encode("cp1252"), "not UTF-8"),
        (b'email,first_name\na@example.com,"Ann\n', "not CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole_saying_why(raw: bytes, words: str) -> None:
    with pytest.raises(FileError) as raised:
        imports.read(raw)
    assert words in raised.value.problem.text("f.csv")


def test_a_not_utf8_file_names_the_line_of_its_first_bad_byte() -> None:
    raw = "email,first_name\na@example.com,Ann\nb@example.com,Chlo\u00e9\n".encode("cp1252")
    with pytest.raises(FileError) as raised:
        imports.read(raw)
    assert raised.value.problem.line == 3
