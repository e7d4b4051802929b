"""One event's writes: gathered while the event is processed, written at its end in one transaction with its mark.

The processing reads what the event needs, then decides: the contact changes in hand, and every other item it
would write (history record, identities, dates, enrolments, list members, a scenario's place) is added here instead
of written. `commit` writes them all in one TransactWriteItems with the event's processed mark (storage.MarkModel),
or none of them: the contact as one update of what differs from the contact as read, under the conditions the
decisions took (score, caps counters and stage as read, list memberships, order counters); every other item as its
own put, update or delete. A condition that no longer holds names what moved: the mark (another delivery processed
the event: `Processed`), or anything else (`Changed`: read again, decide again).

What the event does outside DynamoDB (executions started and stopped, waits resumed, events queued) is kept as
`effects`: stored in the mark, carried out after the transaction, and again by a redelivery that finds the mark, each
under its own id (an execution's name, an event's id), so that a crash between the two loses nothing and doubles
nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action, Update
from pynamodb.models import Model

from shared.items import changes, key_of
from shared.storage import (
    BUSY_CODES,
    AlreadyExists,
    ContactModel,
    EventModel,
    MarkModel,
    StorageBusy,
    StorageError,
    create_new,
    failure,
    key_names,
    transact,
)

Effect = dict[str, Any]  # {"start": arn, "name", "input"} | {"stop": arn, "cause"} | {"resume": token, "output"} ...
MARK = "mark"
CONTACT = "contact"


class Processed(StorageError):
    """The event's mark is there: a delivery of it wrote everything already."""


class Changed(StorageError):
    """A condition a decision took no longer holds (`label` names the item): read again and decide again."""

    def __init__(self, label: str) -> None:
        super().__init__(f"changed meanwhile: {label}")
        self.label = label


@dataclass
class _Op:
    kind: str  # put | update | delete | check (the contact's condition alone)
    item: Model
    label: str
    condition: Condition | None = None
    actions: list[Action] = field(default_factory=list)
    absent: bool = False  # put only if no item has its key (written as DynamoDB's own words: no condition to build)


def _key(item: Model) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The item's table and key."""
    return item.Meta.table_name, tuple(sorted((name, str(value)) for name, value in key_of(item).items()))


_REQUEST = {"check": "ConditionCheck", "delete": "Delete", "put": "Put", "update": "Update"}


def _request(op: _Op) -> dict[str, Any]:
    """The operation as one of TransactWriteItems' items (PynamoDB's expressions, serialised as PynamoDB does)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    body: dict[str, Any] = {"TableName": op.item.Meta.table_name}
    if op.kind == "put":
        body["Item"] = op.item.serialize()
    else:
        body["Key"] = key_of(op.item)
    if op.absent:
        names[key_names(type(op.item))[0]] = "#0"
        body["ConditionExpression"] = "attribute_not_exists (#0)"
    elif op.condition is not None:
        body["ConditionExpression"] = op.condition.serialize(names, values)
    if op.kind == "update":
        body["UpdateExpression"] = Update(*op.actions).serialize(names, values)
    if names:
        body["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in names.items()}
    if values:
        body["ExpressionAttributeValues"] = values
    return {_REQUEST[op.kind]: body}


@dataclass
class Writes:
    """What one event writes; `refused`: labels whose condition failed in an earlier attempt (a full scenario)."""

    mark: MarkModel
    refused: frozenset[str] = frozenset()
    effects: list[Effect] = field(default_factory=list)
    contact: ContactModel | None = None
    before: dict[str, Any] | None = None  # the contact as read; None: created by the event
    conditions: list[Condition] = field(default_factory=list)  # the contact's
    ops: list[_Op] = field(default_factory=list)

    def keep(self, contact: ContactModel, before: dict[str, Any] | None) -> None:
        """The contact written at the end: created (`before` None) or updated by what differs from `before`."""
        self.contact, self.before = contact, before

    def condition(self, condition: Condition) -> None:
        """A condition on the contact as stored when written (what a decision read)."""
        self.conditions.append(condition)

    def put(self, item: Model, condition: Condition | None = None, label: str | None = None) -> None:
        self.ops.append(_Op("put", item, label or type(item).__name__, condition))

    def create(self, item: Model, label: str | None = None) -> None:
        """Put only if absent (an identity, a record): present means another event wrote it meanwhile."""
        self.ops.append(_Op("put", item, label or type(item).__name__, absent=True))

    def update(
        self, item: Model, actions: list[Action], condition: Condition | None = None, label: str | None = None
    ) -> None:
        key = _key(item)
        for op in self.ops:  # one operation per item in a transaction: a second update joins the first
            if op.kind == "update" and _key(op.item) == key:
                op.actions += actions
                if condition is not None:
                    op.condition = condition if op.condition is None else op.condition & condition
                return
        self.ops.append(_Op("update", item, label or type(item).__name__, condition, list(actions)))

    def withdraw(self, label: str) -> bool:
        """Takes back the operation of this label, if any (a place a goal frees, taken again by a start)."""
        kept = [op for op in self.ops if op.label != label]
        withdrawn = len(kept) < len(self.ops)
        self.ops = kept
        return withdrawn

    def delete(self, item: Model, label: str | None = None) -> None:
        self.ops.append(_Op("delete", item, label or type(item).__name__))

    def records(self, contact_id: str) -> list[EventModel]:
        """The contact's history records put in this transaction (the event's own): what a read of its history
        before the write must count too."""
        return [op.item for op in self.ops if isinstance(op.item, EventModel) and op.item.contact_id == contact_id]

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)

    def _contact_op(self) -> _Op | None:
        contact = self.contact
        if contact is None:
            return None
        if self.before is None:
            return _Op("put", contact, CONTACT, absent=True)
        actions = changes(contact, self.before)
        if not actions and not self.conditions:
            return None
        condition = ContactModel.contact_id.exists()  # never a partial contact brought back after an erasure
        for extra in self.conditions:
            condition &= extra
        if not actions:  # a decision read it, nothing changes: checked only
            return _Op("check", contact, CONTACT, condition)
        return _Op("update", contact, CONTACT, condition, actions)

    def commit(self) -> None:
        """Everything in one request with the mark (a single item: a conditional put); Processed or Changed when a
        condition did not hold, nothing written then."""
        ops = [_Op("put", self.mark, MARK, absent=True)]
        contact = self._contact_op()
        ops += [contact] if contact is not None else []
        ops += self.ops
        ops = _spill(ops)
        if len(ops) == 1:
            try:
                create_new(self.mark, MarkModel.id)
            except AlreadyExists:
                raise Processed(self.mark.id) from None
            return
        reasons = transact([_request(op) for op in ops], type(self.mark))
        for index, reason in enumerate(reasons):
            if reason == "ConditionalCheckFailed":
                label = ops[index].label if index < len(ops) else "?"
                raise Processed(self.mark.id) if label == MARK else Changed(label)
        if "TransactionConflict" in reasons:
            raise Changed("conflict")
        if reasons:
            why = f"transaction cancelled: {', '.join(sorted(set(reasons) - {'None'}))}"
            raise StorageBusy(why) if set(reasons) & BUSY_CODES else StorageError(why)


TRANSACTION_ITEMS = 100  # DynamoDB's most items in one TransactWriteItems


def _spill(ops: list[_Op]) -> list[_Op]:
    """Past a transaction's 100 items (a contact with very many dated attributes or lists), the unconditional puts
    and deletes (date index entries, list members: written again the same by a retry) go first in batches; the
    rest stays one transaction."""
    if len(ops) <= TRANSACTION_ITEMS:
        return ops
    free = [op for op in ops if op.kind in ("put", "delete") and op.condition is None and not op.absent]
    spilled = free[: len(ops) - TRANSACTION_ITEMS]
    by_model: dict[type[Model], list[_Op]] = {}
    for op in spilled:
        by_model.setdefault(type(op.item), []).append(op)
    try:
        for model, batch_ops in by_model.items():
            with model.batch_write() as batch:
                for op in batch_ops:
                    if op.kind == "put":
                        batch.save(op.item)
                    else:
                        batch.delete(op.item)
    except PynamoDBException as error:
        raise failure(error) from error
    return [op for op in ops if all(op is not other for other in spilled)]


_open: contextvars.ContextVar[Writes | None] = contextvars.ContextVar("parcours_writes", default=None)


def current() -> Writes | None:
    """The writes of the event in hand, while it is processed; None elsewhere (a scenario's Task writes at once)."""
    return _open.get()


@contextmanager
def gathering(writes: Writes) -> Iterator[Writes]:
    token = _open.set(writes)
    try:
        yield writes
    finally:
        _open.reset(token)
