"""The campaign document: a campaigns/*.yaml file's mistakes named with file, line and column; the same document as
JSON named by field; the schema editors use kept in step with the reader; the shipped campaign valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import build, validation
from shared.campaigns import document

KNOWN = document.Known(
    template=lambda name: name == "promotions/black-friday", list=lambda name: name in ("newsletter", "vip")
)
GOOD = """\
id: spring
email: promotions/black-friday
topic: promotions
audience:
  list: newsletter
"""


def load(tmp_path: Path, text: str, name: str = "spring") -> document.Campaign:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return document.load(path, KNOWN)


def test_a_minimal_campaign_sends_now_to_a_list() -> None:
    campaign = document.read(
        document.from_json(
            {
                "id": "black-friday",
                "email": "promotions/black-friday",
                "topic": "promotions",
                "audience": {"list": "newsletter"},
            }
        ),
        KNOWN,
    )
    assert (campaign.audience.list, campaign.when.kind) == ("newsletter", "now")
    assert campaign.to_dict() == {
        "id": "black-friday",
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": "newsletter"},
    }


def test_a_full_campaign_reads_back_as_the_same_document(tmp_path: Path) -> None:
    campaign = load(
        tmp_path,
        GOOD
        + """\
  exclude:
    lists: [vip]
    if: {attribute: orders_count, gte: 5}
when:
  local_time: "10:00"
  date: "2026-11-27"
  timezone: Asia/Tokyo
""",
    )
    assert campaign.audience.exclude_lists == ("vip",)
    assert campaign.when.kind == "local"
    again = document.read(document.from_json(json.loads(json.dumps(campaign.to_dict()))), KNOWN)
    assert again == campaign


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (GOOD + "colour: red\n", 6, "colour", "unknown key 'colour'"),
        (GOOD.replace("id: spring\n", ""), 1, "id", "needs the key 'id'"),
        (GOOD.replace("promotions/black-friday", "promotions/none"), 2, "email", "no email template"),
        (GOOD.replace("list: newsletter", "list: nobody-fills-it"), 5, "audience.list", "unknown list"),
        (GOOD.replace("topic: promotions", "topic: sport"), 3, "topic", "unknown topic 'sport'"),
        (GOOD + 'when:\n  local_time: "10:00"\n  timezone: Mars/Olympus\n', 8, "when.timezone", "unknown time zone"),
        (GOOD + "when:\n  local_time: 10:00\n", 7, "when.local_time", "in quotes"),
        (GOOD + "when:\n  at: 2026-11-27T09:00:00\n", 7, "when.at", "with its offset"),
        (GOOD + "when: tomorrow\n", 6, "when", "when 'tomorrow'"),
        (GOOD + "  if: {attribute: orders_count, gte: 1}\n", 5, "audience", "one of them"),
        (GOOD + "  exclude:\n    if: {opened: e1}\n", 7, "audience.exclude.if", "a campaign has none"),
        (GOOD.replace("id: spring", "id: autumn"), 1, "id", "must match the file name"),
        (GOOD + "audience: again\n", 6, "audience", "repeated"),
    ],
)
def test_each_mistake_is_named_with_its_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(document.CampaignError) as raised:
        load(tmp_path, text)
    assert str(raised.value).startswith(f"{tmp_path / 'spring.yaml'}:{line}:") or str(raised.value).startswith(
        f"spring.yaml:{line}:"
    ), str(raised.value)
    assert words in str(raised.value)
    if words != "repeated":
        assert raised.value.field == field


def test_a_json_mistake_names_the_field_without_a_line() -> None:
    body = {"id": "x", "email": "promotions/black-friday", "topic": "promotions", "audience": {"list": "unknown"}}
    with pytest.raises(document.CampaignError) as raised:
        document.read(document.from_json(body), KNOWN)
    assert raised.value.field == "audience.list"
    assert str(raised.value).startswith("audience.list: unknown list 'unknown'")


def test_the_schema_allows_the_keys_the_reader_reads() -> None:
    schema = document.json_schema()
    assert set(schema["properties"]) == set(document.TOP)
    assert schema["required"] == list(document.REQUIRED)
    assert set(schema["properties"]["audience"]["properties"]) == set(document.AUDIENCE)
    assert set(schema["properties"]["audience"]["properties"]["exclude"]["properties"]) == set(document.EXCLUDE)
    local = schema["properties"]["when"]["oneOf"][2]["properties"]
    at = schema["properties"]["when"]["oneOf"][1]["properties"]
    assert set(local) | set(at) == set(document.WHEN)
    shipped = json.loads((build.ROOT / "campaigns" / "schema.json").read_text(encoding="utf-8"))
    assert shipped == schema  # `parcours compile --check` says so too


def test_the_shipped_campaigns_are_valid_and_a_broken_file_is_reported_with_its_line(tmp_path: Path) -> None:
    compiled = build.compile_all()
    valid, problems = validation.campaigns(compiled)
    assert (valid, problems) == (["black-friday"], [])
    (tmp_path / "broken.yaml").write_text(GOOD.replace("spring", "broken").replace("newsletter", "nope"))
    valid, problems = validation.campaigns(compiled, tmp_path)
    assert valid == []
    [problem] = problems
    assert ":5:" in problem
    assert "unknown list 'nope'" in problem
