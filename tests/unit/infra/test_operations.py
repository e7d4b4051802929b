"""template.yaml's operations (README, Operate it): data kept when the stack goes, alarms that tell someone, logs that
expire, failure destinations, throttling, tracing, the dashboard, and checkov's skips named with their reasons."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra import samtemplate

TEMPLATE = samtemplate.load()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]


def _of(kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in RESOURCES.items() if resource["Type"] == kind}


TABLES = _of("AWS::DynamoDB::Table")
QUEUES = _of("AWS::SQS::Queue")
ALARMS = _of("AWS::CloudWatch::Alarm")
FUNCTIONS = _of("AWS::Serverless::Function")


def _alarms_on(namespace: str, metric: str) -> dict[str, dict[str, Any]]:
    """Each alarm on that metric (alone, or first in a metric math expression), by the Ref or GetAtt of its first
    dimension's value."""
    found = {}
    for alarm in ALARMS.values():
        props = alarm["Properties"]
        if "Metrics" in props and "MetricName" not in props:  # metric math: the first metric it reads
            props = next((m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m), props)
        if props.get("Namespace") == namespace and props.get("MetricName") == metric:
            value = props["Dimensions"][0]["Value"]
            key = value.get("Ref") or value["Fn::GetAtt"][0]
            found[key] = props
    return found


def test_there_are_the_twelve_tables_and_every_queue_of_the_issue() -> None:
    assert len(TABLES) == 12  # with the campaigns' (README, Campaigns)
    assert len(QUEUES) >= 6


@pytest.mark.parametrize("name", sorted(TABLES) + sorted(QUEUES))
def test_a_table_or_queue_holding_peoples_data_is_retained_on_delete_and_replace(name: str) -> None:
    resource = RESOURCES[name]
    assert resource.get("DeletionPolicy") == "Retain"
    assert resource.get("UpdateReplacePolicy") == "Retain"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_tables_deletion_protection_follows_the_parameter_on_by_default(name: str) -> None:
    assert RESOURCES[name]["Properties"]["DeletionProtectionEnabled"] == {"Fn::If": ["ProtectsData", True, False]}
    assert TEMPLATE["Conditions"]["ProtectsData"] == {"Fn::Equals": [{"Ref": "DeletionProtection"}, "true"]}
    assert TEMPLATE["Parameters"]["DeletionProtection"]["Default"] == "true"


def test_the_local_runtime_deploys_a_test_stack_without_deletion_protection() -> None:
    from infra.local.runtime import LOCAL_PARAMETERS

    assert LOCAL_PARAMETERS["DeletionProtection"] == "false"


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_every_alarm_notifies_the_alarm_topic_in_alarm_and_back_to_ok(name: str) -> None:
    props = ALARMS[name]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert props["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert props["AlarmDescription"]


def test_the_alarm_topic_mails_the_optional_address_only_when_one_is_given() -> None:
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_function_has_an_alarm_on_its_errors_and_one_on_its_throttles(metric: str) -> None:
    assert sorted(_alarms_on("AWS/Lambda", metric)) == sorted(FUNCTIONS)


def test_the_http_api_5xx_are_alarmed() -> None:
    [props] = _alarms_on("AWS/ApiGateway", "5xx").values()
    assert props["Dimensions"] == [
        {"Name": "ApiId", "Value": {"Ref": "HttpApi"}},
        {"Name": "Stage", "Value": "$default"},
    ]


def test_the_age_of_the_oldest_message_of_each_queue_a_function_consumes_is_alarmed() -> None:
    consumed = {
        event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for function in FUNCTIONS.values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    assert consumed == {"EventsQueue", "CrmHandoffQueue", "ScheduleQueue", "CampaignQueue"}
    assert set(_alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage")) == consumed


def test_every_dead_letter_queue_has_an_alarm_on_its_depth() -> None:
    targets = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in QUEUES.values()
        if "RedrivePolicy" in queue["Properties"]
    }
    targets |= {
        function["Properties"]["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
        for function in FUNCTIONS.values()
        if "DeadLetterQueue" in function["Properties"]
    }
    targets |= {  # the stream mappings' on-failure destinations
        mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for mapping in _of("AWS::Lambda::EventSourceMapping").values()
        if "DestinationConfig" in mapping["Properties"]
    }
    depth = _alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert targets == {
        "EventsDeadLetterQueue",
        "CrmHandoffDeadLetterQueue",
        "ScheduleDeadLetterQueue",
        "CampaignDeadLetterQueue",
        "FeedbackDeadLetterQueue",
        "ScheduleRunDeadLetterQueue",
        "ReportDeadLetterQueue",
    }
    assert set(depth) == targets
    for props in depth.values():
        assert props["Threshold"] == 0
        assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_ses_reputation_figures_are_alarmed() -> None:
    assert _alarms_on_account("Reputation.BounceRate")["Threshold"] == 0.02
    assert _alarms_on_account("Reputation.ComplaintRate")["Threshold"] == 0.001


def _alarms_on_account(metric: str) -> dict[str, Any]:
    props: list[dict[str, Any]] = [
        a["Properties"] for a in ALARMS.values() if a["Properties"].get("MetricName") == metric
    ]
    [found] = props
    return found


def test_the_functions_invoked_asynchronously_have_a_failure_destination() -> None:
    """SNS and EventBridge Scheduler invoke Lambda asynchronously: after two retries the event would be dropped (a
    bounce, which drives suppression; a day's planning). Every other function is invoked synchronously or by an
    event source mapping, whose queue has its own dead-letter queue."""
    asynchronous = {
        name
        for name, function in FUNCTIONS.items()
        if any(
            e["Type"] in ("SNS", "ScheduleV2", "Schedule", "EventBridgeRule")
            for e in function["Properties"].get("Events", {}).values()
        )
    }
    assert asynchronous == {"FeedbackFunction", "ScheduleFunction"}
    for name in asynchronous:
        assert FUNCTIONS[name]["Properties"]["DeadLetterQueue"]["Type"] == "SQS"
    # and what EventBridge Scheduler itself could not invoke, after its own retries
    daily = FUNCTIONS["ScheduleFunction"]["Properties"]["Events"]["Daily"]["Properties"]
    assert daily["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleRunDeadLetterQueue", "Arn"]}}
    # and what SNS itself could not hand to the feedback function, on a queue SNS may write to for that topic only
    feedback = FUNCTIONS["FeedbackFunction"]["Properties"]["Events"]["EmailEvents"]["Properties"]
    assert feedback["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "Arn"]}}
    (policy,) = [r["Properties"] for r in _of("AWS::SQS::QueuePolicy").values()]
    assert policy["Queues"] == [{"Ref": "FeedbackDeadLetterQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "EmailEventsTopic"}}}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_logs_to_its_own_log_group_kept_log_retention_days(name: str) -> None:
    group = FUNCTIONS[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert RESOURCES[group]["DeletionPolicy"] == "Delete"  # logs hold no personal data


def test_every_log_group_expires() -> None:
    for resource in _of("AWS::Logs::LogGroup").values():
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_functions_are_traced_by_x_ray() -> None:
    assert TEMPLATE["Globals"]["Function"]["Tracing"] == "Active"


def test_the_http_api_is_throttled_and_logs_each_request_as_json_without_personal_data() -> None:
    props = RESOURCES["HttpApi"]["Properties"]
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
    }
    logs = props["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(logs["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status"
    # No IP, no path nor query string (unsubscribe tokens, addresses in forms): the route's template only.
    assert not any(re.search(r"identity\.sourceIp|\$context\.path|querystring", v) for v in fields.values())
    # nor the integration's error message, which quotes the function's exception
    assert not any("integrationErrorMessage" in v for v in fields.values())


def test_the_dashboard_shows_the_flow_with_metrics_the_handlers_emit() -> None:
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert variables == {}
    widgets = json.loads(body)["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets)
    for part in ("Events in", "Events processed", "executions", "Emails and SMS sent", "Bounces and complaints"):
        assert part in titles
    assert "Failures" in titles
    emitted = _metrics_the_handlers_emit()
    for widget in widgets:
        for metric in widget["properties"]["metrics"]:
            if metric[0] == "parcours":
                assert metric[1] in emitted, f"{metric[1]}: no handler emits it"
    # Every ${...} of the body names a resource (or a pseudo parameter): CloudFormation resolves it.
    for name in re.findall(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}", body):
        assert name.startswith("AWS::") or name in RESOURCES


def _metrics_the_handlers_emit() -> set[str]:
    from tests.conftest import ROOT

    names = set()
    for app in (ROOT / "functions").glob("*/app.py"):
        text = app.read_text(encoding="utf-8")
        names |= set(re.findall(r'add_metric\(\s*name="([A-Za-z]+)"', text))
        names |= set(re.findall(r'_accept\(event, settings, "([A-Za-z]+)"', text))
        if 'f"{kind}{result' in text:  # act: EmailSent, SmsSent, CrmSent ...
            names |= {f"{kind}{status}" for kind in ("Email", "Sms", "Crm") for status in ("Sent", "Skipped")}
    return names


def test_every_skipped_checkov_check_is_named_with_its_reason() -> None:
    skipped = 0
    for name, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) > 40, f"{name} {skip['id']}: say why"
            skipped += 1
    assert skipped > 0


def test_the_stream_mappings_retry_a_bounded_number_of_times_split_failing_batches_and_keep_what_still_fails() -> None:
    """The report function's streams (README, Reports): a record that keeps failing would otherwise block its shard
    for the stream's 24 hours; each mapping retries it 10 times at most, bisecting the batch, reports partial failures,
    then names it on the dead-letter queue. Only the records that count invoke the function."""
    mappings = _of("AWS::Lambda::EventSourceMapping")
    assert {m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings.values()} == {
        "EnrolmentsTable",
        "SendsTable",
        "EventsTable",
    }
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["FunctionName"] == {"Ref": "ReportFunction"}
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is True
        assert 0 < props["MaximumRetryAttempts"] <= 10
        assert props["MaximumBatchingWindowInSeconds"] > 0
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["ReportDeadLetterQueue", "Arn"]
        }
        for pattern in props["FilterCriteria"]["Filters"]:
            json.loads(pattern["Pattern"])
    for table, view in (
        ("EventsTable", "NEW_IMAGE"),
        ("SendsTable", "NEW_AND_OLD_IMAGES"),
        ("EnrolmentsTable", "NEW_AND_OLD_IMAGES"),
    ):
        assert TABLES[table]["Properties"]["StreamSpecification"] == {"StreamViewType": view}


def test_the_dashboard_shows_sends_opens_clicks_and_conversions_per_scenario() -> None:
    from shared.reports import counting

    body, _ = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    searched = {
        metric[0]["expression"]
        for widget in json.loads(body)["widgets"]
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], dict)
    }
    for name in ("ScenarioSent", "ScenarioOpened", "ScenarioClicked", "ScenarioConverted"):
        assert name in counting.METRICS.values()  # what the report function emits, dimension `scenario`
        assert f"SEARCH('{{parcours,scenario,service}} MetricName=\"{name}\"', 'Sum', 3600)" in searched
