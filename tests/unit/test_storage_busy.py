"""DynamoDB's throttling and unavailability are told apart from its refusals, at the storage edge."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError
from pynamodb.exceptions import CancellationReason, PutError, TransactWriteError, UpdateError
from pynamodb.exceptions import VerboseClientError as Verbose

from shared import storage


def client_error(code: str, operation: str = "UpdateItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, operation)


@pytest.mark.parametrize("code", sorted(storage.BUSY_CODES - {"ThrottlingError", "ProvisionedThroughputExceeded"}))
def test_throttling_and_server_errors_are_busy_however_wrapped(code: str) -> None:
    raw = client_error(code)
    assert storage.busy(raw)
    assert storage.busy(UpdateError("Failed to update item", raw))  # PynamoDB's, the cause inside
    wrapped = storage.failure(PutError("Failed to put item", raw))
    assert isinstance(wrapped, storage.StorageBusy)
    assert isinstance(wrapped, storage.StorageError)
    with pytest.raises(storage.StorageError) as raised:  # a StorageError raised from one, as domain modules do
        raise storage.StorageError("scoring failed") from UpdateError("Failed to update item", raw)
    assert storage.busy(raised.value)


def test_a_network_failure_is_busy_but_a_bad_request_is_not() -> None:
    assert storage.busy(EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-3.amazonaws.com"))
    assert storage.busy(ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-3.amazonaws.com"))
    assert not storage.busy(ParamValidationError(report="bad key"))


@pytest.mark.parametrize("code", ["ConditionalCheckFailedException", "ValidationException", "AccessDeniedException"])
def test_refusals_are_not_busy(code: str) -> None:
    assert not storage.busy(UpdateError("Failed to update item", client_error(code)))
    assert type(storage.failure(UpdateError("Failed to update item", client_error(code)))) is storage.StorageError


def test_a_transaction_cancelled_for_throttling_is_busy() -> None:
    response = {"Error": {"Code": "TransactionCanceledException", "Message": "..."}}
    reasons = [None, CancellationReason(code="ThrottlingError", message="Throughput exceeds the current capacity")]
    cause = Verbose(response, "TransactWriteItems", cancellation_reasons=reasons)
    assert storage.busy(TransactWriteError("Failed to write transaction items", cause))
    lost = [CancellationReason(code="ConditionalCheckFailed")]
    refused = Verbose(response, "TransactWriteItems", cancellation_reasons=lost)
    assert not storage.busy(TransactWriteError("Failed to write transaction items", refused))
