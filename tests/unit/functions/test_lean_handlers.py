"""What a handler imports is paid at every cold start: only its run-time dependencies, nothing of the tooling."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TOOLING = (
    "yaml",
    "moto",
    "samtranslator",
    "cfnlint",
    "hypothesis",
    "pydantic",
    "infra",
    # The scenario language and its compiler: build time only.
    "shared.journeys.compiler",
    "shared.journeys.scenario",
    "shared.journeys.reading",
    "shared.journeys.loader",
    "shared.journeys.steps",
    "shared.journeys.declarations",
    "shared.journeys.policies",
    "shared.journeys.loops",
)


@pytest.mark.parametrize(
    "handler",
    ["ingest", "process", "act", "subscription", "feedback", "schedule", "handoff", "admin", "report", "campaign"],
)
def test_a_handler_module_imports_no_build_or_test_tooling(handler: str) -> None:
    code = f"import json, sys; import functions.{handler}.app; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, text=True))
    heavy = [name for name in loaded if name.split(".")[0] in TOOLING or name in TOOLING]
    assert heavy == []
    assert f"functions.{handler}.app" in loaded


def test_the_ingest_handler_does_not_load_the_storage_layer() -> None:
    """It only verifies and enqueues: PynamoDB and the scenario dispatch are the process function's cold start."""
    code = "import json, sys; import functions.ingest.app; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, text=True))
    assert [name for name in loaded if name.split(".")[0] == "pynamodb" or name == "shared.journeys.dispatch"] == []


@pytest.mark.parametrize("handler", ["act", "subscription"])
def test_the_css_inliner_loads_with_the_first_email_not_with_the_handler(handler: str) -> None:
    """About 2 ms on top of the act function's imports (20 ms alone): paid by a cold start that renders an email,
    not by every one."""
    code = f"import json, sys; import functions.{handler}.app; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, text=True))
    assert "shared.messages.templates" in loaded  # the module that inlines
    assert [name for name in loaded if name.split(".")[0] == "css_inline"] == []


SOURCES = ("shared.sources.shopify", "shared.sources.woocommerce", "shared.sources.generic")


def _loaded_in_lambda(handler: str) -> list[str]:
    """The modules a handler loads where its Tracer is on, as in Lambda (LAMBDA_TASK_ROOT set): X-Ray patches then."""
    code = f"import json, sys; import functions.{handler}.app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(ROOT), "AWS_DEFAULT_REGION": "eu-west-3"}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    loaded: list[str] = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, env=env, text=True))
    return loaded


def test_in_lambda_the_tracer_loads_nothing_it_does_not_trace() -> None:
    """X-Ray patches botocore only (functions.TRACED): its patch_all loaded PynamoDB into the ingest handler,
    requests and sqlite3 into every one."""
    loaded = _loaded_in_lambda("ingest")
    assert "aws_xray_sdk.ext.botocore.patch" in loaded  # the AWS calls are traced
    assert [name for name in loaded if name.split(".")[0] in ("pynamodb", "requests", "sqlite3")] == []


@pytest.mark.parametrize("handler", ["act", "feedback", "schedule", "report", "campaign", "process", "handoff"])
def test_a_handler_without_powertools_batch_nor_a_router_loads_neither_asyncio_nor_the_event_data_classes(
    handler: str,
) -> None:
    """asyncio costs about 15 ms of a cold start: Powertools' batch and event_handler packages import it, the
    handlers that use neither do not (wrapt 2, under the X-Ray SDK, did: wrapt stays at 1.17). The SQS workers'
    partial batch answer is shared.batches: Powertools' batch utility also imports every event data class (the
    feedback function reads its SNS event with one of them)."""
    heavy = ["aws_lambda_powertools.utilities.batch"]
    if handler != "feedback":
        heavy.append("aws_lambda_powertools.utilities.data_classes")
    loaded = _loaded_in_lambda(handler)
    assert [name for name in loaded if name == "asyncio" or name.startswith(tuple(heavy))] == []


@pytest.mark.parametrize(
    ("handler", "later"),
    [
        # Jinja with the first render, an SMS step's and a CRM step's modules with the first such step
        ("act", ("jinja2", "shared.messages.sms", "shared.people.crm")),
        # the process function renders nothing (the subscription function renders on every route: it loads Jinja)
        ("process", ("jinja2",)),
        # the reports', the CSV import's, a person's export or erasure's, the lists' and the suppressions' modules
        # with the first such request, and the storage layer with the first of them
        (
            "admin",
            (
                "shared.reports.reading",
                "shared.sources.imports",
                "shared.journeys.privacy",
                "shared.people.lists",
                "shared.people.suppression",
                "shared.storage",
                "pynamodb",
            ),
        ),
        # the sources' mappings: the ingest side's (a webhook loads its own source's)
        *[(handler, SOURCES) for handler in ("process", "act", "schedule", "handoff", "admin", "feedback", "campaign")],
    ],
)
def test_what_only_some_requests_need_loads_with_the_first_of_them(handler: str, later: tuple[str, ...]) -> None:
    loaded = _loaded_in_lambda(handler)
    assert [name for name in loaded if name in later or name.split(".")[0] in later] == []


def test_the_campaign_worker_loads_the_reports_only_for_an_ab_decision() -> None:
    """The reports' modules (their statistics, about 10 ms) serve an A/B test's decision, not every page and chunk."""
    loaded = _loaded_in_lambda("campaign")
    assert "shared.campaigns.delivery" in loaded
    assert [name for name in loaded if name.startswith("shared.reports")] == []
