"""Request and response shapes of the cases API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knotenpunkt.i18n import register_messages

register_messages(
    {
        "held_in_future": {
            "de": "Eine Beratung in der Zukunft kann nicht erfasst werden.",
            "en": "A consultation in the future cannot be recorded.",
        },
        "case_closed": {
            "de": "Der Fall ist geschlossen; bitte zuerst wieder öffnen.",
            "en": "The case is closed; reopen it first.",
        },
    }
)


class ConsultationInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    held_on: date = Field(description="Day of the consultation.")
    duration_minutes: int = Field(ge=1, le=600, description="Length in minutes.")
    topics: list[str] = Field(min_length=1, max_length=20, description="Counselling topic codes.")
    family_members_counselled: int = Field(default=0, ge=0, le=30, description="Co-counselled family members.")
    note: str | None = Field(default=None, max_length=10_000, description="Free-text note; stays in cases.")

    @field_validator("held_on")
    @classmethod
    def not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("code:held_in_future")
        return value


class Case(BaseModel):
    case_id: str
    client_id: str
    service_line: str
    office_id: str
    status: str
    opened_at: str
    consultations: int
