from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from knotenpunkt.i18n import register_messages

register_messages(
    {
        "unknown_agency": {
            "de": "Diese Partnerstelle ist nicht im Verzeichnis.",
            "en": "This partner agency is not in the directory.",
        },
    }
)


class ReferralInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    case_id: UUID = Field(description="Case the person is referred from.")
    agency_id: str = Field(min_length=1, max_length=100, description="Partner agency id.")
    topic_code: str = Field(min_length=1, max_length=100, description="Topic the referral is about.")


class Referral(BaseModel):
    referral_id: str
    case_id: str
    client_id: str
    agency_id: str
    topic_code: str
    status: str
    sent_at: str
    answered_at: str | None
    decline_reason: str | None
