"""`make demo`: the local runtime, three sample Shopify customers, the welcome series in compressed time."""

from __future__ import annotations

import os
import secrets
import time
from datetime import datetime
from pathlib import Path

from infra.local import LocalRuntime
from infra.webhook_client import get_json, post_shopify

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "events" / "shopify"
PLAYED = [
    (
        "customers/create",
        "customers-create.json",
        "marketing consent (Shopify email_marketing_consent), French",
    ),
    ("customers/create", "customers-create-en.json", "marketing consent (older accepts_marketing), English"),
    ("customers/create", "customers-create-no-consent.json", "no marketing consent"),
]
EXPECTED = 8  # four welcome emails to each of the two consenting customers


def run(time_scale: float, timeout: float) -> int:
    secret = os.environ.get("PARCOURS_SHOPIFY_SECRET") or secrets.token_hex(16)
    environ = {**os.environ, "PARCOURS_SHOPIFY_SECRET": secret}
    runtime = LocalRuntime(port=0, time_scale=time_scale, environ=environ)
    started = time.monotonic()
    runtime.start()
    try:
        print(f"parcours local on {runtime.api_url}: 1 simulated day = {86400 / time_scale:g} s real\n")
        for number, (topic, sample, what) in enumerate(PLAYED, start=1):
            answer = post_shopify(runtime.api_url, topic, (SAMPLES / sample).read_bytes(), secret, f"demo-{number}")
            print(f"POST /webhooks/shopify {topic:<17} {sample:<35} -> {answer.status} ({what})")
        redelivered = post_shopify(
            runtime.api_url, "customers/create", (SAMPLES / PLAYED[0][1]).read_bytes(), secret, "demo-1"
        )
        print(f"POST /webhooks/shopify redelivery of demo-1 (same X-Shopify-Event-Id)   -> {redelivered.status}")
        print("\nwaiting for the welcome series (E1 now, E2 J+2, E3 J+5, E4 J+8)...\n")
        deadline = time.monotonic() + timeout
        outbox: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            outbox = get_json(f"{runtime.api_url}/_local/outbox")
            if len(outbox) >= EXPECTED:
                break
            time.sleep(0.5)
        time.sleep(min(2.0, 4 * 86400 / time_scale))  # a little longer: anything extra would show up now
        outbox = get_json(f"{runtime.api_url}/_local/outbox")
        _print(outbox, time_scale)
        ok = len(outbox) == EXPECTED and not any(m["to"].startswith("sans.consentement") for m in outbox)
        print(
            f"\n{len(outbox)} messages sent in {time.monotonic() - started:.0f} s real time; "
            + ("as expected." if ok else f"expected {EXPECTED}: something is wrong.")
        )
        _print_report(runtime)
        return 0 if ok else 1
    finally:
        runtime.stop()


def _print_report(runtime: LocalRuntime) -> None:
    """The report's summary of the last 30 days (`parcours report` shows it all; the page: /_local/report.html)."""
    from infra import reporting

    try:
        report = reporting.local_report("", runtime.clock.now().date())
    except Exception as error:  # the demo's messages are what it shows; a report that fails says why, and no more
        print(f"\nreport: not available ({type(error).__name__}: {error})")
        return
    print("\n" + reporting.summary(report))


def _print(outbox: list[dict[str, str]], time_scale: float) -> None:
    first: dict[str, datetime] = {}
    for message in outbox:
        first.setdefault(message["to"], datetime.fromisoformat(message["sent_at"]))
    print(f"{'simulated time':<17} {'day':<5} {'to':<27} {'scenario/step':<26} subject")
    for message in outbox:
        sent = datetime.fromisoformat(message["sent_at"])
        day = (sent - first[message["to"]]).total_seconds() / 86400
        print(
            f"{sent:%Y-%m-%d %H:%M}  J+{day:<3.0f} {message['to']:<27} "
            f"{message['scenario'] + '/' + message['step']:<26} {message['subject']}"
        )
