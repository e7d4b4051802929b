"""Sending habits: caps over rolling windows, the contact's frequency, quiet hours in the contact's zone, the
French SMS hours, and the scenarios/sending.yaml file that states them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.journeys import pacing
from shared.journeys.pacing import Cap, Hours, Rules, Sent
from shared.journeys.policies import load_sending
from shared.journeys.scenario import ScenarioError

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)  # a Tuesday morning
TWO_A_DAY = Rules(caps=(Cap("email", 2, 86400),))


def sent(hours_ago: float, channel: str = "email", topic: str | None = "newsletter", key: str = "") -> Sent:
    return Sent(NOW - timedelta(hours=hours_ago), channel, topic, key or f"k{hours_ago}")


def decide(rules: Rules, log: list[Sent], now: datetime = NOW, **kwargs: object) -> pacing.Decision:
    options: dict[str, object] = {"channel": "email", "topic": "newsletter", "tz": PARIS, **kwargs}
    return pacing.decide(rules, log=log, key="this-send", now=now, **options)  # type: ignore[arg-type]


def test_under_the_cap_the_message_goes_now() -> None:
    assert decide(TWO_A_DAY, [sent(3)]).action == "send"


def test_at_the_cap_the_message_waits_until_the_oldest_send_leaves_the_window() -> None:
    decision = decide(TWO_A_DAY, [sent(20), sent(3), sent(30)])
    assert decision.action == "defer"
    assert decision.until == NOW + timedelta(hours=4)  # the send of 20 hours ago leaves the 24-hour window
    assert decision.reason == "frequency cap: 2 email per 1d"


def test_a_topic_cap_counts_only_that_topic_and_a_retried_send_never_counts_against_itself() -> None:
    rules = Rules(caps=(Cap("email", 1, 7 * 86400, "promotions"),))
    assert decide(rules, [sent(5, topic="newsletter")], topic="promotions").action == "send"
    assert decide(rules, [sent(5, topic="promotions")], topic="promotions").action == "defer"
    assert decide(rules, [sent(5, topic="promotions", key="this-send")], topic="promotions").action == "send"
    assert decide(rules, [sent(5, channel="sms")]).action == "send"  # another channel


def test_the_contact_s_weekly_or_monthly_choice_is_a_cap_of_one_email_per_period() -> None:
    log = [sent(48)]
    assert decide(Rules(caps=()), log, frequency="all").action == "send"
    weekly = decide(Rules(caps=()), log, frequency="weekly")
    assert (weekly.action, weekly.until) == ("defer", NOW + timedelta(days=5))
    assert weekly.reason == "the contact chose weekly emails"
    assert decide(Rules(caps=()), log, frequency="monthly").until == NOW + timedelta(days=28)
    assert decide(Rules(caps=()), [sent(48, channel="sms")], channel="sms", frequency="weekly").action == "send"


def test_quiet_hours_hold_a_message_until_they_end_in_the_contact_s_time_zone() -> None:
    rules = Rules(caps=(), quiet_hours=Hours(time(21), time(8)))
    late = datetime(2026, 11, 24, 22, 30, tzinfo=PARIS)
    decision = decide(rules, [], now=late)
    assert (decision.action, decision.until) == ("defer", datetime(2026, 11, 25, 8, 0, tzinfo=PARIS))
    assert decision.reason == "quiet hours 21:00-08:00"
    # 22:30 in Paris is 16:30 in Montreal: no quiet hours there
    assert decide(rules, [], now=late, tz=ZoneInfo("America/Montreal")).action == "send"
    # a daytime span that does not wrap midnight
    lunch = Rules(caps=(), quiet_hours=Hours(time(12), time(14)))
    assert decide(lunch, [], now=NOW.replace(hour=13)).until == NOW.replace(hour=14)
    assert decide(lunch, [], now=NOW.replace(hour=14)).action == "send"


def test_a_scenario_that_skips_drops_a_capped_message_with_its_reason() -> None:
    rules = Rules(caps=(Cap("email", 2, 86400),), when_capped="skip")
    assert decide(rules, [sent(1), sent(2)]) == pacing.Decision("skip", "frequency cap: 2 email per 1d")


def test_rules_that_push_each_other_settle_on_a_moment_they_all_allow() -> None:
    # Given a cap that frees at 21:30 and quiet hours from 21:00: the message waits for 08:00
    rules = Rules(caps=(Cap("email", 1, 86400),), quiet_hours=Hours(time(21), time(8)))
    decision = decide(rules, [sent(24 - 11.5)])
    assert decision.until == datetime(2026, 11, 25, 8, 0, tzinfo=PARIS)


SMS = Rules(caps=(), french_hours=pacing.FRENCH_SMS_HOURS)
FRENCH = "+33612345678"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 24, 10, 0), None),  # a Tuesday morning: now
        (datetime(2026, 11, 24, 7, 59), datetime(2026, 11, 24, 8, 0)),  # before 08:00
        (datetime(2026, 11, 24, 20, 0), datetime(2026, 11, 25, 8, 0)),  # 20:00 is closed
        (datetime(2026, 11, 28, 21, 30), datetime(2026, 11, 30, 8, 0)),  # Saturday night: Monday
        (datetime(2026, 11, 29, 12, 0), datetime(2026, 11, 30, 8, 0)),  # Sunday
        (datetime(2026, 12, 24, 20, 30), datetime(2026, 12, 26, 8, 0)),  # Christmas Eve night: not the 25th
        (datetime(2027, 3, 27, 21, 0), datetime(2027, 3, 30, 8, 0)),  # Easter Monday 2027 (29 March)
        (datetime(2027, 5, 5, 21, 0), datetime(2027, 5, 7, 8, 0)),  # Ascension 2027 (Thursday 6 May)
        (datetime(2026, 7, 13, 20, 5), datetime(2026, 7, 15, 8, 0)),  # 14 July
        (datetime(2026, 3, 28, 21, 0), datetime(2026, 3, 30, 8, 0)),  # across the spring DST change
    ],
)
def test_a_marketing_sms_to_a_french_number_keeps_the_french_hours(now: datetime, expected: datetime | None) -> None:
    decision = decide(SMS, [], now=now.replace(tzinfo=PARIS), channel="sms", phone=FRENCH)
    if expected is None:
        assert decision.action == "send"
    else:
        assert decision.action == "defer"
        assert decision.until == expected.replace(tzinfo=PARIS)
        assert decision.reason is not None
        assert decision.reason.startswith("French SMS hours")


def test_the_french_hours_never_drop_an_sms_and_concern_french_numbers_only() -> None:
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=PARIS)
    skipping = Rules(caps=(), when_capped="skip", french_hours=pacing.FRENCH_SMS_HOURS)
    assert decide(skipping, [], now=sunday, channel="sms", phone=FRENCH).action == "defer"
    assert decide(SMS, [], now=sunday, channel="sms", phone="+447700900123").action == "send"


def test_france_has_eleven_public_holidays_easter_s_moving_with_it() -> None:
    holidays = pacing.french_holidays(2026)
    assert len(holidays) == 11
    assert {date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25)} <= holidays  # Easter Monday, Ascension, Whit
    assert date(2026, 4, 5) not in holidays  # Easter Sunday is a Sunday anyway


def test_the_compiled_rules_read_back_and_a_malformed_payload_is_refused() -> None:
    policy = pacing.Policy(caps=(Cap("sms", 1, 86400),), quiet_hours={"sms": Hours(time(21), time(8))})
    rules = Rules.from_payload(policy.payload("sms", "promotions", "skip"), "sms")
    assert rules == Rules(
        caps=(Cap("sms", 1, 86400),),
        when_capped="skip",
        quiet_hours=Hours(time(21), time(8)),
        french_hours=pacing.FRENCH_SMS_HOURS,
    )
    assert Rules.from_payload(None, "email") is None
    for bad in ({"caps": [{"max": 1}]}, {"caps": [], "when_capped": "later"}, {"caps": [], "quiet_hours": "9-5"}):
        with pytest.raises(pacing.PacingError):
            Rules.from_payload(bad, "email")


def test_a_send_log_entry_survives_its_round_trip_and_garbage_is_ignored() -> None:
    entry = Sent(datetime(2026, 11, 24, 9, 0, tzinfo=UTC), "email", None, "arn:x#e1")
    assert Sent.decode(entry.encode()) == entry
    assert Sent.decode("not a log entry") is None


SHIPPED = Path(__file__).resolve().parents[3] / "scenarios" / "sending.yaml"


def test_the_shipped_sending_habits_are_the_documented_defaults() -> None:
    policy = load_sending(SHIPPED)
    assert Cap("email", 4, 86400) in policy.caps
    assert Cap("email", 2, 7 * 86400, "promotions") in policy.caps
    assert policy.quiet_hours == {"sms": Hours(time(21), time(8))}
    assert policy.french_sms_hours == Hours(time(8), time(20))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("caps: {channel: email}\n", 1, "caps is a list"),
        ("caps:\n  - {channel: fax, max: 1, per: 1d}\n", 2, "channel must be one of email, sms"),
        ("caps:\n  - {channel: email, max: 0, per: 1d}\n", 2, "max is how many messages"),
        ("caps:\n  - {channel: email, max: 1, per: 2 days}\n", 2, "per '2 days'"),
        ("caps:\n  - {channel: email, max: 1, per: 60d}\n", 2, "at most 31d"),
        ("caps:\n  - {channel: email, max: 1, per: 1d, topic: news}\n", 2, "topic must be one of"),
        ("caps:\n  - {channel: email, per: 1d}\n", 2, "max"),
        ("quiet_hours:\n  push: {from: '21:00', until: '08:00'}\n", 2, "push"),
        ("quiet_hours:\n  sms: {from: 21:00, until: '08:00'}\n", 2, "in quotes"),
        ("quiet_hours:\n  sms: {from: '21:00', until: '21:00'}\n", 2, "the same time"),
        ("french_sms_hours: {from: '8h', until: '20:00'}\n", 1, "not a time of day"),
        ("french_sms_hours: {from: '20:00', until: '08:00'}\n", 1, "within the day"),
        ("limits: []\n", 1, "limits"),
    ],
)
def test_a_mistake_in_sending_yaml_names_its_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "sending.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_sending(path)
    assert caught.value.path.endswith("sending.yaml")
    assert caught.value.line == line
    assert message in caught.value.message


def test_without_a_sending_file_only_the_french_sms_hours_hold_messages_back(tmp_path: Path) -> None:
    assert load_sending(tmp_path / "sending.yaml") == pacing.Policy()
