"""DynamoDB tables behind PynamoDB models; AWS errors become the domain's own exceptions here.

Table names come from the settings, so models are bound to them at run time (`tables(settings)`), never at
import time. Every table's model beside the few reads and writes over them, so that what an item holds and how it
is written once are read together; how an item converts to DynamoDB's form is shared.items'. What an event needs
most often (a GetItem, a Query, a BatchGetItem, a TransactWriteItems) goes to botocore's client of its model
(`client_of`): PynamoDB's own request building cost more than the items' conversion.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import STRING
from pynamodb.exceptions import (
    PutError,
    PynamoDBException,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from shared.items import Item, changes, direct_access
from shared.settings import Settings


class StorageError(RuntimeError):
    """DynamoDB refused or failed a request; the caller may retry the whole unit of work."""


class StorageBusy(StorageError):
    """DynamoDB throttled the request or was unavailable: the same request may succeed later. A scenario's Task lets
    it out under this name, which its Retry waits out for about a day (shared.journeys.compiler.RETRYABLE)."""


# What DynamoDB answers when it is throttling or failing for a while (after botocore's own few quick retries).
BUSY_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        # a transaction's cancellation reasons name them so
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
    }
)


def busy(error: BaseException) -> bool:
    """Whether `error` (botocore's, PynamoDB's, or a StorageError raised from one) says DynamoDB was throttling or
    unavailable, rather than refusing the request for good: a network failure, a throttling or server-side code,
    or a transaction cancelled for throttling."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, StorageBusy | BotoConnectionError | HTTPClientError):  # not a bad parameter
            return True
        if isinstance(current, ClientError) and current.response.get("Error", {}).get("Code") in BUSY_CODES:
            return True
        if isinstance(current, TransactWriteError):
            codes = {reason.code for reason in current.cancellation_reasons or [] if reason is not None}
            if codes & BUSY_CODES:
                return True
        if isinstance(current, PynamoDBException):
            todo.append(current.cause)
        todo += [current.__cause__, current.__context__]
    return False


def failure(error: PynamoDBException) -> StorageError:
    """The domain's error for a failed DynamoDB request: StorageBusy when a retry later may succeed."""
    return StorageBusy(str(error)) if busy(error) else StorageError(str(error))


class AlreadyExists(StorageError):
    """A conditional create found the item already there."""


class AlreadyApplied(StorageError):
    """The write's own record (an event's history record) is there: a retry of a write that was made."""


class ItemTooLarge(StorageError):
    """DynamoDB refused an update that would make the item larger than its 400 KB."""


class Conflict(StorageError):
    """A transaction met another one writing the same item at once (TransactionConflict): read again and retry."""


class Consent(MapAttribute[str, Any]):
    """Proof of a consent decision (REQUIREMENTS.md, Privacy): what, when, where from, how strong."""

    state = UnicodeAttribute()  # granted | denied | unknown
    level = UnicodeAttribute(null=True)  # single_opt_in | confirmed_opt_in | unknown
    source = UnicodeAttribute()  # e.g. shopify:customers/create
    wording = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()


class Preferences(MapAttribute[str, Any]):
    """The preference centre's choices (shared.people.topics) and where they came from, kept with their history."""

    topics_off = UnicodeSetAttribute(null=True)  # topics the contact turned off
    frequency = UnicodeAttribute(default="all")  # all | weekly | monthly: one marketing email per period (pacing)
    source = UnicodeAttribute()  # e.g. preferences
    at = UTCDateTimeAttribute()


class EngagedOnIndex(GlobalSecondaryIndex["ContactModel"]):
    """Contacts by the day they last opened, clicked or signed up: the inactivity run reads one day of it."""

    class Meta:
        index_name = "engaged_on"
        projection = KeysOnlyProjection()

    engaged_on = UnicodeAttribute(hash_key=True)


class ListsRecheckIndex(GlobalSecondaryIndex["ContactModel"]):
    """Contacts by the UTC day a dynamic list's event window passes for them: the daily run reads one day of it."""

    class Meta:
        index_name = "lists_recheck_on"
        projection = KeysOnlyProjection()

    lists_recheck_on = UnicodeAttribute(hash_key=True)


class ContactedOnIndex(GlobalSecondaryIndex["ContactModel"]):
    """Contacts by the UTC day of their last contact (a signup, form, order or click; never an open): the daily
    run's retention reads the day a prospect's period ends (shared.journeys.schedule)."""

    class Meta:
        index_name = "contacted_on"
        projection = KeysOnlyProjection()

    contacted_on = UnicodeAttribute(hash_key=True)


class ContactModel(Item):
    class Meta:
        table_name = "unbound"

    # Not stored: True on the instance contacts.upsert created for the event in hand. Not `created_at == now`: an
    # event this one emits may be processed at the same instant (the local runtime's skipped time stands still).
    created_by_event: bool = False

    contact_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(null=True)
    first_name = UnicodeAttribute(null=True)
    last_name = UnicodeAttribute(null=True)
    locale = UnicodeAttribute(null=True)
    source_ids = MapAttribute[str, Any](null=True)
    email_consent = Consent(null=True)
    consent_history = ListAttribute(of=Consent, default=list)  # email consent statements, oldest first
    phone = UnicodeAttribute(null=True)  # E.164 (+ country code, at most 15 digits), normalised on the way in
    # The email came only from the tracking API's public browser key (anyone may type any address there): until a
    # trusted source gives it or the person confirms it (double opt-in), the lead is not handed to the CRM.
    email_unverified = BooleanAttribute(null=True)
    sms_consent = Consent(null=True)
    sms_consent_history = ListAttribute(of=Consent, null=True)  # SMS consent statements, oldest first
    suppressed = BooleanAttribute(default=False)
    suppressed_reason = UnicodeAttribute(
        null=True
    )  # permanent_bounce:General, complaint:abuse (shared.people.suppression)
    suppressed_at = UTCDateTimeAttribute(null=True)
    transient_bounces = NumberAttribute(null=True)  # soft bounces since the last delivery (shared.people.suppression)
    last_bounce_message = UnicodeAttribute(null=True)  # the SES message id last counted: a redelivery counts once
    preferences = Preferences(null=True)  # the preference centre's current choices
    preferences_history = ListAttribute(of=Preferences, null=True)  # every change, oldest first
    attributes = MapAttribute[str, Any](default=dict)  # custom attributes, set by sources and scenarios
    lists = UnicodeSetAttribute(null=True)  # list membership (names), static and dynamic (shared.people.lists)
    lists_recheck_on = UnicodeAttribute(null=True)  # YYYY-MM-DD: the daily run re-evaluates its dynamic lists then
    orders_count = NumberAttribute(default=0)
    score = NumberAttribute(default=0)
    # When the contact last entered each scenario (scenario -> ISO time), written with the enrolment: re-entry is
    # decided on the contact alone, and the enrolments are read only for a scenario the contact is in. None: a
    # contact from before it (its enrolments are read, and it is filled in from them).
    entered = MapAttribute[str, Any](null=True)
    # The events an execution's wait_for step has awaited for the contact (noted by the step, never removed: an
    # event of another type reads no enrolment to resume one)
    awaiting = UnicodeSetAttribute(null=True)
    # How often each scoring rule scored in its current period: "rule@period" -> times (shared.people.scoring's caps)
    score_caps = MapAttribute[str, Any](null=True)
    total_spent = NumberAttribute(default=0)
    last_order_at = UTCDateTimeAttribute(null=True)
    first_order_at = UTCDateTimeAttribute(null=True)
    last_cart_at = UTCDateTimeAttribute(null=True)  # the last checkout started or updated, finished or not
    last_cart_url = UnicodeAttribute(null=True)  # its recovery link, for a reminder sent from another scenario
    last_opened_at = UTCDateTimeAttribute(null=True)
    last_clicked_at = UTCDateTimeAttribute(null=True)
    last_seen_at = UTCDateTimeAttribute(null=True)  # the person's last own action: a visit, a form, a cart, an order
    pages = MapAttribute[str, Any](null=True)  # pages of interest: path -> views, the first MAX_PAGES paths
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    source_updated_at = UTCDateTimeAttribute(null=True)
    last_engaged_at = UTCDateTimeAttribute(null=True)  # last open, click or signup
    engaged_on = UnicodeAttribute(null=True)  # its UTC day, YYYY-MM-DD: the key of the engaged_on index
    # The person's last contact: a signup, a form, an order or a click, never an open (REQUIREMENTS.md, Privacy)
    last_contact_at = UTCDateTimeAttribute(null=True)
    contacted_on = UnicodeAttribute(null=True)  # its UTC day, YYYY-MM-DD: the key of the contacted_on index
    date_keys = UnicodeSetAttribute(null=True)  # the contact's entries in the dates table (shared.people.dates)
    recent_sends = ListAttribute[str](null=True)  # marketing sends of the last 31 days (pacing)
    sends_recorded = NumberAttribute(
        null=True
    )  # how many were ever recorded: the log's version (shared.journeys.pacing)
    by_engagement = EngagedOnIndex()
    by_lists_recheck = ListsRecheckIndex()
    by_contact_day = ContactedOnIndex()


class DateIndexModel(Item):
    """Who has a date attribute (birthday, created_at, ...) on a month-day: the daily run queries, never scans."""

    class Meta:
        table_name = "unbound"

    key = UnicodeAttribute(hash_key=True)  # attribute + "#" + MM-DD, e.g. birthday#03-15
    contact_id = UnicodeAttribute(range_key=True)
    date = UnicodeAttribute()  # the attribute's ISO date, YYYY-MM-DD
    timezone = UnicodeAttribute(null=True)  # the contact's timezone attribute, for the local moment


class IdentityModel(Item):
    """Finds a contact by one of its identifiers (`email#...`, `shopify#...`) in one read."""

    class Meta:
        table_name = "unbound"

    identity = UnicodeAttribute(hash_key=True)
    contact_id = UnicodeAttribute()


ORDER_IDENTITY = "order#"  # the identities table's items of an order: `order#<source>#<order id>`


class OrderModel(Item):
    """An order a contact placed, in the identities table under `order#<source>#<order id>` (shared.people.orders):
    whom it is of (a Shopify refund names the order, not the person) and what its refunds and its cancellation took
    back from the contact's counters, so that each is taken once and the two together never more than the order
    added. Expires with the order's events (the events' retention)."""

    class Meta:
        table_name = "unbound"

    identity = UnicodeAttribute(hash_key=True)
    contact_id = UnicodeAttribute()
    total = NumberAttribute(null=True)  # what the order added to the contact's total_spent (None: not seen placed)
    currency = UnicodeAttribute(null=True)
    taken = NumberAttribute(default=0)  # what its refunds and cancellation took back from total_spent
    refunds = UnicodeSetAttribute(null=True)  # the refund ids taken back
    cancelled_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class EventModel(Item):
    """A contact's history, newest last, purged by TTL."""

    class Meta:
        table_name = "unbound"

    contact_id = UnicodeAttribute(hash_key=True)
    at_id = UnicodeAttribute(range_key=True)  # ISO time + "#" + event id: ordered and unique
    type = UnicodeAttribute()
    source = UnicodeAttribute()
    properties = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class SendsByContactIndex(GlobalSecondaryIndex["SendModel"]):
    """A person's sends, for their file and their erasure (shared.journeys.privacy)."""

    class Meta:
        index_name = "by_contact"
        projection = KeysOnlyProjection()

    contact_id = UnicodeAttribute(hash_key=True)


class SendModel(Item):
    """One record per (execution, step): the claim that makes a send happen at most once."""

    class Meta:
        table_name = "unbound"

    send_id = UnicodeAttribute(hash_key=True)
    # claimed | sent; on an outcome's own record (send_id "<send id>#<outcome>", shared.outbox.record_outcome):
    # deferred | capped | failed
    status = UnicodeAttribute()
    scenario = UnicodeAttribute()
    step = UnicodeAttribute()
    variant = UnicodeAttribute(null=True)  # the split variant the step is in (the reports count per variant)
    contact_id = UnicodeAttribute()
    channel = UnicodeAttribute()
    message_id = UnicodeAttribute(null=True)
    discount_code = UnicodeAttribute(null=True)  # the code the email carried (shared.messages.discounts), for support
    discount_pool = UnicodeAttribute(null=True)  # its pool, where the erasure finds who got it
    subject = UnicodeAttribute(null=True)  # an email's subject as rendered: the person's file shows it
    claimed_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute(null=True)
    segments = NumberAttribute(null=True)  # an SMS: how many segments the operator bills
    encoding = UnicodeAttribute(null=True)  # an SMS: GSM-7 or UCS-2
    attempts = NumberAttribute(default=1)
    expires_at = TTLAttribute(null=True)
    by_contact = SendsByContactIndex()


class EnrolmentModel(Item):
    """A contact's passage through a scenario: found by contact in one query, to stop it on a goal."""

    class Meta:
        table_name = "unbound"

    contact_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)  # scenario + "#" + execution name
    scenario = UnicodeAttribute()
    execution_arn = UnicodeAttribute()
    status = UnicodeAttribute()  # active | converted | finished
    started_at = UTCDateTimeAttribute()
    ended_at = UTCDateTimeAttribute(null=True)
    goal_event = UnicodeAttribute(null=True)
    waiting_event = UnicodeAttribute(null=True)  # set while a wait_for step holds a task token
    task_token = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class ScenarioCounterModel(Item):
    """How many contacts are in a capped scenario now: one item per scenario, kept in the enrolments table under
    a partition no contact has (contact ids never start with `_`)."""

    class Meta:
        table_name = "unbound"

    contact_id = UnicodeAttribute(hash_key=True)  # "_scenario#" + scenario id
    key = UnicodeAttribute(range_key=True)  # "running"
    running = NumberAttribute(default=0)


class SuppressionModel(Item):
    """An address never mailed again (a hard bounce, a complaint, repeated soft bounces), known only by the SHA-256
    of its normalised form: it outlives the contact's erasure, and a contact created later with it is not mailed."""

    class Meta:
        table_name = "unbound"

    address_hash = UnicodeAttribute(hash_key=True)
    reason = UnicodeAttribute()  # what SES said, never the address: permanent_bounce:General, complaint:abuse, ...
    suppressed_at = UTCDateTimeAttribute()
    # The person was erased then (shared.journeys.privacy): an event received before it brings nobody back.
    erased_at = UTCDateTimeAttribute(null=True)


class SuppressionLift(MapAttribute[str, Any]):
    """One lift of an address's suppression: why, by whom (an IAM identity), and what the suppression had been."""

    reason = UnicodeAttribute()  # the operator's, required (shared.people.suppression.lift)
    lifted_at = UTCDateTimeAttribute()
    lifted_by = UnicodeAttribute()  # the caller's IAM ARN as API Gateway gives it, else "unknown"
    suppression_reason = UnicodeAttribute(null=True)  # what the lifted suppression said (permanent_bounce:General...)
    suppressed_at = UTCDateTimeAttribute(null=True)


class SuppressionLiftsModel(Item):
    """The lifts of one address's suppression, oldest first, in the suppressions table under `lifted#<hash>`: a key
    no suppression check reads, so a lift is kept (without the address) however often the address is suppressed
    and lifted again."""

    class Meta:
        table_name = "unbound"

    address_hash = UnicodeAttribute(hash_key=True)  # "lifted#" + the address's suppression key
    lifts = ListAttribute(of=SuppressionLift, default=list)


class DiscountCodeModel(Item):
    """A pool of discount codes (shared.messages.discounts), several kinds of item under the pool's partition: `pool`
    (its counters), `seq#0000000001` (the n-th code loaded), `code#CODE` (a code, and who got it), `contact#ID` (the
    code a contact got: a second claim answers it again)."""

    class Meta:
        table_name = "unbound"

    pool = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    code = UnicodeAttribute(null=True)
    seq = NumberAttribute(null=True)  # the code's place in the pool, in loading order
    loaded = NumberAttribute(null=True)  # on `pool`: how many codes were loaded
    claimed = NumberAttribute(null=True)  # on `pool`: how many were handed out (or burnt by a lost race)
    loaded_at = UTCDateTimeAttribute(null=True)
    contact_id = UnicodeAttribute(null=True)  # on `code#` and `contact#`: who got it
    claimed_at = UTCDateTimeAttribute(null=True)
    scenario = UnicodeAttribute(null=True)
    execution = UnicodeAttribute(null=True)


class ListMemberModel(Item):
    """Who is in a list, one item per (list, contact), beside the contact's own `lists`: a list's members are
    read by a query, never a scan of the contacts."""

    class Meta:
        table_name = "unbound"

    list_name = UnicodeAttribute(hash_key=True)
    contact_id = UnicodeAttribute(range_key=True)
    joined_at = UTCDateTimeAttribute()
    origin = UnicodeAttribute()  # scenario, admin or rule: who put the contact there


MARK_PREFIX = "event#"  # a processed mark's key: the prefix, then the source's event id


class MarkModel(Item):
    """An event processed: written in the transaction of everything the event changed (shared.writes), keyed by the
    event's id, so that a redelivery reads it first (one request) and changes nothing twice. It keeps the handler's
    answer and what the processing did outside DynamoDB after that transaction (executions started or stopped, events
    queued): a redelivery does those again, each once by its own id (a crash between the two loses none)."""

    class Meta:
        table_name = "unbound"

    id = UnicodeAttribute(hash_key=True)  # "event#" + the source's event id
    result = JSONAttribute(null=True)  # the handler's answer: no contact id nor address
    effects = JSONAttribute(null=True)  # shared.writes.Effect, as data (may name the contact: erased with it)
    expiration = TTLAttribute(null=True)  # the idempotency table's TTL attribute


REPORTS_ATTRIBUTION = "attribution#"  # the reports table's partition of a contact's attribution items


class ReportItemModel(Item):
    """An item of the reports table (shared.reports writes it): here only what a person's file and erasure read,
    their attribution items under `attribution#<contact id>` (the scenario email they last clicked, `click`, and
    opened, `open`), which expire with their window. The counters name no one."""

    class Meta:
        table_name = "unbound"

    report = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    scenario = UnicodeAttribute(null=True)
    step = UnicodeAttribute(null=True)
    variant = UnicodeAttribute(null=True)
    at = UnicodeAttribute(null=True)  # when they clicked or opened it (ISO 8601, UTC)
    expires_at = TTLAttribute(null=True)


M = TypeVar("M", bound=Model)


def _bind(model: type[M], table_name: str, region: str) -> type[M]:
    direct_access(model)
    meta = type("Meta", (), {"table_name": table_name, "region": region})
    return type(model.__name__, (model,), {"Meta": meta})


@dataclass(frozen=True)
class Tables:
    contacts: type[ContactModel]
    identities: type[IdentityModel]
    orders: type[OrderModel]  # in the identities table
    events: type[EventModel]
    sends: type[SendModel]
    enrolments: type[EnrolmentModel]
    counters: type[ScenarioCounterModel]  # in the enrolments table
    dates: type[DateIndexModel]
    suppressions: type[SuppressionModel]
    suppression_lifts: type[SuppressionLiftsModel]  # in the suppressions table
    discount_codes: type[DiscountCodeModel]
    list_members: type[ListMemberModel]
    reports: type[ReportItemModel]
    marks: type[MarkModel]  # in the idempotency table


@lru_cache(maxsize=4)
def _tables(
    contacts: str,
    identities: str,
    events: str,
    sends: str,
    enrolments: str,
    dates: str,
    suppressions: str,
    discount_codes: str,
    list_members: str,
    reports: str,
    idempotency: str,
    region: str,
) -> Tables:
    return Tables(
        contacts=_bind(ContactModel, contacts, region),
        identities=_bind(IdentityModel, identities, region),
        orders=_bind(OrderModel, identities, region),
        events=_bind(EventModel, events, region),
        sends=_bind(SendModel, sends, region),
        enrolments=_bind(EnrolmentModel, enrolments, region),
        counters=_bind(ScenarioCounterModel, enrolments, region),
        dates=_bind(DateIndexModel, dates, region),
        suppressions=_bind(SuppressionModel, suppressions, region),
        suppression_lifts=_bind(SuppressionLiftsModel, suppressions, region),
        discount_codes=_bind(DiscountCodeModel, discount_codes, region),
        list_members=_bind(ListMemberModel, list_members, region),
        reports=_bind(ReportItemModel, reports, region),
        marks=_bind(MarkModel, idempotency, region),
    )


def tables(settings: Settings) -> Tables:
    return _tables(
        settings.contacts_table,
        settings.identities_table,
        settings.events_table,
        settings.sends_table,
        settings.enrolments_table,
        settings.dates_table,
        settings.suppressions_table,
        settings.discount_codes_table,
        settings.list_members_table,
        settings.reports_table,
        settings.idempotency_table,
        settings.region,
    )


def create_new(item: Model, key_attribute: Any) -> None:
    """Save `item` only if no item has its key; AlreadyExists otherwise."""
    try:
        item.save(condition=key_attribute.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise AlreadyExists(type(item).__name__) from None
        raise failure(error) from error
    except PynamoDBException as error:
        raise failure(error) from error


def update_if(item: Model, actions: list[Action], condition: Condition) -> bool:
    """A conditional update: True when applied, False when the condition did not hold (a lost race, a repeat,
    a limit reached); any other failure is a StorageError."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        if error.cause_response_code == "ValidationException" and "maximum allowed size" in str(
            error.cause_response_message
        ):
            raise ItemTooLarge(str(error)) from error
        raise failure(error) from error
    except PynamoDBException as error:
        raise failure(error) from error
    return True


def save_changes(
    item: Model, before: dict[str, Any] | None, also: list[Action] | None = None, with_items: Sequence[Model] = ()
) -> None:
    """Writes only the attributes that differ from `before` (the item's `serialize()` when it was read), so a
    concurrent update of other attributes (a scenario adding a score or a list) is kept; a new item (`before` None)
    is created only if absent (AlreadyExists). `also`: atomic actions on attributes left unchanged in hand
    (counters), in the same request; the item is then read again, counters refreshed in hand.

    `with_items`: other items written in the same transaction, each only if absent (an event's history record with
    its contact: one request, both or neither). Their keys make the write happen once: a retry of the same event
    finds its record there and writes nothing (AlreadyApplied), its counters counted once."""
    key_attribute = hash_key(item)
    try:
        if before is None and not with_items:
            create_new(item, key_attribute)
            return
        actions: list[Action] = list(also or [])
        if before is not None:
            actions += changes(item, before)
        if not with_items:
            if actions:
                item.update(actions=actions)  # returns the item as stored: counters refreshed in hand
            return
        if before is not None and not actions and len(with_items) == 1:  # the record alone: a conditional put
            try:
                create_new(with_items[0], hash_key(with_items[0]))
            except AlreadyExists:
                raise AlreadyApplied(type(with_items[0]).__name__) from None
            return
        with TransactWrite(connection=connection(item.Meta.region)) as transaction:
            if before is None:
                transaction.save(item, condition=key_attribute.does_not_exist())
            elif actions:
                transaction.update(item, actions=actions)
            for other in with_items:
                transaction.save(other, condition=hash_key(other).does_not_exist())
        if also:
            item.refresh()
    except TransactWriteError as error:
        # In the order PynamoDB sends them: the puts (a new item first, then the records), then the update, which
        # has no condition: a failed condition is the new item's (index 0) or a record's.
        reasons = [reason.code if reason is not None else None for reason in error.cancellation_reasons or []]
        if before is None and reasons[:1] == ["ConditionalCheckFailed"]:
            raise AlreadyExists(type(item).__name__) from None
        if "ConditionalCheckFailed" in reasons:
            raise AlreadyApplied(type(with_items[0]).__name__) from None
        raise failure(error) from error
    except AlreadyExists:
        raise
    except PynamoDBException as error:
        raise failure(error) from error


def hash_key(item: Model) -> Any:
    """The item's partition key attribute: `attribute_not_exists` on it holds when no item has the whole key."""
    return next(a for a in item.get_attributes().values() if a.is_hash_key)


@lru_cache(maxsize=4)
def connection(region: str) -> Connection:
    """The connection transactions go through (models keep their own), made once per container."""
    return Connection(region=region)


def transact(items: list[dict[str, Any]], model: type[Model]) -> list[str]:
    """One TransactWriteItems of items in DynamoDB's own form, through `model`'s client: [] when written, else why
    each item was refused (its cancellation reason's code, "None" where its own condition held). Other failures:
    StorageError."""
    client = client_of(model)  # PynamoDB's transaction builds its requests at twice the cost
    with botocore_errors():
        try:
            client.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = [str(reason.get("Code")) for reason in error.response.get("CancellationReasons") or []]
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException" or not reasons:
                raise
            return reasons
    return []


def client_of(model: type[Model]) -> Any:
    """botocore's DynamoDB client of a bound model, PynamoDB's own (made once per bound model, where its requests go
    too): for what storage asks DynamoDB itself, PynamoDB's own requests costing more than the items' conversion."""
    return model._get_connection().connection.client


@contextmanager
def botocore_errors() -> Iterator[None]:
    """botocore's errors as the domain's: StorageBusy when the same request may succeed later."""
    try:
        yield
    except ClientError as error:
        raise StorageBusy(str(error)) if busy(error) else StorageError(str(error)) from error
    except (BotoConnectionError, HTTPClientError) as error:
        raise StorageBusy(str(error)) from error


def write_together(
    saves: Sequence[tuple[Model, Condition]], updates: Sequence[tuple[Model, list[Action], Condition]]
) -> int | None:
    """Conditional puts and updates in one transaction: None when all applied, else the index (puts first, then
    updates) of the first item whose condition did not hold; nothing is written then. Other failures: StorageError."""
    first: Model = saves[0][0] if saves else updates[0][0]
    try:
        with TransactWrite(connection=connection(first.Meta.region)) as transaction:
            for item, condition in saves:
                transaction.save(item, condition=condition)
            for item, actions, condition in updates:
                transaction.update(item, actions=actions, condition=condition)
    except TransactWriteError as error:
        reasons = error.cancellation_reasons or []
        for index, reason in enumerate(reasons):
            if reason is not None and reason.code == "ConditionalCheckFailed":
                return index
        if any(reason is not None and reason.code == "TransactionConflict" for reason in reasons):
            raise Conflict(str(error)) from error
        raise failure(error) from error
    except PynamoDBException as error:
        raise failure(error) from error
    return None


def append_lift(
    model: type[SuppressionLiftsModel],
    key: str,
    reason: str,
    at: Any,
    by: str,
    suppression_reason: str | None,
    suppressed_at: Any,
) -> None:
    """Appends a lift to an address's lift records (created with the first): one atomic update."""
    lift = SuppressionLift(
        reason=reason, lifted_at=at, lifted_by=by, suppression_reason=suppression_reason, suppressed_at=suppressed_at
    )
    try:
        model(address_hash=key).update(actions=[model.lifts.set((model.lifts | []).append([lift]))])
    except PynamoDBException as error:
        raise failure(error) from error


def delete(item: Model) -> None:
    """Deletes the item (nothing happens if it is gone already)."""
    try:
        item.delete()
    except PynamoDBException as error:
        raise failure(error) from error


def get_or_none(model: type[M], key: str, *, range_key: str | None = None, consistent: bool = False) -> M | None:
    """The item of this key, or None: one GetItem (`client_of`)."""
    names = key_names(model)  # every key of these tables is a string
    wire = {names[0]: {STRING: key}}
    if range_key is not None and names[1] is not None:
        wire[names[1]] = {STRING: range_key}
    client = client_of(model)
    with botocore_errors():
        answer = client.get_item(TableName=model.Meta.table_name, Key=wire, ConsistentRead=consistent)
    item = answer.get("Item")
    return model.from_raw_data(item) if item else None


def query(
    model: type[M],
    hash_value: str,
    range_condition: Condition | None = None,
    filter_condition: Condition | None = None,
) -> list[M]:
    """Every item of a partition (under a condition on its sort key, filtered), all pages (`client_of`)."""
    names: dict[str, str] = {key_names(model)[0]: "#0"}
    values: dict[str, Any] = {":0": {STRING: hash_value}}
    key_condition = "#0 = :0"
    if range_condition is not None:
        key_condition += " AND " + range_condition.serialize(names, values)
    request: dict[str, Any] = {"TableName": model.Meta.table_name, "KeyConditionExpression": key_condition}
    if filter_condition is not None:
        request["FilterExpression"] = filter_condition.serialize(names, values)
    request["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in names.items()}
    request["ExpressionAttributeValues"] = values
    client = client_of(model)
    found: list[M] = []
    with botocore_errors():
        while True:
            page = client.query(**request)
            found += [model.from_raw_data(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


Key = tuple[type[Model], str, str | None]  # a model (bound to its table), its hash key and its range key


def get_together(keys: Sequence[Key], consistent: Sequence[type[Model]] = ()) -> dict[Key, Model]:
    """The items of these keys, over any tables, in one BatchGetItem (more only past its 100 keys, or for keys
    DynamoDB left unprocessed): what an event needs first is read in one request. Missing items are absent.
    `consistent`: the models whose table is read strongly consistent (twice the read units of an eventual read)."""
    strongly = {model.Meta.table_name for model in consistent}
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    by_table: dict[str, list[Key]] = {}
    for key in wanted:
        by_table.setdefault(key[0].Meta.table_name, []).append(key)
    client = client_of(wanted[0][0])
    found: dict[Key, Model] = {}
    with botocore_errors():
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]
            request: dict[str, Any] = {}
            for model, hash_value, range_value in chunk:
                names = key_names(model)  # every key of these tables is a string
                wire = {str(names[0]): {"S": hash_value}}
                if range_value is not None and names[1] is not None:
                    wire[names[1]] = {"S": range_value}
                table_name = model.Meta.table_name
                table = request.get(table_name)
                if table is None:
                    table = request[table_name] = {"Keys": []}
                    if table_name in strongly:
                        table["ConsistentRead"] = True
                table["Keys"].append(wire)
            while request:
                answer = client.batch_get_item(RequestItems=request)
                for table_name, items in answer.get("Responses", {}).items():
                    for raw in items:
                        for key in by_table[table_name]:
                            names = key_names(key[0])
                            if raw[names[0]]["S"] == key[1] and (key[2] is None or raw[names[1]]["S"] == key[2]):
                                found[key] = key[0].from_raw_data(raw)
                request = answer.get("UnprocessedKeys") or {}
    return found


@lru_cache(maxsize=64)
def key_names(model: type[Model]) -> tuple[str, str | None]:
    attributes = model.get_attributes().values()
    hash_name = next(a.attr_name for a in attributes if a.is_hash_key)
    range_name = next((a.attr_name for a in attributes if a.is_range_key), None)
    return hash_name, range_name
