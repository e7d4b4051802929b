"""`parcours campaigns save|send|status|cancel|preview|test ID`: the campaigns' admin routes, SigV4-signed like
`parcours lists`. `save` and `send` first post campaigns/ID.yaml when there is one (the file is the campaign's
source, reviewed in git); a campaign already sent keeps its document, so `send` then only asks for the start
(refused: it goes out once). `preview` writes the HTML and the text to files (an SMS's text alone); `test` sends to
the given addresses (an SMS campaign: phone numbers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _file(args: argparse.Namespace) -> Path | None:
    from infra.build import CAMPAIGNS

    path = Path(args.file) if args.file else CAMPAIGNS / f"{args.id}.yaml"
    return path if path.exists() else None


def _save(args: argparse.Namespace, base: str, path: Path) -> int | None:
    """Posts the file's document; None when it went (created or updated), else the exit status."""
    from infra import cli
    from shared.campaigns import document

    try:
        campaign = document.load(path, document.Known())  # the route checks templates and lists against the stack
    except document.CampaignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if campaign.id != args.id:
        print(f"error: {path} is campaign {campaign.id!r}, not {args.id!r}", file=sys.stderr)
        return 2
    status, answer = cli._admin_call("POST", base, json.dumps(campaign.to_dict()).encode(), args.region)
    if status in (200, 201):
        print(f"{path}: campaign {campaign.id} {answer.get('status')}")
        return None
    if status == 409 and args.action == "send":
        return None  # sent or cancelled already: the start says so
    return cli._print_answer(status, answer)


def _run(args: argparse.Namespace) -> int:
    from infra import cli

    base = f"{args.api.rstrip('/')}/v1/campaigns"
    if args.action in ("save", "send"):
        path = _file(args)
        if path is None and (args.action == "save" or args.file):
            print(f"error: no file {args.file or f'campaigns/{args.id}.yaml'}", file=sys.stderr)
            return 2
        if path is not None:
            refused = _save(args, base, path)
            if refused is not None:
                return refused
        if args.action == "save":
            return 0
    if args.action == "preview":
        return _preview(args, base)
    if args.action == "test":
        if not args.to:
            print(
                "error: `parcours campaigns test ID` needs --to ADDRESS (an email or, for SMS, a number; repeatable)",
                file=sys.stderr,
            )
            return 2
        body = json.dumps({"to": args.to}).encode()
        return cli._print_answer(*cli._admin_call("POST", f"{base}/{args.id}/test", body, args.region))
    method, url = {
        "send": ("POST", f"{base}/{args.id}/send"),
        "status": ("GET", f"{base}/{args.id}"),
        "cancel": ("POST", f"{base}/{args.id}/cancel"),
    }[args.action]
    status, answer = cli._admin_call(method, url, b"", args.region)
    if status == 202:
        status = 200
    if status == 200 and args.action != "send" and isinstance(answer, dict) and not args.json:
        print(summary(answer))
        return 0
    return cli._print_answer(status, answer)


def _preview(args: argparse.Namespace, base: str) -> int:
    """The campaign rendered for one contact, its HTML and text written to files."""
    from infra import cli

    if not args.contact:
        print("error: `parcours campaigns preview ID` needs --contact EMAIL", file=sys.stderr)
        return 2
    body = json.dumps({"email": args.contact}).encode()
    status, answer = cli._admin_call("POST", f"{base}/{args.id}/preview", body, args.region)
    if status != 200:
        return cli._print_answer(status, answer)
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    if answer.get("channel") == "sms":
        text = folder / f"{args.id}.preview.txt"
        text.write_text(answer["text"] + "\n", encoding="utf-8")
        print(f"SMS to {answer.get('phone') or '(no number)'}: {answer['encoding']}, {answer['segments']} segment(s)")
        print(f"written: {text}")
        return 0
    html, text = folder / f"{args.id}.preview.html", folder / f"{args.id}.preview.txt"
    html.write_text(answer["html"], encoding="utf-8")
    text.write_text(f"Subject: {answer['subject']}\n\n{answer['text']}", encoding="utf-8")
    print(f"subject: {answer['subject']} ({answer['locale']})")
    print(f"written: {html} and {text}")
    return 0


def summary(status: dict[str, Any]) -> str:
    """The status in a few lines: what a marketer looks at."""
    skipped = status.get("skipped") or {}
    reasons = ", ".join(f"{reason} {n}" for reason, n in skipped.items() if reason != "total") or "none"
    complete = "" if status.get("audience_complete") else " (still reading)"
    return "\n".join(
        [
            f"campaign {status['id']}: {status['status']}, {status['when']['kind']}"
            + (f", SMS {status['sms']}" if status.get("channel") == "sms" else ""),
            f"audience   {status['audience']}{complete}",
            f"sent       {status['sent']}",
            f"skipped    {skipped.get('total', 0)} ({reasons})",
            f"excluded   {status['excluded']}",
            f"failed     {status['failed']}",
            f"progress   {status['progress'] * 100:.1f} %",
            *(_ab_lines(status["ab"]) if status.get("ab") else []),
        ]
    )


def _ab_lines(test: dict[str, Any]) -> list[str]:
    """The A/B test: its phase, each variant's sends, opens and clicks, and the winner, significant or not."""
    phase = str(test.get("phase"))
    if phase == "waiting" and test.get("decide_at"):
        phase += f", decides at {test['decide_at']}"
    lines = [
        f"A/B test   {test['sample']} sample, on {test['metric']} after {test['wait']}: {phase}",
        f"held       {test.get('held', 0)} (for the winner)",
    ]
    for variant in test.get("variants", []):
        what = f"subject {variant['subject']!r}" if variant.get("subject") else ""
        if variant.get("email"):
            what = f"{what}, email {variant['email']}" if what else f"email {variant['email']}"
        figures = "  ".join(
            f"{label} {variant.get(key, 0)}"
            for label, key in (("sent", "sent"), ("opens", "opened"), ("clicks", "clicked"))
        )
        lines.append(f"  {variant['name']:<10} {figures}  ({what})")
    if test.get("winner"):
        significant = "significant" if test.get("significant") else "not significant"
        lines.append(f"winner     {test['winner']} ({significant}): {test.get('decision', {}).get('verdict', '')}")
    elif test.get("verdict_now"):
        lines.append(f"so far     {test['verdict_now']}")
    return lines


def register(commands: Any) -> None:
    from infra import cli

    parser = commands.add_parser(
        "campaigns",
        help="campaigns: save campaigns/ID.yaml, send it, follow its status, cancel it; preview it, send a test",
    )
    parser.add_argument("action", choices=["save", "send", "status", "cancel", "preview", "test"])
    parser.add_argument("id", help="the campaign's id (its file: campaigns/ID.yaml)")
    parser.add_argument("--file", help="save, send: the campaign's file (default campaigns/ID.yaml, if it exists)")
    parser.add_argument("--json", action="store_true", help="status, cancel: the route's JSON answer")
    parser.add_argument("--contact", help="preview: the contact's email, rendered as they would get it")
    parser.add_argument("--output", default=".", help="preview: the folder of ID.preview.html and .txt (default .)")
    parser.add_argument(
        "--to",
        action="append",
        help="test: an address (for an SMS campaign a number, +33...) the test goes to (repeatable, at most 10)",
    )
    cli.api_arguments(parser)
    parser.set_defaults(run=_run)
