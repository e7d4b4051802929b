"""What the local runtime's parts share: the account it emulates, and `State`, the attributes LocalRuntime sets
(runtime.py) and the methods one part calls on another, declared once so that each part is typed against it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from infra import samtemplate
from infra.local.skipped import SkippedTime
from shared.clock import Clock

REGION = "eu-west-3"
ACCOUNT = "123456789012"
STACK = "parcours"


class State:
    """The base of each part (ApiServer, Emulation, Faults, Outbox, Pollers, Timelines), assembled by LocalRuntime."""

    host: str
    port: int
    time_scale: float
    clock: Clock
    # --skip-time: the clock stands still while anything runs, and moves only when a client asks (skipped.py)
    skipped: SkippedTime | None
    routes: dict[tuple[str, str], str]  # (method, path) -> function name
    iam_routes: set[str]  # route keys ("POST /v1/lists/{name}/add") that need a SigV4 signature
    schedules: list[tuple[str, samtemplate.DailySchedule]]  # (function name, when)
    ses_sends: dict[str, dict[str, Any]]  # SES message id -> {tags, configuration_set}
    email_events_topic: str | None  # where the configuration set publishes SES events
    _stopping: threading.Event
    _handlers: dict[str, Callable[..., Any]]  # function name -> its handler, loaded in this process
    _http: ThreadingHTTPServer | None
    _sends_table: str
    _sms_attributes: dict[str, dict[str, Any]]  # SNS message id -> the attributes it was sent with
    _accepted: dict[str, int]  # SES or SNS message id -> its rank in the order they were accepted
    _ranks: itertools.count[int]
    # execution id -> the simulated instant its Tasks run at and its next Wait counts from (None: the clock's)
    _timelines: dict[str, float | None]
    _clients: dict[str, Any]
    _clients_lock: threading.Lock

    # What one part calls on another.
    outbox: Callable[[], list[dict[str, Any]]]  # Outbox
    ses_event: Callable[[bytes], tuple[int, dict[str, Any]]]  # Emulation
    run_daily_now: Callable[[], dict[str, Any]]  # Pollers
    move_time: Callable[[str, bytes], tuple[int, dict[str, Any]]]  # Timelines
    _task_instant: Callable[[Any], float | None]  # Timelines
    inject_fault: Callable[[bytes], tuple[int, dict[str, Any]]]  # Faults
    armed_faults: Callable[[], dict[str, int]]  # Faults

    def client(self, service: str) -> Any:
        """The runtime's own client of an emulated service, made once: making one per request or daily run costs
        more than the call (and boto3's default session is not safe to make clients from in several threads)."""
        with self._clients_lock:
            if service not in self._clients:
                import boto3

                self._clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
            return self._clients[service]
