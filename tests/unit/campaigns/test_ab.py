"""A campaign's A/B test: the `ab` key read and refused with file, line and field like the rest of the document; the
sample drawn by a hash of the person (the same answer each time, about the share asked); the winner chosen by the
reports' verdict, said significant or not."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.campaigns import ab, document
from shared.reports import reading

KNOWN = document.Known(
    template=lambda name: name in ("promotions/black-friday", "promotions/other"),
    list=lambda name: name == "newsletter",
)
GOOD = """\
id: spring
email: promotions/black-friday
topic: promotions
audience:
  list: newsletter
ab:
  variants:
    - subject: "-30 % today"
    - name: second
      subject: Your offer inside
    - email: promotions/other
  sample: 20%
  wait: 4h
  metric: opens
"""


def load(tmp_path: Path, text: str) -> document.Campaign:
    path = tmp_path / "spring.yaml"
    path.write_text(text, encoding="utf-8")
    return document.load(path, KNOWN)


def test_an_ab_test_reads_back_as_the_same_document(tmp_path: Path) -> None:
    campaign = load(tmp_path, GOOD)
    assert campaign.ab is not None
    assert [v.name for v in campaign.ab.variants] == ["a", "second", "c"]
    assert (campaign.ab.sample, campaign.ab.wait, campaign.ab.metric) == (20, 4 * 3600, "opens")
    assert campaign.ab.variants[2] == document.Variant("c", None, "promotions/other")
    again = document.read(document.from_json(json.loads(json.dumps(campaign.to_dict()))), KNOWN)
    assert again == campaign
    assert campaign.to_dict()["ab"]["sample"] == "20%"


def test_the_metric_is_clicks_unless_said() -> None:
    body = {
        "id": "x",
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": "newsletter"},
        "ab": {"variants": [{"subject": "One"}, {"subject": "Two"}], "sample": 10, "wait": "1d"},
    }
    campaign = document.read(document.from_json(body), KNOWN)
    assert campaign.ab is not None
    assert (campaign.ab.metric, campaign.ab.sample, campaign.ab.wait) == ("clicks", 10, 86400)


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("  sample: 20%\n", "  sample: 100%\n", 12, "ab.sample", "from 1% to 99%"),
        ("  sample: 20%\n", "  sample: lots\n", 12, "ab.sample", "not a share"),
        ("  sample: 20%\n", "", 7, "ab.sample", "needs the key 'sample'"),
        ("  wait: 4h\n", "  wait: 10m\n", 13, "ab.wait", "from 1h to 30d"),
        ("  wait: 4h\n", "  wait: soon\n", 13, "ab.wait", "not a duration"),
        ("  metric: opens\n", "  metric: orders\n", 14, "ab.metric", "write clicks or opens"),
        ("    - email: promotions/other\n", "    - email: promotions/none\n", 11, "ab.variants[2].email", "no email"),
        ("    - email: promotions/other\n", "    - colour: red\n", 11, "ab.variants[2].colour", "unknown key"),
        ("    - email: promotions/other\n", "    - name: c\n", 11, "ab.variants[2]", "needs a `subject`"),
        ("    - email: promotions/other\n", "    - subject: Your offer inside\n", 8, "ab.variants", "the same"),
        ("    - email: promotions/other\n", "    - {name: second, subject: X}\n", 11, "ab.variants[2].name", "two"),
        ("    - email: promotions/other\n", "    - {name: Big C, subject: X}\n", 11, "ab.variants[2].name", "not a"),
        (
            '    - subject: "-30 % today"\n',
            '    - subject: "Hi {{ first_name }}"\n',
            8,
            "ab.variants[0].subject",
            "plain",
        ),
        ("  variants:\n", "  colour: red\n  variants:\n", 7, "ab.colour", "unknown key 'colour'"),
        (
            '    - subject: "-30 % today"\n    - name: second\n      subject: Your offer inside\n'
            "    - email: promotions/other\n",
            '    - subject: "-30 % today"\n',
            8,
            "ab.variants",
            "2 to 10 variants",
        ),
        ("ab:\n", 'when:\n  local_time: "10:00"\nab:\n', 9, "ab", "cannot go with when.local_time"),
        (GOOD[GOOD.index("ab:") :], "ab: yes\n", 6, "ab", "must be a mapping"),
        ("email: promotions/black-friday\n", "sms: promotions/black-friday\n", 7, "ab", "an SMS campaign cannot"),
    ],
)
def test_each_ab_mistake_is_named_with_its_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, words: str
) -> None:
    assert old in GOOD
    with pytest.raises(document.CampaignError) as raised:
        load(tmp_path, GOOD.replace(old, new, 1))
    assert f"spring.yaml:{line}:" in str(raised.value), str(raised.value)
    assert words in str(raised.value)
    assert raised.value.field == field


def test_an_ab_mistake_in_a_json_body_names_the_field() -> None:
    body = {
        "id": "x",
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": "newsletter"},
        "ab": {"variants": [{"subject": "One"}, {"subject": "Two"}], "sample": "0%", "wait": "4h"},
    }
    with pytest.raises(document.CampaignError) as raised:
        document.read(document.from_json(body), KNOWN)
    assert raised.value.field == "ab.sample"
    assert str(raised.value).startswith("ab.sample: ab.sample '0%'")


def test_the_schema_allows_the_ab_keys_the_reader_reads() -> None:
    schema = document.json_schema()["properties"]["ab"]
    assert set(schema["properties"]) == set(document.AB)
    assert set(schema["properties"]["variants"]["items"]["properties"]) == set(document.VARIANT)


def test_each_person_gets_the_same_variant_every_time_and_the_sample_is_about_its_share(tmp_path: Path) -> None:
    test = load(tmp_path, GOOD).ab
    assert test is not None
    people = [f"c-{n}" for n in range(6000)]
    first = [ab.assign("spring", test, person) for person in people]
    assert first == [ab.assign("spring", test, person) for person in people]  # deterministic
    shares = Counter(first)
    assert 0.17 < (len(people) - shares[None]) / len(people) < 0.23  # 20 % (1,200 expected; 3 sigma is about 93)
    assert {name for name in shares if name} == {"a", "second", "c"}
    assert min(shares[name] for name in ("a", "second", "c")) > 300  # about 400 each
    other = [ab.assign("autumn", test, person) for person in people]
    assert other != first  # another campaign draws another sample


def arms(sent: dict[str, int], opened: dict[str, int]) -> dict[str, object]:
    variants = []
    for name in sent:
        totals = reading.Totals.empty()
        totals.counters.update({"sent": sent[name], "opened": opened[name]})
        variants.append((name, 10, ["email"], totals))
    return reading.split_result("ab", variants, "opened")


def test_a_significant_winner_is_said_so_and_a_close_one_is_taken_but_said_not_significant(tmp_path: Path) -> None:
    test = load(tmp_path, GOOD).ab
    assert test is not None
    now = datetime(2026, 11, 27, 14, tzinfo=UTC)

    clear = ab.decision(test, arms({"a": 400, "second": 400, "c": 400}, {"a": 80, "second": 160, "c": 90}), now)
    assert (clear["winner"], clear["significant"]) == ("second", True)
    assert clear["verdict"].startswith("second wins on open rate")

    close = ab.decision(test, arms({"a": 400, "second": 400, "c": 400}, {"a": 80, "second": 84, "c": 90}), now)
    assert (close["winner"], close["significant"]) == ("c", False)
    assert "not significantly" in close["verdict"]
    assert close["variants"][2]["opened"] == 90

    nothing = ab.decision(test, arms({"a": 0, "second": 0, "c": 0}, {"a": 0, "second": 0, "c": 0}), now)
    assert (nothing["winner"], nothing["significant"]) == ("a", False)  # no sends at all: the first declared
