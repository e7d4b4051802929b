"""The campaign document: a campaigns/*.yaml file's mistakes named with file, line and column; the same document as
JSON named by field; the schema editors use kept in step with the reader; the shipped campaign valid."""

from __future__ import annotations

import json
import shutil
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


SMS_KNOWN = document.Known(
    template=KNOWN.template,
    list=KNOWN.list,
    sms=lambda name: None if name == "promotions/flash" else f"no SMS template {name!r}",
)
SMS = GOOD.replace("email: promotions/black-friday", "sms: promotions/flash")


def test_an_sms_campaign_names_its_sms_template_in_place_of_the_email() -> None:
    body = {"id": "flash", "sms": "promotions/flash", "topic": "promotions", "audience": {"list": "newsletter"}}
    campaign = document.read(document.from_json(body), SMS_KNOWN)
    assert (campaign.channel, campaign.template, campaign.sms, campaign.email) == (
        "sms",
        "promotions/flash",
        "promotions/flash",
        "",
    )
    assert campaign.to_dict() == body  # the same document back, without an email key
    assert document.read(document.from_json(campaign.to_dict()), SMS_KNOWN) == campaign


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (GOOD.replace("topic:", "sms: promotions/flash\ntopic:"), 3, "sms", "not both"),
        (GOOD.replace("email: promotions/black-friday\n", ""), 1, "email", "or 'sms' for an SMS campaign"),
        (SMS.replace("promotions/flash", "promotions/none"), 2, "sms", "no SMS template 'promotions/none'"),
        (SMS.replace("promotions/flash", "../flash"), 2, "sms", "is not a template name"),
        (SMS.replace("sms: promotions/flash", "sms: ''"), 2, "sms", "non-empty text"),
    ],
)
def test_each_sms_mistake_is_named_with_its_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    path = tmp_path / "spring.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(document.CampaignError) as raised:
        document.load(path, SMS_KNOWN)
    assert f"spring.yaml:{line}:" in str(raised.value), str(raised.value)
    assert words in str(raised.value)
    assert raised.value.field == field


def test_an_sms_campaign_file_is_checked_against_the_sms_templates_and_their_length(tmp_path: Path) -> None:
    # Given the shipped templates and one SMS far too long for a campaign (three segments with the stop mention)
    templates = tmp_path / "templates"
    shutil.copytree(build.TEMPLATES, templates)
    (templates / "sms" / "promotions" / "long.fr.txt").write_text("{{ sender.name }} : " + "Soldes ! " * 40)
    (templates / "sms" / "promotions" / "long.en.txt").write_text("{{ sender.name }}: short")
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shipped = GOOD.replace("email: promotions/black-friday", "sms: promotions/black-friday")
    (folder / "flash.yaml").write_text(shipped.replace("spring", "flash"))
    (folder / "long.yaml").write_text(shipped.replace("spring", "long").replace("black-friday", "long"))
    (folder / "none.yaml").write_text(shipped.replace("spring", "none").replace("black-friday", "none"))

    # When `parcours validate` reads them
    valid, problems = validation.campaigns(build.compile_all(), folder, templates)

    # Then the shipped SMS is valid; the long one and the missing one are refused with their file and line
    assert valid == ["flash"]
    long, missing = problems
    assert "long.yaml:2:" in long, long
    assert "(fr) is 394 characters" in long
    assert "3 segments, a campaign's SMS is at most 2" in long
    assert "none.yaml:2:" in missing
    assert "no SMS template 'promotions/none'" in missing


def test_the_api_refuses_an_sms_campaign_naming_the_field() -> None:
    for body, field in (
        ({"id": "x", "email": "promotions/black-friday", "sms": "promotions/flash"}, "sms"),
        ({"id": "x"}, "email"),
        ({"id": "x", "sms": "promotions/gone"}, "sms"),
    ):
        with pytest.raises(document.CampaignError) as raised:
            document.read(
                document.from_json({"topic": "promotions", "audience": {"list": "newsletter"}, **body}), SMS_KNOWN
            )
        assert raised.value.field == field
        assert str(raised.value).startswith(f"{field}: ")


def test_editors_schema_accepts_the_shipped_campaign_and_refuses_an_unknown_key() -> None:
    import jsonschema
    import yaml

    schema = json.loads((build.ROOT / "campaigns" / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    shipped = yaml.safe_load((build.ROOT / "campaigns" / "black-friday.yaml").read_text(encoding="utf-8"))
    shipped["when"]["date"] = str(shipped["when"]["date"])  # YAML reads a date; JSON has text
    assert list(validator.iter_errors(shipped)) == []
    assert list(validator.iter_errors({**shipped, "colour": "red"}))
    assert list(validator.iter_errors({**shipped, "audience": {"list": "a", "if": {"in_list": "b"}}}))
    assert list(validator.iter_errors({k: v for k, v in shipped.items() if k != "topic"}))
