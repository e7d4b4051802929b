"""What a scenario costs in AWS, per 1,000 entries and per message, by service; and a month of a shop described by a
few numbers. Transitions come from the compiled ASL (infra.cost.paths), requests and milliseconds from the bench's
measured figures (measured.json), prices from prices.json (or the file given). Free tiers are left out, and so is
storage (DynamoDB's GB-month, CloudWatch Logs): the figures are the requests' cost, an upper bound for small shops."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.cost import paths

HERE = Path(__file__).resolve().parent
PRICES = HERE / "prices.json"
MEASURED = HERE / "measured.json"
SERVICES = ("Step Functions", "Lambda", "DynamoDB", "SES", "SNS SMS", "SQS", "EventBridge")
COUNTRY = "FR"  # SMS prices differ by country: the shipped scenarios write to French numbers


@dataclass(frozen=True)
class Shop:
    """A shop's month: its contacts, their events and orders, the share with marketing consent."""

    contacts: int = 10_000
    events: int = 50_000  # webhooks and tracking calls a month
    orders: int = 1_000
    consent: float = 0.5
    new_contacts: int = 500
    campaigns: int = 4  # email campaigns a month, each to everyone with consent (a weekly newsletter)


@dataclass(frozen=True)
class Line:
    """One scenario's (or campaign's) cost of one entry along its full path, by service (USD; None: unpriced)."""

    name: str
    path: paths.Path
    paths: int
    by_service: dict[str, float | None]

    @property
    def per_entry(self) -> float:
        return sum(v for v in self.by_service.values() if v is not None)

    @property
    def per_message(self) -> float | None:
        return self.per_entry / self.path.messages if self.path.messages else None

    @property
    def unpriced(self) -> list[str]:
        return [service for service, value in self.by_service.items() if value is None]


class CostFileError(ValueError):
    """A prices or measured file that cannot be used; the message names the file and the entry."""


def load(path: Path, shipped: Path | None = None) -> dict[str, Any]:
    """A prices or measured file; one given instead of the `shipped` one must name every figure that one names,
    each a number (0 or more; null where the shipped file has null, for a price not known), so that a typo is an
    error here rather than a wrong total."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CostFileError(f"{path}: cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise CostFileError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise CostFileError(f"{path}: a JSON object is expected, as in {(shipped or path).name}")
    if shipped is not None and shipped.resolve() != path.resolve():
        _like(data, json.loads(shipped.read_text(encoding="utf-8")), path, "")
    return data


def _like(data: dict[str, Any], shipped: dict[str, Any], path: Path, where: str) -> None:
    for key, expected in shipped.items():
        name = f"{where}{key}"
        if key not in data:
            raise CostFileError(f"{path}: {name} is missing")
        value = data[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise CostFileError(f"{path}: {name} must be an object")
            _like(value, expected, path, f"{name}.")
        elif expected is None or (isinstance(expected, int | float) and not isinstance(expected, bool)):
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ((number and value >= 0) or (value is None and expected is None)):
                allowed = "a number, 0 or more, or null" if expected is None else "a number, 0 or more"
                raise CostFileError(f"{path}: {name} must be {allowed}, not {json.dumps(value)}")


def _usd(prices: dict[str, Any], name: str) -> float:
    return float(prices[name]["usd"])


def _lambda(prices: dict[str, Any], ms: float, memory_mb: int) -> float:
    """One invocation: its request and its GB-seconds (billed by the millisecond, rounded up)."""
    seconds = math.ceil(ms) / 1000
    return _usd(prices, "lambda_request") + seconds * memory_mb / 1024 * _usd(prices, "lambda_arm64_gb_second")


def _dynamodb(prices: dict[str, Any], reads: float, writes: float) -> float:
    return reads * _usd(prices, "dynamodb_read_request") + writes * _usd(prices, "dynamodb_write_request")


def full_path(definition: dict[str, Any]) -> tuple[paths.Path, int]:
    """The path that sends the most (then costs the most transitions): a contact who goes all the way; and how
    many paths there are."""
    found = paths.paths(definition)
    return max(found, key=lambda path: (path.messages, path.transitions)), len(found)


def line(name: str, definition: dict[str, Any], prices: dict[str, Any], measured: dict[str, Any]) -> Line:
    path, count = full_path(definition)
    act = measured["act"]
    tasks = act["tasks"]
    lambda_cost = dynamodb_cost = 0.0
    for action in path.actions:
        figures = tasks.get(action, tasks["default"])
        lambda_cost += _lambda(prices, figures["ms"], act["memory_mb"])
        dynamodb_cost += _dynamodb(prices, figures["reads"], figures["writes"])
    by_service: dict[str, float | None] = {
        "Step Functions": path.transitions * _usd(prices, "stepfunctions_standard_transition"),
        "Lambda": lambda_cost,
        "DynamoDB": dynamodb_cost,
        "SQS": 0.0,  # the event that started the entry is the shop's (see monthly); a Task queues nothing here
        "EventBridge": 0.0,  # the daily run's schedule is the shop's (see monthly)
    }
    return Line(name, path, count, _with_messages(by_service, path, prices, measured))


def _with_messages(
    by_service: dict[str, float | None], path: paths.Path, prices: dict[str, Any], measured: dict[str, Any]
) -> dict[str, float | None]:
    """The path's messages added: SES or SNS's price, and SES's notifications of each email (delivery...) through
    SNS to the feedback function."""
    emails, sms = path.sent("email"), path.sent("sms")
    feedback = measured["feedback"]
    notified = emails * feedback["notifications_per_email"]
    sms_price = prices["sns_sms"].get(COUNTRY)
    added = {
        "Lambda": notified * _lambda(prices, feedback["ms"], feedback["memory_mb"]),
        "DynamoDB": notified * _dynamodb(prices, feedback["reads"], feedback["writes"]),
        "SES": emails * _usd(prices, "ses_email"),
        "SNS SMS": 0.0 if not sms else None if sms_price is None else sms * float(sms_price),
    }
    return {service: _plus(by_service.get(service, 0.0), added.get(service, 0.0)) for service in SERVICES}


def _plus(current: float | None, value: float | None) -> float | None:
    """A sum of costs: unpriced (None) when either is."""
    return None if current is None or value is None else current + value


def campaign_line(name: str, channel: str, prices: dict[str, Any], measured: dict[str, Any]) -> Line:
    """One person of a campaign (no state machine): their share of the worker's page and chunk invocations and of
    those invocations' queue messages (each sent, received, deleted), at the template's default sending rate (the
    chunk's size follows it); their DynamoDB requests and milliseconds as the bench measured them (figure 7); their
    message. An entry here is a person the campaign reaches."""
    from shared.campaigns import delivery
    from shared.settings import Settings

    figures = measured["campaign"]
    rate = Settings.campaign_sms_rate if channel == "sms" else Settings.campaign_rate
    invocations = 1 / max(1, min(delivery.CHUNK, math.floor(rate))) + 1 / delivery.PAGE
    seconds = figures["ms"] / 1000 * figures["memory_mb"] / 1024
    by_service: dict[str, float | None] = {
        "Step Functions": 0.0,
        "Lambda": invocations * _usd(prices, "lambda_request") + seconds * _usd(prices, "lambda_arm64_gb_second"),
        "DynamoDB": _dynamodb(prices, figures["reads"], figures["writes"]),
        "SQS": 3 * invocations * _usd(prices, "sqs_standard_request"),
        "EventBridge": 0.0,
    }
    path = paths.Path((), (), ("send_sms" if channel == "sms" else "send_email",))
    return Line(name, path, 1, _with_messages(by_service, path, prices, measured))


def campaign_lines(prices: dict[str, Any], measured: dict[str, Any], folder: Path | None = None) -> list[Line]:
    """The shipped campaigns' rows (campaigns/*.yaml), each named `ID (campaign)`; a campaign that cannot be read is
    refused with its file and line (`parcours validate` says everything else wrong with it)."""
    from infra.build import CAMPAIGNS
    from shared.campaigns import document

    lines = []
    for file in sorted((folder or CAMPAIGNS).glob("*.yaml")):
        try:
            campaign = document.load(file, document.Known())
        except document.CampaignError as error:
            raise CostFileError(str(error)) from None
        lines.append(campaign_line(f"{campaign.id} (campaign)", campaign.channel, prices, measured))
    return lines


def entries(scenario_trigger: str, shop: Shop) -> float:
    """A month's entries into a scenario, from what starts it (a rough guide, said in the output)."""
    consenting = shop.consent
    return {
        "contact.subscribed": shop.new_contacts * consenting,
        "checkout.started": float(shop.orders),  # as many abandoned checkouts as orders
        "order.placed": float(shop.orders),
        "date": shop.contacts * consenting / 12,  # a birthday a year for those who gave one
        "inactive": shop.contacts * consenting * 0.02,
        "campaign": shop.campaigns * shop.contacts * consenting,
    }.get(scenario_trigger, 0.0)


def per_event(prices: dict[str, Any], measured: dict[str, Any]) -> dict[str, float]:
    """One event through ingest, the queue and the process function, by service."""
    process = measured["process"]
    return {
        "Lambda": 2 * _lambda(prices, process["ms"], process["memory_mb"]),  # ingest, then process
        "DynamoDB": _dynamodb(prices, process["reads"], process["writes"]),
        "SQS": measured["sqs_requests_per_event"] * _usd(prices, "sqs_fifo_request"),
    }


def monthly(
    lines: list[Line], triggers: dict[str, str], shop: Shop, prices: dict[str, Any], measured: dict[str, Any]
) -> dict[str, float | None]:
    total: dict[str, float | None] = dict.fromkeys(SERVICES, 0.0)

    def add(service: str, value: float | None) -> None:
        total[service] = _plus(total[service], value)

    for one in lines:
        count = entries(triggers.get(one.name, ""), shop)
        for service, value in one.by_service.items():
            add(service, None if value is None and count else (value or 0.0) * count)
    for service, value in per_event(prices, measured).items():
        add(service, value * shop.events)
    add("EventBridge", 30 * _usd(prices, "eventbridge_scheduler_invocation"))  # the daily run
    return total


def trigger_of(scenario: Any) -> str:
    if scenario.trigger_date is not None:
        return "date"
    event = str(scenario.trigger_event or "")
    return "inactive" if event == "contact.inactive" else event


def _money(value: float | None, digits: int = 4) -> str:
    return "unpriced" if value is None else f"${value:,.{digits}f}"


def report(shop: Shop, prices_file: Path = PRICES, measured_file: Path = MEASURED) -> str:
    from infra import build
    from shared.journeys import loader

    prices, measured = load(prices_file, PRICES), load(measured_file, MEASURED)
    compiled = build.compile_all()
    lines, triggers = [], {}
    for name in compiled.scenarios:
        lines.append(line(name, compiled.definition(name), prices, measured))
        scenario = loader.load(build.SCENARIOS / f"{name}.yaml", build.TEMPLATES)
        triggers[name] = trigger_of(scenario)
    campaigns = campaign_line(f"campaigns ({shop.campaigns} a month)", "email", prices, measured)  # any email one
    triggers[campaigns.name] = "campaign"
    month = [*lines, campaigns]
    lines += campaign_lines(prices, measured)
    out = [
        f"AWS cost per 1,000 entries along each scenario's full path (every message sent), and per 1,000 people a "
        f"campaign reaches, {prices['region']} "
        f"list prices read {prices['read_on']} ({prices_file.name}); requests and milliseconds measured "
        f"{measured['measured_on']} ({measured_file.name}). Free tiers and storage left out.",
        "",
        "| scenario or campaign | paths | transitions | messages | "
        + " | ".join(SERVICES)
        + " | per 1,000 entries | per message |",
        "|---" * (len(SERVICES) + 6) + "|",
    ]
    for one in lines:
        cells = [_money(1000 * v if v is not None else None, 3) for v in one.by_service.values()]
        per_message = one.per_message
        out.append(
            f"| {one.name} | {one.paths} | {one.path.transitions} | {one.path.messages} | "
            + " | ".join(cells)
            + f" | {_money(1000 * one.per_entry, 3)}{' + SMS' if one.unpriced else ''} | "
            + f"{_money(per_message, 6) if per_message is not None else '-'} |"
        )
    total = monthly(month, triggers, shop, prices, measured)
    out += [
        "",
        f"A month of a shop with {shop.contacts:,} contacts, {shop.events:,} events, {shop.orders:,} orders, "
        f"{shop.new_contacts:,} new contacts, {shop.consent:.0%} with marketing consent, {shop.campaigns} email "
        "campaigns to all of them:",
        "",
        "| scenario or campaign | entries a month |",
        "|---|---|",
    ]
    out += [f"| {one.name} | {entries(triggers.get(one.name, ''), shop):,.0f} |" for one in month]
    out += ["", "| service | a month |", "|---|---|"]
    out += [f"| {service} | {_money(value, 2)} |" for service, value in total.items()]
    known = sum(v for v in total.values() if v is not None)
    missing = [service for service, value in total.items() if value is None]
    out.append(f"| total | {_money(known, 2)}{' + ' + ', '.join(missing) + ' (unpriced)' if missing else ''} |")
    if missing:
        out.append(f"\n{', '.join(missing)}: {prices['sns_sms']['source']}.")
    return "\n".join(out) + "\n"
