"""The `parcours` command: run locally, compile and validate scenarios, package for SAM, play the demo."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.journeys.scenario import ScenarioError


def _local(args: argparse.Namespace) -> int:
    from infra.local import LocalRuntime, LocalRuntimeError

    try:
        runtime = LocalRuntime(
            port=args.port,
            time_scale=args.time_scale,
            crm_url=args.crm_url,
            start_at=args.start,
            skip_time=args.skip_time,
        )
        runtime.start()
    except LocalRuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pace = f"time x{args.time_scale:g}"
    if args.skip_time:
        pace = "time skipped: POST /_local/advance or /_local/run-until-idle"
    print(f"parcours local: API on {runtime.api_url} ({pace})", flush=True)
    print(f"AWS_ENDPOINT_URL={runtime.aws_endpoint}", flush=True)
    print(f"outbox: {runtime.api_url}/_local/outbox.html", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    runtime.stop()
    # Nothing is left to flush (the emulated account lives in memory): exit without joining moto's threads,
    # which takes seconds and every test session pays it.
    sys.stdout.flush()
    os._exit(0)


def _compile(args: argparse.Namespace) -> int:
    from infra import build

    compiled = build.compile_all()
    if args.check:
        stale = build.stale_files(compiled)
        for path in stale:
            print(f"stale: {path} (run `parcours compile`)", file=sys.stderr)
        return 1 if stale else 0
    for path in build.write(compiled) or ["(nothing changed)"]:
        print(path)
    return 0


def _validate(args: argparse.Namespace) -> int:
    import json

    from infra import build, validation
    from shared.settings import Settings

    compiled = build.compile_all()
    problems = validation.templates(compiled)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(compiled.scenarios)} scenario(s) valid: {', '.join(sorted(compiled.scenarios))}")
        dynamic = [spec["name"] for spec in json.loads(compiled.files["scenarios/compiled/lists.json"])["lists"]]
        print(f"{len(dynamic)} dynamic list(s) valid: {', '.join(dynamic) or '-'}")
    campaigns, campaign_problems = validation.campaigns(compiled)
    for problem in campaign_problems:
        print(problem, file=sys.stderr)
    if not campaign_problems:
        print(f"{len(campaigns)} campaign(s) valid: {', '.join(campaigns) or '-'}")
    problems = [*problems, *campaign_problems]
    stop_text = os.environ.get("PARCOURS_SMS_STOP_TEXT", "").strip() or Settings.sms_stop_text
    for cost in validation.sms_costs(compiled, stop_text=stop_text):  # what each SMS costs: informative
        print(cost.line(), file=sys.stderr if cost.warning else sys.stdout)
    return 1 if problems else 0


def _graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infra import build, graph

    compiled = build.compile_all()
    if args.name not in compiled.scenarios:
        print(f"error: no scenario {args.name!r}; known: {', '.join(sorted(compiled.scenarios))}", file=sys.stderr)
        return 2
    definition = compiled.definition(args.name)
    print(graph.mermaid(definition), end="")
    out = Path(args.svg or f".build/graphs/{args.name}.svg")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(graph.svg(definition, compiled.scenarios[args.name].name), encoding="utf-8")
    print(f"%% SVG written to {out}")
    return 0


def _test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infra import build, journeys, validation

    compiled = build.compile_all()
    files = [Path(p) for p in args.files] or sorted(journeys.TESTS.glob("*.test.yaml"))
    try:
        cases = [case for path in files for case in journeys.load(path, compiled.scenarios)]
    except journeys.JourneyFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = args.start or journeys.DEFAULT_START
    print(f"{len(cases)} journey(s) from {len(files)} file(s), from {start.isoformat()}, time skipped", flush=True)
    try:
        outcomes = journeys.run_all(cases, validation.SAMPLE_CONTEXT["trigger"]["properties"], start)
    except journeys.JourneyFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for outcome in outcomes:
        mark = "ok  " if outcome.passed else "FAIL"
        print(f"{mark} {outcome.case.file}: {outcome.case.name}")
        for problem in outcome.problems[1:]:
            print(f"       {problem}")
    failed = sum(1 for o in outcomes if not o.passed)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _package(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infra import release

    built = Path(args.built)
    if not built.exists():
        print(f"error: {built} not found: run `sam build` first", file=sys.stderr)
        return 2
    s3 = release.s3_client(args.region, args.endpoint_url)
    packaged = release.package(built, s3, args.bucket, args.prefix)
    out = built.parent.parent / "packaged.yaml"
    out.write_text(packaged.text, encoding="utf-8")
    print(f"packaged template: {out} and s3://{args.bucket}/{packaged.key}")
    print(f"template URL: {release.template_url(args.bucket, packaged.key, args.region)}")
    print(f"quick-create: {release.quick_create_url(args.bucket, packaged.key, args.region)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from infra.demo import run

    return run(time_scale=args.time_scale, timeout=args.timeout)


def _dlq(args: argparse.Namespace) -> int:
    from infra import deadletters

    try:
        sqs, cloudformation = deadletters.clients(args.endpoint_url, args.region)
        at = deadletters.queues(cloudformation, args.stack, args.queue)
        letters = deadletters.receive_all(sqs, at.dead_letters)
    except deadletters.DeadLetterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    wanted = set(args.ids or [])
    chosen = [letter for letter in letters if not wanted or letter.matches(wanted)]
    if args.action == "list":
        deadletters.release(sqs, at.dead_letters, letters)
        print(
            deadletters.table(chosen)
            if chosen
            else "no message in the dead-letter queue" + (" with that id" * bool(wanted))
        )
        return 0
    deadletters.release(sqs, at.dead_letters, [letter for letter in letters if letter not in chosen])
    deadletters.redrive(sqs, at, chosen)
    for letter in chosen:
        print(f"redriven: {letter.message_id} {letter.event_id or '?'} {letter.type or '?'}")
    unknown = sorted(wanted - {letter.message_id for letter in chosen} - {letter.event_id for letter in chosen})
    for name in unknown:
        print(f"error: no message {name!r} in the dead-letter queue", file=sys.stderr)
    print(f"{len(chosen)} message(s) sent back to the events queue")
    return 1 if unknown else 0


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        example = "2026-11-28T21:30:00+01:00"
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date and time such as {example}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs its UTC offset, e.g. +01:00 or Z")
    return moment


def _codes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infra import codes
    from shared.clock import Clock
    from shared.messages import discounts
    from shared.storage import StorageError

    try:
        discounts.check_pool(args.pool)
        found = None
        if args.action == "load":
            if not args.file:
                print("error: `parcours codes load POOL FILE`: which file?", file=sys.stderr)
                return 2
            found = discounts.parse_codes(codes.read(Path(args.file)), args.file)
        model = codes.table(args.endpoint_url, args.region, args.stack)
        if found is not None:
            loaded = discounts.load(model, args.pool, found, Clock().now())
            print(
                f"pool {args.pool}: {loaded.added} code(s) added, {loaded.already} already there; "
                f"{loaded.total} in the pool"
            )
        state = discounts.status(model, args.pool)
    except discounts.CodesFileError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except (codes.CodesError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"pool {args.pool}: {state.total} total, {state.claimed} claimed, {state.free} free")
    return 0


def _admin_call(method: str, url: str, body: bytes, region: str | None) -> tuple[int, Any]:
    """An IAM-authorised admin route called with SigV4 (the AWS configuration's credentials): (status, JSON answer);
    status 0 when there are no credentials to sign with."""
    import json
    import urllib.error
    import urllib.request

    import boto3
    from botocore.credentials import Credentials

    from infra import sigv4

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        return 0, {
            "error": "no AWS credentials to sign with (locally: AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)"
        }
    region = region or boto3.Session().region_name or sigv4.LOCAL_REGION
    frozen = credentials.get_frozen_credentials()
    signer = Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token)
    headers = sigv4.sign(method, url, body, signer, region, {"content-type": "application/json"})
    request = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, {"error": text}


def _print_answer(status: int, answer: Any) -> int:
    import json

    if status != 200:
        reason = answer.get("error", answer) if isinstance(answer, dict) else answer
        print(f"error: {status} {reason}" if status else f"error: {reason}", file=sys.stderr)
        return 2 if status == 0 else 1
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


def _lists(args: argparse.Namespace) -> int:
    """The admin routes of static lists, signed with SigV4 like any IAM-authorised call."""
    import json

    base = f"{args.api.rstrip('/')}/v1/lists/{args.list}"
    if args.action == "show":
        method, url, body = "GET", f"{base}/members", b""
    else:
        if bool(args.email) == bool(args.contact_id):
            print(f"error: `parcours lists {args.action} LIST`: --email or --contact-id", file=sys.stderr)
            return 2
        who = {"email": args.email} if args.email else {"contact_id": args.contact_id}
        method, url, body = "POST", f"{base}/{args.action}", json.dumps(who).encode()
    return _print_answer(*_admin_call(method, url, body, args.region))


def _suppressions(args: argparse.Namespace) -> int:
    """Show or lift an address's suppression: the address travels in the signed body, never in the URL."""
    import json

    request: dict[str, str] = {"email": args.address}
    if args.action == "lift" and args.reason is not None:
        request["reason"] = args.reason  # required: the route refuses a lift without one, and says so
    url = f"{args.api.rstrip('/')}/v1/suppressions/{args.action}"
    return _print_answer(*_admin_call("POST", url, json.dumps(request).encode(), args.region))


def _contacts(args: argparse.Namespace) -> int:
    """A person's file (show: printed; export: saved to a file) and their erasure, through the admin routes."""
    import json
    from urllib.parse import urlencode

    named = {
        k: v
        for k, v in {
            "email": args.email,
            "phone": args.phone,
            "contact_id": args.contact_id,
            "shopify_id": args.shopify_id,
        }.items()
        if v
    }
    if len(named) != 1:
        print(
            f"error: `parcours contacts {args.action}`: one of --email, --phone, --contact-id, --shopify-id",
            file=sys.stderr,
        )
        return 2
    base = args.api.rstrip("/")
    if args.action == "erase":
        return _print_answer(*_admin_call("POST", f"{base}/v1/contacts/erase", json.dumps(named).encode(), args.region))
    status, answer = _admin_call("GET", f"{base}/v1/contacts/export?{urlencode(named)}", b"", args.region)
    if args.action == "show" or status != 200:
        return _print_answer(status, answer)
    path = Path(args.output or f"person-{answer['people'][0]['contact_id']}.json")
    path.write_text(json.dumps(answer, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"saved to {path} ({sum(len(p['stores']) for p in answer['people'])} stores)")
    return 0


def _cost(args: argparse.Namespace) -> int:
    from infra.cost import estimate

    shop = estimate.Shop(args.contacts, args.events, args.orders, args.consent, args.new_contacts, args.campaigns)
    try:
        print(estimate.report(shop, args.prices or estimate.PRICES, args.measured or estimate.MEASURED), end="")
    except estimate.CostFileError as error:
        print(f"parcours cost: {error}", file=sys.stderr)
        return 2
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("is a share, from 0 to 1 (0.5 for half)")
    return value


def api_arguments(parser: argparse.ArgumentParser) -> None:
    """`--api` and `--region` of every command that calls the admin routes."""
    parser.add_argument(
        "--api",
        default=os.environ.get("PARCOURS_API_URL", "http://127.0.0.1:3000"),
        help="the HTTP API's URL (default $PARCOURS_API_URL, else the local runtime's)",
    )
    parser.add_argument("--region", help="default: the AWS configuration's, or the local runtime's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parcours", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="run the whole stack on this machine (moto, no Docker)")
    local.add_argument("--port", type=int, default=3000)
    pace = local.add_mutually_exclusive_group()
    pace.add_argument("--time-scale", type=_positive, default=1.0, help="simulated seconds per real second")
    pace.add_argument(
        "--skip-time",
        action="store_true",
        help="the clock stands still while anything runs and moves only when asked: POST /_local/advance "
        '{"to": ISO} or {"seconds": N}, POST /_local/run-until-idle (tests, and journeys seen at once)',
    )
    local.add_argument(
        "--start",
        type=_instant,
        help="the simulated date and time to begin at, with its offset (e.g. 2026-11-28T21:30:00+01:00); default now",
    )
    local.add_argument(
        "--crm-url",
        help="where qualified leads and notify_crm steps POST (default $PARCOURS_CRM_URL, else none); "
        "signs with $PARCOURS_CRM_SECRET",
    )
    local.set_defaults(run=_local)
    costing = commands.add_parser(
        "cost", help="what each scenario costs in AWS (per 1,000 entries, per message) and a shop's month"
    )
    costing.add_argument("--prices", type=Path, help="prices file (default: infra/cost/prices.json)")
    costing.add_argument("--measured", type=Path, help="measured figures (default: infra/cost/measured.json)")
    costing.add_argument("--contacts", type=_count, default=10_000, help="the shop's contacts (10000)")
    costing.add_argument("--events", type=_count, default=50_000, help="events a month: webhooks, tracking (50000)")
    costing.add_argument("--orders", type=_count, default=1_000, help="orders a month (1000)")
    costing.add_argument("--new-contacts", type=_count, default=500, help="new contacts a month (500)")
    costing.add_argument("--consent", type=_share, default=0.5, help="share with marketing consent (0.5)")
    costing.add_argument(
        "--campaigns", type=_count, default=4, help="email campaigns a month, each to everyone with consent (4)"
    )
    costing.set_defaults(run=_cost)
    comp = commands.add_parser("compile", help="compile scenarios/*.yaml into scenarios/compiled/")
    comp.add_argument("--check", action="store_true", help="fail if the compiled files are not up to date")
    comp.set_defaults(run=_compile)
    commands.add_parser("validate", help="check scenarios and render every email template").set_defaults(run=_validate)
    packing = commands.add_parser(
        "package",
        help="after `sam build`: upload the artifacts and the template to S3, print the console's quick-create link",
    )
    packing.add_argument("--bucket", required=True, help="an S3 bucket in the region the stack will be created in")
    packing.add_argument("--region", required=True, help="the bucket's region, the stack's too")
    packing.add_argument("--prefix", default="parcours", help="key prefix in the bucket (default parcours)")
    packing.add_argument("--built", default=".aws-sam/build/template.yaml", help="the template `sam build` wrote")
    packing.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="the S3 endpoint, e.g. the local emulation's (default $AWS_ENDPOINT_URL, else AWS)",
    )
    packing.set_defaults(run=_package)
    testing = commands.add_parser("test", help="run journey tests (scenarios/tests/*.test.yaml) in the local runtime")
    testing.add_argument("files", nargs="*", help="journey files (default: all)")
    testing.add_argument(
        "--start",
        type=_instant,
        help="J+0 of every case, with its offset (default 2026-11-24T09:00:00+00:00, a Tuesday)",
    )
    testing.set_defaults(run=_test)
    drawing = commands.add_parser("graph", help="draw a scenario: Mermaid on stdout, and an SVG file")
    drawing.add_argument("name", help="the scenario id, e.g. welcome")
    drawing.add_argument("--svg", help="where to write the SVG (default .build/graphs/NAME.svg)")
    drawing.set_defaults(run=_graph)
    demo = commands.add_parser("demo", help="play sample Shopify webhooks and show what was sent")
    demo.add_argument("--time-scale", type=_positive, default=43200.0, help="43200: a simulated day in 2 s")
    demo.add_argument("--timeout", type=_positive, default=90.0, help="real seconds to wait for the series")
    demo.set_defaults(run=_demo)
    dlq = commands.add_parser(
        "dlq",
        help="events the process function could not handle, CRM handoffs or campaign messages that failed: "
        "list, redrive",
    )
    dlq.add_argument("action", choices=["list", "redrive"])
    dlq.add_argument(
        "--queue",
        choices=sorted(("events", "handoff", "campaigns")),
        default="events",
        help="events (default): the events queue's DLQ; handoff: the CRM handoff's; campaigns: the campaigns'",
    )
    dlq.add_argument("--id", dest="ids", action="append", help="only this message or event id (repeatable)")
    dlq.add_argument("--stack", default="parcours", help="the CloudFormation stack (default parcours)")
    dlq.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="the AWS endpoint, e.g. the one `parcours local` prints (default $AWS_ENDPOINT_URL, else AWS)",
    )
    dlq.add_argument("--region", help="default: the AWS configuration's, or the local runtime's")
    dlq.set_defaults(run=_dlq)
    codes = commands.add_parser("codes", help="pools of unique discount codes: load a file of codes, see what is left")
    codes.add_argument("action", choices=["load", "status"])
    codes.add_argument("pool", help="the pool's name, as scenarios write it: discount: {pool: NAME}")
    codes.add_argument("file", nargs="?", help="load: one code per line, or a CSV export (first column)")
    codes.add_argument("--stack", default="parcours", help="the CloudFormation stack (default parcours)")
    codes.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="the AWS endpoint, e.g. the one `parcours local` prints (default $AWS_ENDPOINT_URL, else AWS)",
    )
    codes.add_argument("--region", help="default: the AWS configuration's, or the local runtime's")
    codes.set_defaults(run=_codes)
    listing = commands.add_parser("lists", help="static lists: add or remove a contact, show a list's members")
    listing.add_argument("action", choices=["add", "remove", "show"])
    listing.add_argument("list", help="the list's name, e.g. clients-fideles")
    listing.add_argument("--email", help="add, remove: the contact's email")
    listing.add_argument("--contact-id", help="add, remove: the contact's id")
    api_arguments(listing)
    listing.set_defaults(run=_lists)
    # People's data: `parcours contacts show|export|erase|import`
    from infra import contacts_import

    people = commands.add_parser("contacts", help="people's data: a person's file, their erasure, an import")
    people_commands = people.add_subparsers(dest="contacts_command", required=True)
    for action, about in (
        ("show", "print a person's file: everything stored about them"),
        ("export", "save a person's file to a JSON file"),
        ("erase", "erase a person: every item about them, their running scenarios stopped"),
    ):
        person = people_commands.add_parser(action, help=about)
        person.add_argument("--email")
        person.add_argument("--phone", help="E.164, e.g. +33612345678")
        person.add_argument("--contact-id")
        person.add_argument("--shopify-id", help="a Shopify customer id (what a customers/data_request names)")
        if action == "export":
            person.add_argument("--output", "-o", help="the file (default person-CONTACT_ID.json)")
        api_arguments(person)
        person.set_defaults(run=_contacts, action=action)
    contacts_import.register(people_commands)
    suppressed = commands.add_parser(
        "suppressions", help="an address parcours no longer mails: show why (show), mail it again (lift --reason)"
    )
    suppressed.add_argument("action", choices=["show", "lift"])
    suppressed.add_argument("address", help="the email address")
    suppressed.add_argument("--reason", help="lift: why it may be mailed again (required, recorded, 500 characters)")
    api_arguments(suppressed)
    suppressed.set_defaults(run=_suppressions)
    from infra import campaigns_cli, reporting

    reporting.register(commands)
    campaigns_cli.register(commands)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
