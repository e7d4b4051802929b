"""The send record per (execution, step): claimed before SES is called, so a retried Task never sends twice."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta

from pynamodb.expressions.update import Action

from shared.storage import AlreadyExists, SendModel, Tables, create_new

KEEP = timedelta(days=400)  # longer than any execution (one year)


def send_id(execution: str, step: str) -> str:
    return hashlib.sha256(f"{execution}|{step}".encode()).hexdigest()


def claim(
    tables: Tables,
    key: str,
    *,
    scenario: str,
    step: str,
    contact_id: str,
    channel: str,
    now: datetime,
    discount_code: str | None = None,
    discount_pool: str | None = None,
    subject: str | None = None,
    variant: str | None = None,
) -> bool:
    """True if this call owns the send; False if an earlier attempt already claimed it."""
    record = tables.sends(
        send_id=key,
        status="claimed",
        scenario=scenario,
        step=step,
        variant=variant,
        contact_id=contact_id,
        channel=channel,
        claimed_at=now,
        discount_code=discount_code,
        discount_pool=discount_pool,
        subject=subject,
        expires_at=now + KEEP,
    )
    try:
        create_new(record, SendModel.send_id)
    except AlreadyExists:
        return False
    return True


OUTCOMES = ("deferred", "capped", "failed")


def record_outcome(
    tables: Tables,
    key: str,
    status: str,
    *,
    scenario: str,
    step: str,
    variant: str | None,
    contact_id: str,
    channel: str,
    now: datetime,
) -> None:
    """A send held back by the sending habits (deferred, capped) or refused by SES or SNS (failed), recorded beside
    the send's own record (`<send id>#<status>`) for the reports to count (from the table's stream), once however
    often it happens: a send deferred three times is one deferred send. Only written when it happens: the normal
    send path writes nothing more. The person's erasure finds it by contact, as their sends."""
    if status not in OUTCOMES:
        raise ValueError(f"not a send outcome: {status!r}")
    record = tables.sends(
        send_id=f"{key}#{status}",
        status=status,
        scenario=scenario,
        step=step,
        variant=variant,
        contact_id=contact_id,
        channel=channel,
        claimed_at=now,
        expires_at=now + KEEP,
    )
    with contextlib.suppress(AlreadyExists):  # recorded the first time
        create_new(record, SendModel.send_id)


def release(tables: Tables, key: str) -> None:
    """Gives the claim back when nothing went out, so the retry may send."""
    tables.sends(send_id=key).delete()


def mark_sent(
    tables: Tables,
    key: str,
    message_id: str,
    now: datetime,
    *,
    segments: int | None = None,
    encoding: str | None = None,
) -> None:
    """An SMS also records its segment count and encoding: what the operator bills."""
    actions: list[Action] = [
        SendModel.status.set("sent"),
        SendModel.message_id.set(message_id),
        SendModel.sent_at.set(now),
    ]
    if segments is not None:
        actions.append(SendModel.segments.set(segments))
    if encoding is not None:
        actions.append(SendModel.encoding.set(encoding))
    tables.sends(send_id=key).update(actions=actions)
