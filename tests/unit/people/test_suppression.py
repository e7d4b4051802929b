"""SES bounces and complaints suppress the address before anything is queued; the hashed entry (HMAC-SHA-256 under
the deployment's key) outlives the contact. Without the key nothing is written: the message fails, to be retried."""

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local import InvocationContext
from shared.clock import Clock
from shared.messages import feedback, sending
from shared.people import suppression
from shared.settings import ConfigurationError, Settings
from shared.storage import Consent, ContactModel, tables
from tests.conftest import SUPPRESSION_KEY, handler_of
from tests.unit.functions.test_process_metrics import metrics_of
from tests.unit.messages.test_feedback import TAGS, queued

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ADDRESS = "camille.durand@example.com"
KEY = suppression.HashKey(SUPPRESSION_KEY.encode())


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    boto3.client("ses", region_name="eu-west-3").verify_domain_identity(Domain="boutique.example")
    return Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})


def add_contact(settings: Settings, contact_id: str = "c0ffee", email: str = ADDRESS) -> None:
    contact = tables(settings).contacts(
        contact_id=contact_id, email=email, first_name="Camille", locale="fr", created_at=NOW, updated_at=NOW
    )
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="shopify", at=NOW)
    contact.consent_history = [contact.email_consent]
    contact.save()


def contact(settings: Settings, contact_id: str = "c0ffee") -> ContactModel:
    return tables(settings).contacts.get(contact_id, consistent_read=True)


def ses(ses_type: str, detail: dict[str, Any], message_id: str = "msg-1", key: str = "eventType") -> str:
    detail_key = {"Bounce": "bounce", "Complaint": "complaint", "Delivery": "delivery"}[ses_type]
    return json.dumps(
        {
            key: ses_type,
            "mail": {
                "timestamp": "2026-11-24T08:00:00.000Z",
                "messageId": message_id,
                "destination": [ADDRESS],
                "tags": TAGS,
            },
            detail_key: {"timestamp": "2026-11-24T08:00:05.000Z", **detail},
        }
    )


def bounce(bounce_type: str, subtype: str = "General", message_id: str = "msg-1", key: str = "eventType") -> str:
    recipient = {
        "emailAddress": ADDRESS,
        "action": "failed",
        "status": "5.1.1",
        "diagnosticCode": f"smtp; 550 5.1.1 <{ADDRESS}>: Recipient address rejected",
    }
    detail = {"bounceType": bounce_type, "bounceSubType": subtype, "bouncedRecipients": [recipient]}
    return ses("Bounce", detail, message_id, key)


def complaint(key: str = "eventType") -> str:
    detail = {"complainedRecipients": [{"emailAddress": ADDRESS}], "complaintFeedbackType": "abuse"}
    return ses("Complaint", detail, key=key)


def delivery(message_id: str) -> str:
    return ses("Delivery", {"recipients": [ADDRESS], "smtpResponse": "250 ok"}, message_id)


def send(settings: Settings, contact_id: str = "c0ffee", category: str = "marketing") -> dict[str, str]:
    request = sending.SendRequest.from_payload(
        {
            "scenario": "welcome",
            "step": "e2-value",
            "template": "welcome/2-value",
            "category": category,
            "execution": f"arn:aws:states:eu-west-3:123456789012:execution:parcours-welcome:{contact_id}-{category}",
            "contact_id": contact_id,
        }
    )
    return sending.send_email(request, settings, Clock(), "secret", KEY)


@pytest.mark.parametrize("key", ["eventType", "notificationType"])
@pytest.mark.parametrize("subtype", ["General", "NoEmail", "Suppressed", "OnAccountSuppressionList"])
def test_a_permanent_bounce_suppresses_the_address_at_once_and_is_still_queued(
    settings: Settings, subtype: str, key: str
) -> None:
    add_contact(settings)
    outcome = feedback.handle(bounce("Permanent", subtype, key=key), settings, NOW)
    assert outcome.suppression == suppression.Decision("suppressed", f"permanent_bounce:{subtype}")
    stored = contact(settings)
    assert (stored.suppressed, stored.suppressed_reason, stored.suppressed_at) == (
        True,
        f"permanent_bounce:{subtype}",
        NOW,
    )
    assert suppression.is_suppressed(tables(settings), KEY, ADDRESS)
    assert [event.type for event in queued(settings)] == ["email.bounced"]  # for scenarios, as before
    assert send(settings) == {"status": "skipped", "reason": "address suppressed"}


def test_a_repeated_bounce_changes_nothing_and_keeps_the_first_reason_and_time(settings: Settings) -> None:
    add_contact(settings)
    feedback.handle(bounce("Permanent", "General"), settings, NOW)
    again = feedback.handle(bounce("Permanent", "NoEmail", "msg-2"), settings, NOW + timedelta(days=1))
    assert again.suppression == suppression.Decision("already suppressed", "permanent_bounce:NoEmail")
    stored = contact(settings)
    assert (stored.suppressed_reason, stored.suppressed_at) == ("permanent_bounce:General", NOW)
    entry = tables(settings).suppressions.get(suppression.address_hash(KEY, ADDRESS))
    assert (entry.reason, entry.suppressed_at) == ("permanent_bounce:General", NOW)


@pytest.mark.parametrize("key", ["eventType", "notificationType"])
def test_a_complaint_suppresses_and_withdraws_email_consent_with_its_proof(settings: Settings, key: str) -> None:
    add_contact(settings)
    outcome = feedback.handle(complaint(key), settings, NOW)
    assert outcome.suppression == suppression.Decision("suppressed", "complaint:abuse")
    stored = contact(settings)
    assert (stored.suppressed, stored.suppressed_reason) == (True, "complaint:abuse")
    assert stored.email_consent is not None
    assert (stored.email_consent.state, stored.email_consent.source, stored.email_consent.at) == (
        "denied",
        "ses:complaint",
        NOW,
    )
    history = [(statement.state, statement.source) for statement in stored.consent_history]
    assert history == [("granted", "shopify"), ("denied", "ses:complaint")]
    assert [event.type for event in queued(settings)] == ["email.complained"]

    # The same complaint delivered again by SNS adds nothing to the history
    assert feedback.handle(complaint(key), settings, NOW).suppression == suppression.Decision(
        "already suppressed", "complaint:abuse"
    )
    assert len(contact(settings).consent_history) == 2


def test_transient_bounces_suppress_at_the_third_and_the_same_message_counts_once(settings: Settings) -> None:
    add_contact(settings)
    first = feedback.handle(bounce("Transient", "MailboxFull", "msg-1"), settings, NOW)
    redelivered = feedback.handle(bounce("Transient", "MailboxFull", "msg-1"), settings, NOW)
    second = feedback.handle(bounce("Undetermined", "Undetermined", "msg-2"), settings, NOW)
    assert [first.suppression, redelivered.suppression, second.suppression] == [
        suppression.Decision("counted", None, 1),
        suppression.Decision("repeat"),
        suppression.Decision("counted", None, 2),
    ]
    assert not contact(settings).suppressed
    assert send(settings)["status"] == "sent"

    third = feedback.handle(bounce("Transient", "MailboxFull", "msg-3"), settings, NOW)
    assert third.suppression == suppression.Decision("suppressed", "transient_bounces:3", 3)
    assert (contact(settings).suppressed, contact(settings).suppressed_reason) == (True, "transient_bounces:3")
    assert suppression.is_suppressed(tables(settings), KEY, ADDRESS)


def test_a_delivery_between_soft_bounces_starts_the_count_again(settings: Settings) -> None:
    add_contact(settings)
    feedback.handle(bounce("Transient", "MailboxFull", "msg-1"), settings, NOW)
    feedback.handle(bounce("Transient", "MailboxFull", "msg-2"), settings, NOW)
    assert feedback.handle(delivery("msg-3"), settings, NOW).suppression == suppression.Decision("reset", None, 0)
    assert feedback.handle(delivery("msg-4"), settings, NOW).suppression == suppression.Decision("unchanged")
    after = feedback.handle(bounce("Transient", "MailboxFull", "msg-5"), settings, NOW)
    assert after.suppression == suppression.Decision("counted", None, 1)
    assert not contact(settings).suppressed


def test_the_hashed_entry_stops_email_to_a_contact_created_again_with_the_same_address(settings: Settings) -> None:
    add_contact(settings)
    feedback.handle(bounce("Permanent"), settings, NOW)
    contact(settings).delete()  # erased: only the hashed entry is left
    add_contact(settings, "c0ffee2", email=ADDRESS.upper())  # the same address, written otherwise
    assert not contact(settings, "c0ffee2").suppressed
    assert send(settings, "c0ffee2") == {"status": "skipped", "reason": "address suppressed"}
    assert send(settings, "c0ffee2", "transactional") == {"status": "skipped", "reason": "address suppressed"}
    add_contact(settings, "other", email="lou@example.com")
    assert send(settings, "other")["status"] == "sent"


def test_a_contact_whose_address_changed_since_the_send_keeps_its_new_address(settings: Settings) -> None:
    add_contact(settings, email="new.address@example.com")
    outcome = feedback.handle(bounce("Permanent"), settings, NOW)
    assert outcome.suppression == suppression.Decision("suppressed", "permanent_bounce:General")  # the old one
    assert suppression.is_suppressed(tables(settings), KEY, ADDRESS)
    assert not contact(settings).suppressed
    assert send(settings)["status"] == "sent"


def test_a_bounce_of_a_message_parcours_did_not_tag_still_suppresses_its_address(settings: Settings) -> None:
    message = json.loads(bounce("Permanent"))
    message["mail"]["tags"] = {}
    outcome = feedback.handle(json.dumps(message), settings, NOW)
    assert outcome.status == "ignored"  # nothing to queue: no contact
    assert outcome.suppression is not None
    assert outcome.suppression.status == "suppressed"
    assert suppression.is_suppressed(tables(settings), KEY, ADDRESS)


def test_the_entry_and_the_reason_hold_no_personal_data(settings: Settings) -> None:
    add_contact(settings)
    feedback.handle(bounce("Permanent", "General<camille.durand@example.com>"), settings, NOW)
    item = boto3.client("dynamodb", region_name="eu-west-3").scan(TableName=settings.suppressions_table)["Items"]
    assert len(item) == 1
    assert "camille" not in json.dumps(item).lower()
    assert item[0]["address_hash"]["S"] == suppression.address_hash(KEY, ADDRESS)
    assert len(item[0]["address_hash"]["S"]) == 64  # HMAC-SHA-256, hex
    assert contact(settings).suppressed_reason == "permanent_bounce:other"


@pytest.mark.parametrize("raw", [" Camille.Durand@Example.COM ", "camille.durand@example.com"])
def test_the_hash_is_of_the_normalised_address(raw: str) -> None:
    assert suppression.address_hash(KEY, raw) == suppression.address_hash(KEY, ADDRESS)
    assert suppression.address_hash(KEY, "not an address") is None


def test_the_hash_is_keyed_so_a_dictionary_of_addresses_does_not_reverse_it_without_the_key() -> None:
    hashed = suppression.address_hash(KEY, ADDRESS)
    assert hashed == hmac.new(SUPPRESSION_KEY.encode(), ADDRESS.encode(), hashlib.sha256).hexdigest()
    assert hashed != hashlib.sha256(ADDRESS.encode()).hexdigest()  # the plain hash of before matches nothing now
    other = suppression.HashKey(b"another-deployment-key-of-32-characters")
    assert suppression.address_hash(other, ADDRESS) != hashed
    assert SUPPRESSION_KEY not in repr(KEY)  # a key in a log line or a traceback's locals shows nothing


def test_the_key_comes_from_the_settings_and_a_short_or_missing_one_is_refused_naming_where(
    environ: dict[str, str],
) -> None:
    assert suppression.hash_key(Settings.from_environ(environ)) == KEY
    padded = Settings.from_environ({**environ, "PARCOURS_SUPPRESSION_KEY": f" {SUPPRESSION_KEY}\n"})
    assert suppression.hash_key(padded) == KEY  # the same key, however the value was pasted
    short = Settings.from_environ({**environ, "PARCOURS_SUPPRESSION_KEY": "too-short"})
    with pytest.raises(ConfigurationError, match=r"PARCOURS_SUPPRESSION_KEY .*too short: at least 32") as raised:
        suppression.hash_key(short)
    assert "too-short" not in str(raised.value)
    with pytest.raises(ConfigurationError, match="no suppression key configured"):
        suppression.hash_key(Settings.from_environ({**environ, "PARCOURS_SUPPRESSION_KEY": ""}))


@pytest.fixture
def keyless(settings: Settings) -> Settings:
    """The same deployment with its suppression key's parameter not created (moto's SSM holds none)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    return dataclasses.replace(settings, suppression_key=None, suppression_key_parameter="/parcours/test/suppression")


@pytest.mark.parametrize("message", [bounce("Permanent"), bounce("Transient", "MailboxFull"), complaint()])
def test_without_the_key_a_bounce_or_complaint_fails_before_anything_is_written_and_its_retry_suppresses(
    settings: Settings, keyless: Settings, message: str
) -> None:
    add_contact(settings)
    with pytest.raises(ConfigurationError, match=r"/parcours/test/suppression .*not found"):
        feedback.handle(message, keyless, NOW)
    stored = contact(settings)
    assert not stored.suppressed
    assert stored.transient_bounces is None  # not counted: the retry counts it once
    assert stored.email_consent is not None
    assert stored.email_consent.state == "granted"
    assert boto3.client("dynamodb", region_name="eu-west-3").scan(TableName=settings.suppressions_table)["Items"] == []
    assert queued(settings) == []  # nothing acknowledged: Lambda retries the invocation (then its DLQ keeps it)
    retried = feedback.handle(message, settings, NOW)  # the key created: the same message, redelivered
    assert retried.suppression is not None
    assert retried.suppression.status in ("suppressed", "counted")  # a soft bounce counts (not a `repeat`)


def test_a_delivery_needs_no_key(settings: Settings, keyless: Settings) -> None:
    add_contact(settings)
    assert feedback.handle(delivery("msg-9"), keyless, NOW).status == "queued"


@pytest.fixture
def handler(aws: dict[str, str], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from handler_of("functions.feedback.app", {**aws, "PARCOURS_QUEUE_URL": settings.queue_url}, monkeypatch)


def sns_event(*messages: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:eu-west-3:123456789012:parcours-email-events:sub",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"sns-{index}",
                    "TopicArn": "arn:aws:sns:eu-west-3:123456789012:parcours-email-events",
                    "Subject": None,
                    "Message": message,
                    "Timestamp": "2026-11-24T09:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "x",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
            for index, message in enumerate(messages)
        ]
    }


def test_the_handler_counts_suppressions_and_failures_and_logs_no_address(
    handler: Any, settings: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    add_contact(settings)
    mail = {"timestamp": "2026-11-24T08:00:00.000Z", "messageId": "m9", "destination": [ADDRESS], "tags": TAGS}
    reject = json.dumps({"eventType": "Reject", "mail": mail, "reject": {"reason": "Bad content"}})
    unrendered = json.dumps({"eventType": "Rendering Failure", "mail": mail, "failure": {"errorMessage": "x"}})
    answer = handler(
        sns_event(bounce("Permanent"), complaint(), reject, unrendered),
        InvocationContext.of("parcours-FeedbackFunction"),
    )
    assert answer == {"queued": 4, "received": 4}
    output = capsys.readouterr().out
    metrics = metrics_of(output)
    assert metrics["EmailSuppressed"] == [1.0, 1.0]  # the bounce, then the complaint (consent withdrawn)
    assert metrics["EmailFailed"] == [1.0, 1.0]  # the reject and the rendering failure: EmailFailuresAlarm
    logged = [vars(record) for record in caplog.records if record.getMessage() == "ses event"]
    reasons = [entry.get("suppression_reason") for entry in logged]
    assert reasons == ["permanent_bounce:General", "complaint:abuse", None, None]
    assert "camille" not in (output + repr(logged)).lower()
    assert sorted(event.type for event in queued(settings)) == [
        "email.bounced",
        "email.complained",
        "email.rejected",
        "email.rendering_failed",
    ]


def test_the_template_gives_the_table_its_readers_and_writers_and_alarms_on_the_handlers_metric() -> None:
    from infra import samtemplate

    resources = samtemplate.load()["Resources"]
    table = resources["SuppressionsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    feedback_policies = resources["FeedbackFunction"]["Properties"]["Policies"]
    assert {"DynamoDBCrudPolicy": {"TableName": {"Ref": "SuppressionsTable"}}} in feedback_policies
    assert {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ContactsTable"}}} in feedback_policies
    act_policies = resources["ActFunction"]["Properties"]["Policies"]
    assert {"DynamoDBReadPolicy": {"TableName": {"Ref": "SuppressionsTable"}}} in act_policies  # checked at send
    alarm = resources["EmailFailuresAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("parcours", "EmailFailed", 0)
