"""Secrets: from the environment locally, from SSM Parameter Store (cached by Powertools) in AWS."""

from __future__ import annotations

from shared.settings import ConfigurationError


def resolve(value: str | None, parameter_name: str | None, what: str) -> str:
    if value:
        return value
    if parameter_name:
        from aws_lambda_powertools.utilities import parameters  # only paid where a parameter is read

        secret = parameters.get_parameter(parameter_name, decrypt=True, max_age=300)
        if isinstance(secret, str) and secret:
            return secret
        raise ConfigurationError(f"SSM parameter {parameter_name} ({what}) is empty")
    raise ConfigurationError(f"no {what} configured")
