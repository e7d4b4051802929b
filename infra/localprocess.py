"""`parcours local` started as a user starts it (a process on a free port): for journey tests and the test suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3

from infra.local.runtime import free_port
from infra.webhook_client import post

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class PortTaken(RuntimeError):
    """A port picked free was bound by another process before `parcours local` could bind it."""


class RunningLocal:
    def __init__(
        self,
        time_scale: float | None,
        secret: str,
        environ: dict[str, str] | None = None,
        start_at: str | None = None,
    ) -> None:
        self.time_scale = time_scale  # None: --skip-time (the clock moves when advance or run_until_idle asks)
        self.start_at = start_at  # `parcours local --start`: the simulated instant to begin at
        self.secret = secret
        self.environ = dict(environ or {})  # e.g. PARCOURS_CRM_URL and PARCOURS_CRM_SECRET, for the functions
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.aws_endpoint = ""
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 60, attempts: int = 3) -> None:
        """Starts the process and returns once it serves. Its ports are picked free, then bound: another process may
        take one in between, and then it starts again on others."""
        for attempt in range(1, attempts + 1):
            try:
                self._start(timeout)
                return
            except PortTaken:
                if attempt == attempts:
                    raise
                self.port = free_port()
                self.api_url = f"http://127.0.0.1:{self.port}"

    def _start(self, timeout: float) -> None:
        env = {**os.environ, **self.environ, "PARCOURS_SHOPIFY_SECRET": self.secret, "PYTHONUNBUFFERED": "1"}
        env.pop("AWS_ENDPOINT_URL", None)
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "parcours"),
                "local",
                "--port",
                str(self.port),
                *(["--skip-time"] if self.time_scale is None else ["--time-scale", str(self.time_scale)]),
                *(["--start", self.start_at] if self.start_at else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        self.output = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                code = self.process.wait()
                said = "".join(self.output[-20:])
                if "Address already in use" in said:
                    raise PortTaken(said)
                raise RuntimeError(f"parcours local exited with {code}:\n{said}")
            self.output.append(line)
            match = re.match(r"AWS_ENDPOINT_URL=(\S+)", line)
            if match:
                self.aws_endpoint = match.group(1)
            if line.startswith("outbox:"):
                threading.Thread(target=self._drain, daemon=True).start()
                return
        raise RuntimeError("parcours local did not start in time:\n" + "".join(self.output[-20:]))

    def _drain(self) -> None:
        """Keeps reading the process's output so it never blocks on a full pipe; kept for failure reports."""
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name="eu-west-3",
            endpoint_url=self.aws_endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def physical_ids(self) -> dict[str, str]:
        resources = self.client("cloudformation").describe_stack_resources(StackName="parcours")["StackResources"]
        return {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources if r.get("LogicalResourceId")
        }

    def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.api_url}/_local/outbox", timeout=10) as response:
            messages: list[dict[str, Any]] = json.loads(response.read())
        return [m for m in messages if to is None or m["to"] == to]

    def ses_event(self, **request: Any) -> tuple[int, dict[str, Any]]:
        """`POST /_local/ses-event`: what SES would publish about a sent message (open, click, bounce, ...)."""
        answer = post(
            f"{self.api_url}/_local/ses-event", json.dumps(request).encode(), {"Content-Type": "application/json"}
        )
        return answer.status, answer.body

    def fail_next(self, fault: str, times: int = 1) -> None:
        """`POST /_local/faults`: the next `times` calls of an AWS operation fail as AWS does when busy
        (infra/local/faults.py names them, e.g. `stepfunctions.StartExecution`)."""
        request = json.dumps({"fault": fault, "times": times}).encode()
        answer = post(f"{self.api_url}/_local/faults", request, {"Content-Type": "application/json"})
        if answer.status != 200:
            raise RuntimeError(f"/_local/faults: {answer.status} {answer.body}")

    def faults_armed(self) -> dict[str, int]:
        """`GET /_local/faults`: how many calls of each operation will still fail."""
        with urllib.request.urlopen(f"{self.api_url}/_local/faults", timeout=10) as response:
            armed: dict[str, int] = json.loads(response.read())
        return armed

    def now(self) -> datetime:
        """The runtime's simulated now (the clock its handlers read)."""
        with urllib.request.urlopen(f"{self.api_url}/_local/clock", timeout=10) as response:
            return datetime.fromisoformat(json.loads(response.read())["now"])

    def advance(self, to: datetime | None = None, seconds: float | None = None) -> dict[str, Any]:
        """Skipped time: moves the clock to `to` (or by `seconds`), each timer on the way firing at its moment, and
        answers once nothing runs (`POST /_local/advance`)."""
        request = {"to": to.isoformat()} if to is not None else {"seconds": seconds}
        return self._move("advance", request)

    def run_until_idle(self, at_most_days: float = 400) -> dict[str, Any]:
        """Skipped time: moves the clock on for as long as something but the daily runs is due
        (`POST /_local/run-until-idle`)."""
        return self._move("run-until-idle", {"at_most_days": at_most_days})

    def _move(self, how: str, request: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url}/_local/{how}"
        answer = post(url, json.dumps(request).encode(), {"Content-Type": "application/json"}, timeout=600)
        if answer.status != 200:
            raise RuntimeError(f"/_local/{how}: {answer.status} {answer.body}")
        return dict(answer.body)

    def wait_for(self, probe: Callable[[], T], done: Callable[[T], bool], seconds: float) -> T:
        deadline = time.monotonic() + seconds
        value = probe()
        while not done(value) and time.monotonic() < deadline:
            time.sleep(0.2)
            value = probe()
        return value
