"""The campaign document: the same keys in a YAML file of `campaigns/` and in the JSON body of `POST /v1/campaigns`.

One reader serves both: a YAML file is read with its places (a mistake names file, line and column), a JSON body
without (a mistake names the field). What needs the deployment (a template, a list) is asked of the caller through
`Known`, so the CLI checks against the repository and the admin function against what it ships and stores.
Keys are added here and in `json_schema` together (tests/unit/campaigns/test_document.py checks they agree); an
A/B test (`ab`) would be a new key of TOP. A campaign is an email or an SMS: `email:` or `sms:` names its
template, exactly one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.people.conditions import LIST_NAME, ConditionError, check
from shared.people.topics import TOPICS

if TYPE_CHECKING:
    from shared.journeys.reading import Located  # build time only: it reads YAML, which no function does

ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TEMPLATE = re.compile(r"^[a-z0-9][a-z0-9/_-]{0,99}$")
TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
TOP = ("id", "name", "description", "email", "sms", "topic", "audience", "when", "ab")
REQUIRED = ("id", "topic", "audience")  # and one of CHANNELS
CHANNELS = ("email", "sms")
AUDIENCE = ("list", "if", "exclude")
EXCLUDE = ("lists", "if")
WHEN = ("at", "local_time", "date", "timezone")
AB = ("variants", "sample", "wait", "metric")
AB_REQUIRED = ("variants", "sample", "wait")
VARIANT = ("name", "subject", "email")
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
METRICS = ("clicks", "opens")  # clicks first: the default (an open is often Apple's proxy, not the person)
SAMPLE = re.compile(r"^\s*(\d{1,2})\s*%\s*$")
MAX_VARIANTS = 10
WAIT_MIN, WAIT_MAX = 3600, 30 * 86400  # an hour at least: opens and clicks come over hours
# Conditions a campaign's audience may not use: they read a message of a scenario's execution.
NO_EXECUTION = ("opened", "clicked")


class CampaignError(ValueError):
    """A mistake in a campaign: `field` is its dotted path (audience.list); `place` is file:line:column for a file."""

    def __init__(self, field: str, message: str, place: str | None = None) -> None:
        super().__init__(f"{place}: {message}" if place else f"{field}: {message}" if field else message)
        self.field, self.message, self.place = field, message, place


@dataclass(frozen=True)
class Audience:
    """Who: a list's members, or every contact meeting a condition; less those excluded."""

    list: str | None = None
    condition: dict[str, Any] | None = None
    exclude_lists: tuple[str, ...] = ()
    exclude_if: dict[str, Any] | None = None


@dataclass(frozen=True)
class When:
    """now; `at` an instant; or `local_time` (HH:MM) in each contact's time zone, on `date` or the next one."""

    at: datetime | None = None
    local_time: str | None = None
    date: date | None = None
    timezone: str | None = None  # local_time: the zone of contacts without one (None: the deployment's default)

    @property
    def kind(self) -> str:
        return "at" if self.at is not None else "local" if self.local_time is not None else "now"


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B test: another subject (plain text), another template, or both."""

    name: str
    subject: str | None = None
    email: str | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name}
        if self.subject is not None:
            found["subject"] = self.subject
        if self.email is not None:
            found["email"] = self.email
        return found


@dataclass(frozen=True)
class ABTest:
    """`sample` % of the audience gets the variants (an equal share each, by a hash of the person); `wait` seconds
    after the sample's last send, the variant with the better `metric` rate goes to the rest (shared.campaigns.ab)."""

    variants: tuple[Variant, ...]
    sample: int  # percent of the audience, 1 to 99
    wait: int  # seconds
    wait_text: str  # as written: 4h
    metric: str = "clicks"  # clicks | opens

    def to_dict(self) -> dict[str, Any]:
        return {
            "variants": [variant.to_dict() for variant in self.variants],
            "sample": f"{self.sample}%",
            "wait": self.wait_text,
            "metric": self.metric,
        }


@dataclass(frozen=True)
class Campaign:
    id: str
    email: str  # the template, as send_email steps name it: templates/email/<email>.<locale>.html ("" for an SMS)
    topic: str
    audience: Audience
    when: When = field(default_factory=When)
    name: str = ""
    description: str = ""
    ab: ABTest | None = None
    sms: str = ""  # an SMS campaign's template, as send_sms steps name it: templates/sms/<sms>.<locale>.txt

    @property
    def channel(self) -> str:
        return "sms" if self.sms else "email"

    @property
    def template(self) -> str:
        return self.sms or self.email

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON, as POST /v1/campaigns accepts it (what the campaigns table keeps)."""
        audience: dict[str, Any] = (
            {"list": self.audience.list} if self.audience.list is not None else {"if": self.audience.condition}
        )
        exclude: dict[str, Any] = {}
        if self.audience.exclude_lists:
            exclude["lists"] = list(self.audience.exclude_lists)
        if self.audience.exclude_if is not None:
            exclude["if"] = self.audience.exclude_if
        if exclude:
            audience["exclude"] = exclude
        document: dict[str, Any] = {
            "id": self.id,
            self.channel: self.template,
            "topic": self.topic,
            "audience": audience,
        }
        if self.name:
            document["name"] = self.name
        if self.description:
            document["description"] = self.description
        if self.when.at is not None:
            document["when"] = {"at": self.when.at.isoformat()}
        elif self.when.local_time is not None:
            local: dict[str, Any] = {"local_time": self.when.local_time}
            if self.when.date is not None:
                local["date"] = self.when.date.isoformat()
            if self.when.timezone is not None:
                local["timezone"] = self.when.timezone
            document["when"] = local
        if self.ab is not None:
            document["ab"] = self.ab.to_dict()
        return document


@dataclass(frozen=True)
class Known:
    """What the deployment has: `template(name)` whether an email template exists, `list(name)` whether a list does
    (filled by a rule, a scenario, a declaration or, for the API, holding members), `sms(name)` why an SMS template
    cannot be a campaign's (missing, or too long once rendered with its stop mention; None: it can).
    None: not checked."""

    template: Callable[[str], bool] | None = None
    list: Callable[[str], bool] | None = None
    sms: Callable[[str], str | None] | None = None


class Node:
    """A value with where it was written (line 0: a JSON body, which has no lines)."""

    def __init__(self, value: Any, line: int = 0, column: int = 0) -> None:
        self.value, self.line, self.column = value, line, column


def from_json(value: Any) -> Node:
    if isinstance(value, dict):
        return Node({str(k): from_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return Node([from_json(v) for v in value])
    return Node(value)


def plain(node: Node) -> Any:
    if isinstance(node.value, dict):
        return {k: plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [plain(v) for v in node.value]
    return node.value


class _Reader:
    def __init__(self, path: str | None) -> None:
        self.path = path

    def fail(self, at: Node, name: str, message: str) -> CampaignError:
        place = f"{self.path}:{at.line}:{at.column}" if self.path is not None else None
        return CampaignError(name, message, place)

    def mapping(self, at: Node, name: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Node]:
        what = name or "the campaign"
        if not isinstance(at.value, dict):
            raise self.fail(at, name, f"{what} must be a mapping of keys to values")
        for key, value in at.value.items():
            if key not in allowed:
                raise self.fail(
                    value, _join(name, key), f"unknown key {key!r} in {what}; allowed: {', '.join(allowed)}"
                )
        for key in required:
            if key not in at.value:
                raise self.fail(at, _join(name, key), f"{what} needs the key {key!r}")
        return dict(at.value)

    def text(self, at: Node, name: str) -> str:
        if not isinstance(at.value, str) or not at.value.strip():
            raise self.fail(at, name, f"{name} must be a non-empty text")
        return at.value.strip()

    def list_name(self, at: Node, name: str, known: Known) -> str:
        value = self.text(at, name)
        if not LIST_NAME.match(value):
            raise self.fail(at, name, f"{value!r} is not a list name (lower-case letters, digits and dashes)")
        if known.list is not None and not known.list(value):
            raise self.fail(
                at,
                name,
                f"unknown list {value!r}: no dynamic list (lists.yaml), no scenario adding to it, no declaration "
                "(declarations.yaml) and no member",
            )
        return value

    def condition(self, at: Node, name: str) -> dict[str, Any]:
        from shared.journeys.scenario import parse_duration  # the scenarios' `within: 30d`

        condition = plain(at)
        try:
            condition = _durations(condition, parse_duration)
            check(condition, name)
            _no_execution(condition)
        except ConditionError as error:
            raise self.fail(at, name, str(error)) from None
        if not isinstance(condition, dict):
            raise self.fail(at, name, f"{name} must be a condition (a mapping)")
        return condition


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _durations(condition: Any, parse: Callable[[str], int | None]) -> Any:
    if isinstance(condition, list):
        return [_durations(part, parse) for part in condition]
    if not isinstance(condition, dict):
        return condition
    converted = {key: _durations(value, parse) if key != "where" else value for key, value in condition.items()}
    if "within" in converted and isinstance(converted["within"], str):
        seconds = parse(converted["within"])
        if seconds is None or seconds <= 0:
            raise ConditionError(f"within {converted['within']!r} is not a duration such as 30d")
        converted["within"] = seconds
    return converted


def _no_execution(condition: Any) -> None:
    if isinstance(condition, list):
        for part in condition:
            _no_execution(part)
    elif isinstance(condition, dict):
        for key, value in condition.items():
            if key in NO_EXECUTION:
                raise ConditionError(f"{key} reads a message of a scenario's execution; a campaign has none")
            if key != "where":
                _no_execution(value)


def read(root: Node | None, known: Known, path: str | None = None, file_id: str | None = None) -> Campaign:
    """The campaign a document describes; CampaignError names the first mistake (its field, and its place in a file).
    `file_id`: the file's name without .yaml, which the id must match."""
    reader = _Reader(path)
    if root is None:
        raise CampaignError(
            "", "the file is empty; a campaign needs id, email (or sms), topic and audience", f"{path}:1:1"
        )
    top = reader.mapping(root, "", TOP, REQUIRED)
    campaign_id = reader.text(top["id"], "id")
    if not ID.match(campaign_id):
        raise reader.fail(top["id"], "id", "id must be lower-case letters, digits and dashes (at most 40)")
    if file_id is not None and campaign_id != file_id:
        raise reader.fail(top["id"], "id", f"id {campaign_id!r} must match the file name {file_id!r}")
    channel = _channel(reader, root, top)
    if channel == "email":
        template = _template(reader, top["email"], "email", known)
    else:
        template = reader.text(top["sms"], "sms")
        if not TEMPLATE.match(template) or ".." in template:
            raise reader.fail(top["sms"], "sms", f"{template!r} is not a template name such as promotions/black-friday")
        refusal = known.sms(template) if known.sms is not None else None
        if refusal is not None:
            raise reader.fail(top["sms"], "sms", refusal)
    topic = reader.text(top["topic"], "topic")
    if topic not in TOPICS:
        raise reader.fail(top["topic"], "topic", f"unknown topic {topic!r}; topics: {', '.join(TOPICS)}")
    when = _when(reader, top["when"]) if "when" in top else When()
    if "ab" in top and channel == "sms":
        raise reader.fail(
            top["ab"], "ab", "an A/B test compares email subjects or templates: an SMS campaign cannot have `ab`"
        )
    ab = _ab(reader, top["ab"], known) if "ab" in top else None
    if ab is not None and when.local_time is not None:
        raise reader.fail(
            top["ab"],
            "ab",
            "an A/B test cannot go with when.local_time: the rest would get the winner at the decision, not at "
            "their own local time; send it now or `at` an instant",
        )
    return Campaign(
        id=campaign_id,
        email=template if channel == "email" else "",
        sms=template if channel == "sms" else "",
        topic=topic,
        audience=_audience(reader, top["audience"], known),
        when=when,
        name=reader.text(top["name"], "name") if "name" in top else "",
        description=reader.text(top["description"], "description") if "description" in top else "",
        ab=ab,
    )


def _template(reader: _Reader, at: Node, name: str, known: Known) -> str:
    template = reader.text(at, name)
    if not TEMPLATE.match(template) or ".." in template:
        raise reader.fail(at, name, f"{template!r} is not a template name such as promotions/black-friday")
    if known.template is not None and not known.template(template):
        raise reader.fail(
            at, name, f"no email template {template!r}: expected templates/email/{template}.<locale>.html"
        )
    return template


def _ab(reader: _Reader, at: Node, known: Known) -> ABTest:
    """The `ab` key: variants (a subject, a template or both each), the sample's share, the wait and the metric."""
    from shared.journeys.scenario import parse_duration  # the scenarios' durations: 4h, 1d

    fields = reader.mapping(at, "ab", AB, AB_REQUIRED)
    items = fields["variants"].value
    if not isinstance(items, list) or not 2 <= len(items) <= MAX_VARIANTS:
        raise reader.fail(fields["variants"], "ab.variants", f"ab.variants is a list of 2 to {MAX_VARIANTS} variants")
    variants: list[Variant] = []
    for n, item in enumerate(items):
        where = f"ab.variants[{n}]"
        variant = reader.mapping(item, where, VARIANT, ())
        if "subject" not in variant and "email" not in variant:
            raise reader.fail(item, where, f"{where} needs a `subject` or an `email` (a template), or both")
        name = reader.text(variant["name"], f"{where}.name") if "name" in variant else chr(ord("a") + n)
        if not VARIANT_NAME.match(name):
            raise reader.fail(
                variant["name"], f"{where}.name", f"{name!r} is not a variant name (lower-case letters, digits, dashes)"
            )
        if name in {v.name for v in variants}:
            raise reader.fail(variant.get("name", item), f"{where}.name", f"two variants are named {name!r}")
        subject = reader.text(variant["subject"], f"{where}.subject") if "subject" in variant else None
        if subject is not None and ("{{" in subject or "{%" in subject or len(subject) > 200):
            raise reader.fail(
                variant["subject"],
                f"{where}.subject",
                f"{where}.subject is plain text of at most 200 characters, no {{{{ }}}}: a personalised subject goes "
                "in a template, named with `email:`",
            )
        email = _template(reader, variant["email"], f"{where}.email", known) if "email" in variant else None
        variants.append(Variant(name, subject, email))
    if len({(v.subject, v.email) for v in variants}) < len(variants):
        raise reader.fail(
            fields["variants"], "ab.variants", "two variants are the same: an A/B test compares different ones"
        )
    raw = fields["sample"].value
    match = SAMPLE.match(raw) if isinstance(raw, str) else None
    sample = int(match.group(1)) if match else raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if sample is None or not 1 <= sample <= 99:
        raise reader.fail(
            fields["sample"], "ab.sample", f"ab.sample {raw!r} is not a share of the audience from 1% to 99% (20%)"
        )
    wait_text = fields["wait"].value
    wait = parse_duration(wait_text) if isinstance(wait_text, str) else None
    if wait is None or not WAIT_MIN <= wait <= WAIT_MAX:
        raise reader.fail(
            fields["wait"], "ab.wait", f"ab.wait {wait_text!r} is not a duration from 1h to 30d, such as 4h"
        )
    metric = fields["metric"].value if "metric" in fields else "clicks"
    if metric not in METRICS:
        raise reader.fail(fields["metric"], "ab.metric", f"ab.metric {metric!r}: write clicks or opens")
    return ABTest(tuple(variants), sample, wait, str(wait_text).strip(), str(metric))


def _channel(reader: _Reader, root: Node, top: dict[str, Node]) -> str:
    """`email` or `sms`: the one of the two the document names."""
    if "email" in top and "sms" in top:
        raise reader.fail(
            top["sms"], "sms", "a campaign is an email or an SMS: write `email: TEMPLATE` or `sms: TEMPLATE`, not both"
        )
    if "email" not in top and "sms" not in top:
        raise reader.fail(
            root, "email", "the campaign needs the key 'email' (its email template), or 'sms' for an SMS campaign"
        )
    return "email" if "email" in top else "sms"


def _audience(reader: _Reader, at: Node, known: Known) -> Audience:
    fields = reader.mapping(at, "audience", AUDIENCE, ())
    if ("list" in fields) == ("if" in fields):
        raise reader.fail(at, "audience", "the audience is `list: NAME` or `if: CONDITION` (one of them)")
    members = reader.list_name(fields["list"], "audience.list", known) if "list" in fields else None
    condition = reader.condition(fields["if"], "audience.if") if "if" in fields else None
    excluded: tuple[str, ...] = ()
    exclude_if = None
    if "exclude" in fields:
        exclude = reader.mapping(fields["exclude"], "audience.exclude", EXCLUDE, ())
        if "lists" in exclude:
            items = exclude["lists"].value
            if not isinstance(items, list) or not items:
                raise reader.fail(
                    exclude["lists"], "audience.exclude.lists", "audience.exclude.lists is a list of lists"
                )
            excluded = tuple(
                reader.list_name(item, f"audience.exclude.lists[{n}]", known) for n, item in enumerate(items)
            )
        if "if" in exclude:
            exclude_if = reader.condition(exclude["if"], "audience.exclude.if")
    return Audience(list=members, condition=condition, exclude_lists=excluded, exclude_if=exclude_if)


def ab_of(value: Any) -> ABTest:
    """An `ab` key kept as JSON (checked when its campaign was saved)."""
    return _ab(_Reader(None), from_json(value), Known())


def _when(reader: _Reader, at: Node) -> When:
    if at.value == "now":
        return When()
    if isinstance(at.value, str):
        raise reader.fail(at, "when", f'when {at.value!r}: write now, {{at: ISO instant}} or {{local_time: "10:00"}}')
    fields = reader.mapping(at, "when", WHEN, ())
    if ("at" in fields) == ("local_time" in fields):
        raise reader.fail(at, "when", 'when is `now`, `at: 2026-11-27T09:00:00+01:00` or `local_time: "10:00"`')
    if "at" in fields:
        for extra in ("date", "timezone"):
            if extra in fields:
                raise reader.fail(fields[extra], f"when.{extra}", f"`{extra}` goes with local_time; `at` is an instant")
        text = fields["at"].value.isoformat() if isinstance(fields["at"].value, datetime) else fields["at"].value
        try:
            moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise reader.fail(
                fields["at"],
                "when.at",
                f"when.at {text!r} is not an instant with its offset: 2026-11-27T09:00:00+01:00",
            )
        return When(at=moment)
    local = fields["local_time"].value
    if isinstance(local, int):
        raise reader.fail(fields["local_time"], "when.local_time", 'write the time in quotes: local_time: "10:00"')
    if not isinstance(local, str) or not TIME_OF_DAY.match(local):
        raise reader.fail(fields["local_time"], "when.local_time", f'{local!r} is not a time of day such as "10:00"')
    day = None
    if "date" in fields:
        raw = fields["date"].value
        try:
            day = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
        except ValueError:
            raise reader.fail(
                fields["date"], "when.date", f"when.date {raw!r} is not a date such as 2026-11-27"
            ) from None
    timezone = None
    if "timezone" in fields:
        timezone = reader.text(fields["timezone"], "when.timezone")
        refusal = zone_refusal(timezone)
        if refusal is not None:
            raise reader.fail(
                fields["timezone"], "when.timezone", f"{refusal}: write an IANA name such as Europe/Paris"
            )
    return When(local_time=local, date=day, timezone=timezone)


def load(path: Path, known: Known) -> Campaign:
    """A campaign file of campaigns/, read with its places."""
    # The scenario language's reader (YAML, build time): the campaign worker and the admin function, which read
    # campaigns as JSON, do not load it (about 45 ms of their cold start)
    from shared.journeys.reading import compose, locate, shown
    from shared.journeys.scenario import ScenarioError

    name = shown(path)
    try:
        node = compose(path, name)
        root = None if node is None else _node(locate(node, name))
    except ScenarioError as error:  # not YAML, or a key repeated
        raise CampaignError("", error.message, f"{error.path}:{error.line}:{error.column}") from None
    return read(root, known, name, path.stem)


def shown_path(path: Path) -> str:
    from shared.journeys.reading import shown

    return shown(path)


def _node(at: Located) -> Node:
    if isinstance(at.value, dict):
        return Node({key: _node(value) for key, value in at.value.items()}, at.line, at.column)
    if isinstance(at.value, list):
        return Node([_node(item) for item in at.value], at.line, at.column)
    return Node(at.value, at.line, at.column)


def zone_refusal(name: str) -> str | None:
    """Why a time zone name is not one (None when it is): the campaign's own zone checks, kept with its reader."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r}"
    return None


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors complete and check campaigns/*.yaml with (campaigns/schema.json, written by
    `parcours compile`); `parcours validate` checks more (templates, lists, conditions) and names file and line."""
    condition = {"type": "object", "description": "A condition in the scenarios' language (README, Scenarios)."}
    list_name = {"type": "string", "pattern": LIST_NAME.pattern}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://parcours.dev/schemas/campaign.json",
        "title": "parcours campaign",
        "description": "One email or SMS to a list or a segment (README, Campaigns). The same document is "
        "POST /v1/campaigns.",
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED),
        "oneOf": [{"required": [channel]} for channel in CHANNELS],
        "properties": {
            "id": {"type": "string", "pattern": ID.pattern, "description": "The file name without .yaml."},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "email": {
                "type": "string",
                "pattern": TEMPLATE.pattern,
                "description": "The template, as send_email steps name it: templates/email/<email>.<locale>.html",
            },
            "sms": {
                "type": "string",
                "pattern": TEMPLATE.pattern,
                "description": "An SMS campaign's template (instead of email), as send_sms steps name it: "
                "templates/sms/<sms>.<locale>.txt",
            },
            "topic": {"enum": list(TOPICS), "description": "What a contact can turn off in the preference centre."},
            "audience": {
                "type": "object",
                "additionalProperties": False,
                "oneOf": [{"required": ["list"]}, {"required": ["if"]}],
                "properties": {
                    "list": {**list_name, "description": "A static or dynamic list's members."},
                    "if": {**condition, "description": "Every contact meeting this condition."},
                    "exclude": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "lists": {"type": "array", "items": list_name, "minItems": 1},
                            "if": condition,
                        },
                    },
                },
            },
            "when": {
                "description": "now (the default), an instant, or a local time in each contact's time zone",
                "oneOf": [
                    {"const": "now"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["at"],
                        "properties": {"at": {"type": "string", "format": "date-time"}},
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["local_time"],
                        "properties": {
                            "local_time": {"type": "string", "pattern": TIME_OF_DAY.pattern},
                            "date": {"type": "string", "format": "date"},
                            "timezone": {"type": "string", "description": "The zone of contacts without one."},
                        },
                    },
                ],
            },
            "ab": {
                "type": "object",
                "description": "An A/B test: the variants go to a sample, the better one to the rest after `wait`.",
                "additionalProperties": False,
                "required": list(AB_REQUIRED),
                "properties": {
                    "variants": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": MAX_VARIANTS,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "anyOf": [{"required": ["subject"]}, {"required": ["email"]}],
                            "properties": {
                                "name": {"type": "string", "pattern": VARIANT_NAME.pattern},
                                "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                                "email": {"type": "string", "pattern": TEMPLATE.pattern},
                            },
                        },
                    },
                    "sample": {
                        "description": "The share of the audience that gets the variants, e.g. 20%",
                        "oneOf": [
                            {"type": "string", "pattern": SAMPLE.pattern},
                            {"type": "integer", "minimum": 1, "maximum": 99},
                        ],
                    },
                    "wait": {"type": "string", "pattern": r"^\d+\s*(s|m|h|d|w)$", "description": "1h to 30d"},
                    "metric": {"enum": list(METRICS), "description": "The rate that decides (default clicks)."},
                },
            },
        },
    }
