"""Template checks at validation time, so an error shows with its file and line before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.build import TEMPLATES, Compiled
from shared.templates import LOCALES, TemplateProblem, render_email, render_sms

SAMPLE_CONTEXT: dict[str, Any] = {
    "contact": {"first_name": "Camille", "last_name": "Martin", "email": "camille@example.com"},
    "first_name": "Camille",
    "trigger": {
        "type": "checkout.started",
        "event_id": "sample",
        "properties": {
            "lines": [
                {"name": "Carnet A5 pointillé", "variant": "Kraft", "quantity": 2, "price": "14.95", "product_id": 1},
                {"name": "Stylo plume", "variant": None, "quantity": 1, "price": "29.90", "product_id": 2},
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
}

_EMAIL_ONLY = ("unsubscribe_url", "preferences_url", "confirm_url", "confirm_wording")


SMS_CONTEXT: dict[str, Any] = {
    **{key: value for key, value in SAMPLE_CONTEXT.items() if key not in _EMAIL_ONLY},
    "contact": {**SAMPLE_CONTEXT["contact"], "phone": "+33612345678"},
}


def templates(compiled: Compiled, root: Path = TEMPLATES) -> list[str]:
    """Renders every message template (email and SMS) in every locale, with and without a first name; lists the
    problems."""
    problems = []
    names = sorted(
        {p.relative_to(root / "email").as_posix().rsplit(".", 2)[0] for p in (root / "email").rglob("*.html")}
    )
    for name in names:
        for locale in LOCALES:
            if not (root / "email" / f"{name}.{locale}.html").is_file():
                problems.append(f"templates/email/{name}.{locale}.html: missing (other locales fall back to it)")
                continue
            for context in (SAMPLE_CONTEXT, {**SAMPLE_CONTEXT, "first_name": None}):
                try:
                    render_email(name, locale, context, root)
                except TemplateProblem as problem:
                    problems.append(f"templates/{problem}")
                    break
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
