"""Retention (REQUIREMENTS.md, Privacy): the daily run erases a prospect (no order) whose last contact (a signup,
form, order or click; never an open) is older than the period, through the person's erasure, and counts them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import ContactFacts, Event
from shared.journeys import dispatch, privacy, processing, schedule
from shared.people import suppression
from shared.settings import ConfigurationError, Settings
from shared.storage import tables
from tests.conftest import SUPPRESSION_KEY
from tests.unit.journeys.test_schedule import Stopped, person, settings

__all__ = ["settings"]  # the fixture, shared with the schedule tests

RUN = datetime(2029, 11, 24, 0, 5, tzinfo=UTC)  # a daily run three years after the contacts' signup
SIGNUP = datetime(2026, 6, 1, 9, tzinfo=UTC)
LONG_AGO = datetime(2029, 11, 24, 9, tzinfo=UTC) - timedelta(days=1096)  # 1095 days and 15 hours before the run
RECENTLY = datetime(2029, 10, 1, 9, tzinfo=UTC)
KEY = suppression.HashKey(SUPPRESSION_KEY.encode())


@pytest.fixture(autouse=True)
def no_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    """No scenario deployed (moto runs no state machine here): the contacts' events only move their dates."""
    monkeypatch.setattr(dispatch, "catalogue", lambda: [])


def happened(settings: Settings, kind: str, email: str, at: datetime, **properties: Any) -> None:
    """An event about the address, processed at its own moment (the clock moved there)."""
    event = Event(
        f"test#{kind}#{email}#{at.isoformat()}",
        kind,
        "test",
        "test",
        at.isoformat(),
        at.isoformat(),
        ContactFacts(email=email),
        properties,
    )
    processing.process(event, settings, Stopped(at=at))


def test_the_daily_run_erases_prospects_past_their_period_and_keeps_customers_and_recent_prospects(
    settings: Settings,
) -> None:
    t = tables(settings)
    assert settings.prospect_retention_days == 1095  # the template's default
    clicked_long_ago = person(t, "old.click@example.com", SIGNUP)
    happened(settings, "email.clicked", "old.click@example.com", LONG_AGO, link="https://shop.example/")
    opened_recently = person(t, "opens.only@example.com", SIGNUP)
    happened(settings, "email.clicked", "opens.only@example.com", LONG_AGO, link="https://shop.example/")
    happened(settings, "email.opened", "opens.only@example.com", RECENTLY)  # an open is not contact
    customer = person(t, "customer@example.com", SIGNUP)
    happened(settings, "order.placed", "customer@example.com", LONG_AGO, total="42.00", order_id="1001")
    clicked_recently = person(t, "new.click@example.com", SIGNUP)
    happened(settings, "email.clicked", "new.click@example.com", RECENTLY, link="https://shop.example/")
    signed_up_recently = person(t, "new.signup@example.com", RECENTLY)
    assert t.contacts.get(opened_recently).engaged_on == "2029-10-01"  # the open moved engagement, not contact
    assert t.contacts.get(opened_recently).contacted_on == LONG_AGO.date().isoformat()

    report = schedule.run(settings, RUN, RUN)

    assert report.prospects_purged == 2
    gone = {clicked_long_ago, opened_recently}
    kept = {customer, clicked_recently, signed_up_recently}
    assert {c.contact_id for c in t.contacts.scan()} == kept
    for contact_id in gone:  # every item about them, in every store, is gone
        assert privacy.holdings(t, KEY, contact_id).counts() == {}
    for store in (t.identities, t.events, t.dates):
        assert not [item for item in store.scan() if getattr(item, "contact_id", None) in gone]
    # The addresses stay suppressed, the tombstone the erasure keeps: never mailed again
    for email in ("old.click@example.com", "opens.only@example.com"):
        entry = t.suppressions.get(suppression.address_hash(KEY, email))
        assert (entry.reason, entry.erased_at) == ("erased", RUN)
    # Recorded as an erasure from retention, with counts only
    records = list(t.events.query(privacy.ERASURE_OWNER))
    assert [record.source for record in records] == ["retention", "retention"]
    assert "example.com" not in str([record.properties for record in records])

    # A second run the same day, or the next one, purges nobody more
    assert schedule.run(settings, RUN, RUN).prospects_purged == 0
    assert schedule.run(settings, RUN + timedelta(days=1), RUN + timedelta(days=1)).prospects_purged == 0
    assert {c.contact_id for c in t.contacts.scan()} == kept


def test_a_prospect_is_purged_by_the_first_run_past_its_period_or_a_week_later(settings: Settings) -> None:
    t = tables(settings)
    contact_id = person(t, "lea@example.com", SIGNUP)
    happened(settings, "form.submitted", "lea@example.com", LONG_AGO, form="newsletter")
    period_end = LONG_AGO + timedelta(days=settings.prospect_retention_days)
    on_the_day = period_end.replace(hour=0, minute=5)
    assert schedule.run(settings, on_the_day, on_the_day).prospects_purged == 0  # 1095 days not yet past
    assert t.contacts.get(contact_id) is not None
    # The runs of the next days were missed: a week later, it is still found
    late = on_the_day + timedelta(days=7)
    assert schedule.run(settings, late, late).prospects_purged == 1
    assert list(t.contacts.scan()) == []


def test_without_the_suppression_key_the_run_erases_no_one_and_its_page_fails_to_be_retried(settings: Settings) -> None:
    """An erasure that could not write its tombstone would let the address be mailed again: without the key it
    stops before it deletes anything (the page worker reports the page failed; SQS retries it, then dead-letters)."""
    t = tables(settings)
    contact_id = person(t, "lea@example.com", SIGNUP)
    happened(settings, "form.submitted", "lea@example.com", LONG_AGO, form="newsletter")
    keyless = replace(settings, suppression_key=None, suppression_key_parameter=None)
    with pytest.raises(ConfigurationError, match="no suppression key configured"):
        schedule.run(keyless, RUN, RUN)
    assert t.contacts.get(contact_id) is not None
    assert list(t.suppressions.scan()) == []
    assert schedule.run(settings, RUN, RUN).prospects_purged == 1  # once the key is there
    assert t.suppressions.get(suppression.address_hash(KEY, "lea@example.com")).erased_at == RUN
