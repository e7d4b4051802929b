"""`parcours contacts import FILE.csv`: an export from Brevo, Mailchimp or Klaviyo loaded as contacts.

The file is read here (encoding, delimiter, header, duplicate addresses: shared.sources.imports.read) and its rows
posted in SigV4-signed batches to `POST /v1/contacts/import`, a few at a time; the admin function checks each row
as every source's event is checked and queues the good ones for the process function. Each refused row is
printed with its line; the others go in. A progress line on stderr shows rows per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from shared.sources import imports

BATCH_BYTES = 200 * 1024  # of JSON per request: well under the API's and Lambda's payload limits
PARALLEL = 4  # batches in flight
ATTEMPTS = 4  # per batch, on a 5xx or a dropped connection: a batch sent twice is the same events (idempotent)


class ImportFailed(RuntimeError):
    """The API refused a batch as a whole, or could not be reached."""


def register(commands: Any) -> None:
    """Adds `import` to the `parcours contacts` commands."""
    from infra.cli import api_arguments

    command = commands.add_parser(
        "import",
        help="load existing subscribers from a CSV file (README, People's data > Import)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("file", help="the CSV file (UTF-8, comma, semicolon or tab separated, a header line)")
    command.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="HEADER=COLUMN",
        help="rename a header of the file to one of parcours' columns (repeatable), e.g. 'Email Address=email'; "
        "HEADER=- leaves that column out",
    )
    command.add_argument(
        "--start-scenarios",
        action="store_true",
        help="import the rows as signups: scenarios triggered by contact.subscribed (the welcome series) start for "
        "those whose consent lets them; by default an import starts no scenario",
    )
    api_arguments(command)
    command.set_defaults(run=run)


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        header, sep, column = pair.rpartition("=")
        if not sep or not header.strip() or not column.strip():
            raise ValueError(f"--map {pair!r}: write HEADER=COLUMN, e.g. 'Email Address=email' (or HEADER=-)")
        mapping[header.strip()] = column.strip()
    return mapping


def batches(rows: list[imports.Row], name: str, start: bool) -> Iterator[tuple[int, bytes]]:
    """(row count, JSON body) of each request: at most MAX_BATCH_ROWS rows and about BATCH_BYTES."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        item = {"line": row.line, "values": row.values}
        length = len(json.dumps(item, ensure_ascii=False).encode())
        if chunk and (len(chunk) == imports.MAX_BATCH_ROWS or size + length > BATCH_BYTES):
            yield len(chunk), _body(chunk, name, start)
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield len(chunk), _body(chunk, name, start)


def _body(rows: list[dict[str, Any]], name: str, start: bool) -> bytes:
    return json.dumps({"batch": name, "start_scenarios": start, "rows": rows}, ensure_ascii=False).encode()


class Sender:
    """Posts batches signed with the caller's AWS credentials (SigV4), as the AWS SDKs sign."""

    def __init__(self, api: str, region: str | None) -> None:
        import boto3
        from botocore.credentials import Credentials

        from infra import sigv4

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise ImportFailed(
                "no AWS credentials to sign with (locally: AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)"
            )
        frozen = credentials.get_frozen_credentials()
        self.credentials = Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token)
        self.region = region or boto3.Session().region_name or sigv4.LOCAL_REGION
        self.url = f"{api.rstrip('/')}/v1/contacts/import"

    def post(self, body: bytes) -> dict[str, Any]:
        from infra import sigv4

        for attempt in range(ATTEMPTS):
            headers = sigv4.sign(
                "POST", self.url, body, self.credentials, self.region, {"content-type": "application/json"}
            )
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    return dict(json.loads(answer.read()))
            except urllib.error.HTTPError as error:
                text = error.read().decode("utf-8", "replace")
                if error.code < 500 or attempt == ATTEMPTS - 1:
                    raise ImportFailed(f"{error.code} {text}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == ATTEMPTS - 1:
                    raise ImportFailed(f"{self.url} unreachable: {error}") from None
            time.sleep(2**attempt)
        raise AssertionError("unreachable")


class Progress:
    """Rows done and rows per second on stderr: one line redrawn on a terminal, a line per tenth otherwise (a
    log or a CI run gets no carriage returns)."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.done, self.shown = total, stream, 0, -1
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def add(self, rows: int) -> None:
        self.done += rows
        tenth = self.done * 10 // max(self.total, 1)
        if not self.tty and tenth == self.shown and self.done < self.total:
            return
        self.shown = tenth
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        width = 30
        bar = "#" * (width * self.done // max(self.total, 1))
        line = f"[{bar:<{width}}] {self.done}/{self.total} rows, {rate:.0f} rows/s"
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        if self.tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def load(
    path: Path, mapping: dict[str, str], start: bool, sender: Sender, err: TextIO
) -> tuple[int, list[imports.Problem]]:
    """Reads and sends the file: (rows accepted, problems). FileError when the file cannot be read."""
    parsed = imports.read(path.read_bytes(), mapping)
    problems = list(parsed.problems)
    accepted = 0
    progress = Progress(len(parsed.rows), err)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        sent = [(count, pool.submit(sender.post, body)) for count, body in batches(parsed.rows, path.name, start)]
        for count, future in sent:
            answer = future.result()
            accepted += int(answer["accepted"])
            problems += [imports.Problem(p["line"], p.get("column"), p["error"]) for p in answer["refused"]]
            progress.add(count)
    return accepted, sorted(problems, key=lambda problem: problem.line)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        mapping = _mapping(args.map)
        sender = Sender(args.api, args.region)
        accepted, problems = load(path, mapping, args.start_scenarios, sender, sys.stderr)
    except imports.FileError as error:
        print(f"error: {error.problem.text(path.name)}; nothing imported", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ImportFailed as error:
        print(f"error: {error}; importing the file again is safe: a row already in changes nothing", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"refused: {problem.text(path.name)}", file=sys.stderr)
    print(
        f"{path.name}: {accepted} row(s) imported, {len(problems)} refused"
        + (" (scenarios start for those who consent)" if args.start_scenarios else " (no scenario started)")
    )
    return 1 if problems else 0
