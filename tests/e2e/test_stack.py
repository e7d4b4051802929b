"""template.yaml, translated by aws-sam-translator, created by moto's CloudFormation in `parcours local`."""

from __future__ import annotations

import contextlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from infra import build
from infra.localprocess import RunningLocal


def test_the_stack_is_created_with_every_resource_moto_supports(local: RunningLocal) -> None:
    cloudformation = local.client("cloudformation")
    assert cloudformation.describe_stacks(StackName="parcours")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    ids = local.physical_ids()
    for logical_id in (
        "IngestFunction",
        "ProcessFunction",
        "ActFunction",
        "EventsQueue",
        "EventsDeadLetterQueue",
        "ContactsTable",
        "IdentitiesTable",
        "EventsTable",
        "SendsTable",
        "IdempotencyTable",
        "EnrolmentsTable",
        "DatesTable",
        "SuppressionsTable",
        "ScheduleFunction",
        "BirthdayStateMachine",
        "ReEngagementStateMachine",
        "SubscriptionFunction",
        "AbandonedCartStateMachine",
        "PostPurchaseStateMachine",
        "WelcomeStateMachine",
        "EmailEventsTopic",
        "ProcessFunctionQueue",
        "FeedbackFunction",
        "HandoffFunction",
        "CrmHandoffQueue",
        "CrmHandoffDeadLetterQueue",
    ):
        assert ids.get(logical_id), f"{logical_id} was not created"


def test_the_feedback_function_is_subscribed_to_the_topic_ses_publishes_email_events_on(local: RunningLocal) -> None:
    ids = local.physical_ids()
    feedback = local.client("lambda").get_function(FunctionName=ids["FeedbackFunction"])["Configuration"]
    subscriptions = local.client("sns").list_subscriptions_by_topic(TopicArn=ids["EmailEventsTopic"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("lambda", feedback["FunctionArn"])]


def test_the_events_queue_is_fifo_with_a_dead_letter_queue(local: RunningLocal) -> None:
    ids = local.physical_ids()
    attributes = local.client("sqs").get_queue_attributes(QueueUrl=ids["EventsQueue"], AttributeNames=["All"])
    assert attributes["Attributes"]["FifoQueue"] == "true"
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":parcours-events-dlq.fifo")
    assert int(redrive["maxReceiveCount"]) == 5


def test_the_process_function_consumes_the_queue_reporting_partial_batch_failures(local: RunningLocal) -> None:
    ids = local.physical_ids()
    mappings = local.client("lambda").list_event_source_mappings(FunctionName=ids["ProcessFunction"])
    [mapping] = mappings["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(":parcours-events.fifo")
    assert mapping["BatchSize"] == 10
    assert mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]


def test_the_daily_run_plans_onto_the_schedule_queue_whose_pages_a_worker_reads_one_at_a_time(
    local: RunningLocal,
) -> None:
    ids = local.physical_ids()
    sqs = local.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=ids["ScheduleQueue"], AttributeNames=["All"])["Attributes"]
    assert "FifoQueue" not in attributes  # standard: the events' own ids deduplicate
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":parcours-schedule-dlq")
    assert int(redrive["maxReceiveCount"]) == 5
    lam = local.client("lambda")
    [mapping] = lam.list_event_source_mappings(FunctionName=ids["SchedulePagesFunction"])["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(":parcours-schedule")
    assert (mapping["BatchSize"], mapping.get("FunctionResponseTypes")) == (1, ["ReportBatchItemFailures"])
    for function in ("ScheduleFunction", "SchedulePagesFunction"):
        variables = lam.get_function_configuration(FunctionName=ids[function])["Environment"]["Variables"]
        assert variables["PARCOURS_SCHEDULE_QUEUE_URL"] == ids["ScheduleQueue"]
    # the scheduled invocation, on a day one birthday falls on: its page is read by the worker as the event source
    # mapping delivers it (a key that holds nothing gets no page)
    dynamodb = local.client("dynamodb")
    birthday = {"key": {"S": "birthday#06-15"}, "contact_id": {"S": "stack-birthday"}, "date": {"S": "1990-06-15"}}
    dynamodb.put_item(TableName=ids["DatesTable"], Item=birthday)
    try:
        answer = lam.invoke(FunctionName=ids["ScheduleFunction"], Payload=json.dumps({"time": "2026-06-15T00:05:00Z"}))
    finally:
        dynamodb.delete_item(TableName=ids["DatesTable"], Key={name: birthday[name] for name in ("key", "contact_id")})
    assert "FunctionError" not in answer
    planned = json.loads(answer["Payload"].read())
    assert planned == {"day": "2026-06-15", "pages": 1}
    left = sqs.get_queue_attributes(QueueUrl=ids["ScheduleQueue"], AttributeNames=["All"])["Attributes"]
    assert (left["ApproximateNumberOfMessages"], left["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_the_handoff_queue_is_polled_by_the_runtime_not_by_moto_s_event_source(local: RunningLocal) -> None:
    """moto would invoke while SendMessage is in flight, with a receive count of 1, ignoring batchItemFailures."""
    ids = local.physical_ids()
    [mapping] = local.client("lambda").list_event_source_mappings(FunctionName=ids["HandoffFunction"])[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"].endswith(":parcours-crm-handoff")
    assert mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
    assert mapping["State"] == "Disabled"
    attributes = local.client("sqs").get_queue_attributes(QueueUrl=ids["CrmHandoffQueue"], AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":parcours-crm-handoff-dlq")
    assert int(redrive["maxReceiveCount"]) == 12


def test_the_deployed_state_machine_is_the_compiled_asl_pointed_at_the_act_function(local: RunningLocal) -> None:
    ids = local.physical_ids()
    deployed = json.loads(
        local.client("stepfunctions").describe_state_machine(stateMachineArn=ids["WelcomeStateMachine"])["definition"]
    )
    act_arn = local.client("lambda").get_function(FunctionName=ids["ActFunction"])["Configuration"]["FunctionArn"]
    expected = json.loads(
        build.compile_all().files["scenarios/compiled/welcome.asl.json"].replace("${ActFunctionArn}", act_arn)
    )
    assert deployed == expected


def test_every_function_has_the_configuration_the_template_gives_it(local: RunningLocal) -> None:
    ids = local.physical_ids()
    config = local.client("lambda").get_function_configuration(FunctionName=ids["IngestFunction"])
    variables = config["Environment"]["Variables"]
    assert config["Handler"] == "functions.ingest.app.lambda_handler"
    assert config["Runtime"] == "python3.12"
    assert variables["PARCOURS_CONTACTS_TABLE"] == ids["ContactsTable"]
    assert variables["PARCOURS_QUEUE_URL"] == ids["EventsQueue"]
    assert variables["PARCOURS_PUBLIC_BASE_URL"] == local.api_url


def test_the_local_stack_takes_the_path_of_a_domain_already_verified_and_the_runtime_verifies_it(
    local: RunningLocal,
) -> None:
    """moto's CloudFormation cannot create the SES identity whose DKIM tokens the DNS outputs read."""
    [stack] = local.client("cloudformation").describe_stacks(StackName="parcours")["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["ManageSendingDomain"] == "false"
    outputs = {o["OutputKey"] for o in stack["Outputs"]}
    assert "ApiUrl" in outputs
    assert not {"DkimRecord1", "MailFromMxRecord", "DmarcRecord"} & outputs
    domain = parameters["SenderEmail"].partition("@")[2]
    assert domain in local.client("ses").list_identities(IdentityType="Domain")["Identities"]


def test_the_operations_resources_moto_supports_are_created_and_the_tables_are_unprotected_locally(
    local: RunningLocal,
) -> None:
    """The alarm topic, the dashboard, the log groups with their retention, the async failure queues (README,
    Operate it); moto skips the alarms. A local stack is a test stack: DeletionProtection=false."""
    ids = local.physical_ids()
    for logical_id in ("AlarmTopic", "Dashboard", "FeedbackDeadLetterQueue", "ScheduleRunDeadLetterQueue"):
        assert ids.get(logical_id), f"{logical_id} was not created"
    groups = {g["logGroupName"]: g for g in local.client("logs").describe_log_groups()["logGroups"]}
    for logical_id in ("IngestLogGroup", "ProcessLogGroup", "FeedbackLogGroup", "ApiAccessLogGroup"):
        assert groups[ids[logical_id]].get("retentionInDays") == 30
    table = local.client("dynamodb").describe_table(TableName=ids["ContactsTable"])["Table"]
    assert table.get("DeletionProtectionEnabled", False) is False


def test_a_write_made_while_another_transaction_fails_is_kept_as_dynamodb_keeps_it(local: RunningLocal) -> None:
    """moto puts back, when a transaction fails, a copy of the table taken before it began: a write another function
    made meanwhile vanished (a contact's consent, in test_trust). The runtime makes each request atomic."""
    dynamodb = local.client("dynamodb")
    table = local.physical_ids()["IdentitiesTable"]
    run = uuid.uuid4().hex

    def failing_transaction(n: int) -> None:
        item = {"identity": {"S": f"test#{run}#absent#{n}"}, "contact_id": {"S": "nobody"}}
        put = {
            "TableName": table,
            "Item": item,
            "ConditionExpression": "attribute_exists(#key)",
            "ExpressionAttributeNames": {"#key": "identity"},
        }
        with contextlib.suppress(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(TransactItems=[{"Put": put}])

    def put(n: int) -> None:
        dynamodb.put_item(TableName=table, Item={"identity": {"S": f"test#{run}#{n}"}, "contact_id": {"S": "c"}})

    # Given a table of some size (the copy moto takes takes longer), and transactions on it that fail
    for batch in range(40):
        puts = [
            {"PutRequest": {"Item": {"identity": {"S": f"test#{run}#old#{batch}#{n}"}, "contact_id": {"S": "c"}}}}
            for n in range(25)
        ]
        dynamodb.batch_write_item(RequestItems={table: puts})

    # When other writes to it are made at the same time
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: (failing_transaction if n % 2 else put)(n), range(400)))

    # Then every one of those writes is there
    kept = [
        n
        for n in range(0, 400, 2)
        if "Item" in dynamodb.get_item(TableName=table, Key={"identity": {"S": f"test#{run}#{n}"}})
    ]
    assert kept == list(range(0, 400, 2))
