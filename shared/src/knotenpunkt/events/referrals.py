"""Referral events: referrals publishes them on its lifecycle topic and, for ReferralSent, on the
receiving agency's own topic; agencies answer with ReferralAccepted / ReferralDeclined on their
answers topic. The same models serve both sides: an agency builds against exactly these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from knotenpunkt import topics
from knotenpunkt.events.base import Event, register


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_RESPONSIBLE = "not_responsible"
    PERSON_UNREACHABLE = "person_unreachable"
    OTHER = "other"


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
