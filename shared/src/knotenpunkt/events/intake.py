"""Events published by intake. No names, birth dates, addresses or phone numbers, ever."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from pydantic import Field, field_validator

from knotenpunkt import topics
from knotenpunkt.events.base import Event, register
from knotenpunkt.events.common import (
    AccessRoute,
    AgeBand,
    AgencyKind,
    ConsentPurpose,
    DataCategory,
    Gender,
    ServiceLine,
)


def coarse_to_day(value: datetime) -> datetime:
    """Midnight UTC of the value's day (UTC)."""
    moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@register
class ClientRegistered(Event):
    """A person was registered at an office and routed to a service line."""

    event_type = "knotenpunkt.intake.ClientRegistered.v1"
    topic = topics.CLIENTS

    registered_at: datetime = Field(
        description="The day intake registered the person: midnight UTC of that day. Coarsened on purpose: to the "
        "microsecond it singled each person out on a topic kept for ever (docs/events.md, 'What each topic carries')."
    )
    age_band: AgeBand = Field(description="Age band at registration; never the birth date.")
    service_line: ServiceLine = Field(
        description="The service line the routing rules chose (JMD 12 to under 27, MBE from 27)."
    )
    office_id: str = Field(description="Id of the office (regional support center) routed to.")
    service_lines: tuple[ServiceLine, ...] = Field(
        default=(),
        description="Every service line the routing rules chose (a person may be in several at once); "
        "empty in events from before this field existed, then only `service_line` applies.",
    )
    gender: Gender = Field(default=Gender.NOT_STATED, description="Gender as stated by the person.")
    district: str | None = Field(default=None, description="City district of the address (never the address).")
    nationalities: tuple[str, ...] = Field(
        default=(), description="ISO 3166-1 alpha-2 codes; 'XX' for stateless, empty if unknown."
    )
    languages: tuple[str, ...] = Field(default=(), description="ISO 639-1 codes of the languages spoken.")
    counselling_language: str | None = Field(default=None, description="Preferred counselling language (ISO 639-1).")
    residence_status: str = Field(
        default="unknown", description="Residence status category code (code list in intake)."
    )
    arrival_year: int | None = Field(default=None, description="Year of arrival in Germany, if known.")
    household_size: int | None = Field(default=None, description="Number of people in the household, if known.")
    access_route: AccessRoute | None = Field(default=None, description="How the person came to the office.")

    @field_validator("registered_at")
    @classmethod
    def _to_the_day(cls, value: datetime) -> datetime:
        return coarse_to_day(value)


@register
class ClientUpdated(Event):
    """Non-identifying attributes of a person were corrected. Only what changed is set."""

    event_type = "knotenpunkt.intake.ClientUpdated.v1"
    topic = topics.CLIENTS

    updated_at: datetime = Field(description="When the correction was made (UTC).")
    changed: tuple[str, ...] = Field(description="Names of the attributes that changed (fields of this event).")
    age_band: AgeBand | None = Field(default=None, description="New age band, if it changed.")
    gender: Gender | None = Field(default=None, description="New gender, if it changed.")
    district: str | None = Field(default=None, description="New district, if it changed.")
    nationalities: tuple[str, ...] | None = Field(default=None, description="New nationalities, if they changed.")
    languages: tuple[str, ...] | None = Field(default=None, description="New languages, if they changed.")
    counselling_language: str | None = Field(default=None, description="New counselling language, if it changed.")
    residence_status: str | None = Field(default=None, description="New residence status category, if it changed.")
    arrival_year: int | None = Field(default=None, description="New arrival year, if it changed.")
    household_size: int | None = Field(default=None, description="New household size, if it changed.")


@register
class ClientsMerged(Event):
    """Two records were the same person. `client_id` survives; the other id is retired.

    Services move everything of `merged_client_id` to `client_id`.
    """

    event_type = "knotenpunkt.intake.ClientsMerged.v1"
    topic = topics.CLIENTS

    merged_client_id: UUID = Field(description="The retired id; from now on it means `client_id`.")
    merged_at: datetime = Field(description="When the records were merged (UTC).")


@register
class ClientErased(Event):
    """The person asked for erasure: intake deleted their personal data. Every service deletes
    what it holds about the person beyond anonymous facts (case notes, open referrals); counts
    in statistics stay, as they never identified anyone."""

    event_type = "knotenpunkt.intake.ClientErased.v1"
    topic = topics.CLIENTS

    erased_at: datetime = Field(description="When intake erased the personal data (UTC).")


@register
class ServiceLineHandoverDue(Event):
    """A young person turned 27: the case manager decides about moving them from JMD to MBE."""

    event_type = "knotenpunkt.intake.ServiceLineHandoverDue.v1"
    topic = topics.CLIENTS

    from_service_line: ServiceLine = Field(description="The service line the person ages out of (JMD).")
    to_service_line: ServiceLine = Field(description="The service line suggested from now on (MBE).")
    due_on: date = Field(
        description="The first day of the month in which the person turned 27. Coarsened on purpose: the exact day "
        "would put the birth date on a topic kept for ever."
    )

    @field_validator("due_on")
    @classmethod
    def _to_the_month(cls, value: date) -> date:
        return value.replace(day=1)


class _ConsentFields(Event):
    consent_id: UUID = Field(description="Id of the consent record.")
    purpose: ConsentPurpose = Field(description="What the consent allows.")
    agency_id: str | None = Field(default=None, description="The named partner agency, for purpose 'sharing'.")
    agency_kind: AgencyKind | None = Field(
        default=None, description="The kind of agency, for purpose 'sharing' with any agency of that kind."
    )
    data_categories: tuple[DataCategory, ...] = Field(description="Data categories the consent covers.")


@register
class ConsentGiven(_ConsentFields):
    """The person gave consent for a purpose."""

    event_type = "knotenpunkt.intake.ConsentGiven.v1"
    topic = topics.CLIENTS

    text_version: str = Field(description="Version of the consent text the person agreed to.")
    given_on: date = Field(description="Day the consent was given.")
    valid_until: date | None = Field(default=None, description="Last day the consent is valid; none: until withdrawn.")


@register
class ConsentWithdrawn(_ConsentFields):
    """The person withdrew a consent. Whatever relied on it stops."""

    event_type = "knotenpunkt.intake.ConsentWithdrawn.v1"
    topic = topics.CLIENTS

    withdrawn_on: date = Field(description="Day the consent was withdrawn.")


@register
class ConsentExpired(_ConsentFields):
    """A consent reached its end of validity."""

    event_type = "knotenpunkt.intake.ConsentExpired.v1"
    topic = topics.CLIENTS

    expired_on: date = Field(description="First day the consent is no longer valid.")
