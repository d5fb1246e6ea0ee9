"""Events published by cases. Free-text notes never travel in an event."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import Field

from knotenpunkt import topics
from knotenpunkt.events.base import Event, register
from knotenpunkt.events.common import ServiceLine


@register
class CaseOpened(Event):
    """A case was opened for a person in one service line and office."""

    event_type = "knotenpunkt.cases.CaseOpened.v1"
    topic = topics.CASES

    case_id: UUID = Field(description="Id of the new case.")
    service_line: ServiceLine = Field(description="Service line the case belongs to.")
    office_id: str = Field(description="Office that runs the case.")
    opened_at: datetime = Field(description="When the case was opened (UTC).")


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
