"""Faults on demand: the next N calls of an AWS operation fail as AWS fails when it is busy, so that a test can
show what parcours does then against the real handlers and state machines (`POST /_local/faults`).

`{"fault": "stepfunctions.StartExecution", "times": 1}`: StartExecution answers ThrottlingException (the process
function fails its record; SQS delivers the event again). `{"fault": "sesv2.SendEmail", "times": 3}`: SES answers
TooManyRequestsException (the send Task's Retry waits and asks again). Patched once, at start, around moto's own
code (or the runtime's own patch of it, emulation.py); a fault armed for no call changes nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from infra.local.state import State

# fault -> (the error's code, what AWS says with it)
FAULTS = {
    "stepfunctions.StartExecution": ("ThrottlingException", "Rate exceeded"),
    "sesv2.SendEmail": ("TooManyRequestsException", "Maximum sending rate exceeded."),
}


class Faults(State):
    _armed: dict[str, int]  # fault -> how many of the next calls fail
    _faults_lock: threading.Lock

    def _patch_faults(self) -> None:
        from moto.sesv2.responses import SESV2Response
        from moto.stepfunctions.responses import StepFunctionResponse

        self._armed, self._faults_lock = dict.fromkeys(FAULTS, 0), threading.Lock()
        for owner, name, fault in (
            (StepFunctionResponse, "start_execution", "stepfunctions.StartExecution"),
            (SESV2Response, "send_email", "sesv2.SendEmail"),
        ):
            setattr(owner, name, self._failing(getattr(owner, name), fault))

    def _failing(self, method: Any, fault: str) -> Any:
        from moto.core.exceptions import JsonRESTError

        runtime = self

        def call(*args: Any, **kwargs: Any) -> Any:
            with runtime._faults_lock:
                armed = runtime._armed[fault]
                runtime._armed[fault] = max(armed - 1, 0)
            if armed:
                raise JsonRESTError(*FAULTS[fault])
            return method(*args, **kwargs)

        return call

    def armed_faults(self) -> dict[str, int]:
        """How many of the next calls still fail, per fault (`GET /_local/faults`): 0 once a test's fault fired."""
        with self._faults_lock:
            return dict(self._armed)

    def inject_fault(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return 400, {"error": 'body must be JSON: {"fault": "stepfunctions.StartExecution", "times": 1}'}
        fault, times = request.get("fault") if isinstance(request, dict) else None, request.get("times", 1)
        if fault not in FAULTS:
            return 400, {"error": f"fault must be one of {', '.join(FAULTS)}"}
        if isinstance(times, bool) or not isinstance(times, int) or not 0 <= times <= 1000:
            return 400, {"error": "times must be a whole number from 0 to 1000"}
        with self._faults_lock:
            self._armed[fault] = times
        return 200, {"fault": fault, "times": times}
