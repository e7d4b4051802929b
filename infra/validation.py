"""Template checks at validation time, so an error shows with its file and line before anything is sent."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.build import TEMPLATES, Compiled
from shared.journeys.scenario import Scenario, SendEmail
from shared.messages import segments
from shared.messages.sms import with_stop_mention
from shared.messages.templates import LOCALES, TemplateProblem, render_email, render_sms
from shared.settings import Settings

SAMPLE_CODE = "SAMPLE-CODE-10"  # what `discount.code` shows when a step using the template declares a discount

SAMPLE_CONTEXT: dict[str, Any] = {
    "contact": {"first_name": "Camille", "last_name": "Martin", "email": "camille@example.com"},
    "first_name": "Camille",
    "trigger": {
        "type": "checkout.started",
        "event_id": "sample",
        "properties": {
            "lines": [
                {
                    "name": "Carnet A5 pointillé",
                    "variant": "Kraft",
                    "quantity": 2,
                    "price": "14.95",
                    "product_id": 1,
                    "image": "https://boutique.example/images/carnet-a5-kraft.jpg",
                    "url": "https://boutique.example/products/carnet-a5",
                },
                {
                    "name": "Stylo plume",
                    "variant": None,
                    "quantity": 1,
                    "price": "29.90",
                    "product_id": 2,
                    "image": None,
                    "url": None,
                },
            ],
            "recommendations": [
                {
                    "name": "Recharges d'encre (x6)",
                    "image": "https://boutique.example/images/recharges.jpg",
                    "url": "https://boutique.example/products/recharges",
                    "price": "6.50",
                },
                {"name": "Étui en cuir", "image": None, "url": None, "price": None},
            ],
            "total": "59.80",
            "currency": "EUR",
            "recovery_url": "https://boutique.example/checkouts/recover?key=sample",
            "order_name": "#1042",
            "status_url": "https://boutique.example/orders/sample",
        },
    },
    "sender": {"name": "La Boutique", "postal_address": "12 rue des Artisans, 75011 Paris"},
    "unsubscribe_url": "https://example.com/unsubscribe?t=sample",
    "preferences_url": "https://example.com/preferences?t=sample",
    "confirm_url": "https://example.com/confirm?t=sample",
    "confirm_wording": "I confirm I want to receive marketing emails from La Boutique.",
    "discount": None,  # as the act function passes it for a step without `discount:`
}

_EMAIL_ONLY = ("unsubscribe_url", "preferences_url", "confirm_url", "confirm_wording")

# The other side of every product branch: lines as Shopify sends them (no image, no link), no recommendations.
BARE_PRODUCTS_CONTEXT: dict[str, Any] = {
    **SAMPLE_CONTEXT,
    "trigger": {
        **SAMPLE_CONTEXT["trigger"],
        "properties": {
            **{k: v for k, v in SAMPLE_CONTEXT["trigger"]["properties"].items() if k != "recommendations"},
            "lines": [
                {k: v for k, v in line.items() if k not in ("image", "url")}
                for line in SAMPLE_CONTEXT["trigger"]["properties"]["lines"]
            ],
        },
    },
}


SMS_CONTEXT: dict[str, Any] = {
    **{key: value for key, value in SAMPLE_CONTEXT.items() if key not in _EMAIL_ONLY},
    "contact": {**SAMPLE_CONTEXT["contact"], "phone": "+33612345678"},
}


def _send_steps(steps: tuple[Any, ...]) -> Iterator[SendEmail]:
    """Every send_email step, through branches, cases, variants and waits' outcomes."""
    for step in steps:
        if isinstance(step, SendEmail):
            yield step
        elif dataclasses.is_dataclass(step):
            for field in dataclasses.fields(step):
                value = getattr(step, field.name)
                if isinstance(value, tuple):
                    nested = [getattr(item, "steps", item) for item in value]  # a Case or a Variant holds steps
                    for part in nested:
                        yield from _send_steps(part if isinstance(part, tuple) else (part,))


def _uses(scenarios: dict[str, Scenario]) -> dict[str, list[tuple[str, SendEmail]]]:
    """Template name -> the send steps using it, with their scenario's file."""
    found: dict[str, list[tuple[str, SendEmail]]] = {}
    for model in scenarios.values():
        for step in _send_steps(model.steps):
            found.setdefault(step.template, []).append((model.source, step))
    return found


def _renders_with_code(name: str, locale: str, root: Path) -> bool:
    try:
        render_email(name, locale, {**SAMPLE_CONTEXT, "discount": {"code": SAMPLE_CODE, "pool": None}}, root)
    except TemplateProblem:
        return False
    return True


def _discount_problems(name: str, locale: str, uses: list[tuple[str, SendEmail]], root: Path) -> list[str]:
    """A template showing `discount` for a step without one (it would fail at send time), and a step giving a
    code its template never shows (a code claimed for nothing)."""
    problems = []
    path = f"templates/email/{name}.{locale}.html"
    with_code = {**SAMPLE_CONTEXT, "discount": {"code": SAMPLE_CODE, "pool": None}}
    for source, step in uses:
        if step.discount is None:
            try:
                render_email(name, locale, SAMPLE_CONTEXT, root)
            except TemplateProblem as problem:
                where = str(problem).split(": ", 1)[0]
                problems.append(
                    f"templates/{where}: uses `discount`, but step {step.id} (scenarios/{source}:{step.line}) has no "
                    "`discount:`; add `discount: {code: ...}` or `discount: {pool: ...}` to that step"
                )
        else:
            rendered = render_email(name, locale, with_code, root)
            if SAMPLE_CODE not in rendered.html + rendered.subject + rendered.preheader:
                problems.append(
                    f"scenarios/{source}:{step.line}: step {step.id} gives a discount code, but {path} never shows "
                    "{{ discount.code }}"
                )
    return problems


def templates(compiled: Compiled, root: Path = TEMPLATES) -> list[str]:
    """Renders every message template (email and SMS) in every locale, with and without a first name, with a
    sample discount code where a step using it declares a discount, emails also without product images, links
    and recommendations; lists the problems."""
    problems = []
    names = sorted(
        {p.relative_to(root / "email").as_posix().rsplit(".", 2)[0] for p in (root / "email").rglob("*.html")}
    )
    uses = _uses(compiled.scenarios)
    for name in names:
        for locale in LOCALES:
            if not (root / "email" / f"{name}.{locale}.html").is_file():
                problems.append(f"templates/email/{name}.{locale}.html: missing (other locales fall back to it)")
                continue
            used = uses.get(name, [])
            # A template no step uses yet may show a discount: it is rendered with the sample code.
            discounted = not used or any(step.discount is not None for _, step in used)
            sample = (
                {**SAMPLE_CONTEXT, "discount": {"code": SAMPLE_CODE, "pool": None}} if discounted else SAMPLE_CONTEXT
            )
            try:
                bare = {**BARE_PRODUCTS_CONTEXT, **{k: v for k, v in sample.items() if k == "discount"}}
                for context in (sample, {**sample, "first_name": None}, bare):
                    render_email(name, locale, context, root)
            except TemplateProblem as problem:
                if discounted or not _renders_with_code(name, locale, root):
                    problems.append(f"templates/{problem}")
                    continue
            problems += _discount_problems(name, locale, used, root)
    sms = root / "sms"
    names = sorted({p.relative_to(sms).as_posix().rsplit(".", 2)[0] for p in sms.rglob("*.txt")})
    for name in names:
        for locale in LOCALES:
            if not (sms / f"{name}.{locale}.txt").is_file():
                problems.append(f"templates/sms/{name}.{locale}.txt: missing (other locales fall back to it)")
                continue
            for context in (SMS_CONTEXT, {**SMS_CONTEXT, "first_name": None}):
                try:
                    render_sms(name, locale, context, root)
                except TemplateProblem as problem:
                    problems.append(f"templates/{problem}")
                    break
    return problems


MAX_SEGMENTS = 2  # beyond, validate warns: each segment is billed as one SMS


@dataclass(frozen=True)
class SmsCost:
    """What an SMS template costs once rendered with the sample data (a real name or link may change it)."""

    path: str
    size: segments.SmsSize
    stop_mention: bool
    outside_gsm7: str  # the characters that made it UCS-2

    @property
    def warning(self) -> bool:
        return self.size.segments > MAX_SEGMENTS

    def line(self) -> str:
        unit = "septets" if self.size.encoding == "GSM-7" else "UTF-16 units"
        plural = "s" if self.size.segments > 1 else ""
        why = f", because of {self.outside_gsm7}" if self.outside_gsm7 else ""
        with_stop = ", stop mention included" if self.stop_mention else ""
        text = f"{self.path}: {self.size.encoding}{why}, {self.size.segments} segment{plural}"
        text += f" ({self.size.units} {unit}{with_stop})"
        return f"warning: {text}, more than {MAX_SEGMENTS} segments" if self.warning else text


def _sms_payloads(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("action") == "send_sms":
            yield node
        for value in node.values():
            yield from _sms_payloads(value)
    elif isinstance(node, list):
        for value in node:
            yield from _sms_payloads(value)


def sms_costs(compiled: Compiled, root: Path = TEMPLATES, stop_text: str = Settings.sms_stop_text) -> list[SmsCost]:
    """Every SMS template's encoding and segment count as it would be published: with the stop mention unless
    every scenario sending it is transactional. Templates that do not render are left to `templates`."""
    categories: dict[str, set[str]] = {}
    for relative, content in compiled.files.items():
        if relative.endswith(".asl.json"):
            for payload in _sms_payloads(json.loads(content)):
                categories.setdefault(str(payload.get("template")), set()).add(str(payload.get("category")))
    costs = []
    sms = root / "sms"
    for path in sorted(sms.rglob("*.txt")):
        name, locale = path.relative_to(sms).as_posix().rsplit(".", 2)[:2]
        try:
            text = render_sms(name, locale, SMS_CONTEXT, root).text
        except TemplateProblem:
            continue
        marketing = categories.get(name, {"marketing"}) != {"transactional"}
        if marketing:
            text = with_stop_mention(text, stop_text)
        outside = ", ".join(
            repr(c) if c.isprintable() and not c.isspace() else f"U+{ord(c):04X}" for c in segments.outside_gsm7(text)
        )
        costs.append(SmsCost(f"templates/sms/{name}.{locale}.txt", segments.size(text), marketing, outside))
    return costs


def campaigns(compiled: Compiled, folder: Path | None = None, root: Path = TEMPLATES) -> tuple[list[str], list[str]]:
    """The campaign files of campaigns/ (every YAML file): (the valid ones' ids, each problem with its file and line).
    A campaign's template must exist and render in both locales (an SMS one, within two segments with the stop
    mention: shared.campaigns.sms); its lists must be filled by something (a rule, a
    scenario, a declaration), as a scenario's are."""
    from infra.build import CAMPAIGNS
    from shared.campaigns import delivery, document
    from shared.campaigns import sms as texting

    known_lists = set(json.loads(compiled.files["scenarios/compiled/campaigns.json"])["lists"])
    known = document.Known(
        template=lambda name: delivery.template_exists(name, root),
        list=lambda name: name in known_lists,
        sms=lambda name: texting.template_refusal(name, Settings.sms_stop_text, root=root),
    )
    valid: list[str] = []
    problems: list[str] = []
    for path in sorted((folder or CAMPAIGNS).glob("*.yaml")):
        try:
            campaign = document.load(path, known)
        except document.CampaignError as error:
            problems.append(str(error))
            continue
        failed = False
        for locale in LOCALES if campaign.channel == "email" else ():  # an SMS rendered in Known.sms
            try:
                render_email(campaign.email, locale, SAMPLE_CONTEXT, root)
            except TemplateProblem as error:
                problems.append(f"{document.shown_path(path)}: email {campaign.email!r} ({locale}): {error}")
                failed = True
        if not failed:
            valid.append(campaign.id)
    return valid, problems
