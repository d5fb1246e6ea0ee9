from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from knotenpunkt.events import AgencyKind, CompletionOutcome, DeclineReason, SharedPersonData
from knotenpunkt.i18n import register_messages
from knotenpunkt.topics import AGENCY_ID
from referrals.domain import Status

register_messages(
    {
        "unknown_agency": {
            "de": "Diese Partnerstelle ist nicht im Verzeichnis.",
            "en": "This partner agency is not in the directory.",
        },
        "no_sharing_consent": {
            "de": "Für die Weitergabe an diese Partnerstelle liegt keine gültige Einwilligung "
            "(Schweigepflichtentbindung) der Person vor. Bitte zuerst die Einwilligung in der Aufnahme erfassen.",
            "en": "The person has not given a valid consent to share their data with this partner agency. "
            "Please record the consent at intake first.",
        },
        "unknown_client": {
            "de": "Die Aufnahme kennt diese Person nicht (mehr); die Vermittlung ist nicht möglich.",
            "en": "Intake does not know this person (any more); the referral is not possible.",
        },
        "intake_unavailable": {
            "de": "Die Einwilligung kann gerade nicht geprüft werden (Aufnahme nicht erreichbar). "
            "Bitte später erneut versuchen.",
            "en": "The consent cannot be checked right now (intake unreachable). Please try again later.",
        },
        "referral_not_accepted_yet": {
            "de": "Die Vermittlung ist noch nicht angenommen und kann daher nicht abgeschlossen werden.",
            "en": "The referral has not been accepted yet, so it cannot be completed.",
        },
        "referral_transition_impossible": {
            "de": "Die Vermittlung ist im Status „{current}“ und kann nicht „{target}“ werden.",
            "en": "The referral is '{current}' and cannot become '{target}'.",
        },
        "referral_closed": {
            "de": "Die Vermittlung ist bereits abgeschlossen (Status „{current}“) und kann nicht mehr "
            "„{target}“ werden.",
            "en": "The referral is already closed (status '{current}') and cannot become '{target}' any more.",
        },
        "agency_inactive": {
            "de": "Diese Partnerstelle ist deaktiviert und nimmt keine neuen Vermittlungen an. "
            "Bitte eine andere Stelle aus dem Verzeichnis wählen.",
            "en": "This partner agency is deactivated and takes no new referrals. "
            "Please choose another agency from the directory.",
        },
        "invalid_agency_id": {
            "de": "Die Kennung einer Partnerstelle besteht aus 2 bis 63 Kleinbuchstaben, Ziffern und "
            "Bindestrichen und beginnt mit einem Buchstaben oder einer Ziffer (z. B. caritas-duisburg).",
            "en": "A partner agency's id is 2 to 63 lowercase letters, digits and hyphens, starting with a "
            "letter or digit (e.g. caritas-duisburg).",
        },
        "unknown_agency_topic": {
            "de": "Unbekanntes Themenkürzel „{topic}“ (bekannt sind die Themen der Fallbearbeitung, z. B. work).",
            "en": "Unknown topic code '{topic}' (known are the topics of case management, e.g. work).",
        },
        "unknown_agency_language": {
            "de": "Unbekannter Sprachcode „{value}“ (ISO 639-1, zwei Kleinbuchstaben, z. B. ar).",
            "en": "Unknown language code '{value}' (ISO 639-1, two lowercase letters, e.g. ar).",
        },
        "repeated_entry": {
            "de": "„{value}“ ist doppelt angegeben.",
            "en": "'{value}' is given twice.",
        },
        "referral_nothing_to_dismiss": {
            "de": "Nur eine abgelehnte oder abgelaufene Vermittlung kann als erledigt markiert werden "
            "(Status „{current}“).",
            "en": "Only a declined or expired referral can be marked as dealt with (status '{current}').",
        },
        "referral_already_dismissed": {
            "de": "Diese Vermittlung ist bereits als erledigt markiert.",
            "en": "This referral is already marked as dealt with.",
        },
        "unknown_need_topic": {
            "de": "Unbekanntes Themenkürzel (bekannt sind die Themen der Fallbearbeitung, z. B. housing).",
            "en": "Unknown topic code (known are the topics of case management, e.g. housing).",
        },
        "period_reversed": {
            "de": "Das Ende des Zeitraums liegt vor seinem Anfang.",
            "en": "The end of the period is before its start.",
        },
    }
)


class ReferralInput(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "case_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "agency_id": "jobcenter-duisburg",
                    "topic_code": "work",
                }
            ]
        },
    )

    case_id: UUID = Field(description="Case the person is referred from.")
    agency_id: str = Field(min_length=1, max_length=100, description="Partner agency id.")
    topic_code: str = Field(min_length=1, max_length=100, description="Topic the referral is about.")


class WithdrawInput(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class NeedCause(StrEnum):
    NO_AGENCY = "no_agency"
    NO_CAPACITY = "no_capacity"


class UnmetNeedInput(BaseModel):
    """A need the case manager cannot refer anywhere: no partner offers the topic (`no_agency`),
    or the partners are known to be full (`no_capacity`)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"case_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "topic_code": "housing", "cause": "no_capacity"}
            ]
        },
    )

    case_id: UUID = Field(description="The case the need came up in.")
    topic_code: str = Field(min_length=1, max_length=100, description="Counselling topic of the need.")
    cause: NeedCause = Field(description="Why it cannot be referred.")
    agency_kind: AgencyKind | None = Field(
        default=None, description="The kind of agency that would take it, if one can be named."
    )


class RecordedNeed(BaseModel):
    need_id: UUID
    case_id: UUID
    topic_code: str
    agency_kind: str
    cause: NeedCause
    recorded_at: datetime


class DeclineInput(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "no_capacity"}]})

    reason: DeclineReason = Field(description="Why the agency declines.")


class CompleteInput(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"outcome": "successful"}]})

    outcome: CompletionOutcome = Field(description="What came of the referral.")


class Referral(BaseModel):
    referral_id: UUID
    case_id: UUID
    client_id: UUID
    agency_id: str
    topic_code: str
    office_id: str
    status: Status
    sent_at: datetime
    remind_at: datetime
    due_at: datetime
    answered_at: datetime | None
    decline_reason: str | None
    completed_at: datetime | None
    outcome: str | None
    closed_at: datetime | None
    withdraw_reason: str | None
    dismissed_at: datetime | None = Field(
        default=None, description="When the case manager took it off the action-needed list."
    )
    case_manager_id: str | None = None
    action_needed: str | None = Field(
        default=None, description="Why the case manager should look at it now: no_answer_yet, declined, expired."
    )


class InboxReferral(BaseModel):
    """What an agency sees in its web inbox: the referral, and exactly the personal data the
    person consented to share with this agency, fetched from intake at the moment of looking."""

    referral_id: UUID
    client_id: UUID
    topic_code: str
    office_id: str
    status: Status
    sent_at: datetime
    answer_due_on: date
    person: SharedPersonData | None = Field(
        default=None, description="The consented personal data; none when no consent covers it (any more)."
    )
    person_unavailable: str | None = Field(
        default=None, description="Why `person` is empty: no_consent, unknown_client or intake_unavailable."
    )


class Agency(BaseModel):
    agency_id: str
    name: str
    kind: str
    topics: list[str]
    languages: list[str]
    contact: str | None
    response_days: int
    channel: str
    active: bool = Field(default=True, description="False: deactivated, takes no new referrals.")


def _agency_id(value: str) -> str:
    # The id becomes part of the agency's Kafka topic names (knotenpunkt.topics), so its rule is theirs.
    if not AGENCY_ID.match(value):
        raise ValueError("code:invalid_agency_id")
    return value


AgencyId = Annotated[str, AfterValidator(_agency_id)]


class Channel(StrEnum):
    """How an agency receives its referrals."""

    KAFKA = "kafka"  # its own software reads its topic
    INBOX = "inbox"  # its staff use referrals' web inbox


class AgencyInput(BaseModel):
    """An agency's directory entry as the admin gives it (PUT: the whole entry)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Internationaler Bund Duisburg",
                    "kind": "course_provider",
                    "response_days": 7,
                    "channel": "inbox",
                    "topics": ["language_integration_course", "vocational_training"],
                    "languages": ["de", "en", "ar"],
                    "contact": "IB Duisburg, Kursberatung",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200, description="The agency's name as staff know it.")
    kind: AgencyKind = Field(description="What kind of agency it is (consents may name a kind).")
    response_days: int = Field(ge=1, le=60, description="Days the agency promises to answer a referral within.")
    channel: Channel = Field(description="kafka: its own software reads its topic; inbox: the web inbox.")
    topics: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=30, description="Topic codes it takes referrals for (the network's taxonomy)."
    )
    languages: list[Annotated[str, Field(min_length=1, max_length=10)]] = Field(
        default_factory=lambda: ["de"], min_length=1, max_length=30, description="ISO 639-1 codes it counsels in."
    )
    contact: str | None = Field(default=None, max_length=300, description="Where staff reach the agency.")


class AgencyEntry(Agency):
    """The directory entry after a change."""

    created: bool = Field(default=False, description="True when this request added the agency.")


class GapRow(BaseModel):
    topic_code: str
    agency_kind: str
    office_id: str
    period: str = Field(description="Month the need was recorded in (YYYY-MM).")
    cause: str
    count: int | None = Field(description="How many; null when suppressed (from 1 to the threshold).")
    suppressed: bool = Field(default=False, description="The count is small enough to point at a person.")


class ChangedReferral(BaseModel):
    """A referral's status after a command changed it."""

    referral_id: UUID
    status: Status


class SentReferral(ChangedReferral):
    answer_due_on: date = Field(description="The agency's promised answer date; without an answer it expires then.")


class DeadlineRun(BaseModel):
    """One round of the deadline watch."""

    reminded: int = Field(description="Agencies reminded that their answer is due soon.")
    expired: int = Field(description="Referrals expired without an answer.")


class HistoryStep(BaseModel):
    at: datetime
    step: str = Field(description="sent, agency_reminded, accepted, declined, completed, withdrawn or expired.")
    by: str | None = Field(
        description="Who: a staff id, an agency's sign-in, 'intake' (a consent or erasure), 'deadline_watch', or "
        "none where not recorded (before sign-in existed, or an answer read from the agency's topic)."
    )
    detail: str | None = Field(default=None, description="The reason or outcome, where the step has one.")


class AgencyReceived(BaseModel):
    channel: str = Field(description="kafka: the agency's own topic; inbox: the web inbox.")
    data_categories: list[str] | None = Field(
        description="The categories of personal data the agency received under the consent; none: sent before "
        "referrals recorded them."
    )
    how: str = Field(description="How the data reached the agency and what referrals keeps of it.")


class ReferralExport(BaseModel):
    referral_id: UUID
    case_id: UUID
    agency_id: str
    agency_name: str
    topic_code: str
    office_id: str
    status: Status
    consent_id: str | None = Field(description="The sharing consent the referral relied on.")
    history: list[HistoryStep]
    agency_received: AgencyReceived


class ClientReferrals(BaseModel):
    """Everything referrals stores about one person (DSGVO Art. 15), for the data protection officer."""

    service: str = "referrals"
    client_id: UUID
    merged_client_ids: list[UUID] = Field(description="Ids of records merged into this person's.")
    referrals: list[ReferralExport]


class DismissedReferral(ChangedReferral):
    """A declined or expired referral taken off the action-needed list."""

    dismissed_at: datetime
