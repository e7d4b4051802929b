"""`parcours report`: the scenarios' report of a period from the admin route (SigV4-signed, like `parcours lists`),
as a table in the terminal and a self-contained HTML page (infra.report_page); and the same page and summary for
the local runtime (`/_local/report.html`, `make demo`)."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

DEFAULT_DAYS = 30


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day as YYYY-MM-DD") from None


def default_period(today: date, first: date | None, last: date | None) -> tuple[date, date]:
    """The asked days; by default the last DEFAULT_DAYS days up to today (UTC), or DEFAULT_DAYS from --from."""
    if last is None:
        last = today if first is None else min(today, first + timedelta(days=DEFAULT_DAYS - 1))
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    return first, last


def _benchmark_text(scenario: dict[str, Any]) -> str:
    from infra.report_page import percent

    texts = []
    for b in scenario["benchmarks"]:
        high = f"-{b['high'] * 100:.0f}" if b["high"] is not None else "+"
        where = f"{b['step']} " if b["step"] else ""
        texts.append(f"{where}{b['figure']} {percent(b['value'])} vs {b['low'] * 100:.0f}{high} %: {b['status']}")
    return "; ".join(texts)


def table(report: dict[str, Any]) -> str:
    """The terminal's table: one line a scenario, the seeds' benchmark beside the figure it judges."""
    from infra.report_page import amounts, percent

    head = (
        "scenario / campaign",
        "entered",
        "sent",
        "delivered",
        "opened",
        "clicked",
        "converted",
        "revenue",
        "benchmark",
    )
    rows = [head]
    for s in report["scenarios"]:
        opened = percent(s["rates"]["open"]) + ("*" if s["rates"]["base"] == "sent" and s["sent"] else "")
        campaign = s.get("kind") == "campaign"
        rows.append(
            (
                s.get("report", s["id"]),  # a campaign as its sends are named: campaign.<id>
                "-" if campaign else str(s["entered"]),
                str(s["sent"]),
                percent(s["rates"]["delivery"]),
                opened,
                percent(s["rates"]["click"]),
                "-" if campaign else f"{s['converted']} ({percent(s['rates']['conversion'])})",
                amounts(s["revenue"]),
                _benchmark_text(s),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i in (0, 7, 8) else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    total = report["deliverability"]["total"]
    lines.append("")
    lines.append(
        f"deliverability: {total['sent']} emails, delivered {percent(total['rates']['delivery'], 2)} "
        f"({total['status']['delivery']}), bounces {percent(total['rates']['bounce'], 2)} "
        f"({total['status']['bounce']}), complaints {percent(total['rates']['complaint'], 3)} "
        f"({total['status']['complaint']}); the seed's benchmark: 95 % delivered or more"
    )
    if any(s["rates"]["base"] == "sent" and s["sent"] for s in report["scenarios"]):
        lines.append("* of the emails sent: no delivery known (SES delivery events) for that scenario yet")
    for s in report["scenarios"]:
        for split in s["splits"]:
            lines.append(f"A/B {s['id']}/{split['id']}: {split['verdict']}")
    return "\n".join(lines)


def summary(report: dict[str, Any]) -> str:
    """A few lines for `make demo`: per scenario that did anything, what it did."""
    from infra.report_page import amounts

    lines = [f"report {report['from']} to {report['to']} (GET /v1/reports/scenarios; the page: /_local/report.html)"]
    active = [s for s in report["scenarios"] if s["entered"] or s["sent"] or s["sms_sent"]]
    for s in active:
        name = s.get("report", s["id"])  # a campaign as its sends are named: campaign.<id>
        lines.append(
            f"  {name:<22} entered {s['entered']:>3}  sent {s['sent']:>3}  opened {s['opened']:>3}  "
            f"clicked {s['clicked']:>3}  converted {s['converted']:>3}  revenue {amounts(s['revenue'])}"
        )
    if not active:
        lines.append("  no scenario counted anything in this period")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from infra import cli
    from infra.report_page import page
    from shared.clock import Clock

    today = Clock().now().date()
    first, last = default_period(today, args.first, args.last)
    if args.first is None and args.last is None:
        print(f"period: {first} to {last}, the last {DEFAULT_DAYS} days (UTC; --from and --to choose)", file=sys.stderr)
    query = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        **({"scenario": args.scenario} if args.scenario else {}),
        **({"campaign": args.campaign} if args.campaign else {}),
    }
    url = f"{args.api.rstrip('/')}/v1/reports/scenarios?{urlencode(query)}"
    status, answer = cli._admin_call("GET", url, b"", args.region)
    if status != 200:
        return cli._print_answer(status, answer)
    print(table(answer))
    path = Path(args.html)
    path.write_text(page(answer), encoding="utf-8")
    print(f"\nHTML report: {path}")
    return 0


def register(commands: Any) -> None:
    from infra import cli

    reporting = commands.add_parser(
        "report",
        help="what each scenario and campaign did over a period: a table here and a self-contained HTML report",
    )
    reporting.add_argument("--from", dest="first", type=_day, help="first day, YYYY-MM-DD (default: 30 days ago)")
    reporting.add_argument("--to", dest="last", type=_day, help="last day, YYYY-MM-DD, included (default: today)")
    reporting.add_argument("--scenario", help="only this scenario")
    reporting.add_argument("--campaign", help="only this campaign")
    reporting.add_argument("--html", default="report.html", help="the HTML file written (default report.html)")
    cli.api_arguments(reporting)
    reporting.set_defaults(run=_run)


# ---- the local runtime ----------------------------------------------------------------------------------------
def local_report(query: str, today: date) -> dict[str, Any]:
    """The report as the admin route answers it, read in the local runtime's process (its settings, its emulated
    account); `query` as the route's (`from`, `to`, `scenario`), the last 30 days by default. ReportRequestError
    when it is bad."""
    from shared.campaigns import reported
    from shared.journeys import dispatch
    from shared.reports import layout, reading
    from shared.settings import get_settings

    given = dict(parse_qsl(query))
    first, last = default_period(
        today,
        date.fromisoformat(given["from"]) if reading.DATE.match(given.get("from", "")) else None,
        date.fromisoformat(given["to"]) if reading.DATE.match(given.get("to", "")) else None,
    )
    deployed = layout.layouts(dispatch.CATALOGUE)
    settings = get_settings()
    campaigns = reported.layouts(settings)
    period = {**given, "from": first.isoformat(), "to": last.isoformat()}
    asked = reading.period(period, [s.id for s in deployed], [c.id for c in campaigns])
    return reading.report(settings.region, settings.reports_table, deployed, asked, campaigns)


def local_page(query: str, today: date) -> tuple[int, bytes]:
    """`/_local/report.html`: the page, or 400 with the reason."""
    import html

    from infra.report_page import page
    from shared.reports.reading import ReportRequestError

    try:
        report = local_report(query, today)
    except ReportRequestError as error:
        return 400, f"<!doctype html><meta charset='utf-8'><p>{html.escape(str(error))}</p>".encode()
    except ValueError as error:  # a day that matches YYYY-MM-DD but does not exist
        return 400, f"<!doctype html><meta charset='utf-8'><p>{html.escape(str(error))}</p>".encode()
    return 200, page(report).encode()
