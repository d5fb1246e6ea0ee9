"""Referral events: referrals publishes them on its lifecycle topic and, for ReferralSent, on the
receiving agency's own topic; agencies answer with ReferralAccepted / ReferralDeclined on their
answers topic. The same models serve both sides: an agency builds against exactly these."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from knotenpunkt import topics
from knotenpunkt.events.base import Event, register


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_RESPONSIBLE = "not_responsible"
    PERSON_UNREACHABLE = "person_unreachable"
    OTHER = "other"


class SharedPersonData(BaseModel):
    """Personal data shared with one agency under the person's consent; categories not consented
    to are absent (null)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    categories: tuple[str, ...] = Field(description="The consented data categories this block contains.")
    family_name: str | None = Field(default=None, description="Family name (category 'name').")
    given_name: str | None = Field(default=None, description="Given name (category 'name').")
    phone: str | None = Field(default=None, description="Phone (category 'contact').")
    email: str | None = Field(default=None, description="E-mail (category 'contact').")
    birth_date: date | None = Field(default=None, description="Date of birth (category 'birth_date').")
    residence_status: str | None = Field(default=None, description="Residence status category ('residence_status').")


@register
class ReferralSent(Event):
    """A case manager referred a person to a partner agency."""

    event_type = "knotenpunkt.referrals.ReferralSent.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral; answers must quote it.")
    case_id: UUID = Field(description="Case the referral was made from.")
    agency_id: str = Field(description="Id of the partner agency the person is referred to.")
    topic_code: str = Field(description="Counselling topic code the referral is about.")
    office_id: str = Field(description="Office that sent the referral.")
    sent_at: datetime = Field(description="When the referral was sent (UTC).")
    answer_due_on: date | None = Field(
        default=None, description="The agency's promised answer date; without an answer the referral expires then."
    )
    shared_data: SharedPersonData | None = Field(
        default=None,
        description="Only on the receiving agency's own topic, never on the lifecycle topic: exactly the "
        "personal data categories the person consented to share with this agency.",
    )


@register
class ReferralAccepted(Event):
    """The partner agency accepted the referral."""

    event_type = "knotenpunkt.referrals.ReferralAccepted.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral being answered.")
    agency_id: str = Field(description="Id of the agency that accepted.")
    accepted_at: datetime = Field(description="When the agency accepted (UTC).")


@register
class ReferralDeclined(Event):
    """The partner agency declined the referral."""

    event_type = "knotenpunkt.referrals.ReferralDeclined.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral being answered.")
    agency_id: str = Field(description="Id of the agency that declined.")
    declined_at: datetime = Field(description="When the agency declined (UTC).")
    reason: DeclineReason = Field(description="Why the agency declined.")


class CompletionOutcome(StrEnum):
    SUCCESSFUL = "successful"
    PARTLY_SUCCESSFUL = "partly_successful"
    NOT_SUCCESSFUL = "not_successful"
    PERSON_DID_NOT_COME = "person_did_not_come"


@register
class ReferralCompleted(Event):
    """The agency finished its work on the referral and reports the outcome."""

    event_type = "knotenpunkt.referrals.ReferralCompleted.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral.")
    agency_id: str = Field(description="Id of the agency that completed it.")
    completed_at: datetime = Field(description="When (UTC).")
    outcome: CompletionOutcome = Field(description="What came of it.")


@register
class ReferralWithdrawn(Event):
    """The case manager (or a withdrawn consent) took the referral back; the agency stops."""

    event_type = "knotenpunkt.referrals.ReferralWithdrawn.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral.")
    agency_id: str = Field(description="Agency the referral had been sent to.")
    withdrawn_at: datetime = Field(description="When (UTC).")
    reason: str = Field(
        description="Why: 'by_case_manager', 'consent_withdrawn', 'consent_expired' (the consent's validity ended) "
        "or 'client_erased' (the person's data was erased)."
    )


@register
class ReferralReminderSent(Event):
    """The agency was reminded that its answer is due soon."""

    event_type = "knotenpunkt.referrals.ReferralReminderSent.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral.")
    agency_id: str = Field(description="Agency reminded.")
    answer_due_on: date = Field(description="The promised answer date.")
    reminded_at: datetime = Field(description="When (UTC).")


@register
class ReferralExpired(Event):
    """The agency did not answer within the time it promised."""

    event_type = "knotenpunkt.referrals.ReferralExpired.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="Id of the referral.")
    agency_id: str = Field(description="Agency that did not answer.")
    expired_at: datetime = Field(description="When (UTC).")


@register
class UnmetNeedRecorded(Event):
    """A need nobody could meet (declined for capacity, or expired): an entry in the gap register."""

    event_type = "knotenpunkt.referrals.UnmetNeedRecorded.v1"
    topic = topics.REFERRALS

    referral_id: UUID = Field(description="The referral that revealed the gap.")
    topic_code: str = Field(description="Counselling topic of the need.")
    agency_kind: str = Field(description="Kind of agency that could not take it.")
    office_id: str = Field(description="Office that referred.")
    cause: str = Field(description="'no_capacity' or 'expired'.")
    recorded_at: datetime = Field(description="When (UTC).")
