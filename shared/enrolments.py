"""Who is in which scenario: one record per execution, found by contact (goals, re-entry, the send re-check)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.storage import EnrolmentModel, Tables, get_or_none

KEEP = timedelta(days=400)  # longer than any execution


def key(scenario: str, execution_arn_or_name: str) -> str:
    return f"{scenario}#{execution_arn_or_name.rsplit(':', 1)[-1]}"


def of(t: Tables, contact_id: str, scenario: str) -> list[EnrolmentModel]:
    return list(t.enrolments.query(contact_id, EnrolmentModel.key.startswith(f"{scenario}#")))


def record(t: Tables, contact_id: str, scenario: str, execution_arn: str, now: datetime) -> None:
    t.enrolments(
        contact_id=contact_id,
        key=key(scenario, execution_arn),
        scenario=scenario,
        execution_arn=execution_arn,
        status="active",
        started_at=now,
        expires_at=now + KEEP,
    ).save()


def close(enrolment: EnrolmentModel, converted_by: str | None, now: datetime) -> None:
    """Marks an enrolment converted (its goal stopped it) or finished (it had ended by itself)."""
    actions: list[Any] = [
        EnrolmentModel.status.set("converted" if converted_by else "finished"),
        EnrolmentModel.ended_at.set(now),
    ]
    if converted_by:
        actions.append(EnrolmentModel.goal_event.set(converted_by))
    enrolment.update(actions=actions)


def goal_reached(t: Tables, contact_id: str, scenario: str, execution_arn: str) -> bool:
    """For the send re-check: did a goal stop this execution (a stop may race a Task already running)?"""
    enrolment = get_or_none(t.enrolments, contact_id, range_key=key(scenario, execution_arn))
    return enrolment is not None and enrolment.status == "converted"


def await_event(
    t: Tables, contact_id: str, scenario: str, execution_arn: str, event: str, token: str, now: datetime
) -> None:
    """Keeps the task token of a wait_for step, for the event's processing to resume the execution."""
    model = t.enrolments
    model(contact_id=contact_id, key=key(scenario, execution_arn)).update(
        actions=[
            EnrolmentModel.scenario.set(scenario),
            EnrolmentModel.execution_arn.set(execution_arn),
            EnrolmentModel.status.set(EnrolmentModel.status | "active"),
            EnrolmentModel.started_at.set(EnrolmentModel.started_at | now),
            EnrolmentModel.expires_at.set(EnrolmentModel.expires_at | now + KEEP),
            EnrolmentModel.waiting_event.set(event),
            EnrolmentModel.task_token.set(token),
        ]
    )


def waiting_for(t: Tables, contact_id: str, event: str) -> list[EnrolmentModel]:
    """The contact's executions holding a task token for this event (a contact has few enrolments)."""
    return [e for e in t.enrolments.query(contact_id) if e.waiting_event == event and e.task_token]


def stop_waiting(enrolment: EnrolmentModel) -> None:
    enrolment.update(actions=[EnrolmentModel.waiting_event.remove(), EnrolmentModel.task_token.remove()])
