"""template.yaml's IAM, read from the template as SAM expands it (moto does not enforce IAM, so the policies are
tested here): each function's role names only the resources it uses, with the actions its code calls.

The rules: no Allow on "*" but the SMS one (phone numbers have no ARN; a Deny takes every topic out of it); SES on
the From address's identity and the stack's configuration set; Step Functions on the stack's own state machines and
their executions; read-only where a function only reads; the public routes limited to the consent and preference
attributes of a contact; each secret readable only by the functions that resolve it; kms:Decrypt on the customer
key, through SSM only, when one is given.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any
from unittest import mock

import pytest

from infra import samtemplate

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
PARAMETERS = {
    "SenderEmail": "bonjour@boutique.example",
    "SenderName": "La Boutique",
    "PostalAddress": "12 rue des Artisans, 75011 Paris, France",
}
READ_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DescribeTable",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PartiQLSelect",
}
# The Allow statements on "*" each function may have, and why (the template's comments say it too).
STAR_ALLOWED = {
    # SMS go to phone numbers, which have no ARN; CheckIfPhoneNumberIsOptedOut has no resource type.
    "ActFunction": {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"},
    "CampaignFunction": {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"},  # an SMS campaign's SMS
    # SendTaskSuccess has no resource type either: the task token names the execution (IAM accepts only "*").
    "ProcessFunction": {"states:SendTaskSuccess"},
}
# What each function's code reads or writes, by table: "read" where it only reads.
TABLES = {
    "HandoffFunction": {"ContactsTable": "read", "EventsTable": "read", "SendsTable": "write"},
    "ScheduleFunction": {"ContactsTable": "read", "DatesTable": "read"},
    # dynamic lists' lapses; retention: a prospect past its period erased, as the admin erasure (below)
    "SchedulePagesFunction": {
        "ContactsTable": "write",
        "ListMembersTable": "write",
        "IdentitiesTable": "write",
        "EventsTable": "write",
        "SendsTable": "write",
        "EnrolmentsTable": "write",
        "DatesTable": "write",
        "DiscountCodesTable": "write",
        "SuppressionsTable": "write",  # the erasure's entry, an UpdateItem (never a delete: tested below)
        "ReportsTable": "write",  # the person's attribution items deleted
        "CampaignsTable": "write",  # the person's campaign outcomes deleted
        "IdempotencyTable": "write",  # the processed marks of the person's events deleted
    },
    # lists; a person's file and erasure: every table that holds them, the suppression entry written, never deleted
    "AdminFunction": {
        "IdentitiesTable": "write",
        "ContactsTable": "write",
        "ListMembersTable": "write",
        "EventsTable": "write",
        "SendsTable": "write",
        "EnrolmentsTable": "write",
        "DatesTable": "write",
        "DiscountCodesTable": "write",
        "SuppressionsTable": "write",  # an erasure's entry, a lift (never a put, never a scan: tested below)
        "ReportsTable": "write",  # the person's attribution items deleted
        "IdempotencyTable": "write",  # the processed marks of the person's events deleted
        "CampaignsTable": "write",  # a campaign saved, started, cancelled; its status read
    },
    "ActFunction": {"SuppressionsTable": "read", "ContactsTable": "write"},
    # a campaign's pages and chunks: the audience read, each email sent as a scenario's (claimed, logged on the contact)
    "CampaignFunction": {
        "CampaignsTable": "write",
        "ContactsTable": "write",
        "SendsTable": "write",
        "ListMembersTable": "read",
        "EventsTable": "read",
        "SuppressionsTable": "read",
    },
    "IngestFunction": {},
    "ReportFunction": {"ReportsTable": "write"},
}
# The report function counts off the event path: it reads the three streams and writes only the reports table.
REPORT_ACTIONS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"}
STREAM_ACTIONS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
SECRETS = {
    "IngestFunction": {
        "ShopifySecretParameterName",
        "WooCommerceSecretParameterName",
        "GenericSecretParameterName",
        "WriteKeyParameterName",
    },
    "SubscriptionFunction": {"LinkSecretParameterName"},
    "HandoffFunction": {"CrmSecretParameterName"},
    # the suppression key: every function that hashes an address (shared.people.suppression.hash_key), and only those
    "ActFunction": {"LinkSecretParameterName", "CrmSecretParameterName", "SuppressionKeyParameterName"},
    "FeedbackFunction": {"SuppressionKeyParameterName"},  # a bounce's or complaint's entry
    "ProcessFunction": {"SuppressionKeyParameterName"},  # the erasure's tombstone; Shopify's redact webhooks
    "AdminFunction": {"SuppressionKeyParameterName"},  # export, erasure, suppressions show and lift
    "SchedulePagesFunction": {"SuppressionKeyParameterName"},  # retention's erasures
    "CampaignFunction": {"LinkSecretParameterName", "SuppressionKeyParameterName"},  # a campaign's emails, as the act's
}
STATE_MACHINE_ACTIONS = {
    "states:StartExecution",
    "states:SendTaskSuccess",
    "states:DescribeExecution",
    "states:StopExecution",
}


@cache
def _translated() -> dict[str, Any]:
    sam = samtemplate.load()
    definitions = {props["DefinitionUri"]: PASS for _, props in samtemplate.state_machines(sam)}
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "eu-west-3"}):  # SAM's pseudo parameters need one
        return samtemplate.translate(samtemplate.for_local(sam, definitions), PARAMETERS)


def _functions() -> list[str]:
    return [name for name, res in samtemplate.load()["Resources"].items() if res["Type"] == "AWS::Serverless::Function"]


def _statements(function: str) -> list[dict[str, Any]]:
    role = _translated()["Resources"][f"{function}Role"]["Properties"]
    statements = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            statements.append(statement)
    return statements


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(resource: Any) -> str:
    """A resource as text, intrinsic functions kept: `{"Fn::GetAtt": ["ContactsTable", "Arn"]}` names its table."""
    return json.dumps(resource, sort_keys=True)


def _allows(function: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, resource as text, condition) for each Allow of the function's inline policies."""
    return [
        (action, _text(resource), statement.get("Condition", {}))
        for statement in _statements(function)
        if statement["Effect"] == "Allow"
        for action in _list(statement["Action"])
        for resource in _list(statement["Resource"])
    ]


@pytest.mark.parametrize("function", _functions())
def test_no_function_is_allowed_anything_on_every_resource_but_what_has_no_arn(function: str) -> None:
    star = {action for action, resource, _ in _allows(function) if resource == '"*"'}
    assert star <= STAR_ALLOWED.get(function, set()), star
    for action, _, _ in _allows(function):
        # No service:* nor Get* wildcards, the actions the code calls; SAM's SQSSendMessagePolicy names
        # sqs:SendMessage* (SendMessage and SendMessageBatch, both on the queue it names).
        assert "*" not in action or action == "sqs:SendMessage*", action


def test_sms_publishing_names_no_topic_and_only_the_process_function_publishes_to_one() -> None:
    for texting in ("ActFunction", "CampaignFunction"):  # a scenario's SMS; an SMS campaign's
        denies = [statement for statement in _statements(texting) if statement["Effect"] == "Deny"]
        assert [(statement["Action"], _text(statement["Resource"])) for statement in denies] == [
            ("sns:Publish", _text({"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}))
        ], texting
    for function in _functions():
        topics = [resource for action, resource, _ in _allows(function) if action == "sns:Publish"]
        expected = {
            "ActFunction": ['"*"'],
            "CampaignFunction": ['"*"'],
            "ProcessFunction": [_text({"Ref": "AlarmTopic"})],
        }
        assert topics == expected.get(function, []), function


def test_a_data_requests_file_is_written_by_the_process_function_only_and_read_by_no_function() -> None:
    """Shopify's customers/data_request: the process function puts the customer's file in the stack's bucket and
    tells the operator on the alarm topic (above); no function reads, lists or deletes the files, and no other S3
    permission is granted (the operator's presigned link is their own credentials)."""
    objects = _text({"Fn::Sub": "${DataRequestsBucket.Arn}/*"})
    for function in _functions():
        s3 = [(action, resource) for action, resource, _ in _allows(function) if action.startswith("s3:")]
        assert s3 == ([("s3:PutObject", objects)] if function == "ProcessFunction" else []), function
    environment = samtemplate.load()["Resources"]["ProcessFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["PARCOURS_DATA_REQUESTS_BUCKET"] == {"Ref": "DataRequestsBucket"}
    assert environment["PARCOURS_ALARM_TOPIC_ARN"] == {"Ref": "AlarmTopic"}


def test_the_data_requests_bucket_is_private_tls_only_encrypted_and_empties_itself_after_30_days() -> None:
    resources = samtemplate.load()["Resources"]
    bucket = resources["DataRequestsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert "VersioningConfiguration" not in bucket
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["ExpirationInDays"]) == ("Enabled", 30)
    (statement,) = resources["DataRequestsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_email_is_sent_only_from_the_sending_identity_and_the_stacks_configuration_set() -> None:
    for function in _functions():
        resources = [resource for action, resource, _ in _allows(function) if action.startswith("ses:")]
        if function not in ("ActFunction", "CampaignFunction", "AdminFunction"):
            assert resources == [], function
            continue
        # the act function sends the scenarios' emails, the campaign function the campaigns', the admin a test's
        assert resources, function
        for resource in resources:
            assert "identity/*" not in resource
            assert (
                "identity/${Domain}" in resource
                or "identity/${SenderEmail}" in resource
                or ("configuration-set/${EmailConfigurationSet}" in resource)
            ), resource


def test_step_functions_are_the_stacks_own_state_machines_and_executions() -> None:
    machines = {name for name, _ in samtemplate.state_machines(samtemplate.load())}
    names = {
        props["Name"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        for _, props in samtemplate.state_machines(samtemplate.load())
    }
    for function in _functions():
        allowed = [(action, resource) for action, resource, _ in _allows(function) if action.startswith("states:")]
        if function in ("AdminFunction", "SchedulePagesFunction"):  # an erasure (admin, retention) stops the
            # person's executions: the stack's own, and only that
            assert {action for action, _ in allowed} == {"states:StopExecution"}
            prefix = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-"
            stopped = {
                json.loads(resource)["Fn::Sub"].removeprefix(prefix).removesuffix(":*") for _, resource in allowed
            }
            assert stopped == names
            continue
        if function != "ProcessFunction":
            assert allowed == [], function
            continue
        assert {action for action, _ in allowed} == STATE_MACHINE_ACTIONS
        for action, resource in allowed:
            if action == "states:SendTaskSuccess":
                assert resource == '"*"', resource
            elif action == "states:StartExecution":
                assert json.loads(resource)["Ref"] in machines, resource
            else:
                sub = json.loads(resource)["Fn::Sub"]
                prefix = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-"
                assert sub.startswith(prefix), sub
                assert sub.removeprefix(prefix).removesuffix(":*") in names, sub
        started = {json.loads(r)["Ref"] for a, r in allowed if a == "states:StartExecution"}
        assert started == machines  # every scenario can start, and only those


@pytest.mark.parametrize(("function", "tables"), TABLES.items())
def test_a_function_that_only_reads_a_table_may_only_read_it(function: str, tables: dict[str, str]) -> None:
    for table, access in tables.items():
        actions = {action for action, resource, _ in _allows(function) if table in resource}
        if access == "read":
            assert actions, (function, table)
            assert actions <= READ_ACTIONS, (function, table, actions - READ_ACTIONS)
        else:
            assert actions - READ_ACTIONS, (function, table)


def test_the_public_routes_update_only_a_contacts_consent_and_preferences() -> None:
    """... and put the unsubscribe's record in the contact's history (the reports count it), never anything else."""
    allows = _allows("SubscriptionFunction")
    events = _text({"Fn::GetAtt": ["EventsTable", "Arn"]})
    assert {action for action, resource, _ in allows if resource == events} == {"dynamodb:PutItem"}
    dynamodb = [
        (action, resource, condition)
        for action, resource, condition in allows
        if "dynamodb" in action and resource != events
    ]
    assert {action for action, _, _ in dynamodb} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert {resource for _, resource, _ in dynamodb} == {_text({"Fn::GetAtt": ["ContactsTable", "Arn"]})}
    (update,) = [condition for action, _, condition in dynamodb if action == "dynamodb:UpdateItem"]
    attributes = set(update["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert attributes == {
        *("contact_id", "email_consent", "consent_history", "updated_at"),
        *("email_unverified", "preferences", "preferences_history"),
    }
    # What the code writes (shared/people/subscriptions.py) is in the list: a renamed attribute fails here.
    from shared.storage import ContactModel

    names = {attribute.attr_name for attribute in ContactModel.get_attributes().values()}
    assert attributes <= names


@pytest.mark.parametrize("function", _functions())
def test_a_secret_is_readable_only_by_the_functions_that_resolve_it(function: str) -> None:
    resources = [resource for action, resource, _ in _allows(function) if action.startswith("ssm:")]
    assert {action for action, _, _ in _allows(function) if action.startswith("ssm:")} <= {"ssm:GetParameter"}
    named = {
        parameter
        for resource in resources
        for parameter in SECRETS.get(function, set()) | {"x"}
        if "${" + parameter + "}" in resource
    }
    assert named == SECRETS.get(function, set())
    assert len(resources) == len(named)


def test_a_customer_key_on_the_secrets_is_decrypted_only_through_ssm_by_the_functions_that_read_them() -> None:
    template = samtemplate.load()
    assert template["Parameters"]["SecretsKmsKeyArn"]["Default"] == ""
    policy = template["Resources"]["SecretsKeyDecryptPolicy"]
    assert policy["Condition"] == "HasSecretsKey"
    assert template["Conditions"]["HasSecretsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SecretsKmsKeyArn"}, ""]}]}
    assert {role["Ref"].removesuffix("Role") for role in policy["Properties"]["Roles"]} == set(SECRETS)
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": "SecretsKmsKeyArn"}
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}}
    }


@pytest.mark.parametrize("function", ["ProcessFunction", "SchedulePagesFunction"])
def test_the_redact_webhooks_and_retention_erase_and_keep_the_suppression_entry(function: str) -> None:
    """The process function erases for Shopify's redact webhooks, the daily run's pages for retention: each may
    read and write the hashed entry of an address, never delete it (it is what keeps an erased address from being
    mailed again). Only the admin function's lift, an operator's recorded act, deletes one."""
    actions = {action for action, resource, _ in _allows(function) if "SuppressionsTable" in resource}
    # the process function reads the tombstone with the event's processed mark and identities, in one BatchGetItem
    read_together = {"dynamodb:BatchGetItem"} if function == "ProcessFunction" else set()
    assert actions == {"dynamodb:GetItem", "dynamodb:UpdateItem"} | read_together


def test_the_admin_function_reads_deletes_and_appends_suppression_items_but_never_puts_nor_scans() -> None:
    table = _text({"Fn::GetAtt": ["SuppressionsTable", "Arn"]})
    actions = {action for action, resource, _ in _allows("AdminFunction") if "SuppressionsTable" in resource}
    assert {resource for _, resource, _ in _allows("AdminFunction") if "SuppressionsTable" in resource} == {table}
    assert actions == {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}  # suppression.status, lift


def test_the_suppression_routes_are_iam_authorised() -> None:
    events = samtemplate.load()["Resources"]["AdminFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"]["Auth"] for e in events.values()}
    for path in ("/v1/suppressions/show", "/v1/suppressions/lift"):
        assert routes[("POST", path)] == {"Authorizer": "AWS_IAM"}


def test_the_report_route_is_iam_authorised_and_reads_the_reports_by_query_only() -> None:
    """`GET /v1/reports/scenarios` reads counter items by Query (one per scenario): never a scan, never a write of a
    counter (an erasure deletes a person's own attribution items there, in batches, nothing else)."""
    events = samtemplate.load()["Resources"]["AdminFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"]["Auth"] for e in events.values()}
    assert routes[("GET", "/v1/reports/scenarios")] == {"Authorizer": "AWS_IAM"}
    table = _text({"Fn::GetAtt": ["ReportsTable", "Arn"]})
    allowed = {(action, resource) for action, resource, _ in _allows("AdminFunction") if "ReportsTable" in resource}
    assert {resource for _, resource in allowed} == {table}
    assert "dynamodb:Query" in {action for action, _ in allowed}
    assert {action for action, _ in allowed} == {"dynamodb:Query", "dynamodb:BatchWriteItem"}


def test_the_admin_function_queues_only_on_the_events_queue_and_the_campaign_queue() -> None:
    """`parcours contacts import` posts rows to the admin function, which only queues them: the process function
    writes contacts, identities and consent as for any source. A campaign's start queues its first page. Nothing
    else is sent anywhere."""
    queues = [
        json.loads(resource)["Fn::Sub"][1]["queueName"]
        for action, resource, _ in _allows("AdminFunction")
        if action.startswith("sqs:")
    ]
    assert sorted(queues, key=json.dumps) == [
        {"Fn::GetAtt": ["CampaignQueue", "QueueName"]},
        {"Fn::GetAtt": ["EventsQueue", "QueueName"]},
    ]


def test_the_campaign_function_queues_only_on_its_own_queue_and_its_routes_are_iam_authorised() -> None:
    queues = [
        json.loads(resource)["Fn::Sub"][1]["queueName"]
        for action, resource, _ in _allows("CampaignFunction")
        if action.startswith("sqs:") and action != "sqs:DeleteMessage" and "SendMessage" in action
    ]
    assert queues == [{"Fn::GetAtt": ["CampaignQueue", "QueueName"]}]
    events = samtemplate.load()["Resources"]["AdminFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values()}
    campaign_routes = {route for route in routes if route[1].startswith("/v1/campaigns")}
    assert campaign_routes == {
        ("POST", "/v1/campaigns"),
        ("POST", "/v1/campaigns/{id}/send"),
        ("GET", "/v1/campaigns/{id}"),
        ("POST", "/v1/campaigns/{id}/cancel"),
        ("POST", "/v1/campaigns/{id}/preview"),
        ("POST", "/v1/campaigns/{id}/test"),
    }
    for event in events.values():
        if event["Properties"]["Path"].startswith("/v1/campaigns"):
            assert event["Properties"]["Auth"] == {"Authorizer": "AWS_IAM"}


def test_the_suppression_keys_parameter_is_named_only_to_the_functions_that_hash_an_address() -> None:
    """They read it (IAM, above) and are told its name; no other function gets either, and no Globals."""
    template = samtemplate.load()
    assert "PARCOURS_SUPPRESSION_KEY_PARAMETER" not in template["Globals"]["Function"]["Environment"]["Variables"]
    named = {
        function
        for function in _functions()
        if template["Resources"][function]["Properties"]
        .get("Environment", {})
        .get("Variables", {})
        .get("PARCOURS_SUPPRESSION_KEY_PARAMETER")
        == {"Ref": "SuppressionKeyParameterName"}
    }
    assert named == {function for function, secrets in SECRETS.items() if "SuppressionKeyParameterName" in secrets}
    parameter = template["Parameters"]["SuppressionKeyParameterName"]
    assert (parameter["Default"], parameter["AllowedPattern"]) == ("/parcours/suppression-key", "^/.+")


def test_the_report_function_reads_only_its_three_streams_and_writes_only_the_reports_table() -> None:
    allows = _allows("ReportFunction")
    streams = {
        _text({"Fn::GetAtt": [table, "StreamArn"]}) for table in ("EnrolmentsTable", "SendsTable", "EventsTable")
    }
    reports = _text({"Fn::GetAtt": ["ReportsTable", "Arn"]})
    dlq = _text({"Fn::GetAtt": ["ReportDeadLetterQueue", "Arn"]})
    assert {(a, r) for a, r, _ in allows} == {(a, r) for a in STREAM_ACTIONS for r in streams} | {
        (a, reports) for a in REPORT_ACTIONS
    } | {("sqs:SendMessage", dlq)}
    managed = _translated()["Resources"]["ReportFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert not any("DynamoDB" in json.dumps(arn) for arn in managed)  # no stream of the account on "*"


@pytest.mark.parametrize("function", ["AdminFunction", "ProcessFunction", "SchedulePagesFunction"])
def test_an_erasure_reads_and_deletes_attribution_items_and_nothing_else_of_the_reports(function: str) -> None:
    reports = _text({"Fn::GetAtt": ["ReportsTable", "Arn"]})
    assert {a for a, r, _ in _allows(function) if r == reports} == {"dynamodb:Query", "dynamodb:BatchWriteItem"}


@pytest.mark.parametrize("function", ["ProcessFunction", "SchedulePagesFunction"])
def test_an_erasure_finds_campaign_outcomes_by_their_index_and_deletes_them_and_nothing_else(function: str) -> None:
    table = _text({"Fn::GetAtt": ["CampaignsTable", "Arn"]})
    index = _text({"Fn::Sub": "${CampaignsTable.Arn}/index/by_contact"})
    allowed = {(a, r) for a, r, _ in _allows(function) if "CampaignsTable" in r}
    assert allowed == {(a, r) for a in ("dynamodb:Query", "dynamodb:DeleteItem") for r in (table, index)}
