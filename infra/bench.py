"""`make bench`: how fast parcours takes events in, each figure against a baseline measured in the same run.

Figures are printed, never asserted (the machine's load decides the absolute numbers; the ratios travel better):
  1. events per second through ingest and process in `parcours local`, against bare HTTP requests to it;
  2. DynamoDB requests per event while processing, against a bare put_item loop (the floor: 1.0); and, off the event
     path, the report function's requests for a batch of facts;
  3. every handler's import time (a cold start's share), against `import boto3` plus one client;
  4. the daily run's contacts per second, paged through the schedule queue one page per invocation, against the
     same run in one loop in one process (what the daily run was before it fanned out);
  5. a CSV import's rows per second (`parcours contacts import`'s batches through the admin handler, queued, then
     the process handler), against a bare BatchWriteItem loop writing the same rows as items;
  6. state transitions per contact down each shipped scenario's full path, against its floor (one Task per message,
     one Wait between), and the welcome series executed in moto's interpreter (`--save-cost` keeps its send's
     DynamoDB requests and milliseconds in infra/cost/measured.json, which `parcours cost` prices);
  7. a campaign's people per second, its pages and chunks through the campaign queue one message per invocation,
     against a bare loop over the same pages of the list writing one item per person.
  8. the process handler's own CPU per event (its AWS calls apart: their client side beside it, moto's answers
     out), against the event's body parsed plus a bare put_item; and where it goes, a profile.
About 1,000 lines on purpose: each measurement sits beside its baseline, so that a figure is read in one place.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.localprocess import RunningLocal

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-3"
SECRET = secrets.token_urlsafe(24)  # this run's Shopify secret: the runtime and the webhooks share it
EVENTS = ROOT / "tests" / "events" / "shopify"


# ---- 1. events per second -----------------------------------------------------------------------------------
def started_runtime() -> RunningLocal:
    """`parcours local` at real speed, with this run's Shopify secret, ready for requests."""
    from infra.localprocess import RunningLocal

    runtime = RunningLocal(time_scale=1.0, secret=SECRET)
    try:
        runtime.start()
    except BaseException:
        runtime.stop()
        raise
    return runtime


def throughput(events: int, clients: int, runtime: RunningLocal) -> tuple[float, float]:
    """(events/s through ingest and process, bare requests/s to the same runtime, which it stops).

    The baseline is GET /_local/clock on the same server, from the same number of client threads: it pays what
    every request pays here (HTTP, the runtime's threads, this Python) and nothing of parcours, so the ratio is
    what an event costs on top of a request, whatever the machine. The events are new customers without
    marketing consent: each creates a contact, its identities and its history, and checks every scenario's
    entry rules, but starts no execution (an execution's emails would compete for the CPU with the next events).
    """
    from infra.webhook_client import post_shopify

    try:
        template = json.loads((EVENTS / "customers-create-no-consent.json").read_bytes())
        tag = uuid.uuid4().hex[:8]
        bodies = [
            json.dumps({**template, "id": 10**12 + n, "email": f"bench.{tag}.{n}@example.com"}).encode()
            for n in range(events)
        ]

        def clock(_: int) -> int:
            with urllib.request.urlopen(f"{runtime.api_url}/_local/clock", timeout=30) as response:
                response.read()
                return int(response.status)

        def deliver(n: int) -> int:
            return post_shopify(runtime.api_url, "customers/create", bodies[n], SECRET, f"bench-{tag}-{n}").status

        _run(clock, clients, clients)  # warm both paths
        baseline = events / _run(clock, events, clients, expect=200)
        started = time.perf_counter()
        _run(deliver, events, clients, expect=202)
        identities = runtime.physical_ids()["IdentitiesTable"]
        dynamodb = runtime.client("dynamodb")

        def known() -> int:
            return int(dynamodb.scan(TableName=identities, Select="COUNT")["Count"])

        stored = runtime.wait_for(known, lambda count: count >= 2 * events, seconds=120)  # email and Shopify id
        if stored < 2 * events:  # a rate over events never processed would be a figure of nothing
            output = "".join(runtime.output[-20:])
            raise RuntimeError(f"{stored} of {2 * events} identities stored after 120 s; the runtime said:\n{output}")
        rate = events / (time.perf_counter() - started)
        # Measured again after: the better of the two is the one the rest of the machine disturbed least.
        baseline = max(baseline, events / _run(clock, events, clients, expect=200))
        return rate, baseline
    finally:
        runtime.stop()


def _run(call: Callable[[int], int], count: int, clients: int, expect: int | None = None) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = Counter(pool.map(call, range(count)))
    if expect is not None and set(statuses) != {expect}:
        raise RuntimeError(f"expected every answer to be {expect}, got {dict(statuses)}")
    return time.perf_counter() - started


# ---- 2. DynamoDB requests per event ---------------------------------------------------------------------------
@contextmanager
def counting_dynamodb() -> Iterator[Counter[str]]:
    """Counts DynamoDB API calls by operation, whoever makes them (PynamoDB, Powertools, boto3): every botocore
    client goes through BaseClient._make_api_call, and the count is taken there, in process, under moto."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    real = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private to botocore: typed stubs omit it)

    def counted(client: Any, operation: str, params: Any) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls[operation] += 1
        return real(client, operation, params)

    setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(BaseClient, "_make_api_call", real)  # noqa: B010


@dataclass(frozen=True)
class Case:
    name: str
    topic: str
    sample: str
    event_id: str


CASES = (
    Case("new contact (customers/create, welcome starts)", "customers/create", "customers-create.json", "c1"),
    Case("known contact (customers/create again, new event)", "customers/create", "customers-create.json", "c2"),
    Case("checkout (checkouts/create, abandoned-cart starts)", "checkouts/create", "checkouts-create.json", "k1"),
    Case("order (orders/create: goal, counters, post-purchase)", "orders/create", "orders-create.json", "o1"),
    Case("redelivery (the same order again)", "orders/create", "orders-create.json", "o1"),
)


def dynamodb_requests(items: int) -> tuple[list[tuple[str, Counter[str]]], float]:
    """Per case, the DynamoDB calls of one event through the process handler (its processed mark included); and the
    requests per item of a bare put_item loop counted the same way (1.0: it checks the counter, and is the floor)."""
    from moto import mock_aws

    from infra import build, samtemplate

    with _moto_environment():
        return _count_in_moto(mock_aws, build, samtemplate, items)


MOTO_VARIABLES = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "parcours",  # flushed every 100 metrics, which needs one even when disabled
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "PARCOURS_STATE_MACHINE_PREFIX": f"arn:aws:states:{REGION}:123456789012:stateMachine:parcours-",
    "PARCOURS_FROM_ADDRESS": "bonjour@boutique.example",
    "PARCOURS_CONFIGURATION_SET": "parcours-email",
    "PARCOURS_PUBLIC_BASE_URL": "https://mail.boutique.example",
    "PARCOURS_SENDER_NAME": "La Boutique",
    "PARCOURS_POSTAL_ADDRESS": "12 rue des Artisans, 75011 Paris",
    "PARCOURS_SUPPRESSION_KEY": secrets.token_urlsafe(32),  # this run's: the processing reads the erasures' tombstones
}


@contextmanager
def _emulation_at_aws_cost() -> Iterator[None]:
    """Two costs of moto that AWS does not have, and that make a 10,000-row import quadratic (hours), removed for
    the bench; what each call does is moto's own.
    - TransactWriteItems backs up every table it touches, whole, before applying: here the backup is of the items
      the transaction names (infra.local.emulation.back_up_items, as the local runtime does).
    - Every SendMessage computes the queue's attributes, counting its messages three times over (the approximate
      numbers of messages, delayed and in flight, which nothing here reads): here those counts are 0."""
    from moto.sqs.models import Queue

    from infra.local.emulation import back_up_items

    counts = (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )
    counted = {name: getattr(Queue, name) for name in counts}
    for name in counts:
        setattr(Queue, name, property(lambda _queue: 0))
    undo = back_up_items()
    try:
        yield
    finally:
        undo()
        for name, count in counted.items():
            setattr(Queue, name, count)


@contextmanager
def _moto_environment() -> Iterator[None]:
    """The functions' environment for moto in this process, restored after."""
    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(MOTO_VARIABLES)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _provision(samtemplate: Any, *functions: str) -> None:
    """The tables and queues the template hands these functions (the `!Ref`s of the Globals' environment and of
    their own), created in moto as the template declares them, each variable pointing at its own: the bench's
    account then has what the handlers have in AWS, whatever they come to need (a queue missing here once crashed
    figure 2). Parameters and other references stay with MOTO_VARIABLES or the settings' defaults."""
    template = samtemplate.load()
    resources = template["Resources"]
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in functions:
        variables.update(resources[function]["Properties"].get("Environment", {}).get("Variables", {}))
    for variable, value in variables.items():
        logical_id = str(value.get("Ref")) if isinstance(value, dict) else ""
        if logical_id not in resources:
            continue
        resource = resources[logical_id]
        if resource["Type"] == "AWS::DynamoDB::Table":
            os.environ[variable] = _create_table(logical_id, resource["Properties"])
        elif resource["Type"] == "AWS::SQS::Queue":
            os.environ[variable] = _create_queue(logical_id, resource["Properties"])


def _create_table(logical_id: str, props: dict[str, Any]) -> str:
    import boto3

    name = f"bench-{logical_id}"
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        **{k: props[k] for k in ("GlobalSecondaryIndexes",) if k in props},
    )
    return name


def _create_queue(logical_id: str, props: dict[str, Any]) -> str:
    """Its URL. The template's plain attributes (FIFO, deduplication, visibility...); not its redrive policy, whose
    dead-letter queue and receive count no figure reaches."""
    import boto3

    attributes: dict[Any, str] = {  # the template's keys are SQS's attribute names
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in props.items()
        if key not in ("QueueName", "RedrivePolicy") and isinstance(value, str | int | bool)
    }
    name = f"bench-{logical_id}" + (".fifo" if props.get("FifoQueue") else "")
    url: str = boto3.client("sqs", region_name=REGION).create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def _count_in_moto(
    mock_aws: Any, build: Any, samtemplate: Any, items: int
) -> tuple[list[tuple[str, Counter[str]]], float]:
    with mock_aws():
        import boto3

        dynamodb = boto3.client("dynamodb", region_name=REGION)
        _provision(samtemplate, "ProcessFunction")
        sfn = boto3.client("stepfunctions", region_name=REGION)
        succeed = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
        for scenario in build.compile_all().scenarios:
            sfn.create_state_machine(
                name=f"parcours-{scenario}", definition=succeed, roleArn="arn:aws:iam::123456789012:role/sfn"
            )
        from functions.process import app
        from shared.settings import get_settings

        get_settings.cache_clear()
        app._handle_once.cache_clear()
        results = [(case.name, _one(app.lambda_handler, case)) for case in CASES]

        dynamodb.create_table(
            TableName="bench-floor",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with counting_dynamodb() as calls:
            for n in range(items):
                dynamodb.put_item(TableName="bench-floor", Item={"id": {"S": str(n)}})
        floor = sum(calls.values()) / items
    return results, floor


def _one(handler: Callable[..., Any], case: Case) -> Counter[str]:
    from infra.local import InvocationContext
    from shared.clock import Clock
    from shared.sources import shopify
    from shared.sources.ingestion import group_and_dedup_ids

    headers = {"x-shopify-topic": case.topic, "x-shopify-event-id": case.event_id}
    event = shopify.to_event(headers, json.loads((EVENTS / case.sample).read_bytes()), Clock().now())
    group, dedup = group_and_dedup_ids(event)
    record = {
        "messageId": uuid.uuid4().hex,
        "receiptHandle": "bench",
        "body": event.to_json(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group, "MessageDeduplicationId": dedup},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:parcours-events.fifo",
        "awsRegion": REGION,
    }
    with counting_dynamodb() as calls:
        answer = handler({"Records": [record]}, InvocationContext.of("parcours-ProcessFunction", timeout=60))
    if answer.get("batchItemFailures"):
        raise RuntimeError(f"{case.name}: the process function failed the event")
    return calls


def report_requests(facts: int) -> Counter[str]:
    """The report function's DynamoDB calls for one batch of `facts` stream records (deliveries of one scenario's
    step on one day, as a busy scenario's batch is), off the event path: what figure 2 leaves out."""
    from moto import mock_aws

    from infra import samtemplate

    with _moto_environment(), mock_aws():
        import boto3

        _provision(samtemplate, "ReportFunction")
        from shared.clock import Clock
        from shared.reports import counting
        from shared.settings import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        events = settings.events_table
        records = []
        for n in range(facts):
            properties = json.dumps({"scenario": "welcome", "step": "e1-welcome", "message_id": f"m{n}"})
            image = {
                "contact_id": {"S": f"c{n}"},
                "at_id": {"S": f"2026-11-24T11:00:00+00:00#ses#{n}"},
                "type": {"S": "email.delivered"},
                "source": {"S": "ses"},
                "properties": {"S": properties},
            }
            records.append(
                {
                    "eventName": "INSERT",
                    "eventSourceARN": f"arn:aws:dynamodb:{REGION}:123456789012:table/{events}/stream/x",
                    "dynamodb": {"NewImage": image, "SequenceNumber": str(n)},
                }
            )
        boto3.client("dynamodb", region_name=REGION)  # the client made before counting
        with counting_dynamodb() as calls:
            counting.count(records, settings, Clock().now())
        get_settings.cache_clear()
    return calls


# ---- 3. import time ---------------------------------------------------------------------------------------
def import_seconds(codes: dict[str, str], runs: int) -> dict[str, float]:
    """Best of `runs` fresh interpreters for each piece of code, taken in turns so that a busy moment of the
    machine weighs on all of them alike: the best is the least disturbed."""
    # LAMBDA_TASK_ROOT as in Lambda: the X-Ray SDK (Powertools' Tracer) takes its Lambda path there, a local
    # sampler; elsewhere it builds an X-Ray client for a daemon at import, about 100 ms that Lambda never pays.
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION, "LAMBDA_TASK_ROOT": str(ROOT)}
    # With their bytecode, as the build ships them (Makefile, lambda_bytecode) and as pip installed the packages here:
    # where PYTHONDONTWRITEBYTECODE is set, the interpreters would otherwise compile parcours' modules every time.
    import compileall

    for package in ("functions", "shared"):
        compileall.compile_dir(ROOT / package, quiet=1)
    best = dict.fromkeys(codes, float("inf"))
    for _ in range(runs):
        for name, code in codes.items():
            # CPU time: an import is CPU work (its files in the page cache after the first run), and the machine's
            # other work weighs less on it than on the wall clock (each ratio moved by 0.3 between runs on 2 cores)
            timed = f"import time; t = time.process_time(); {code}; print(time.process_time() - t)"
            seconds = float(subprocess.check_output([sys.executable, "-c", timed], cwd=ROOT, env=env, text=True))
            best[name] = min(best[name], seconds)
    return best


def import_instructions(codes: dict[str, str]) -> dict[str, float]:
    """The instructions each piece of code executes, the interpreter's own start (`pass`) taken off: the same count
    on every run whatever else the machine does (valgrind's callgrind; about 15 s a piece), where timing moved a
    ratio by up to 0.15 between runs on 2 shared cores."""
    import compileall
    import shutil

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("--instructions needs valgrind (Debian: apt-get install valgrind)")
    # One hash seed: else each interpreter orders its sets and dicts its own way, a few tenths of a percent apart
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION, "LAMBDA_TASK_ROOT": str(ROOT), "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for package in ("functions", "shared"):
        compileall.compile_dir(ROOT / package, quiet=1)

    def count(code: str) -> int:
        command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"valgrind printed no count for {code!r}")
        return int(found.group(1))

    start = count("pass")
    return {name: float(count(code) - start) for name, code in codes.items()}


# ---- 4. the daily run's paging ------------------------------------------------------------------------------
def daily_run_paging(contacts: int, page: int) -> tuple[float, float, int]:
    """(contacts/s through the fan-out, contacts/s through the single loop, pages read), moto in-process.

    Every contact is silent for exactly 90 days, so all of them sit on one key of the engaged_on index: the worst
    case, a key read page after page. The fan-out is the deployed path: the scheduled handler plans, then each
    message of the schedule queue goes to the page handler, one per invocation (BatchSize 1), as Lambda's event
    source mapping does. The baseline is `schedule.run`, the same reads and events in one loop in one process:
    the ratio is what the queue hops between pages cost, whatever the machine."""
    from moto import mock_aws

    from infra import samtemplate

    with _moto_environment(), mock_aws():
        return _page_in_moto(samtemplate, contacts, page)


def _page_in_moto(samtemplate: Any, contacts: int, page: int) -> tuple[float, float, int]:
    import boto3

    from functions.schedule import app
    from infra.local import InvocationContext
    from shared.journeys import dispatch, schedule
    from shared.people import moments
    from shared.settings import get_settings
    from shared.storage import tables

    _provision(samtemplate, "ScheduleFunction", "SchedulePagesFunction")
    sqs = boto3.client("sqs", region_name=REGION)
    get_settings.cache_clear()
    settings = get_settings()
    events, pages = settings.queue_url, settings.schedule_queue_url
    assert pages is not None
    run = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)
    silent = moments.inactive_since(run.date(), 90)
    t = tables(settings)
    with t.contacts.batch_write() as batch:
        for n in range(contacts):
            at = datetime(2026, 8, 26, 12, tzinfo=UTC)
            batch.save(t.contacts(f"bench-{n:07d}", created_at=at, updated_at=at, engaged_on=silent.isoformat()))
    entries = [dispatch.Entry("bench", "contact.inactive", "email", "always", None, {"days": 90})]
    original, send = schedule.PAGE, schedule._send
    draining = threading.Lock()

    def consumed(settings: Any, url: str, entries: list[dict[str, Any]]) -> None:
        # The process function keeps the events queue near empty; moto's SQS grows slower with every message
        # waiting (it counts them on each send), which AWS does not.
        send(settings, url, entries)
        if url != events:
            return
        with draining:  # one consumer at a time: the page worker sends its batches from several threads
            while taken := sqs.receive_message(QueueUrl=events, MaxNumberOfMessages=10).get("Messages"):
                for message in taken:
                    sqs.delete_message(QueueUrl=events, ReceiptHandle=message["ReceiptHandle"])

    schedule.PAGE = page
    setattr(schedule, "_send", consumed)  # noqa: B010
    try:
        started = time.perf_counter()
        report = schedule.run(settings, run, run, entries)
        single = contacts / (time.perf_counter() - started)
        started = time.perf_counter()
        schedule.fan_out(settings, run, run, entries)
        read = 0
        while messages := sqs.receive_message(QueueUrl=pages, MaxNumberOfMessages=1).get("Messages"):
            record = {"messageId": messages[0]["MessageId"], "body": messages[0]["Body"]}
            answer = app.page_handler({"Records": [record]}, InvocationContext.of("parcours-SchedulePagesFunction"))
            if answer["batchItemFailures"]:
                raise RuntimeError("the page handler failed a page")
            sqs.delete_message(QueueUrl=pages, ReceiptHandle=messages[0]["ReceiptHandle"])
            read += 1
        paged = contacts / (time.perf_counter() - started)
    finally:
        schedule.PAGE = original
        setattr(schedule, "_send", send)  # noqa: B010
        get_settings.cache_clear()
    if report.inactive_events != contacts or read != report.pages:
        raise RuntimeError(f"the runs disagree: {report} against {read} pages through the queue")
    return paged, single, read


# ---- 5. contact import ------------------------------------------------------------------------------------------
def import_rate(rows: int) -> tuple[float, float]:
    """(rows/s through the whole import, rows/s of a bare BatchWriteItem loop of the same rows), moto in-process.

    The import: the CSV read as the CLI reads it (shared.sources.imports.read) and cut into its batches, each
    batch through the admin handler (every row checked, queued), then every queued event through the process
    handler in batches of 10 as SQS delivers them (contact, identities, consent proof, list, history, scenario
    entry rules; its processed mark included), until the queue is empty. The baseline writes each row as one item of the
    same table, 25 per BatchWriteItem: what storing the file costs with no rule at all."""
    from moto import mock_aws

    from infra import samtemplate

    lines = ["email,first_name,lists,consent_state,consent_level,consent_date,consent_proof"]
    lines += [f"bench.{n}@example.com,Prénom{n},bench,granted,single,2025-01-01,bench form" for n in range(rows)]
    raw = ("\n".join(lines) + "\n").encode()
    with _moto_environment(), mock_aws(), _emulation_at_aws_cost():
        _provision(samtemplate, "AdminFunction", "ProcessFunction")
        return _import_in_moto(raw, rows), _batch_write_in_moto(raw)


def _import_in_moto(raw: bytes, rows: int) -> float:
    import contextlib
    import warnings

    import boto3

    from functions.admin import app as admin
    from functions.process import app as process
    from infra import contacts_import
    from infra.local import InvocationContext
    from shared.settings import get_settings
    from shared.sources import imports

    get_settings.cache_clear()
    process._handle_once.cache_clear()
    sqs = boto3.client("sqs", region_name=REGION)
    queue = os.environ["PARCOURS_QUEUE_URL"]
    started = time.perf_counter()
    parsed = imports.read(raw)
    accepted = processed = 0
    for _, body in contacts_import.batches(parsed.rows, "bench.csv", False):
        event = {
            "version": "2.0",
            "routeKey": "POST /v1/contacts/import",
            "rawPath": "/v1/contacts/import",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/v1/contacts/import"}, "stage": "$default"},
            "body": body.decode(),
            "isBase64Encoded": False,
        }
        answer = admin.lambda_handler(event, InvocationContext.of("parcours-AdminFunction"))
        accepted += json.loads(answer["body"])["accepted"]
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "MessageGroupId": "g",
                        "MessageDeduplicationId": "d",
                    },
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:parcours-events.fifo",
                    "awsRegion": REGION,
                }
                for m in messages
            ]
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # metrics, "no metrics"
                warnings.simplefilter("ignore")
                result = process.lambda_handler({"Records": records}, InvocationContext.of("parcours-ProcessFunction"))
            if result.get("batchItemFailures"):
                raise RuntimeError(f"the process handler failed {result['batchItemFailures']}")
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            processed += sum(1 for m in messages if json.loads(m["Body"])["source"] == "import")
    elapsed = time.perf_counter() - started
    get_settings.cache_clear()
    if accepted != rows or processed != rows:
        raise RuntimeError(f"{rows} rows: {accepted} accepted, {processed} processed")
    return rows / elapsed


def _batch_write_in_moto(raw: bytes) -> float:
    import csv

    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = os.environ["PARCOURS_CONTACTS_TABLE"]
    started = time.perf_counter()
    items: list[Any] = [
        {"PutRequest": {"Item": {"contact_id": {"S": uuid.uuid4().hex}, **{k: {"S": v} for k, v in row.items() if v}}}}
        for row in csv.DictReader(io.StringIO(raw.decode()))
    ]
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={table: items[start : start + 25]})
    return len(items) / (time.perf_counter() - started)


# ---- 7. a campaign ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignFigures:
    rate: float  # people/s through the campaign's pages and chunks
    bare: float  # people/s of the bare loop over the same pages
    sent: int
    messages: int  # queue messages handled, one per invocation
    requests: Counter[str]  # DynamoDB requests of the whole campaign, by operation


def campaign_rate(audience: int) -> CampaignFigures:
    """The campaign's figures, moto in-process.

    The audience is one static list of consenting contacts, a tenth of whom turned the campaign's topic off. The
    campaign is the deployed path: POST /v1/campaigns and its send through the admin handler, then every message
    of the campaign queue to the campaign handler, one per invocation (BatchSize 1), as Lambda's event source
    mapping does: each page read and cut into chunks, each chunk's people sent through the scenarios' send
    (consent, topic, suppression, caps, claim, SES, the send log). The sending rate is set out of the way (a
    million a second): the figure is what parcours costs per person, not the SES quota's wait. The baseline reads
    the same pages of the list and writes one item per person (the least a campaign can do to remember whom it
    reached): the ratio is what a person costs on top of that, whatever the machine."""
    from moto import mock_aws

    from infra import samtemplate

    with _moto_environment(), mock_aws(), _emulation_at_aws_cost():
        return _campaign_in_moto(samtemplate, audience)


def _campaign_in_moto(samtemplate: Any, audience: int) -> CampaignFigures:
    import boto3

    from functions.admin import app as admin
    from functions.campaign import app
    from infra.local import InvocationContext
    from shared.campaigns import delivery
    from shared.settings import get_settings
    from shared.storage import Consent, Preferences, tables

    os.environ["PARCOURS_CAMPAIGN_RATE"] = "1000000"
    os.environ["PARCOURS_LINK_SECRET"] = secrets.token_urlsafe(32)
    _provision(samtemplate, "AdminFunction", "CampaignFunction")
    boto3.client("ses", region_name=REGION).verify_domain_identity(Domain="boutique.example")
    sqs = boto3.client("sqs", region_name=REGION)
    get_settings.cache_clear()
    settings = get_settings()
    queue = settings.campaign_queue_url
    assert queue is not None
    t = tables(settings)
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    granted = Consent(  # type: ignore[no-untyped-call]
        state="granted", level="single_opt_in", source="bench", at=at
    )
    with t.contacts.batch_write() as contacts, t.list_members.batch_write() as members:
        for n in range(audience):
            contact_id = f"bench-{n:07d}"
            preferences = (
                Preferences(topics_off={"promotions"}, source="bench", at=at)  # type: ignore[no-untyped-call]
                if n % 10 == 9
                else None
            )
            contacts.save(
                t.contacts(
                    contact_id,
                    email=f"bench.{n}@example.com",
                    created_at=at,
                    updated_at=at,
                    email_consent=granted,
                    lists={"bench-newsletter"},
                    preferences=preferences,
                )
            )
            members.save(t.list_members("bench-newsletter", contact_id, joined_at=at, origin="bench"))

    def admin_call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        event = {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
            "body": json.dumps(body) if body is not None else "",
            "isBase64Encoded": False,
        }
        answer = admin.lambda_handler(event, InvocationContext.of("parcours-AdminFunction"))
        if answer["statusCode"] >= 300:
            raise RuntimeError(f"{method} {path}: {answer['statusCode']} {answer['body']}")
        return json.loads(answer["body"])  # type: ignore[no-any-return]

    document = {
        "id": "bench",
        "email": "promotions/black-friday",
        "topic": "promotions",
        "audience": {"list": "bench-newsletter"},
    }
    try:
        started = time.perf_counter()
        with counting_dynamodb() as requests:
            admin_call("POST", "/v1/campaigns", document)
            admin_call("POST", "/v1/campaigns/bench/send")
            handled = 0
            while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages"):
                record = {"messageId": messages[0]["MessageId"], "body": messages[0]["Body"]}
                answer = app.lambda_handler({"Records": [record]}, InvocationContext.of("parcours-CampaignFunction"))
                if answer["batchItemFailures"]:
                    raise RuntimeError("the campaign handler failed a message")
                app.metrics.clear_metrics()  # disabled, they would still be printed every 100 (as Lambda flushes)
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
                handled += 1
        rate = audience / (time.perf_counter() - started)
        status = admin_call("GET", "/v1/campaigns/bench")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="bench-reached",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        started = time.perf_counter()
        cursor = None
        while True:
            page = t.list_members.query("bench-newsletter", limit=delivery.PAGE, last_evaluated_key=cursor)
            for member in page:
                dynamodb.put_item(TableName="bench-reached", Item={"id": {"S": member.contact_id}})
            cursor = page.last_evaluated_key
            if not cursor:
                break
        bare = audience / (time.perf_counter() - started)
    finally:
        get_settings.cache_clear()
    skipped = audience // 10
    if (status["sent"], status["skipped"].get("unsubscribed_topic"), status["status"]) != (
        audience - skipped,
        skipped or None,
        "sent",
    ):
        raise RuntimeError(f"the campaign did not reach its audience: {status}")
    return CampaignFigures(rate, bare, int(status["sent"]), handled, Counter(requests))


# ---- 8. the process handler's own CPU per event --------------------------------------------------------------
@dataclass(frozen=True)
class OwnCpu:
    events: int  # events measured (rounds x CASES)
    own: float  # CPU seconds of the handler's thread, its AWS calls excluded
    calls: int  # AWS calls the handler made for those events
    client: float  # CPU seconds of those calls on the client side (botocore building and reading them), moto's out
    floor: float  # CPU seconds of the floor's thread for as many events: the body parsed, one bare put_item each
    floor_client: float  # CPU seconds of the floor's put_item calls on the client side
    profile: Any  # pstats.Stats of the handler's thread (CPU time) for as many events again, or None
    least: tuple[float, ...] = ()  # per case (CASES' order), the least own CPU seconds of one event over the rounds


@dataclass
class _AwsCalls:
    calls: int = 0
    seconds: float = 0.0  # CPU seconds of the calling thread in the AWS calls, moto's answers included
    answers: float = 0.0  # CPU seconds of moto's answers


@contextmanager
def _aws_apart(elsewhere: bool = False) -> Iterator[_AwsCalls]:
    """Counts the AWS calls and the CPU time (time.thread_time) they take, apart from the caller's, whoever makes
    them (PynamoDB, Powertools, boto3 all go through botocore's BaseClient._make_api_call); of that, moto's answers
    (what AWS does on its side) apart from the client side (botocore building, signing and reading the requests,
    which Lambda pays too, and in proportion to their number, figure 2). `elsewhere`: the calls are made from a
    thread of their own while the caller waits (no CPU), for a profile of the caller's thread without them."""
    from botocore.client import BaseClient
    from moto.core.botocore_stubber import BotocoreStubber

    make_api_call = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private to botocore: typed stubs omit it)
    process_request = BotocoreStubber.process_request
    counted = _AwsCalls()

    def answer(stubber: BotocoreStubber, request: Any) -> Any:
        started = time.thread_time()
        try:
            return process_request(stubber, request)
        finally:
            counted.answers += time.thread_time() - started

    def call(client: Any, operation: str, params: Any) -> Any:
        started = time.thread_time()
        try:
            return make_api_call(client, operation, params)
        finally:
            counted.calls += 1
            counted.seconds += time.thread_time() - started

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aws") as aws:

        def from_aws_thread(client: Any, operation: str, params: Any) -> Any:
            return aws.submit(call, client, operation, params).result()

        setattr(BaseClient, "_make_api_call", from_aws_thread if elsewhere else call)  # noqa: B010
        setattr(BotocoreStubber, "process_request", answer)  # noqa: B010
        try:
            yield counted
        finally:
            setattr(BaseClient, "_make_api_call", make_api_call)  # noqa: B010
            setattr(BotocoreStubber, "process_request", process_request)  # noqa: B010


def _round_of(n: int) -> list[tuple[str, str, bytes]]:
    """The CASES for a customer of its own (email, Shopify ids), so that every round's new contact is new: (topic,
    event id, body)."""
    import re

    def own(raw: str) -> str:
        raw = re.sub(r"camille\.martin@", f"camille.martin.{n}@", raw, flags=re.IGNORECASE)
        for source_id in ("7281290412345", "35510239346780", "5512345678901"):
            raw = raw.replace(source_id, str(int(source_id) + n))
        return raw

    return [
        (case.topic, f"{case.event_id}-{n}", own((EVENTS / case.sample).read_text(encoding="utf-8")).encode())
        for case in CASES
    ]


def own_cpu(rounds: int, profiled: bool) -> OwnCpu:
    """The process handler's CPU per event in this process, its AWS calls apart (`_aws_elsewhere`), warm (a first
    round, not measured, pays the container's first uses); as deployed: logs at INFO (the template's default) and
    metrics on, both written to /dev/null. Tracing is off (no X-Ray daemon here)."""
    from moto import mock_aws

    from infra import build, samtemplate

    with _moto_environment(), mock_aws(), _emulation_at_aws_cost():
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
        return _own_cpu_in_moto(build, samtemplate, rounds, profiled)


def _own_cpu_in_moto(build: Any, samtemplate: Any, rounds: int, profiled: bool) -> OwnCpu:
    import contextlib
    import cProfile
    import pstats

    import boto3

    from functions.process import app
    from infra.local import InvocationContext
    from shared.settings import get_settings

    _process_account(build, samtemplate)
    get_settings.cache_clear()
    app._handle_once.cache_clear()
    context = InvocationContext.of("parcours-ProcessFunction", timeout=60)
    records = [[_record(*case) for case in _round_of(n)] for n in range(2 * rounds + 1)]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="bench-floor",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def handle(rounds_of: list[list[dict[str, Any]]]) -> None:
        for record in (record for round_of in rounds_of for record in round_of):
            if app.lambda_handler({"Records": [record]}, context).get("batchItemFailures"):
                raise RuntimeError(f"the process function failed event {record['messageId']}")

    def floor(rounds_of: list[list[dict[str, Any]]]) -> None:
        for record in (record for round_of in rounds_of for record in round_of):
            event_id = json.loads(record["body"])["event_id"]
            dynamodb.put_item(TableName="bench-floor", Item={"id": {"S": event_id}})

    def measured(
        run: Callable[[list[list[dict[str, Any]]]], None], rounds_of: list[list[dict[str, Any]]]
    ) -> tuple[float, int, float]:
        """(CPU seconds outside the AWS calls, AWS calls, CPU seconds of their client side)."""
        with _aws_apart() as aws:
            started = time.thread_time()
            run(rounds_of)
            elapsed = time.thread_time() - started
        return elapsed - aws.seconds, aws.calls, aws.seconds - aws.answers

    handler = app.logger.registered_handler
    level, stream = app.logger.log_level, getattr(handler, "stream", None)
    with open(os.devnull, "w", encoding="utf-8") as null, contextlib.redirect_stdout(null):
        app.logger.setLevel("INFO")
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(null)
        try:
            handle(records[:1])
            floor(records[:1])
            own = client = bare = bare_client = 0.0
            calls = 0
            least = [float("inf")] * len(CASES)
            for round_of in records[1 : rounds + 1]:  # in turns: a busy moment of the machine weighs on both alike
                with _aws_apart() as aws:
                    for case, record in enumerate(round_of):  # each event's own too: each kind's least
                        spent, made, answers = aws.seconds, aws.calls, aws.answers
                        started = time.thread_time()
                        handle([[record]])
                        seconds = time.thread_time() - started - (aws.seconds - spent)
                        own, calls = own + seconds, calls + aws.calls - made
                        client += aws.seconds - spent - (aws.answers - answers)
                        least[case] = min(least[case], seconds)
                seconds, _, client_side = measured(floor, [round_of])
                bare, bare_client = bare + seconds, bare_client + client_side
            profile = None
            if profiled:  # other customers' rounds, profiled apart: the profiler's own cost stays out of `own`
                profile = cProfile.Profile(time.thread_time)
                with _aws_apart(elsewhere=True):
                    profile.runcall(handle, records[rounds + 1 :])
        finally:
            app.logger.setLevel(level)
            if isinstance(handler, logging.StreamHandler) and stream is not None:
                handler.setStream(stream)
    stats = pstats.Stats(profile) if profile is not None else None
    return OwnCpu(rounds * len(CASES), own, calls, client, bare, bare_client, stats, tuple(least))


def _process_account(build: Any, samtemplate: Any) -> None:
    """What the process function has in AWS (figure 2's account): its tables and queues, and a state machine per
    shipped scenario that succeeds at once (a started execution is all the process function sees of it)."""
    import boto3

    _provision(samtemplate, "ProcessFunction")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    succeed = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    for scenario in build.compile_all().scenarios:
        sfn.create_state_machine(
            name=f"parcours-{scenario}", definition=succeed, roleArn="arn:aws:iam::123456789012:role/sfn"
        )


def _record(topic: str, event_id: str, body: bytes) -> dict[str, Any]:
    """A Shopify webhook as ingest queues it, as the SQS event source hands it to the process function."""
    from shared.clock import Clock
    from shared.sources import shopify
    from shared.sources.ingestion import group_and_dedup_ids

    headers = {"x-shopify-topic": topic, "x-shopify-event-id": event_id}
    event = shopify.to_event(headers, json.loads(body), Clock().now())
    group, dedup = group_and_dedup_ids(event)
    return {
        "messageId": uuid.uuid4().hex,
        "receiptHandle": "bench",
        "body": event.to_json(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group, "MessageDeduplicationId": dedup},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:parcours-events.fifo",
        "awsRegion": REGION,
    }


def _hand_over() -> frozenset[str]:
    import concurrent.futures._base
    import concurrent.futures.thread

    return frozenset(
        m.__file__ or ""
        for m in (sys.modules[__name__], threading, concurrent.futures._base, concurrent.futures.thread)
    )


_HAND_OVER = _hand_over()


def profile_lines(stats: Any, events: int, top: int) -> list[str]:
    """The profile, in shares of the profiled CPU time (cProfile's cost per call swells it, the most where calls
    are small and many): by package (each function's own time, less its callees'), then the `top` functions."""
    rows = {  # {(file, line, name): (calls, primitive calls, own, cumulative, callers)}, without the hand-over
        key: row  # of each AWS call to its thread (_aws_apart), which is the bench's, not parcours'
        for key, row in stats.stats.items()
        if key[0] not in _HAND_OVER and key[2] != "<method 'acquire' of '_thread.lock' objects>"
    }
    total = sum(row[2] for row in rows.values())
    by_package: Counter[str] = Counter()
    for (file, _, _), row in rows.items():
        by_package[_package(file)] += row[2]
    lines = [
        "   by package: " + ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in by_package.most_common(9))
    ]
    if top:
        lines.append("     own  cumulative  calls/event  function")
    for (file, line, name), row in sorted(rows.items(), key=lambda item: -item[1][2])[:top]:
        where = f"{_short(file)}:{line}" if line else file
        lines.append(f"   {row[2] / total:5.1%}  {row[3] / total:10.1%}  {row[0] / events:11.1f}  {name} ({where})")
    return lines


def _package(file: str) -> str:
    """The package a profiled function belongs to: parcours' own modules by subpackage, the rest by distribution."""
    if file.startswith(("~", "<")):
        return "builtins"
    path = Path(file)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    try:
        parts = path.resolve().relative_to(ROOT).parts
    except ValueError:
        return f"stdlib {path.stem}"
    return ".".join(parts[:2]).removesuffix(".py") if parts[0] == "shared" else parts[0]


def _short(file: str) -> str:
    path = Path(file)
    if "site-packages" in path.parts:
        return "/".join(path.parts[path.parts.index("site-packages") + 1 :])
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


# ---- report -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    events: int  # webhooks posted for figure 1
    clients: int  # concurrent HTTP clients for figure 1
    runs: int  # fresh interpreters per import, figure 3
    silent: int  # contacts the daily run finds silent, figure 4
    page: int  # items per page, figure 4
    floor: int  # put_item calls of figure 2's floor
    rows: int  # CSV rows imported, figure 5
    audience: int  # people a campaign is sent to, figure 7
    rounds: int  # rounds of figure 2's events (each a customer of its own) measured by figure 8


@dataclass(frozen=True)
class Run:
    sizes: Sizes
    runtime: Callable[[], RunningLocal] = started_runtime  # figure 1's `parcours local`, ready
    save_cost: bool = False  # figure 6 writes its figures to infra/cost/measured.json
    profile: int = 0  # figure 8 prints this many functions of its profile (0: only the split by package)
    instructions: bool = False  # figure 3 counts instructions (valgrind) instead of timing


FULL = Sizes(events=200, clients=4, runs=15, silent=5000, page=500, floor=100, rows=10_000, audience=1000, rounds=40)
# `make test` runs this: every figure's code on sizes that only prove it still runs (figure 4 still reads several
# pages, figure 1 still waits for every event to be stored); the figures it prints mean nothing.
QUICK = Sizes(events=4, clients=2, runs=1, silent=30, page=10, floor=10, rows=12, audience=30, rounds=1)


def figure_7(run: Run) -> None:
    sizes = run.sizes
    print(f"7. a campaign: {sizes.audience} people on one list, moto in-process", flush=True)
    figures = campaign_rate(sizes.audience)
    rate, bare = figures.rate, figures.bare
    print(
        f"   {rate:.0f} people/s read, checked and sent ({figures.sent} emails, {figures.messages} queue messages, one "
        f"per invocation) = {rate / bare:.3f} x a bare loop over the same pages writing one item per person "
        f"({bare:.0f}/s)"
    )
    per_person = ", ".join(
        f"{operation} {count / sizes.audience:.2f}" for operation, count in figures.requests.most_common()
    )
    print(f"   DynamoDB requests per person: {per_person}")
    if run.save_cost:
        _save_campaign(figures, sizes.audience)


def _save_campaign(figures: CampaignFigures, audience: int) -> None:
    """`parcours cost`'s campaign figures per person, in request units: a transaction (the campaigns' are of two
    items) is 2 units per item, and each person is one item of a chunk's BatchGetItem."""
    from infra.cost import estimate
    from shared.clock import Clock

    requests = figures.requests
    reads = requests["GetItem"] + requests["Query"] + requests["Scan"] + audience
    writes = requests["PutItem"] + requests["UpdateItem"] + requests["DeleteItem"] + 4 * requests["TransactWriteItems"]
    measured = estimate.load(estimate.MEASURED)
    measured["campaign"] = {
        "measured_on": Clock().now().date().isoformat(),  # figure 6 dates the rest
        "memory_mb": measured["campaign"]["memory_mb"],
        "reads": round(reads / audience, 2),
        "writes": round(writes / audience, 2),
        "ms": round(1000 / figures.rate, 1),
    }
    estimate.MEASURED.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
    print(f"   saved to {estimate.MEASURED}")


def figure_5(run: Run) -> None:
    sizes = run.sizes
    print(f"5. contact import: {sizes.rows} CSV rows, moto in-process", flush=True)
    rate, bare = import_rate(sizes.rows)
    print(
        f"   {rate:.0f} rows/s read, checked, queued and processed = {rate / bare:.3f} x a bare BatchWriteItem loop "
        f"of the same rows ({bare:.0f}/s): one row costs {bare / rate:.1f} bare item writes"
    )


def figure_4(run: Run) -> None:
    sizes = run.sizes
    print(f"4. the daily run: {sizes.silent} silent contacts on one engaged_on key, pages of {sizes.page}", flush=True)
    paged, single, pages = daily_run_paging(sizes.silent, sizes.page)
    print(
        f"   {paged:.0f} contacts/s paged through the schedule queue ({pages} pages, one per invocation) = "
        f"{paged / single:.2f} x the single loop in one process ({single:.0f}/s)"
    )


HANDLERS = (
    "ingest",
    "process",
    "act",
    "subscription",
    "feedback",
    "schedule",
    "handoff",
    "admin",
    "report",
    "campaign",
)


def figure_3(run: Run) -> None:
    sizes = run.sizes
    codes = {
        "baseline": "import boto3; boto3.client('sqs', region_name='eu-west-3')",
        **{handler: f"import functions.{handler}.app" for handler in HANDLERS},
    }
    if run.instructions:
        print(
            "3. import cost (instructions counted by valgrind, one fresh interpreter each, bytecode as shipped)",
            flush=True,
        )
        figures, unit, scale = import_instructions(codes), "M instructions", 1e-6
    else:
        print(f"3. import time (CPU, best of {sizes.runs} fresh interpreters, with bytecode as shipped)", flush=True)
        figures, unit, scale = import_seconds(codes, sizes.runs), "ms", 1000
    baseline = figures["baseline"]
    for handler in HANDLERS:
        print(
            f"   functions.{handler}.app: {figures[handler] * scale:.0f} {unit} = {figures[handler] / baseline:.2f} x "
            f"(import boto3 + one client: {baseline * scale:.0f} {unit})"
        )
    worst = max(HANDLERS, key=figures.__getitem__)
    print(f"   the slowest, {worst}: {figures[worst] / baseline:.2f} x (the aim: every handler at most 1.10 x)")


READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


def figure_2(run: Run) -> None:
    sizes = run.sizes
    print("2. DynamoDB requests per event (process handler, its processed mark included, moto in-process)", flush=True)
    results, floor = dynamodb_requests(sizes.floor)
    for name, calls in results:
        breakdown = ", ".join(f"{op} {n}" for op, n in sorted(calls.items(), key=lambda item: (-item[1], item[0])))
        total = sum(calls.values())
        print(f"   {total:>2} = {total / floor:.1f} x floor  {name}: {breakdown}")
    totals = [sum(calls.values()) for _, calls in results]
    reads = statistics.mean(sum(n for op, n in calls.items() if op in READS) for _, calls in results)
    writes = statistics.mean(totals) - reads
    print(
        f"   mean {statistics.mean(totals):.1f} per event ({reads:.1f} reads, {writes:.1f} writes; aim: 3.0); "
        f"floor (bare put_item loop): {floor:.1f} per item"
    )
    if run.save_cost:
        from infra.cost import estimate

        measured = estimate.load(estimate.MEASURED)
        measured["process"].update({"reads": round(reads, 2), "writes": round(writes, 2)})
        estimate.MEASURED.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
        print(f"   saved to {estimate.MEASURED.relative_to(ROOT)}")
    facts = sizes.floor
    counted = report_requests(facts)
    writes = counted["TransactWriteItems"]
    print(
        f"   off the event path, the report function: {sum(counted.values())} requests for {facts} facts "
        f"({writes} TransactWriteItems: a marker per fact and each counter item once, at most 100 writes each)"
    )


def figure_1(run: Run) -> None:
    sizes = run.sizes
    print(f"1. throughput: {sizes.events} signed Shopify webhooks, {sizes.clients} clients, parcours local", flush=True)
    rate, bare = throughput(sizes.events, sizes.clients, run.runtime())
    print(
        f"   {rate:.1f} events/s through ingest and process = {rate / bare:.3f} x "
        f"bare requests to the runtime ({bare:.0f}/s): one event costs {bare / rate:.1f} bare requests"
    )


def figure_6(run: Run) -> None:
    from infra import build
    from infra.cost import estimate, measure, paths

    print("6. state transitions per contact (each shipped scenario's full path), against its floor", flush=True)
    compiled = build.compile_all()
    for name in compiled.scenarios:
        path, _ = estimate.full_path(compiled.definition(name))
        floor = paths.floor(path)
        ratio = f"{path.transitions / floor:.2f} x floor ({floor}: " if floor else "(floor: "
        print(f"   {path.transitions:>2} = {ratio}{path.messages} messages, {path.waits} waits)  {name}")
    executed = measure.execute("welcome")
    reads, writes = executed.requests("send_email")
    print(
        f"   welcome executed in moto: {len(executed.entered)} states entered ({executed.status}); a send: "
        f"{reads:.0f} reads + {writes:.0f} writes, {executed.milliseconds('send_email'):.0f} ms"
    )
    if run.save_cost:
        measured = estimate.load(estimate.MEASURED)
        from shared.clock import Clock

        measured["measured_on"] = Clock().now().date().isoformat()
        measured["act"]["tasks"]["send_email"] = {
            "reads": reads,
            "writes": writes,
            "ms": round(executed.milliseconds("send_email"), 1),
        }
        estimate.MEASURED.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
        print(f"   saved to {estimate.MEASURED.relative_to(ROOT)}")


# Figure 8's ratio before issue 19's work on it (2026-12-05, 2 idle cores: 2.50 ms/event, 104 and 107 x in two runs):
# what "half of today's" is measured against.
OWN_CPU_BEFORE = 105


def figure_8(run: Run) -> None:
    sizes = run.sizes
    events = sizes.rounds * len(CASES)
    print(
        f"8. the process handler's own CPU per event: {sizes.rounds} round{'s' * (sizes.rounds > 1)} of figure 2's "
        f"{len(CASES)} events "
        "(each round a customer of its own), moto in-process, its AWS calls apart",
        flush=True,
    )
    m = own_cpu(sizes.rounds, profiled=True)
    own, floor = m.own / events * 1000, m.floor / events * 1000
    before = (
        f" (before issue 19: {OWN_CPU_BEFORE:.0f} x; the aim, half: {OWN_CPU_BEFORE / 2:.0f} x)"
        if OWN_CPU_BEFORE
        else ""
    )
    print(
        f"   {own:.2f} ms/event = {own / floor:.0f} x floor{before}; floor: the body parsed and one bare put_item "
        f"({floor * 1000:.0f} µs, its call apart too)"
    )
    kinds = ", ".join(
        f"{case.name.split(' (')[0]} {spent * 1e6:.0f}" for case, spent in zip(CASES, m.least, strict=True)
    )
    print(f"   the least of one event by kind, over the rounds (a busy machine sways it less): {kinds} µs")
    client, bare = m.client / events * 1000, m.floor_client / events * 1000
    print(
        f"   beside it, its {m.calls / events:.1f} AWS calls' client side (botocore): {client:.2f} ms/event = "
        f"{client / bare:.1f} x a bare put_item's ({bare:.2f} ms)"
    )
    for line in profile_lines(m.profile, events, run.profile):
        print(line)


FIGURES: tuple[tuple[int, Callable[[Run], None]], ...] = (
    (8, figure_8),
    (7, figure_7),
    (6, figure_6),
    (5, figure_5),
    (4, figure_4),
    (3, figure_3),
    (2, figure_2),
    (1, figure_1),
)


def main(argv: list[str] | None = None) -> int:
    """Every figure runs even when one before it crashed (its traceback printed where its figure would be); any
    crash makes the exit code 1 and is named last, so that `make test` fails when the bench has rotted."""
    import argparse
    import dataclasses

    parser = argparse.ArgumentParser(prog="python -m infra.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves every figure runs, measures nothing")
    parser.add_argument("--events", type=int, help=f"webhooks posted for the throughput figure ({FULL.events})")
    parser.add_argument("--clients", type=int, help=f"concurrent HTTP clients ({FULL.clients})")
    parser.add_argument("--runs", type=int, help=f"fresh interpreters per import figure ({FULL.runs})")
    parser.add_argument("--silent", type=int, help=f"contacts the daily run figure finds silent ({FULL.silent})")
    parser.add_argument("--page", type=int, help=f"items per page for the daily run figure ({FULL.page})")
    parser.add_argument("--rows", type=int, help=f"CSV rows the import figure loads ({FULL.rows})")
    parser.add_argument("--audience", type=int, help=f"people the campaign figure sends to ({FULL.audience})")
    parser.add_argument("--rounds", type=int, help=f"rounds of events the own CPU figure measures ({FULL.rounds})")
    parser.add_argument("--profile", type=int, default=0, help="functions of figure 8's profile to print (0)")
    parser.add_argument("--save-cost", action="store_true", help="keep figure 6's figures in infra/cost/measured.json")
    parser.add_argument(
        "--instructions", action="store_true", help="figure 3 counts instructions with valgrind instead of timing"
    )
    args = parser.parse_args(argv)
    chosen = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Sizes)}
    sizes = dataclasses.replace(QUICK if args.quick else FULL, **{k: v for k, v in chosen.items() if v is not None})

    if not args.quick:
        return _figures(Run(sizes, save_cost=args.save_cost, profile=args.profile, instructions=args.instructions))
    with runtime_in_background() as runtime:
        run = Run(sizes, runtime, save_cost=args.save_cost, profile=args.profile, instructions=args.instructions)
        return _figures(run)


@contextmanager
def runtime_in_background() -> Iterator[Callable[[], RunningLocal]]:
    """The quick run's figure 1 runtime, starting (most of the quick run) while the other figures run, whose
    figures mean nothing then: the same code, sooner. Yields what waits for it; stops it after."""
    from infra.localprocess import RunningLocal

    runtime = RunningLocal(time_scale=1.0, secret=SECRET)

    def start() -> RunningLocal:
        runtime.start()
        return runtime

    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(start)
        while runtime.process is None and not starting.done():  # its process takes this environment, not a
            time.sleep(0.01)  # figure's (figures 2 and 4 change os.environ while they run)
        try:
            yield starting.result
        finally:
            runtime.stop()  # if figure 1 never took it (figure 1 stops it too: twice is harmless)


def _figures(run: Run) -> int:
    crashed = []
    for number, figure in FIGURES:
        try:
            figure(run)
        except Exception:
            sys.stdout.flush()  # its heading before its traceback, in a log that holds both
            traceback.print_exc()
            sys.stderr.flush()
            crashed.append(number)
    if crashed:
        print(f"bench: figure {', '.join(map(str, crashed))} crashed (traceback above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
