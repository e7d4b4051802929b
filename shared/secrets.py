"""Secrets: from the environment locally, from SSM Parameter Store (cached by Powertools) in AWS."""

from __future__ import annotations

from shared.settings import ConfigurationError


def resolve(value: str | None, parameter_name: str | None, what: str) -> str:
    """The secret; ConfigurationError naming the parameter (never a value) when it is missing, empty or unreadable.

    A parameter not created yet (ParameterNotFound), or one the function may not read or decrypt (AccessDenied, a
    customer key without kms:Decrypt), is the operator's to fix: the HTTP routes answer 503 naming the parameter.
    """
    if value:
        return value
    if parameter_name:
        from aws_lambda_powertools.utilities import parameters  # only paid where a parameter is read

        try:
            secret = parameters.get_parameter(parameter_name, decrypt=True, max_age=300)
        except parameters.exceptions.GetParameterError as error:
            cause = error.__cause__ if error.__cause__ is not None else error
            reason = "not found" if "ParameterNotFound" in type(cause).__name__ + str(cause) else "unreadable"
            raise ConfigurationError(f"SSM parameter {parameter_name} ({what}) is {reason}") from None
        if isinstance(secret, str) and secret:
            return secret
        raise ConfigurationError(f"SSM parameter {parameter_name} ({what}) is empty")
    raise ConfigurationError(f"no {what} configured")
