"""Shared fixtures: sample events, a settings object, moto for the unit tests that touch AWS."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# --clock-at: the machine's clock moved (make test, make test-clock); pytester: tests/unit/infra/test_shifted_clock.py
pytest_plugins = ["tests.shifted_clock", "pytester"]

EVENTS = Path(__file__).parent / "events"
ROOT = Path(__file__).resolve().parent.parent
SUPPRESSION_KEY = "test-suppression-key-of-32-characters-at-least"  # the key of the suppression hash, in every test


def address_hash(address: str) -> str | None:
    """An address's suppression key as the functions compute it under the tests' SUPPRESSION_KEY."""
    from shared.people import suppression

    return suppression.address_hash(suppression.HashKey(SUPPRESSION_KEY.encode()), address)


def sample(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def sample_json(name: str) -> Any:
    return json.loads(sample(name))


@pytest.fixture
def dynamodb_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every DynamoDB request answered (operation, parameters, answer), whoever makes it: PynamoDB, or
    shared.storage with botocore's client."""
    from botocore.client import BaseClient

    recorded: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    make_api_call = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private to botocore: the stubs omit it)

    def recording(client: BaseClient, operation: str, parameters: dict[str, Any]) -> Any:
        answer = make_api_call(client, operation, parameters)
        if client.meta.service_model.service_name == "dynamodb":
            recorded.append((operation, parameters, answer))
        return answer

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return recorded


@pytest.fixture
def environ() -> dict[str, str]:
    """The variables template.yaml gives every function, with made-up names."""
    return {
        "AWS_REGION": "eu-west-3",
        "PARCOURS_CONTACTS_TABLE": "contacts",
        "PARCOURS_IDENTITIES_TABLE": "identities",
        "PARCOURS_EVENTS_TABLE": "events",
        "PARCOURS_SENDS_TABLE": "sends",
        "PARCOURS_ENROLMENTS_TABLE": "enrolments",
        "PARCOURS_DATES_TABLE": "dates",
        "PARCOURS_SUPPRESSIONS_TABLE": "suppressions",
        "PARCOURS_DISCOUNT_CODES_TABLE": "discount-codes",
        "PARCOURS_LIST_MEMBERS_TABLE": "list-members",
        "PARCOURS_IDEMPOTENCY_TABLE": "idempotency",
        "PARCOURS_REPORTS_TABLE": "reports",
        "PARCOURS_CAMPAIGNS_TABLE": "campaigns",
        "PARCOURS_QUEUE_URL": "https://sqs.eu-west-3.amazonaws.com/123456789012/parcours-events.fifo",
        "PARCOURS_STATE_MACHINE_PREFIX": "arn:aws:states:eu-west-3:123456789012:stateMachine:parcours-",
        "PARCOURS_FROM_ADDRESS": "bonjour@boutique.example",
        "PARCOURS_CONFIGURATION_SET": "parcours-email",
        "PARCOURS_PUBLIC_BASE_URL": "https://mail.boutique.example/",
        "PARCOURS_SENDER_NAME": "La Boutique",
        "PARCOURS_POSTAL_ADDRESS": "12 rue des Artisans, 75011 Paris",
        # given only to the functions that hash an address (in AWS their parameter's name); the tests' own
        "PARCOURS_SUPPRESSION_KEY": SUPPRESSION_KEY,
    }


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-3",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def local_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI signs its admin calls (SigV4) with the local runtime's keys, never this machine's own profile."""
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


TABLE_VARIABLES = {
    "ContactsTable": "PARCOURS_CONTACTS_TABLE",
    "IdentitiesTable": "PARCOURS_IDENTITIES_TABLE",
    "EventsTable": "PARCOURS_EVENTS_TABLE",
    "SendsTable": "PARCOURS_SENDS_TABLE",
    "EnrolmentsTable": "PARCOURS_ENROLMENTS_TABLE",
    "DatesTable": "PARCOURS_DATES_TABLE",
    "SuppressionsTable": "PARCOURS_SUPPRESSIONS_TABLE",
    "DiscountCodesTable": "PARCOURS_DISCOUNT_CODES_TABLE",
    "ListMembersTable": "PARCOURS_LIST_MEMBERS_TABLE",
    "IdempotencyTable": "PARCOURS_IDEMPOTENCY_TABLE",
    "ReportsTable": "PARCOURS_REPORTS_TABLE",
    "CampaignsTable": "PARCOURS_CAMPAIGNS_TABLE",
}


@pytest.fixture(autouse=True, scope="session")
def one_botocore_loader() -> Iterator[None]:
    """moto gives each test a new boto3 session, and each new session would parse botocore's JSON models again (a
    third of the unit tests' time): every session shares one loader instead, as every client of a session does."""
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()
    register_as_botocore_does = getattr(botocore.session.Session, "_register_data_loader")  # noqa: B009 (private)

    def register(session: Any) -> None:
        session._components.register_component("data_loader", loader)

    setattr(botocore.session.Session, "_register_data_loader", register)  # noqa: B010
    yield
    setattr(botocore.session.Session, "_register_data_loader", register_as_botocore_does)  # noqa: B010


@functools.cache
def table_declarations() -> tuple[tuple[str, dict[str, Any]], ...]:
    """The tables template.yaml declares (logical id, properties), read once for the session."""
    from infra import samtemplate

    resources = samtemplate.load()["Resources"]
    return tuple((logical_id, resources[logical_id]["Properties"]) for logical_id in TABLE_VARIABLES)


@pytest.fixture
def aws(aws_credentials: None, environ: dict[str, str]) -> Iterator[dict[str, str]]:
    """moto in-process, with the tables declared in template.yaml; yields the functions' environment."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-3")
        for logical_id, props in table_declarations():
            indexes = (
                {"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in props else {}
            )
            dynamodb.create_table(
                TableName=environ[TABLE_VARIABLES[logical_id]],
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props["BillingMode"],
                **indexes,
            )
        yield environ


# The session's runtime skips time (parcours local --skip-time): it begins at this instant, a Tuesday noon in Paris
# (after every sample's consent time: a consent dated ahead of the clock is refused),
# and its clock moves only when a test asks (local.advance, local.run_until_idle). No test reads the real date.
LOCAL_START = "2026-11-24T11:00:00+00:00"
SHOPIFY_SECRET = "test-shopify-secret"
WOOCOMMERCE_SECRET = "test-woocommerce-secret"
GENERIC_SECRETS = ("test-generic-secret-new", "test-generic-secret-old")  # a rotation in progress
LINK_SECRETS = ("test-link-secret-new", "test-link-secret-old")  # a rotation in progress: the new one signs
WRITE_KEY = "test-write-key"
BROWSER_KEY = "test-browser-key-public"  # sits in web pages: reports behaviour only
CRM_SECRET = "test-crm-secret"
SMS_SENDER_ID = "Boutique"


@pytest.fixture(scope="session")
def crm() -> Iterator[Any]:
    """The CRM the session's runtime notifies: a real HTTP server on 127.0.0.1 (tests/crm_receiver.py)."""
    from tests.crm_receiver import CrmReceiver

    receiver = CrmReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def local(crm: Any) -> Iterator[Any]:
    """One `parcours local` process for the session's scenario and end-to-end tests, its CRM pointed at `crm`."""
    from infra.localprocess import RunningLocal

    runtime = RunningLocal(
        time_scale=None,
        start_at=LOCAL_START,
        secret=SHOPIFY_SECRET,
        environ={
            "PARCOURS_CRM_URL": crm.url,
            "PARCOURS_CRM_SECRET": CRM_SECRET,
            "PARCOURS_SMS_SENDER_ID": SMS_SENDER_ID,
            "PARCOURS_WOOCOMMERCE_SECRET": WOOCOMMERCE_SECRET,
            "PARCOURS_GENERIC_SECRET": ",".join(GENERIC_SECRETS),
            "PARCOURS_LINK_SECRET": ",".join(LINK_SECRETS),
            "PARCOURS_SUPPRESSION_KEY": SUPPRESSION_KEY,
            "PARCOURS_WRITE_KEY": WRITE_KEY,
            "PARCOURS_BROWSER_KEY": BROWSER_KEY,
        },
    )
    runtime.start()
    yield runtime
    runtime.stop()


def handler_of(module: str, environ: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A function's `lambda_handler` with `environ` and Powertools' metrics printed on stdout (read them with
    tests.unit.functions.test_process_metrics.metrics_of); the settings are built afresh before and after. Yield it
    from a fixture: `yield from handler_of(...)`."""
    from shared.settings import get_settings

    for name, value in {
        **environ,
        "POWERTOOLS_METRICS_NAMESPACE": "parcours",
        "POWERTOOLS_SERVICE_NAME": "parcours",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield importlib.import_module(module).lambda_handler
    get_settings.cache_clear()


def drain_events(queue_url: str) -> list[dict[str, Any]]:
    """Every event on the (moto) events queue not read yet, in order, deleted once read (a FIFO group waits for
    its deletions)."""
    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-3")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        found += [json.loads(message["Body"]) for message in messages]
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
