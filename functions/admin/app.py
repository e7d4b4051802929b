"""Admin routes (IAM-authorised: API Gateway checks the caller's SigV4 signature): static lists' members; a
person's file and their erasure; contact import; suppressed addresses (show, lift); the scenarios' report."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import TRACED, traced
from shared import clock
from shared.campaigns.errors import CampaignRequestError
from shared.people.errors import AdminError, SuppressionRequestError
from shared.settings import ConfigurationError, get_settings
from shared.sources import ingestion, validation

logger = Logger()
metrics = Metrics()
# X-Ray subsegments for the AWS calls; no response nor error message in a trace: they may name a person.
tracer = Tracer(patch_modules=TRACED)
app = APIGatewayHttpResolver()


def _body() -> bytes:
    event = app.current_event
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def _answer(code: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=code, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(ConfigurationError)  # type: ignore[untyped-decorator]
def not_configured(error: ConfigurationError) -> Response[dict[str, Any]]:
    """A setting or secret missing (the suppression key's SSM parameter not created yet, say): the operator's to
    fix, a 503 naming the parameter (never a value); nothing was read nor changed."""
    logger.error("admin route not configured", extra={"reason": str(error)})
    return _answer(503, {"error": f"not configured: {error}"})


@app.exception_handler(AdminError)  # type: ignore[untyped-decorator]
def refused(error: AdminError) -> Response[dict[str, Any]]:
    logger.warning("admin request refused", extra={"status": error.status, "reason": str(error)})
    return _answer(error.status, {"error": str(error)})


# Each family of routes loads its modules with its first request (the lists', the suppressions', a person's file,
# the import's, the reports', the campaigns'), not with every admin route: the storage layer comes with the first.
def _change(name: str, add: bool) -> Response[dict[str, Any]]:
    from shared.people import lists

    settings = get_settings()
    answer = lists.admin_change(settings, name, _body(), add, settings.clock().now())
    if answer["status"] != "unchanged":
        metrics.add_metric(name="ListMemberAdded" if add else "ListMemberRemoved", unit=MetricUnit.Count, value=1)
    logger.info("list changed", extra={"list": name, "status": answer["status"]})  # ids only, no email
    return _answer(200, answer)


@app.post("/v1/lists/<name>/add")
def add(name: str) -> Response[dict[str, Any]]:
    return _change(name, True)


@app.post("/v1/lists/<name>/remove")
def remove(name: str) -> Response[dict[str, Any]]:
    return _change(name, False)


@app.get("/v1/lists/<name>/members")
def members(name: str) -> Response[dict[str, Any]]:
    from shared.people import lists

    return _answer(200, lists.admin_members(get_settings(), name))


def _person_refused(status: int, reason: str) -> Response[dict[str, Any]]:
    logger.warning("person request refused", extra={"status": status, "reason": reason})  # names no one
    return _answer(status, {"error": reason})


# shared.journeys.privacy (and the contact, scoring and dispatch modules it brings) loads with the first export or
# erasure, not with every admin route: each route answers its PersonError itself.
@app.get("/v1/contacts/export")
def export() -> Response[dict[str, Any]]:
    from shared.journeys import privacy

    settings = get_settings()
    try:
        who = privacy.Who.from_request(app.current_event.query_string_parameters or {})
        return _answer(200, privacy.export(settings, who, settings.clock().now()))
    except privacy.PersonError as error:
        return _person_refused(error.status, str(error))


@app.post("/v1/contacts/erase")
def erase() -> Response[dict[str, Any]]:
    from shared.journeys import privacy

    settings = get_settings()
    try:
        try:
            given = json.loads(_body() or b"{}")
        except ValueError:
            raise privacy.PersonError('the body must be JSON: {"email": ...}') from None
        if not isinstance(given, dict):
            raise privacy.PersonError('the body must be a JSON object: {"email": ...}')
        answer = privacy.erase(settings, privacy.Who.from_request(given), settings.clock().now(), origin="admin")
    except privacy.PersonError as error:
        return _person_refused(error.status, str(error))
    metrics.add_metric(name="PersonErased", unit=MetricUnit.Count, value=1 if answer["erased"] else 0)
    logger.info("person erased", extra=answer)  # counts only
    return _answer(200, answer)


@app.exception_handler(SuppressionRequestError)  # type: ignore[untyped-decorator]
def suppression_refused(error: SuppressionRequestError) -> Response[dict[str, Any]]:
    logger.warning("suppression request refused", extra={"status": error.status, "reason": str(error)})
    return _answer(error.status, {"error": str(error)})


def _caller() -> str:
    """Who calls: the IAM identity API Gateway's AWS_IAM authoriser names (an ARN, not a person's data)."""
    iam = ((app.current_event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("callerId") or "unknown")


@app.post("/v1/suppressions/show")
def show_suppression() -> Response[dict[str, Any]]:
    from shared.people import suppression

    return _answer(200, suppression.admin_show(get_settings(), _body()))


@app.post("/v1/suppressions/lift")
def lift_suppression() -> Response[dict[str, Any]]:
    from shared.people import suppression

    settings = get_settings()
    answer = suppression.admin_lift(settings, _body(), _caller(), settings.clock().now())
    metrics.add_metric(name="SuppressionLifted", unit=MetricUnit.Count, value=1)
    logger.info("suppression lifted", extra={"by": answer["lifted"]["lifted_by"]})  # no address, no hash
    return _answer(200, answer)


@app.post("/v1/contacts/import")
def import_contacts() -> Response[dict[str, Any]]:
    """A batch of an imported file's rows (`parcours contacts import`): the good ones queued as their events, each
    refused one answered with its line and column; 400 only when the batch itself is malformed."""
    from shared.people import lists
    from shared.sources import imports  # the CSV rows' rules: loaded by the first import, not by every route

    settings = get_settings()
    now = settings.clock().now()
    try:
        body = validation.loads(_body())
        latest = validation.horizon(now, clock.wall_time())
        events, problems = imports.receive(body, now, latest, lists.static_refusal)
    except validation.InputError as error:
        return _answer(400, {"error": str(error)})
    try:
        ingestion.enqueue_all(events, settings)
    except ingestion.QueueUnavailable:
        logger.exception("queue unavailable", extra={"source": imports.SOURCE, "messages": len(events)})
        return _answer(503, {"error": "temporarily unavailable, retry later"})
    # Counts only: a refused row's error names its column, never its value
    logger.info("import batch", extra={"accepted": len(events), "refused": len(problems)})
    metrics.add_metric(name="ImportRowAccepted", unit=MetricUnit.Count, value=len(events))
    metrics.add_metric(name="ImportRowRefused", unit=MetricUnit.Count, value=len(problems))
    refused = [{"line": p.line, "column": p.column, "error": p.error} for p in problems]
    return _answer(200, {"accepted": len(events), "refused": refused})


@app.get("/v1/reports/scenarios")
def scenarios_report() -> Response[dict[str, Any]]:
    """What each deployed scenario and each campaign did over a period: one Query each (shared.reports.reading). The
    reports' modules load with the first report, not with every route (about 10 ms of a cold start)."""
    from shared.campaigns import reported
    from shared.journeys import dispatch
    from shared.reports import layout, queries, reading

    settings = get_settings()
    deployed = layout.layouts(dispatch.CATALOGUE)
    try:
        campaigns = reported.layouts(settings)
        parameters = app.current_event.query_string_parameters or {}
        asked = reading.period(parameters, [s.id for s in deployed], [c.id for c in campaigns])
        answer = reading.report(settings.region, settings.reports_table, deployed, asked, campaigns)
    except reading.ReportRequestError as error:
        logger.warning("report request refused", extra={"field": error.field})
        return _answer(error.status, {"error": str(error), "field": error.field})
    except queries.ReportsUnavailable:
        logger.exception("reports unavailable")
        return _answer(503, {"error": "the reports cannot be read now, retry later"})
    logger.info("report read", extra={"days": len(answer["scenarios"][0]["daily"]) if answer["scenarios"] else 0})
    return _answer(200, answer)


@app.exception_handler(CampaignRequestError)  # type: ignore[untyped-decorator]
def campaign_refused(error: CampaignRequestError) -> Response[dict[str, Any]]:
    logger.warning("campaign request refused", extra={"status": error.status, "field": error.field})
    body: dict[str, Any] = {"error": str(error)}
    if error.field:
        body["field"] = error.field
    return _answer(error.status, body)


@app.post("/v1/campaigns")
def save_campaign() -> Response[dict[str, Any]]:
    """Creates a campaign, or changes a draft: the same document as a campaigns/*.yaml file, checked alike."""
    from shared.campaigns import delivery

    settings = get_settings()
    answer = delivery.save(settings, _body(), settings.clock().now())
    logger.info("campaign saved", extra={"campaign": answer["id"], "status": answer["status"]})
    return _answer(201 if answer["status"] == "created" else 200, answer)


@app.post("/v1/campaigns/<campaign_id>/send")
def send_campaign(campaign_id: str) -> Response[dict[str, Any]]:
    from shared.campaigns import delivery

    settings = get_settings()
    answer = delivery.start(settings, campaign_id, settings.clock().now())
    metrics.add_metric(name="CampaignStarted", unit=MetricUnit.Count, value=1)
    logger.info("campaign started", extra={"campaign": campaign_id})
    return _answer(202, answer)


@app.get("/v1/campaigns/<campaign_id>")
def campaign_status(campaign_id: str) -> Response[dict[str, Any]]:
    from shared.campaigns import delivery

    return _answer(200, delivery.status(get_settings(), campaign_id))


@app.post("/v1/campaigns/<campaign_id>/cancel")
def cancel_campaign(campaign_id: str) -> Response[dict[str, Any]]:
    from shared.campaigns import delivery

    settings = get_settings()
    answer = delivery.cancel(settings, campaign_id, settings.clock().now())
    logger.info("campaign cancelled", extra={"campaign": campaign_id})
    return _answer(200, answer)


@app.post("/v1/campaigns/<campaign_id>/preview")
def preview_campaign(campaign_id: str) -> Response[dict[str, Any]]:
    """The campaign rendered for one contact (named in the body: an address never goes in a URL)."""
    from shared.campaigns import preview

    return _answer(200, preview.preview(get_settings(), campaign_id, _body()))


@app.post("/v1/campaigns/<campaign_id>/test")
def test_campaign(campaign_id: str) -> Response[dict[str, Any]]:
    from shared.campaigns import preview

    settings = get_settings()
    answer = preview.test(settings, campaign_id, _body(), settings.clock().now())
    metrics.add_metric(name="CampaignTestSent", unit=MetricUnit.Count, value=len(answer["sent"]))
    logger.info("campaign test sent", extra={"campaign": campaign_id, "addresses": len(answer["sent"])})  # no address
    return _answer(200, answer)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
