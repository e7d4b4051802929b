"""X-Ray as in Lambda: the handlers' subsegments reach the daemon (a UDP socket here) for sampled invocations only,
with their cold start told right and no person's data in a failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

# The process function's handler on an empty batch (no AWS call), then a handler that fails naming a person; each
# invocation under the trace header given on the command line, as Lambda sets it for each.
INVOCATIONS = """
import os, sys
from aws_lambda_powertools import Tracer
from functions import traced
from functions.process import app
from infra.local.emulation import InvocationContext

context = InvocationContext.of("parcours-ProcessFunction", timeout=60)

@traced(Tracer())
def failing(event, context):
    raise ValueError("camille.martin@example.com")

for header in sys.argv[1:]:
    os.environ["_X_AMZN_TRACE_ID"] = header.removeprefix("failing:")
    if header.startswith("failing:"):
        try:
            failing({}, context)
        except ValueError as error:
            print("raised:", type(error).__name__, error)
    else:
        app.lambda_handler({"Records": []}, context)
"""


def _header(n: int, sampled: bool) -> str:
    return f"Root=1-67a0c1de-0123456789abcdef012345{n:02d};Parent=53995c3f42cd8ad8;Sampled={int(sampled)}"


def _traced(*headers: str) -> tuple[list[dict[str, Any]], str]:
    """The subsegments the X-Ray SDK sent for these invocations in one container, and what it printed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        env = {
            **os.environ,
            "LAMBDA_TASK_ROOT": str(ROOT),  # in Lambda: the Tracer is on
            "AWS_DEFAULT_REGION": "eu-west-3",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        }
        env.pop("POWERTOOLS_TRACE_DISABLED", None)
        run = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", INVOCATIONS, *headers],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        daemon.setblocking(False)  # the SDK sent before the process ended: what was sent is waiting
        sent = []
        while True:
            try:
                datagram = daemon.recv(65536).decode()
            except BlockingIOError:
                break
            sent.append(json.loads(datagram.split("\n", 1)[1]))  # after the header line
    return sent, run.stdout


def test_only_sampled_invocations_send_the_handler_subsegment_and_the_first_is_the_cold_start() -> None:
    # Given a container's invocations, sampled or not by X-Ray
    sent, _ = _traced(_header(1, True), _header(2, False), _header(3, True))

    # Then each sampled one sent its handler's subsegment, the first annotated as the cold start
    assert [(s["name"], s["trace_id"][-2:], s["annotations"]["ColdStart"]) for s in sent] == [
        ("## lambda_handler", "01", True),
        ("## lambda_handler", "03", False),
    ]
    assert all("metadata" not in s for s in sent)  # no response in a trace


def test_a_cold_start_not_sampled_leaves_the_next_sampled_invocation_warm() -> None:
    sent, _ = _traced(_header(1, False), _header(2, True))

    assert [(s["trace_id"][-2:], s["annotations"]["ColdStart"]) for s in sent] == [("02", False)]


def test_a_failure_is_traced_by_its_type_and_raised_as_it_was() -> None:
    # Given a sampled invocation whose handler fails with a message naming a person
    sent, printed = _traced("failing:" + _header(1, True))

    # Then the trace has the failure, without the message; the caller (Lambda) gets the error itself
    (subsegment,) = sent
    assert subsegment["fault"] is True
    assert [e["message"] for e in subsegment["cause"]["exceptions"]] == ["ValueError"]
    assert "camille" not in json.dumps(sent)
    assert printed == "raised: ValueError camille.martin@example.com\n"
