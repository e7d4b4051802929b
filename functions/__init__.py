"""The Lambda handlers, one package each."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing import tracer as powertools_tracer

# What X-Ray traces (Powertools' Tracer): botocore, through which every AWS call goes, PynamoDB's too. Not Powertools'
# default, X-Ray's patch_all: it imports every library it knows how to patch (PynamoDB in handlers that never use
# it, sqlite3, and requests where installed) at each cold start, and its PynamoDB patch records every DynamoDB call a
# second time, parsing each answer again.
TRACED = ("botocore",)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def traced(tracer: Tracer) -> Callable[[Handler], Handler]:
    """Powertools' handler subsegment (its ColdStart and Service annotations, no response in it) on the invocations
    X-Ray samples, and on those only: on the others X-Ray builds a subsegment that nothing sends, about 5% of the
    process function's own CPU per event (README, Bench, figure 8). A failure's trace names its type, not its message
    (it may name a person): X-Ray records the message of whatever leaves the subsegment, whatever `capture_error`."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)  # the subsegment is named for the handler: "## lambda_handler"
        def typed_only(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            except Exception as error:
                raise _Failed(error) from None

        captured = tracer.capture_lambda_handler(typed_only, capture_response=False, capture_error=False)

        @wraps(handler)
        def run(event: Any, context: Any) -> Any:
            if not sampled():
                _not_cold_after_this()
                return handler(event, context)
            try:
                return captured(event, context)
            except _Failed as failed:
                error = failed.error
            raise error  # the handler's own, outside the except: its context and cause as they were

        return run  # type: ignore[return-value]

    return decorate


class _Failed(Exception):
    """What a sampled trace records of a failed invocation: the error's type."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error


def sampled() -> bool:
    """Whether X-Ray records this invocation: Lambda's trace header for it, `Root=…;Parent=…;Sampled=1`, says so
    (the X-Ray SDK reads the same variable; it is not set outside Lambda)."""
    return "Sampled=1" in os.environ.get("_X_AMZN_TRACE_ID", "").split(";")


def _not_cold_after_this() -> None:
    """The first invocation is the container's cold start, sampled or not: the Tracer's ColdStart annotation of a
    later sampled one is false (Powertools keeps that flag in its module, flipped by its handler's decorator)."""
    if powertools_tracer.is_cold_start:
        powertools_tracer._is_cold_start()
