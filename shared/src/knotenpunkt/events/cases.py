"""Events published by cases. Free-text notes never travel in an event."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from knotenpunkt import topics
from knotenpunkt.events.base import Event, register
from knotenpunkt.events.common import ServiceLine


class ConsultationMode(StrEnum):
    IN_PERSON = "in_person"
    PHONE = "phone"
    VIDEO = "video"
    GROUP = "group"
    OPEN_OFFICE_HOURS = "open_office_hours"


class GoalStatus(StrEnum):
    OPEN = "open"
    REACHED = "reached"
    DROPPED = "dropped"


@register
class CaseOpened(Event):
    """A case was opened for a person in one service line and office."""

    event_type = "knotenpunkt.cases.CaseOpened.v1"
    topic = topics.CASES

    case_id: UUID = Field(description="Id of the new case.")
    service_line: ServiceLine = Field(description="Service line the case belongs to.")
    office_id: str = Field(description="Office that runs the case.")
    opened_at: datetime = Field(description="When the case was opened (UTC).")
    case_manager_id: str | None = Field(default=None, description="Staff id of the case manager, once assigned.")
    opened_by_hand: bool = Field(
        default=False, description="True when staff opened it; false when opened on registration."
    )


@register
class CaseAssigned(Event):
    """A case manager was assigned to a case."""

    event_type = "knotenpunkt.cases.CaseAssigned.v1"
    topic = topics.CASES

    case_id: UUID = Field(description="The case.")
    case_manager_id: str = Field(description="Staff id of the assigned case manager.")
    assigned_at: datetime = Field(description="When (UTC).")


@register
class CaseTransferred(Event):
    """A case moved to another case manager or office."""

    event_type = "knotenpunkt.cases.CaseTransferred.v1"
    topic = topics.CASES

    case_id: UUID = Field(description="The case.")
    from_office_id: str = Field(description="Office before the transfer.")
    to_office_id: str = Field(description="Office after the transfer.")
    from_case_manager_id: str | None = Field(default=None, description="Case manager before, if any.")
    to_case_manager_id: str | None = Field(default=None, description="Case manager after, if any.")
    reason: str = Field(description="Reason code for the transfer.")
    transferred_at: datetime = Field(description="When (UTC).")


@register
class CaseClosed(Event):
    """A case was closed with a reason from the code list."""

    event_type = "knotenpunkt.cases.CaseClosed.v1"
    topic = topics.CASES

    case_id: UUID = Field(description="The case.")
    service_line: ServiceLine = Field(description="Service line of the case.")
    office_id: str = Field(description="Office of the case.")
    reason: str = Field(description="Closing reason code.")
    closed_at: datetime = Field(description="When (UTC).")


@register
class CaseReopened(Event):
    """A closed case was reopened."""

    event_type = "knotenpunkt.cases.CaseReopened.v1"
    topic = topics.CASES

    case_id: UUID = Field(description="The case.")
    reopened_at: datetime = Field(description="When (UTC).")


@register
class PlanGoalSet(Event):
    """A goal was added to the integration support plan of a case."""

    event_type = "knotenpunkt.cases.PlanGoalSet.v1"
    topic = topics.CASES

    goal_id: UUID = Field(description="Id of the goal.")
    case_id: UUID = Field(description="The case.")
    topic_code: str = Field(description="Counselling topic the goal belongs to.")
    target_date: date | None = Field(default=None, description="When the goal should be reached.")
    set_at: datetime = Field(description="When (UTC).")


@register
class PlanGoalStatusChanged(Event):
    """A plan goal was reached, dropped or opened again."""

    event_type = "knotenpunkt.cases.PlanGoalStatusChanged.v1"
    topic = topics.CASES

    goal_id: UUID = Field(description="Id of the goal.")
    case_id: UUID = Field(description="The case.")
    status: GoalStatus = Field(description="The goal's new status.")
    changed_at: datetime = Field(description="When (UTC).")


@register
class ConsultationRecorded(Event):
    """A case manager recorded a consultation held in a case."""

    event_type = "knotenpunkt.cases.ConsultationRecorded.v1"
    topic = topics.CASES

    consultation_id: UUID = Field(description="Id of the consultation.")
    case_id: UUID = Field(description="Case the consultation belongs to.")
    service_line: ServiceLine = Field(description="Service line of the case.")
    office_id: str = Field(description="Office of the case.")
    held_on: date = Field(description="Day the consultation took place.")
    duration_minutes: int = Field(ge=1, le=600, description="Length of the consultation.")
    topics: tuple[str, ...] = Field(description="Codes of the counselling topics discussed.")
    family_members_counselled: int = Field(
        ge=0, description="Number of co-counselled family members (counted by the funders)."
    )
    mode: ConsultationMode = Field(default=ConsultationMode.IN_PERSON, description="How the consultation took place.")
    language: str | None = Field(default=None, description="Language of the consultation (ISO 639-1).")
    interpreter_used: bool = Field(default=False, description="Whether an interpreter took part.")
    case_manager_id: str | None = Field(default=None, description="Staff id of who held the consultation.")
