"""Simulated time in the local runtime. On scaled time (`--time-scale N`) each Step Functions execution runs on its
own timeline: its Waits count from where it stands, its Tasks run at that instant, as in AWS, where a Task's
milliseconds are nothing next to days. On skipped time (`--skip-time`, skipped.py) what waits in moto parks on the
skipped clock, and time moves when a client asks (`POST /_local/advance`, `/_local/run-until-idle`)."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timezone
from types import SimpleNamespace
from typing import Any

from infra.local.skipped import SkippedTime
from infra.local.state import ACCOUNT, REGION, State


def _instant(value: Any) -> float | None:
    """A UNIX timestamp from what moto puts in the context object (a datetime or ISO 8601 text)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class Timelines(State):
    def _patch_moto_for_time(self) -> None:
        """moto's Waits, task timeouts and retry intervals, on scaled or skipped time. After _patch_moto
        (emulation.py): skipped time wraps its Queue.add_message."""
        if self.skipped is None:
            self._patch_moto_for_scaled_time()
        else:
            self._patch_moto_for_skipped_time(self.skipped)

    def _patch_moto_for_scaled_time(self) -> None:
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        runtime = self

        def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
            # A Wait counts from where the execution's own timeline stands (its start, then each Wait's end), not
            # from now: the real milliseconds its Tasks took, magnified by the time scale, would otherwise pile up
            # step after step (AWS's milliseconds are nothing next to days). The Tasks run at that instant too
            # (see _task_instant), so a Wait a Task worked out (wait_until, a deferred send) counts from it as well.
            # After a wait_for the timeline stands nowhere (the event may come at any time): from now.
            execution = env.states.context_object.context_object_data["Execution"]
            now = runtime.clock.timestamp()
            timelines = runtime._timelines
            if execution["Id"] in timelines:
                origin = timelines[execution["Id"]]
            else:
                started = _instant(execution.get("StartTime"))
                origin = None if started is None else runtime.clock.simulated(started)
            target = (now if origin is None else origin) + wait_seconds
            timelines[execution["Id"]] = target
            deadline = time.monotonic() + runtime.clock.real_seconds(max(0.0, target - now))
            while env.is_running():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if env.program_state_event.wait(min(remaining, 0.5)):
                    time.sleep(0.01)  # stopping: is_running() turns false at once

        def timeout_body(timeout: Any, env: Any) -> None:
            # TimeoutSeconds of a task (a wait_for step) lasts as long as the same Wait would. The execution's
            # timeline restarts when the wait ends: the event may come at any time.
            if not timeout.is_default_value():  # only wait_for steps set one; every other Task has the default
                runtime._timelines[env.states.context_object.context_object_data["Execution"]["Id"]] = None
            env.stack.append(runtime.clock.real_seconds(timeout._eval_seconds(env=env)))

        setattr(WaitFunction, "_wait_interval", wait_interval)  # noqa: B010 (monkeypatching moto, on purpose)
        setattr(Timeout, "_eval_body", timeout_body)  # noqa: B010
        # A Task's Retry interval (2 s, then 4 s...) is simulated time too: unscaled, one retry would last a
        # simulated day and push every later step of the journey.
        scaled_time = SimpleNamespace(sleep=lambda seconds: time.sleep(runtime.clock.real_seconds(seconds)))
        setattr(retrier_decl, "time", scaled_time)  # noqa: B010

    def _patch_moto_for_skipped_time(self, skipped: SkippedTime) -> None:
        """What waits in moto parks on the skipped clock, and what moto stamps reads it (see skipped.py)."""
        import moto.sqs.models as sqs_models
        from moto.sqs.models import Message, Queue, SQSBackend
        from moto.stepfunctions.parser import models as sfn_models
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout, TimeoutSeconds
        from moto.stepfunctions.parser.asl.component.state import state as sfn_state
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
            StateTaskServiceCallback,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackOutcomeTimedOut
        from moto.stepfunctions.parser.asl.eval.event import event_manager
        from moto.stepfunctions.parser.backend import execution as sfn_execution
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        def execution_of(env: Any) -> str:
            return str(env.states.context_object.context_object_data["Execution"]["Id"])

        def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
            skipped.park(
                skipped.timestamp() + max(0, wait_seconds),
                f"a Wait of {execution_of(env)}",
                keys=[("execution", execution_of(env))],
                woken_if=lambda: not env.is_running(),
            )

        def timeout_body(timeout: Any, env: Any) -> None:
            # The Task's own thread never times out in real time; a wait_for's timeout is a timer (await_token).
            env.stack.append(TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)

        def await_token(
            task: Any, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
        ) -> Any:
            seconds = None if task.timeout.is_default_value() else task.timeout._eval_seconds(env=env)
            execution = execution_of(env)
            skipped.park(
                None if seconds is None else skipped.timestamp() + seconds,
                f"a wait_for of {execution}",
                keys=[("callback", id(callback_endpoint)), ("execution", execution)],
                woken_if=lambda: callback_endpoint.get_outcome() is not None or not env.is_running(),
            )
            outcome = callback_endpoint.get_outcome()
            return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id) if outcome is None else outcome

        notify_as_moto_does = CallbackEndpoint.notify
        interrupt_as_moto_does = CallbackEndpoint.interrupt_all

        def notify(endpoint: Any, outcome: Any) -> None:
            notify_as_moto_does(endpoint, outcome)
            skipped.wake(("callback", id(endpoint)))

        def interrupt_all(endpoint: Any) -> None:
            interrupt_as_moto_does(endpoint)
            skipped.wake(("callback", id(endpoint)))

        def start_worker(worker: Any) -> None:
            # Counted from its start (inside StartExecution) to its end, but while it waits.
            skipped.enter()

            def run() -> None:
                try:
                    worker._execution_logic()
                finally:
                    skipped.leave()

            threading.Thread(target=run, name="parcours-execution", daemon=True).start()

        stop_as_moto_does = ExecutionWorker.stop

        def stop_worker(worker: Any, stop_date: Any, error: Any, cause: Any) -> None:
            stop_as_moto_does(worker, stop_date, error, cause)
            if worker.env is not None:
                skipped.wake(("execution", execution_of(worker.env)))

        add_message = Queue.add_message  # the FIFO draining version (emulation.py's _patch_moto)

        def add_and_wake(queue: Any, message: Any) -> None:
            add_message(queue, message)
            skipped.wake(("queue", queue.name))

        def retained(backend: Any, queue_name: str, message: Any) -> bool:
            period = backend.get_queue_attributes(queue_name, ["MessageRetentionPeriod"])["MessageRetentionPeriod"]
            return bool(int(period) + message.sent_timestamp / 1000 > skipped.timestamp())

        class SkippedDatetime:
            """`datetime.datetime.now` as moto's Step Functions modules call it, on the skipped clock."""

            @staticmethod
            def now(tz: Any = None) -> datetime:
                return datetime.fromtimestamp(skipped.timestamp(), tz=tz or UTC)

        skipped_datetime = SimpleNamespace(datetime=SkippedDatetime, timezone=timezone)
        for module in (sfn_models, sfn_execution, sfn_state, event_manager):
            setattr(module, "datetime", skipped_datetime)  # noqa: B010 (start and stop dates, history times)
        setattr(sqs_models, "unix_time_millis", lambda dt=None: skipped.timestamp() * 1000)  # noqa: B010
        # A message's retention is judged on the skipped clock too (moto reads the machine's), else messages
        # sent at a simulated date further back than the retention period vanish. Long polls keep the machine's
        # clock for their deadline: the frozen one would never end them.
        setattr(SQSBackend, "is_message_valid_based_on_retention_period", retained)  # noqa: B010
        # A message shows from its moment on, as in SQS (moto: only once past it). The clock stands still between
        # requests, so one made visible now (VisibilityTimeout 0: `parcours dlq list` releases what it listed)
        # would stay hidden from the next request (`parcours dlq redrive`) until a client moved time.
        setattr(Message, "visible", property(lambda message: skipped.timestamp() * 1000 >= message.visible_at))  # noqa: B010
        setattr(Queue, "add_message", add_and_wake)  # noqa: B010
        setattr(WaitFunction, "_wait_interval", wait_interval)  # noqa: B010
        setattr(Timeout, "_eval_body", timeout_body)  # noqa: B010
        setattr(StateTaskServiceCallback, "_eval_wait_for_task_token", await_token)  # noqa: B010
        setattr(CallbackEndpoint, "notify", notify)  # noqa: B010
        setattr(CallbackEndpoint, "interrupt_all", interrupt_all)  # noqa: B010
        setattr(ExecutionWorker, "start", start_worker)  # noqa: B010
        setattr(ExecutionWorker, "stop", stop_worker)  # noqa: B010
        setattr(retrier_decl, "time", SimpleNamespace(sleep=skipped.sleep))  # noqa: B010

    def _task_instant(self, event: Any) -> float | None:
        """The simulated instant a Step Functions Task runs at: where its execution's timeline stands (the end of
        its last Wait, else its start). None for any other invocation, and for a Task after a wait_for, which runs
        on the one clock."""
        from moto.stepfunctions.exceptions import ExecutionDoesNotExist, InvalidArn
        from moto.stepfunctions.responses import get_backend

        execution = event.get("execution") if isinstance(event, dict) else None
        if not isinstance(execution, str) or self.skipped is not None:  # skipped time stands at the Task's instant
            return None
        if execution in self._timelines:
            return self._timelines[execution]
        try:
            started = get_backend(ACCOUNT, REGION).describe_execution(execution).start_date
        except (ExecutionDoesNotExist, InvalidArn):  # an invocation of the act function from outside a journey
            return None
        return self.clock.simulated(started.timestamp())

    # ---- moving skipped time ----------------------------------------------------------------------------------
    def move_time(self, how: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """`POST /_local/advance` {"to": ISO 8601 with offset} or {"seconds": N}: time goes to that moment, each
        timer on the way firing at its own moment; `POST /_local/run-until-idle` {"at_most_days": N (400)}: time
        goes on as long as something but the daily runs is due (a Wait, a wait_for timeout, a retry, a message's
        visibility). Both answer once nothing runs: {now, fired, idle, pending: [{due, what, execution}]}."""
        if self.skipped is None:
            return 409, {"error": "time is scaled, not skipped: start parcours local with --skip-time"}
        try:
            request = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, {"error": "body is not JSON"}
        if not isinstance(request, dict):
            return 400, {"error": "body must be a JSON object"}
        now = self.skipped.timestamp()
        if how == "advance":
            if ("to" in request) == ("seconds" in request):
                return 400, {"error": "give either to (an ISO 8601 instant with its offset) or seconds"}
            if "to" in request:
                moment = _instant(request["to"]) if isinstance(request["to"], str) else None
                if moment is None or not re.search(r"(Z|[+-]\d\d:?\d\d)$", request["to"]):
                    return 400, {"error": "to must be an ISO 8601 instant with its offset, e.g. 2026-11-24T09:00:00Z"}
            else:
                seconds = request["seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e10:
                    return 400, {"error": "seconds must be a number, 0 or more"}
                moment = now + seconds
            if moment < now:
                before = datetime.fromtimestamp(now, UTC).isoformat()
                return 400, {"error": f"to is before now ({before}): time never goes back"}
            done = self.skipped.advance(to=moment)
        else:
            days = request.get("at_most_days", 400)
            if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 3660:
                return 400, {"error": "at_most_days must be a number above 0, at most 3660"}
            done = self.skipped.advance(until_idle=True, limit=now + days * 86400)
        return 200, {
            "now": datetime.fromtimestamp(done.now, UTC).isoformat(),
            "fired": done.fired,
            "idle": done.idle,
            "pending": [
                {
                    "due": None if due == float("inf") else datetime.fromtimestamp(due, UTC).isoformat(),
                    "what": what,
                    "execution": execution,
                }
                for due, what, execution in done.pending
            ],
        }
