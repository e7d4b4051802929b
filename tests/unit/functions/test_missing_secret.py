"""A secret parameter not created yet (moto SSM without it): every route that resolves a secret answers 503 naming
the parameter, never a 500 and never a value; the CRM secret, read by queue and Task consumers, raises the same
ConfigurationError (the message is retried, then dead-lettered, as any other failure). The suppression key fails
closed the same way: the admin routes that hash an address answer 503, the act function sends no email, the
process and feedback functions fail the message so that it is retried."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local import InvocationContext
from shared import secrets
from shared.batches import BatchFailed
from shared.settings import ConfigurationError, get_settings

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

PARAMETERS = {
    "PARCOURS_SHOPIFY_SECRET_PARAMETER": "/parcours/test/shopify-secret",
    "PARCOURS_WOOCOMMERCE_SECRET_PARAMETER": "/parcours/test/woocommerce-secret",
    "PARCOURS_GENERIC_SECRET_PARAMETER": "/parcours/test/generic-secret",
    "PARCOURS_WRITE_KEY_PARAMETER": "/parcours/test/write-key",
    "PARCOURS_LINK_SECRET_PARAMETER": "/parcours/test/link-secret",
    "PARCOURS_CRM_SECRET_PARAMETER": "/parcours/test/crm-secret",
    "PARCOURS_SUPPRESSION_KEY_PARAMETER": "/parcours/test/suppression-key",
}
PRESENT = "the-value-of-a-present-parameter"


@pytest.fixture
def missing(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every secret named by its parameter, none of them created in SSM (one other parameter is, with a value)."""
    boto3.client("ssm", region_name="eu-west-3").put_parameter(
        Name="/parcours/test/other", Value=PRESENT, Type="SecureString"
    )
    powertools = {"POWERTOOLS_SERVICE_NAME": "parcours", "POWERTOOLS_METRICS_NAMESPACE": "parcours"}
    for name, value in {**aws, **PARAMETERS, **powertools}.items():
        monkeypatch.setenv(name, value)
    secrets_in_the_environment = (
        *("SHOPIFY_SECRET", "WOOCOMMERCE_SECRET", "GENERIC_SECRET", "WRITE_KEY", "LINK_SECRET", "CRM_SECRET"),
        "SUPPRESSION_KEY",
    )
    for name in secrets_in_the_environment:
        monkeypatch.delenv(f"PARCOURS_{name}", raising=False)
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    get_settings.cache_clear()
    yield
    parameters.clear_caches()
    get_settings.cache_clear()


def _http(method: str, path: str, query: str = "", body: str = "{}") -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(part.split("=", 1) for part in query.split("&") if "=" in part) or None,
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": body,
        "isBase64Encoded": False,
    }


INGEST_ROUTES = [
    ("/webhooks/shopify", "PARCOURS_SHOPIFY_SECRET_PARAMETER"),
    ("/webhooks/woocommerce", "PARCOURS_WOOCOMMERCE_SECRET_PARAMETER"),
    ("/webhooks/generic", "PARCOURS_GENERIC_SECRET_PARAMETER"),
    ("/v1/identify", "PARCOURS_WRITE_KEY_PARAMETER"),
    ("/v1/track", "PARCOURS_WRITE_KEY_PARAMETER"),
    ("/v1/page", "PARCOURS_WRITE_KEY_PARAMETER"),
    ("/v1/batch", "PARCOURS_WRITE_KEY_PARAMETER"),
]
SUBSCRIPTION_ROUTES = [
    (method, path) for path in ("/unsubscribe", "/preferences", "/confirm") for method in ("GET", "POST")
]


@pytest.mark.parametrize(("path", "variable"), INGEST_ROUTES)
def test_an_ingest_route_whose_secret_parameter_is_missing_answers_503_naming_it(
    missing: None, path: str, variable: str
) -> None:
    from functions.ingest import app

    answer = app.lambda_handler(_http("POST", path), InvocationContext.of("parcours-IngestFunction", timeout=10))
    assert answer["statusCode"] == 503, answer
    assert PARAMETERS[variable] in json.loads(answer["body"])["error"]
    assert "not found" in answer["body"]


@pytest.mark.parametrize(("method", "path"), SUBSCRIPTION_ROUTES)
def test_a_subscription_route_whose_link_secret_parameter_is_missing_answers_503_naming_it(
    missing: None, method: str, path: str
) -> None:
    from functions.subscription import app

    event = _http(method, path, query="t=anything", body="")
    answer = app.lambda_handler(event, InvocationContext.of("parcours-SubscriptionFunction", timeout=10))
    assert answer["statusCode"] == 503, answer
    assert PARAMETERS["PARCOURS_LINK_SECRET_PARAMETER"] in answer["body"]


def test_the_crm_secret_missing_raises_the_configuration_error_naming_it_not_a_value(missing: None) -> None:
    with pytest.raises(ConfigurationError, match=r"/parcours/test/crm-secret .*is not found") as raised:
        secrets.resolve(None, PARAMETERS["PARCOURS_CRM_SECRET_PARAMETER"], "CRM signing secret")
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_a_present_parameter_is_read_and_an_empty_value_set_in_the_environment_falls_back_to_it(missing: None) -> None:
    assert secrets.resolve("", "/parcours/test/other", "a secret") == PRESENT
    assert secrets.resolve("from-env", "/parcours/test/absent", "a secret") == "from-env"


ADDRESS = "camille.durand@example.com"
# The admin routes that find an address by its hash: the person's file, the erasure, a suppression's show and lift
KEYED_ADMIN_ROUTES = [
    ("GET", "/v1/contacts/export", f"email={ADDRESS}", ""),
    ("POST", "/v1/contacts/erase", "", json.dumps({"email": ADDRESS})),
    ("POST", "/v1/suppressions/show", "", json.dumps({"email": ADDRESS})),
    ("POST", "/v1/suppressions/lift", "", json.dumps({"email": ADDRESS, "reason": "asked by phone"})),
]
SUPPRESSION_KEY_PARAMETER = PARAMETERS["PARCOURS_SUPPRESSION_KEY_PARAMETER"]


@pytest.mark.parametrize(("method", "path", "query", "body"), KEYED_ADMIN_ROUTES)
def test_an_admin_route_that_hashes_an_address_answers_503_naming_the_suppression_keys_parameter(
    missing: None, method: str, path: str, query: str, body: str
) -> None:
    from functions.admin import app

    event = _http(method, path, query=query, body=body)
    answer = app.lambda_handler(event, InvocationContext.of("parcours-AdminFunction", timeout=30))
    assert answer["statusCode"] == 503, answer
    error = json.loads(answer["body"])["error"]
    assert SUPPRESSION_KEY_PARAMETER in error
    assert "not found" in error
    assert ADDRESS not in answer["body"]


def test_the_admin_routes_that_hash_no_address_do_not_need_the_key(missing: None) -> None:
    from functions.admin import app

    answer = app.lambda_handler(
        _http("GET", "/v1/lists/newsletter/members"), InvocationContext.of("parcours-AdminFunction", timeout=30)
    )
    assert answer["statusCode"] != 503, answer


def test_the_act_function_sends_no_email_without_the_suppression_key(missing: None) -> None:
    from moto.ses.models import ses_backends

    from functions.act import app

    payload = {
        "action": "send_email",
        "scenario": "welcome",
        "step": "e1-welcome",
        "template": "welcome/1-welcome",
        "category": "marketing",
        "execution": "arn:aws:states:eu-west-3:123456789012:execution:parcours-welcome:x",
        "contact_id": "c1",
    }
    with pytest.raises(ConfigurationError, match=f"{SUPPRESSION_KEY_PARAMETER} .*not found"):
        app.lambda_handler(payload, InvocationContext.of("parcours-ActFunction"))
    assert ses_backends["123456789012"]["eu-west-3"].sent_messages == []
    assert boto3.client("dynamodb", region_name="eu-west-3").scan(TableName="sends")["Items"] == []


def test_the_process_function_fails_an_event_with_an_address_so_that_sqs_retries_it(missing: None) -> None:
    from functions.process import app
    from shared.events import ContactFacts, Event
    from tests.unit.functions.test_process_metrics import sqs_event

    at = "2026-11-24T09:00:00+00:00"
    event = Event("test#1", "contact.subscribed", "test", "test", at, at, ContactFacts(email=ADDRESS))
    app._handle_once.cache_clear()
    try:
        # The batch's every record failed: the invocation fails, and SQS hands the message out again (and, on its
        # last receive, the function dead-letters it with its reason)
        with pytest.raises(BatchFailed, match="All records failed processing \\(1\\): ConfigurationError"):
            app.lambda_handler(sqs_event(event), InvocationContext.of("parcours-ProcessFunction", timeout=60))
    finally:
        app._handle_once.cache_clear()
    assert boto3.client("dynamodb", region_name="eu-west-3").scan(TableName="contacts")["Items"] == []


def test_the_feedback_function_fails_a_bounce_so_that_lambda_retries_it(missing: None) -> None:
    from functions.feedback import app
    from tests.unit.people.test_suppression import bounce, sns_event

    with pytest.raises(ConfigurationError, match=f"{SUPPRESSION_KEY_PARAMETER} .*not found"):
        app.lambda_handler(sns_event(bounce("Permanent")), InvocationContext.of("parcours-FeedbackFunction"))
    assert boto3.client("dynamodb", region_name="eu-west-3").scan(TableName="suppressions")["Items"] == []
