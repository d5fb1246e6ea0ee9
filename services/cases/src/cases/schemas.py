"""Request and response shapes of the cases API, and the messages a counsellor reads."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knotenpunkt.events import ConsultationMode, GoalStatus, ServiceLine
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
        "case_already_closed": {
            "de": "Der Fall ist bereits geschlossen.",
            "en": "The case is already closed.",
        },
        "case_already_open": {
            "de": "Der Fall ist offen; nur ein geschlossener Fall kann wieder geöffnet werden.",
            "en": "The case is open; only a closed case can be reopened.",
        },
        "case_already_assigned": {
            "de": "Der Fall ist bereits {case_manager_id} zugewiesen; ein Wechsel ist eine Übergabe mit Grund.",
            "en": "The case is already assigned to {case_manager_id}; a change is a transfer with a reason.",
        },
        "open_case_exists": {
            "de": "Die Person hat in diesem Angebot bereits einen offenen Fall ({case_id}).",
            "en": "The person already has an open case in this service line ({case_id}).",
        },
        "transfer_needs_target": {
            "de": "Bitte eine Fallmanagerin / einen Fallmanager oder eine Beratungsstelle angeben.",
            "en": "Please name a case manager or an office.",
        },
        "transfer_changes_nothing": {
            "de": "Der Fall liegt bereits dort; die Übergabe würde nichts ändern.",
            "en": "The case is already there; the transfer would change nothing.",
        },
        "goal_status_unchanged": {
            "de": "Das Ziel hat diesen Stand ({status}) bereits.",
            "en": "The goal already has this status ({status}).",
        },
        "goal_transition_not_allowed": {
            "de": "Ein Ziel mit Stand {current} kann nicht auf {target} gesetzt werden; bitte zuerst wieder öffnen.",
            "en": "A goal with status {current} cannot be set to {target}; open it again first.",
        },
        "unknown_topic": {
            "de": "Dieses Beratungsthema ist nicht bekannt (Liste unter GET /topics).",
            "en": "This counselling topic is not known (see GET /topics).",
        },
        "unknown_close_reason": {
            "de": "Dieser Abschlussgrund ist nicht bekannt (Liste unter GET /reasons).",
            "en": "This closing reason is not known (see GET /reasons).",
        },
        "unknown_transfer_reason": {
            "de": "Dieser Übergabegrund ist nicht bekannt (Liste unter GET /reasons).",
            "en": "This transfer reason is not known (see GET /reasons).",
        },
        "topic_exists": {
            "de": "Ein Thema mit dem Kürzel {topic_code} gibt es bereits.",
            "en": "A topic with the code {topic_code} exists already.",
        },
        "invalid_staff_id": {
            "de": "Keine gültige Mitarbeiterkennung (Buchstaben, Ziffern, . _ @ -; höchstens 100 Zeichen).",
            "en": "Not a valid staff id (letters, digits, . _ @ -; at most 100 characters).",
        },
        "invalid_office_id": {
            "de": "Keine gültige Kennung einer Beratungsstelle (z. B. rsc-hamborn).",
            "en": "Not a valid office id (e.g. rsc-hamborn).",
        },
        "invalid_language": {
            "de": "Bitte die Sprache als Kürzel nach ISO 639-1 angeben (z. B. de, ar, tr).",
            "en": "Please give the language as an ISO 639-1 code (e.g. de, ar, tr).",
        },
        "invalid_code": {
            "de": "Ein Kürzel aus Kleinbuchstaben, Ziffern und _ (2 bis 63 Zeichen, beginnt mit einem Buchstaben).",
            "en": "A code of lowercase letters, digits and _ (2 to 63 characters, starting with a letter).",
        },
        "handover_only_jmd": {
            "de": "Nur ein Fall der Jugendmigrationsdienste (JMD) wird an die Migrationsberatung (MBE) übergeben.",
            "en": "Only a youth migration service (JMD) case is handed over to adult migration counselling (MBE).",
        },
        "nothing_to_change": {
            "de": "Bitte mindestens eine Angabe ändern.",
            "en": "Please change at least one value.",
        },
        "field_required": {
            "de": "Diese Angabe darf nicht leer sein.",
            "en": "This value must not be empty.",
        },
        "target_date_in_past": {
            "de": "Das Zieldatum liegt in der Vergangenheit.",
            "en": "The target date is in the past.",
        },
        # Why the overview has no person summary.
        "intake_unreachable": {
            "de": "Die Personendaten sind gerade nicht abrufbar (Erfassung nicht erreichbar).",
            "en": "The person's data cannot be fetched right now (intake unreachable).",
        },
        "intake_error": {
            "de": "Die Personendaten sind gerade nicht abrufbar (Fehler bei der Erfassung).",
            "en": "The person's data cannot be fetched right now (intake answered with an error).",
        },
        "intake_forbidden": {
            "de": "Die Erfassung gibt Ihnen die Personendaten nicht frei (andere Dienststelle oder Rolle).",
            "en": "Intake does not release the person's data to you (another office or role).",
        },
        "person_not_in_intake": {
            "de": "Die Erfassung kennt diese Person nicht (mehr).",
            "en": "Intake does not know this person (any more).",
        },
    }
)

_STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_OFFICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


def staff_id(value: str | None) -> str | None:
    if value is not None and not _STAFF_ID.match(value):
        raise ValueError("code:invalid_staff_id")
    return value


def office_id(value: str | None) -> str | None:
    if value is not None and not _OFFICE_ID.match(value):
        raise ValueError("code:invalid_office_id")
    return value


def code(value: str) -> str:
    if not _CODE.match(value):
        raise ValueError("code:invalid_code")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CaseOpening(_Input):
    """Open a case by hand for a person cases knows, in another service line."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "service_line": "KIM",
                    "office_id": "rsc-hamborn",
                    "case_manager_id": "m.schulz",
                }
            ]
        }
    )

    client_id: UUID = Field(description="Pseudonymous id of the person (from intake).")
    service_line: ServiceLine = Field(description="Service line of the new case.")
    office_id: str = Field(max_length=100, description="Office that runs the case.")
    case_manager_id: str | None = Field(
        default=None,
        max_length=100,
        description="Staff id of the case manager to assign, if known already (a case manager may name only "
        "themselves; the office lead anyone).",
    )

    @field_validator("office_id")
    @classmethod
    def valid_office(cls, value: str | None) -> str | None:
        return office_id(value)

    @field_validator("case_manager_id")
    @classmethod
    def valid_manager(cls, value: str | None) -> str | None:
        return staff_id(value)


class Assignment(_Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"case_manager_id": "m.schulz"}]})

    case_manager_id: str = Field(max_length=100, description="Staff id of the case manager.")

    @field_validator("case_manager_id")
    @classmethod
    def valid_manager(cls, value: str | None) -> str | None:
        return staff_id(value)


class TransferInput(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"to_case_manager_id": "a.yilmaz", "to_office_id": "rsc-hochfeld", "reason": "moved_within_city"}
            ]
        }
    )

    to_case_manager_id: str | None = Field(default=None, max_length=100, description="The new case manager.")
    to_office_id: str | None = Field(default=None, max_length=100, description="The new office.")
    reason: str = Field(max_length=100, description="Transfer reason code (GET /reasons).")

    @field_validator("to_case_manager_id")
    @classmethod
    def valid_manager(cls, value: str | None) -> str | None:
        return staff_id(value)

    @field_validator("to_office_id")
    @classmethod
    def valid_office(cls, value: str | None) -> str | None:
        return office_id(value)


class Closing(_Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "goals_reached"}]})

    reason: str = Field(max_length=100, description="Closing reason code (GET /reasons).")


class Reopening(_Input):
    """Reopening needs no input; the body may be empty or {}."""

    model_config = ConfigDict(json_schema_extra={"examples": [{}]})


class ConsultationInput(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "held_on": "2025-03-04",
                    "duration_minutes": 45,
                    "topics": ["work", "housing"],
                    "mode": "in_person",
                    "language": "ar",
                    "interpreter_used": True,
                    "family_members_counselled": 1,
                    "note": "Unterlagen für den Wohnberechtigungsschein besprochen.\nNächster Termin in 2 Wochen.",
                }
            ]
        }
    )

    held_on: date = Field(description="Day of the consultation.")
    duration_minutes: int = Field(ge=1, le=600, description="Length in minutes.")
    topics: list[Annotated[str, Field(max_length=100)]] = Field(
        min_length=1, max_length=20, description="Counselling topic codes (GET /topics)."
    )
    mode: ConsultationMode = Field(default=ConsultationMode.IN_PERSON, description="How it took place.")
    language: str | None = Field(default=None, max_length=10, description="Language of the consultation (ISO 639-1).")
    interpreter_used: bool = Field(default=False, description="Whether an interpreter took part.")
    family_members_counselled: int = Field(default=0, ge=0, le=30, description="Co-counselled family members.")
    # Who held it is not asked: it is the signed-in person recording it (their token's staff id).
    note: str | None = Field(default=None, max_length=10_000, description="Free-text note; stays in cases.")

    @field_validator("held_on")
    @classmethod
    def not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("code:held_in_future")
        return value

    @field_validator("language")
    @classmethod
    def iso_639_1(cls, value: str | None) -> str | None:
        if value is not None and not _LANGUAGE.match(value):
            raise ValueError("code:invalid_language")
        return value


class GoalInput(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "topic_code": "language_integration_course",
                    "target_date": "2099-06-30",
                    "description": "B1-Sprachkurs abschließen.",
                }
            ]
        }
    )

    topic_code: str = Field(max_length=100, description="Counselling topic of the goal (GET /topics).")
    target_date: date | None = Field(default=None, description="When the goal should be reached.")
    description: str | None = Field(default=None, max_length=2_000, description="Free text; stays in cases.")

    @field_validator("target_date")
    @classmethod
    def not_in_past(cls, value: date | None) -> date | None:
        if value is not None and value < date.today():
            raise ValueError("code:target_date_in_past")
        return value


class ConsultationCorrection(_Input):
    """A correction of a recorded consultation: only the fields sent change (a `note` of null
    removes the note); who held it stays who recorded it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"duration_minutes": 60, "topics": ["work", "benefits"]}]}
    )

    held_on: date | None = Field(default=None, description="Day of the consultation.")
    duration_minutes: int | None = Field(default=None, ge=1, le=600, description="Length in minutes.")
    topics: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=20, description="Counselling topic codes (GET /topics)."
    )
    mode: ConsultationMode | None = Field(default=None, description="How it took place.")
    language: str | None = Field(default=None, max_length=10, description="Language (ISO 639-1); null: none.")
    interpreter_used: bool | None = Field(default=None, description="Whether an interpreter took part.")
    family_members_counselled: int | None = Field(default=None, ge=0, le=30, description="Co-counselled members.")
    note: str | None = Field(default=None, max_length=10_000, description="Free-text note; stays in cases.")

    # Fields that may not be emptied (sending null for them is refused).
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "held_on",
        "duration_minutes",
        "topics",
        "mode",
        "interpreter_used",
        "family_members_counselled",
    )

    @field_validator("held_on")
    @classmethod
    def not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > date.today():
            raise ValueError("code:held_in_future")
        return value

    @field_validator("language")
    @classmethod
    def iso_639_1(cls, value: str | None) -> str | None:
        if value is not None and not _LANGUAGE.match(value):
            raise ValueError("code:invalid_language")
        return value


class GoalChange(_Input):
    """An edit of a plan goal: only the fields sent change (`target_date` or `description` null
    removes them)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"target_date": "2099-09-30"}]})

    topic_code: str | None = Field(default=None, max_length=100, description="Counselling topic (GET /topics).")
    target_date: date | None = Field(default=None, description="When the goal should be reached.")
    description: str | None = Field(default=None, max_length=2_000, description="Free text; stays in cases.")

    @field_validator("target_date")
    @classmethod
    def not_in_past(cls, value: date | None) -> date | None:
        if value is not None and value < date.today():
            raise ValueError("code:target_date_in_past")
        return value


class HandoverInput(_Input):
    """The JMD-to-MBE handover in one step: the JMD case closes, an MBE case opens."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"office_id": "rsc-hamborn", "reason": "handed_over"}]})

    office_id: str = Field(max_length=100, description="Office that runs the new MBE case.")
    case_manager_id: str | None = Field(
        default=None,
        max_length=100,
        description="Case manager of the new case, if known (a case manager may name only themselves).",
    )
    reason: str = Field(
        default="handed_over", max_length=100, description="Closing reason of the JMD case (GET /reasons)."
    )

    @field_validator("office_id")
    @classmethod
    def valid_office(cls, value: str | None) -> str | None:
        return office_id(value)

    @field_validator("case_manager_id")
    @classmethod
    def valid_manager(cls, value: str | None) -> str | None:
        return staff_id(value)


class GoalStatusInput(_Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "reached"}]})

    status: GoalStatus = Field(description="The goal's new status.")


class TopicInput(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "energy_debts", "label_de": "Energieschulden", "label_en": "Energy debts"}]
        }
    )

    code: str = Field(max_length=100, description="Short code, e.g. 'energy_debts'.")
    label_de: str = Field(min_length=1, max_length=200, description="German label.")
    label_en: str = Field(min_length=1, max_length=200, description="English label.")

    @field_validator("code")
    @classmethod
    def valid_code(cls, value: str) -> str:
        return code(value)


class Case(BaseModel):
    case_id: UUID
    client_id: UUID
    service_line: str
    office_id: str
    status: str
    opened_at: datetime
    consultations: int
    case_manager_id: str | None = None
    opened_by_hand: bool = False
    closed_at: datetime | None = None
    close_reason: str | None = None
    version: int = 1
    handover_due_on: date | None = Field(
        default=None, description="The month (its first day) a JMD person turned 27: a decision is due."
    )


class CasePage(BaseModel):
    items: list[Case]
    next_cursor: str | None


# --- answers of the use cases (response models) ----------------------------------------------


class RecordedConsultation(BaseModel):
    consultation_id: UUID
    case_id: UUID
    version: int = Field(description="The case's new version (its ETag).")


class PlanGoal(BaseModel):
    goal_id: UUID
    case_id: UUID
    topic_code: str
    description: str | None = Field(default=None, description="Free text; null once the person's data was erased.")
    target_date: date | None = None
    status: GoalStatus
    set_at: datetime
    changed_at: datetime


class ChangedPlanGoal(PlanGoal):
    version: int = Field(description="The case's new version (its ETag).")


class CorrectedConsultation(BaseModel):
    consultation_id: UUID
    case_id: UUID
    changed: list[str] = Field(description="The fields the correction changed.")
    version: int = Field(description="The case's new version (its ETag).")


class Handover(BaseModel):
    """The closed JMD case and the MBE case opened for the person."""

    closed: Case
    opened: Case
    version: int = Field(description="The closed JMD case's new version (its ETag).")


class Topic(BaseModel):
    code: str
    label_de: str
    label_en: str
    built_in: bool


class ReasonCode(BaseModel):
    code: str
    label_de: str
    label_en: str


class ReasonCodes(BaseModel):
    close: list[ReasonCode]
    transfer: list[ReasonCode]


class ServiceLineOfPerson(BaseModel):
    """One case of the person, in any service line (the overview's "Gesamtfall")."""

    case_id: UUID
    service_line: str
    office_id: str
    status: str
    case_manager_id: str | None = None
    opened_at: datetime
    current: bool = Field(description="Whether this is the case the overview is about.")


class ConsultationEntry(BaseModel):
    consultation_id: UUID
    held_on: date
    duration_minutes: int
    mode: str
    language: str | None = None
    interpreter_used: bool
    topics: list[str]
    family_members_counselled: int
    case_manager_id: str | None = None
    note: str | None = Field(default=None, description="Free text; null once the person's data was erased.")
    recorded_at: datetime


class ReferralEntry(BaseModel):
    referral_id: UUID
    agency_id: str | None = None
    topic_code: str | None = None
    status: str
    sent_at: datetime | None = None
    answer_due_on: date | None = None
    detail: str | None = Field(default=None, description="The agency's reason or outcome code.")
    updated_at: datetime


class HistoryEntry(BaseModel):
    event_id: UUID
    event: str = Field(description='The short name, e.g. "CaseOpened".')
    event_type: str
    occurred_at: datetime
    acted_by: str | None = Field(
        default=None,
        description="Staff id of who did it (from their sign-in); null when it followed from another service's "
        "event (a registration, a merge, an agency's answer).",
    )
    data: dict[str, Any]


class PersonUnavailable(BaseModel):
    code: str
    message: str


class CaseOverview(BaseModel):
    """Everything about one case in one answer; the person summary is fetched live from intake."""

    person: dict[str, Any] | None = Field(default=None, description="The person summary from intake.")
    person_unavailable: PersonUnavailable | None = Field(default=None, description="Why `person` is null.")
    case: Case
    service_lines: list[ServiceLineOfPerson]
    consultations: list[ConsultationEntry]
    plan: list[PlanGoal]
    referrals: list[ReferralEntry]
    history: list[HistoryEntry]


# --- the person's own data (DSGVO Art. 15) ---------------------------------------------------


class ExportedCase(BaseModel):
    """One case of the person with everything cases keeps about it."""

    case: Case
    consultations: list[ConsultationEntry] = Field(description="With the counselling notes and who held each.")
    plan: list[PlanGoal]
    referrals: list[ReferralEntry]
    handovers: list[HistoryEntry] = Field(
        description="Transfers to another case manager or office, and the JMD to MBE handover when the person "
        "turned 27 (also in `history`)."
    )
    history: list[HistoryEntry] = Field(description="Every change of the case: what, when and who did it.")


class ClientExport(BaseModel):
    """Everything cases stores about one person, for their request under DSGVO Art. 15."""

    service: str = "cases"
    client_id: UUID = Field(description="The person (a retired id of a merged record means the surviving one).")
    merged_client_ids: list[UUID] = Field(description="Records of the same person merged into this one.")
    known_since: datetime | None = Field(default=None, description="When cases learned of the person.")
    office_id: str | None = Field(default=None, description="The office the person was routed to.")
    service_line: str | None = Field(default=None, description="The service line the person was routed to.")
    cases: list[ExportedCase]
    exported_at: datetime
