"""Request and response shapes of intake's HTTP API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

from intake.domain import MINIMUM_AGE, age_on
from knotenpunkt.i18n import register_messages

register_messages(
    {
        "birth_date_in_future": {
            "de": "Das Geburtsdatum liegt in der Zukunft.",
            "en": "The date of birth is in the future.",
        },
        "too_young": {
            "de": f"Die Beratung beginnt ab {MINIMUM_AGE} Jahren.",
            "en": f"Counselling starts at the age of {MINIMUM_AGE}.",
        },
        "unknown_office": {
            "de": "Diese Beratungsstelle ist nicht bekannt.",
            "en": "This office is not known.",
        },
    }
)


class Registration(BaseModel):
    """A person registered at the counter."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    family_name: str = Field(min_length=1, max_length=200, description="Family name.")
    given_name: str = Field(min_length=1, max_length=200, description="Given name(s).")
    birth_date: date = Field(description="Date of birth (YYYY-MM-DD).")
    office_id: str = Field(min_length=1, max_length=100, description="Office where the person registers.")
    phone: str | None = Field(default=None, max_length=50, description="Phone number (stays in intake).")
    email: str | None = Field(default=None, max_length=200, description="E-mail (stays in intake).")

    @field_validator("birth_date")
    @classmethod
    def plausible_birth_date(cls, value: date) -> date:
        today = date.today()
        if value > today:
            raise ValueError("code:birth_date_in_future")
        if age_on(value, today) < MINIMUM_AGE:
            raise ValueError("code:too_young")
        return value


class Registered(BaseModel):
    client_id: str
    service_line: str
    office_id: str
    registered_at: str


class Client(BaseModel):
    client_id: str
    family_name: str
    given_name: str
    birth_date: date
    office_id: str
    service_line: str
