"""Request and response shapes of intake's HTTP API, with validation staff can understand."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from intake.domain import MINIMUM_AGE, BirthData
from knotenpunkt.events import AccessRoute, AgencyKind, ConsentPurpose, DataCategory, Gender, ServiceLine
from knotenpunkt.i18n import register_messages

STATELESS = "XX"  # ISO 3166 user-assigned code, used for stateless persons

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
        "unknown_office": {"de": "Diese Beratungsstelle ist nicht bekannt.", "en": "This office is not known."},
        "unknown_country": {
            "de": "Unbekannter Ländercode (ISO 3166, z. B. SY; staatenlos: XX).",
            "en": "Unknown country code (ISO 3166, e.g. SY; stateless: XX).",
        },
        "unknown_language": {
            "de": "Unbekannter Sprachcode (ISO 639-1, z. B. ar).",
            "en": "Unknown language code (ISO 639-1, e.g. ar).",
        },
        "unknown_residence_status": {
            "de": "Unbekannte Aufenthaltsstatus-Kategorie.",
            "en": "Unknown residence status category.",
        },
        "birth_year_conflict": {
            "de": "Geburtsjahr und Geburtsdatum passen nicht zusammen.",
            "en": "Birth year and date of birth do not match.",
        },
        "year_out_of_range": {"de": "Das Jahr ist nicht plausibel.", "en": "The year is not plausible."},
        "arrival_before_birth": {
            "de": "Die Einreise kann nicht vor der Geburt liegen.",
            "en": "Arrival cannot be before birth.",
        },
        "date_in_future": {"de": "Das Datum liegt in der Zukunft.", "en": "The date is in the future."},
        "cannot_route": {
            "de": "Ohne Alter ist keine Zuordnung möglich: bitte Geburtsjahr angeben oder Beratungsdienst wählen.",
            "en": "Without an age no service line applies: give a birth year or choose the service line.",
        },
        # {elsewhere}: empty, or the sentence of `duplicates_elsewhere` naming the other offices.
        "possible_duplicates": {
            "de": "Diese Person ist möglicherweise schon erfasst. Bitte prüfen: bestehende Person verwenden "
            "oder mit confirm_new=true als neue Person bestätigen.{elsewhere}",
            "en": "This person may already be registered. Please check: use the existing person, "
            "or confirm as new with confirm_new=true.{elsewhere}",
        },
        "duplicates_elsewhere": {
            "de": " Eine wahrscheinlich gleiche Person ist auch in einer Beratungsstelle außerhalb Ihres Bereichs "
            "erfasst ({offices}); Angaben zur Person zeigen wir dazu nicht. Bitte bei dieser Beratungsstelle "
            "nachfragen.",
            "en": " A likely match is also registered at an office outside your reach ({offices}); no details of "
            "that person are shown. Please ask that office.",
        },
        "invalid_reference_id": {
            "de": "Keine gültige Kennung (Kleinbuchstaben, Ziffern und -; höchstens 63 Zeichen).",
            "en": "Not a valid id (lower-case letters, digits and -; at most 63 characters).",
        },
        "invalid_rule_id": {
            "de": "Keine gültige Regel-Kennung (Kleinbuchstaben, Ziffern, - und _; höchstens 63 Zeichen).",
            "en": "Not a valid rule id (lower-case letters, digits, - and _; at most 63 characters).",
        },
        "invalid_staff_id_format": {
            "de": "Keine gültige Kennung der Fachkraft (Buchstaben, Ziffern, . _ @ -; höchstens 100 Zeichen).",
            "en": "Not a valid staff id (letters, digits, . _ @ -; at most 100 characters).",
        },
        "fte_out_of_range": {
            "de": "Der Stellenanteil muss größer als 0 und höchstens 1 sein.",
            "en": "The full-time equivalent must be above 0 and at most 1.",
        },
        "fte_two_decimals": {
            "de": "Der Stellenanteil hat höchstens zwei Nachkommastellen (z. B. 0.75).",
            "en": "The full-time equivalent has at most two decimals (e.g. 0.75).",
        },
        "min_age_not_below_max": {
            "de": "Das Mindestalter muss unter der Altersgrenze liegen (die Grenze zählt nicht mehr dazu).",
            "en": "The minimum age must be below the age limit (the limit itself is excluded).",
        },
        "no_statuses": {
            "de": "Eine leere Liste träfe auf niemanden zu; für jeden Aufenthaltsstatus das Feld weglassen (null).",
            "en": "An empty list would match nobody; for any residence status leave the field out (null).",
        },
        "sharing_needs_agency": {
            "de": "Für die Weitergabe bitte eine Partnerstelle oder eine Art von Stelle angeben.",
            "en": "For sharing, name a partner agency or a kind of agency.",
        },
        "valid_until_before_given": {
            "de": "Das Ende der Gültigkeit liegt vor dem Datum der Einwilligung.",
            "en": "The end of validity is before the day the consent was given.",
        },
        "consent_not_active": {
            "de": "Diese Einwilligung ist nicht mehr wirksam.",
            "en": "This consent is no longer in effect.",
        },
        "no_valid_consent": {
            "de": "Es liegt keine gültige Einwilligung für diese Weitergabe vor.",
            "en": "There is no valid consent for this sharing.",
        },
        "merge_same": {
            "de": "Eine Person kann nicht mit sich selbst zusammengeführt werden.",
            "en": "A person cannot be merged with itself.",
        },
        "client_erased": {
            "de": "Die Daten dieser Person wurden auf ihren Wunsch gelöscht.",
            "en": "This person's data was erased at their request.",
        },
        "name_required": {
            "de": "Bitte den Namen angeben; er kann nicht gelöscht werden.",
            "en": "Please give the name; it cannot be removed.",
        },
        "search_needs_criteria": {
            "de": "Bitte einen Namen, ein Geburtsdatum oder ein Geburtsjahr angeben.",
            "en": "Please give a name, a date of birth or a year of birth.",
        },
        "already_merged": {
            "de": "Dieser Datensatz wurde bereits zusammengeführt.",
            "en": "This record has already been merged.",
        },
    }
)


def _country(code: str) -> str:
    code = code.upper()
    if code != STATELESS and pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("code:unknown_country")
    return code


def _language(code: str) -> str:
    code = code.lower()
    if pycountry.languages.get(alpha_2=code) is None:
        raise ValueError("code:unknown_language")
    return code


class HouseholdMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relation: Literal["partner", "child", "parent", "sibling", "other"] = Field(description="Relation to the person.")
    count: int = Field(default=1, ge=1, le=20, description="How many household members of this relation.")


class PersonAttributes(BaseModel):
    """Fields shared by registration and correction."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name_variants: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=10, description="Other spellings of the name (transliteration)."
    )
    gender: Gender = Field(default=Gender.NOT_STATED, description="female, male, diverse, not_stated.")
    nationalities: list[Annotated[str, Field(max_length=10)]] = Field(
        default_factory=list, max_length=5, description="ISO 3166 alpha-2 codes; XX for stateless."
    )
    languages: list[Annotated[str, Field(max_length=10)]] = Field(
        default_factory=list, max_length=10, description="ISO 639-1 codes of languages spoken."
    )
    counselling_language: str | None = Field(
        default=None, max_length=10, description="Preferred counselling language (ISO 639-1)."
    )
    phone: str | None = Field(default=None, max_length=50, description="Phone number (stays in intake).")
    email: str | None = Field(default=None, max_length=200, description="E-mail (stays in intake).")
    street: str | None = Field(default=None, max_length=200, description="Street and number (stays in intake).")
    postcode: str | None = Field(default=None, max_length=10, description="Postcode (stays in intake).")
    city: str | None = Field(default=None, max_length=100, description="City (stays in intake).")
    district: str | None = Field(default=None, max_length=100, description="City district (used in statistics).")
    household_members: list[HouseholdMember] = Field(
        default_factory=list, max_length=20, description="Who lives with the person."
    )
    residence_status: str = Field(
        default="unknown", max_length=100, description="Residence status category code (GET /residence-statuses)."
    )
    arrival_date: date | None = Field(default=None, description="Date of arrival in Germany.")
    access_route: AccessRoute | None = Field(default=None, description="How the person came.")

    @field_validator("nationalities")
    @classmethod
    def known_countries(cls, values: list[str]) -> list[str]:
        return [_country(value) for value in values]

    @field_validator("languages")
    @classmethod
    def known_languages(cls, values: list[str]) -> list[str]:
        return [_language(value) for value in values]

    @field_validator("counselling_language")
    @classmethod
    def known_counselling_language(cls, value: str | None) -> str | None:
        return None if value is None else _language(value)

    @field_validator("arrival_date")
    @classmethod
    def arrival_not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > date.today():
            raise ValueError("code:date_in_future")
        return value


class Registration(PersonAttributes):
    """A person registered at the counter."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "family_name": "Haddad",
                    "given_name": "Rania",
                    "name_variants": ["Hadad"],
                    "birth_year": 1990,
                    "gender": "female",
                    "nationalities": ["SY"],
                    "languages": ["ar", "de"],
                    "counselling_language": "ar",
                    "phone": "+49 203 1234567",
                    "city": "Duisburg",
                    "district": "Hamborn",
                    "household_members": [{"relation": "child", "count": 2}],
                    "residence_status": "residence_permit",
                    "arrival_date": "2016-03-01",
                    "access_route": "appointment",
                    "office_id": "rsc-hamborn",
                }
            ]
        }
    )

    family_name: str = Field(min_length=1, max_length=200, description="Family name.")
    given_name: str = Field(min_length=1, max_length=200, description="Given name(s).")
    birth_date: date | None = Field(default=None, description="Date of birth (YYYY-MM-DD), if known.")
    birth_year: int | None = Field(default=None, description="Year of birth, when only the year is known.")
    office_id: str = Field(min_length=1, max_length=100, description="Office where the person registers.")
    service_lines: list[ServiceLine] | None = Field(
        default=None, max_length=10, description="Staff's choice of service lines; without it the routing rules decide."
    )
    confirm_new: bool = Field(
        default=False, description="Register even though likely duplicates were shown (staff checked them)."
    )

    @field_validator("birth_date")
    @classmethod
    def plausible_birth_date(cls, value: date | None) -> date | None:
        if value is None:
            return value
        today = date.today()
        if value > today:
            raise ValueError("code:birth_date_in_future")
        if BirthData(birth_date=value).age_on(today) < MINIMUM_AGE:  # type: ignore[operator]
            raise ValueError("code:too_young")
        return value

    @field_validator("birth_year")
    @classmethod
    def plausible_birth_year(cls, value: int | None) -> int | None:
        if value is None:
            return value
        if not 1900 <= value <= date.today().year:
            raise ValueError("code:year_out_of_range")
        if date.today().year - value < MINIMUM_AGE:
            raise ValueError("code:too_young")
        return value

    @model_validator(mode="after")
    def consistent_birth_data(self) -> Registration:
        if self.birth_date and self.birth_year and self.birth_date.year != self.birth_year:
            raise ValueError("code:birth_year_conflict")
        born = self.birth_data.effective_date()
        if born and self.arrival_date and self.arrival_date < born:
            raise ValueError("code:arrival_before_birth")
        return self

    @property
    def birth_data(self) -> BirthData:
        return BirthData(self.birth_date, self.birth_year or (self.birth_date.year if self.birth_date else None))


class Correction(PersonAttributes):
    """Corrections to a person's record: only the fields sent are changed."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"phone": "+49 203 7654321", "languages": ["ar", "de", "en"]}]}
    )

    family_name: str | None = Field(default=None, min_length=1, max_length=200, description="Family name.")
    given_name: str | None = Field(default=None, min_length=1, max_length=200, description="Given name(s).")
    birth_date: date | None = Field(
        default=None, description="Corrected date of birth; null keeps only the year (birth_year) known."
    )
    birth_year: int | None = Field(
        default=None, description="Corrected year of birth; with birth_date left out the stored date must agree."
    )

    @field_validator("family_name", "given_name")
    @classmethod
    def name_not_removed(cls, value: str | None) -> str | None:
        # Sent as null, a name would be emptied: a person is always registered with both names.
        if value is None:
            raise ValueError("code:name_required")
        return value

    @field_validator("birth_date")
    @classmethod
    def plausible_birth_date(cls, value: date | None) -> date | None:
        return Registration.plausible_birth_date(value)

    @field_validator("birth_year")
    @classmethod
    def plausible_birth_year(cls, value: int | None) -> int | None:
        return Registration.plausible_birth_year(value)

    @model_validator(mode="after")
    def consistent_birth_data(self) -> Correction:
        if self.birth_date and self.birth_year and self.birth_date.year != self.birth_year:
            raise ValueError("code:birth_year_conflict")
        return self


class PersonSearch(BaseModel):
    """A search for persons by (part of) a name and/or birth data; sent as a POST body so names
    never appear in access logs."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"name": "Hadad Rania", "birth_year": 1990}]},
    )

    name: str | None = Field(
        default=None,
        max_length=200,
        description="Words of the name in any order: each must match a family or given name or a variant, "
        "by Kölner Phonetik (spelling variants) or as a part of the name.",
    )
    birth_date: date | None = Field(default=None, description="Date of birth (also matches persons with the year).")
    birth_year: int | None = Field(default=None, ge=1900, le=2100, description="Year of birth.")
    limit: int = Field(default=50, ge=1, le=50, description="Page size.")
    offset: int = Field(default=0, ge=0, le=10_000, description="Persons to skip (the next page).")

    @model_validator(mode="after")
    def something_to_search(self) -> PersonSearch:
        if not (self.name or self.birth_date or self.birth_year):
            raise ValueError("code:search_needs_criteria")
        return self


class PersonMatch(BaseModel):
    """A person found by the search (within the searcher's reach)."""

    client_id: UUID = Field(description="Id of the person.")
    family_name: str = Field(description="Family name.")
    given_name: str = Field(description="Given name(s).")
    name_variants: list[str] = Field(description="Other spellings of the name.")
    birth_date: date | None = Field(description="Date of birth, if known.")
    birth_year: int | None = Field(description="Year of birth, if known.")
    office_id: str = Field(description="Office where the person registered.")
    service_lines: list[ServiceLine] = Field(description="Service lines the person is routed to.")


class PersonSearchResult(BaseModel):
    persons: list[PersonMatch] = Field(description="Persons found, by family and given name.")
    more: bool = Field(description="Whether there are more (ask again with offset + limit).")


class NamesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"client_ids": ["3fa85f64-5717-4562-b3fc-2c963f66afa6"]}]}
    )

    client_ids: list[UUID] = Field(max_length=200, description="The persons of a page of cases (at most 200).")


class PersonName(BaseModel):
    """What a list needs to show who a case is about."""

    client_id: UUID = Field(description="Id of the person (as asked).")
    family_name: str = Field(description="Family name.")
    given_name: str = Field(description="Given name(s).")
    birth_year: int | None = Field(description="Year of birth, if known.")


class ConsentInput(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "purpose": "sharing",
                    "agency_kind": "jobcenter",
                    "data_categories": ["name", "contact"],
                    "text_version": "2024-01",
                    "given_on": "2025-01-15",
                }
            ]
        },
    )

    purpose: ConsentPurpose = Field(description="counselling, sharing or statistics.")
    agency_id: str | None = Field(default=None, max_length=100, description="Named partner agency (sharing).")
    agency_kind: AgencyKind | None = Field(default=None, description="Any agency of this kind (sharing).")
    data_categories: list[DataCategory] = Field(min_length=1, max_length=20, description="Data categories covered.")
    text_version: str = Field(min_length=1, max_length=50, description="Version of the consent text shown.")
    given_on: date = Field(description="Day the consent was given.")
    valid_until: date | None = Field(default=None, description="Last valid day; none: until withdrawn.")

    @field_validator("given_on")
    @classmethod
    def not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("code:date_in_future")
        return value

    @model_validator(mode="after")
    def coherent(self) -> ConsentInput:
        if self.purpose is ConsentPurpose.SHARING and not (self.agency_id or self.agency_kind):
            raise ValueError("code:sharing_needs_agency")
        if self.valid_until is not None and self.valid_until < self.given_on:
            raise ValueError("code:valid_until_before_given")
        return self


class DuplicateSearch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"family_name": "Hadad", "given_name": "Rania", "birth_year": 1990}]},
    )

    family_name: str = Field(min_length=1, max_length=200, description="Family name as heard or read.")
    given_name: str = Field(min_length=1, max_length=200, description="Given name as heard or read.")
    birth_date: date | None = Field(default=None, description="Date of birth, if known.")
    birth_year: int | None = Field(default=None, description="Year of birth, if only that is known.")


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"withdrawn_on": "2025-06-30"}]})

    withdrawn_on: date | None = Field(default=None, description="Day of withdrawal; default today.")


class Merge(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"duplicate_client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}]},
    )

    duplicate_client_id: str = Field(
        max_length=100, description="The record that turned out to be the same person; it is retired."
    )


# --- answers ----------------------------------------------------------------------------------


class RegisteredClient(BaseModel):
    """The answer to a registration."""

    client_id: UUID = Field(description="Pseudonymous id of the person; the only id other services see.")
    service_line: ServiceLine = Field(description="The service line the person's first case opens in.")
    service_lines: list[ServiceLine] = Field(description="Every service line the person is routed to.")
    office_id: str = Field(description="Office where the person registered.")
    registered_at: datetime = Field(description="When the person was registered (UTC).")
    version: int = Field(description="Version of the record (send it as If-Match with a correction).")


class DuplicatesElsewhere(BaseModel):
    """Likely duplicates at an office outside the searcher's reach: where and how many, nothing
    about the persons (ask that office)."""

    office_id: str = Field(description="Office where the likely duplicates are registered.")
    count: int = Field(description="How many likely duplicates are registered there.")


class DuplicateMatch(BaseModel):
    """A registered person who may be the same as the one searched for."""

    client_id: UUID = Field(description="Id of the registered person.")
    family_name: str = Field(description="Family name as registered.")
    given_name: str = Field(description="Given name(s) as registered.")
    birth_date: date | None = Field(description="Date of birth, if known.")
    birth_year: int | None = Field(description="Year of birth, if known.")
    office_id: str = Field(description="Office where the person registered.")


class DuplicateCheckResult(BaseModel):
    """Likely duplicates: named within the searcher's reach, only counted per office outside it."""

    candidates: list[DuplicateMatch] = Field(description="Likely duplicates at the searcher's offices.")
    elsewhere: list[DuplicatesElsewhere] = Field(
        description="Likely duplicates at other offices: only the office and a count, never who."
    )


class ClientRecord(BaseModel):
    """A person's record as staff see it (personal data: it stays in intake)."""

    client_id: UUID = Field(description="Id of the person (of the surviving record after a merge).")
    family_name: str = Field(description="Family name.")
    given_name: str = Field(description="Given name(s).")
    name_variants: list[str] = Field(description="Other spellings of the name.")
    birth_date: date | None = Field(description="Date of birth, if known.")
    birth_year: int | None = Field(description="Year of birth, if known.")
    gender: Gender = Field(description="female, male, diverse, not_stated.")
    nationalities: list[str] = Field(description="ISO 3166 alpha-2 codes; XX for stateless.")
    languages: list[str] = Field(description="ISO 639-1 codes of languages spoken.")
    counselling_language: str | None = Field(description="Preferred counselling language (ISO 639-1).")
    phone: str | None = Field(description="Phone number.")
    email: str | None = Field(description="E-mail.")
    street: str | None = Field(description="Street and number.")
    postcode: str | None = Field(description="Postcode.")
    city: str | None = Field(description="City.")
    district: str | None = Field(description="City district.")
    household_members: list[HouseholdMember] = Field(description="Who lives with the person.")
    residence_status: str = Field(description="Residence status category code.")
    arrival_date: date | None = Field(description="Date of arrival in Germany.")
    access_route: AccessRoute | None = Field(description="How the person came.")
    office_id: str = Field(description="Office where the person registered.")
    service_line: ServiceLine = Field(description="The service line the person's first case opened in.")
    service_lines: list[ServiceLine] = Field(description="Every service line the person is routed to.")
    registered_at: datetime = Field(description="When the person was registered (UTC).")
    version: int = Field(description="Version of the record, also the ETag; grows with every change.")


class CorrectionResult(BaseModel):
    client_id: UUID = Field(description="Id of the corrected person.")
    version: int = Field(description="Version of the record after the correction (also the new ETag).")
    changed: list[str] = Field(description="The fields whose value changed, sorted; empty when nothing changed.")


class MergeResult(BaseModel):
    client_id: UUID = Field(description="The surviving record.")
    merged_client_id: UUID = Field(description="The retired duplicate, now pointing to the surviving record.")


class RemainingData(BaseModel):
    """Data of the erased person that intake's erasure cannot delete, where and until when."""

    where: str = Field(description="agency_topics or other_services.")
    agencies: list[str] = Field(
        description="Agencies (or kinds of agency, kind:<kind>) the person consented to share data with."
    )
    retention_days: int | None = Field(description="Until when it stays there (days), if a retention applies.")
    de: str = Field(description="Explanation in German.")
    en: str = Field(description="Explanation in English.")


class ErasureResult(BaseModel):
    client_id: UUID = Field(description="The pseudonymous id of the person (the surviving record), which stays.")
    erased_at: datetime = Field(description="When the personal data was erased (UTC); the same on a repeat.")
    erased_client_ids: list[UUID] = Field(
        default_factory=list, description="Every record erased: the person's and each duplicate merged into it."
    )
    remains_elsewhere: list[RemainingData] = Field(
        default_factory=list, description="What stays outside intake, where and until when."
    )


class ConsentRecord(BaseModel):
    """A recorded consent and whether it is in effect today."""

    consent_id: UUID = Field(description="Id of the consent.")
    purpose: ConsentPurpose = Field(description="counselling, sharing or statistics.")
    agency_id: str | None = Field(description="Named partner agency (sharing).")
    agency_kind: AgencyKind | None = Field(description="Any agency of this kind (sharing).")
    data_categories: list[DataCategory] = Field(description="Data categories covered.")
    text_version: str = Field(description="Version of the consent text shown.")
    given_on: date = Field(description="Day the consent was given.")
    valid_until: date | None = Field(description="Last valid day; none: until withdrawn.")
    withdrawn_on: date | None = Field(description="Day of withdrawal, if withdrawn.")
    expired_on: date | None = Field(description="Day it expired (the day after valid_until), if it has.")
    recorded_by: str = Field(description="Staff id of who recorded it (from the sign-in).")
    withdrawn_by: str | None = Field(default=None, description="Staff id of who withdrew it, if withdrawn.")
    valid_today: bool = Field(description="Whether the consent is in effect today.")


class ConsentCheckResult(BaseModel):
    granted: bool = Field(description="Whether valid consent covers the purpose, agency and categories on the day.")
    consent_id: UUID | None = Field(description="The consent that covers the request (for the audit trail).")
    categories: list[DataCategory] = Field(description="Every category the valid consents cover, sorted.")
    reason: str | None = Field(
        description="Why not: no_consent, consent_withdrawn, consent_expired or categories_not_covered."
    )


class StaffRecord(BaseModel):
    staff_id: str = Field(description="Staff id (the staff_id of the sign-in).")
    office_id: str | None = Field(description="Office the staff member works at; none for network-wide roles.")
    display_name: str = Field(description="Name shown in the user interface.")
    fte: float = Field(description="Full-time equivalent (0 < fte <= 1).")
    service_lines: list[ServiceLine] = Field(description="Service lines the staff member counsels in.")
    active: bool = Field(default=True, description="Works in the network; false: left (the id stays known).")


class OfficeRecord(BaseModel):
    office_id: str = Field(description="Office id.")
    name: str = Field(description="Name of the office.")
    address: str = Field(description="Postal address.")
    open_hours: str = Field(description="Opening hours.")
    district: str | None = Field(description="City district.")
    languages: list[str] = Field(description="ISO 639-1 codes of the languages counselled in.")
    service_lines: list[ServiceLine] = Field(description="Service lines offered.")
    staff: list[StaffRecord] = Field(description="Who works there (active staff only).")


class ResidenceStatusRecord(BaseModel):
    code: str = Field(description="Category code used in registrations.")
    label_de: str = Field(description="German label.")
    label_en: str = Field(description="English label.")
    secure: bool = Field(description="Secure statuses do not route to refugee counselling.")


class RoutingRuleRecord(BaseModel):
    rule_id: str = Field(description="Id of the rule.")
    service_line: ServiceLine = Field(description="The service line the rule routes to.")
    min_age: int | None = Field(description="Lowest age (inclusive); none: no lower bound.")
    max_age: int | None = Field(description="Age limit (exclusive); none: no upper bound.")
    residence_statuses: list[str] | None = Field(description="Statuses the rule applies to; none: any status.")
    unsecured_only: bool = Field(description="Applies only to unsecured residence statuses.")
    active: bool = Field(description="Switched on.")
    description: str = Field(description="What the rule is for.")


# --- reference data (admin) -------------------------------------------------------------------

OFFICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # as cases accepts office ids
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")  # as cases accepts staff ids


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class OfficeInput(BaseModel):
    """An office, created or changed. Name, address and opening hours are always sent; district,
    languages and service lines only when they change (a new office: none, none, every line)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "RSC Marxloh",
                    "address": "Weseler Straße 80, Duisburg",
                    "open_hours": "Di 10–12, Do 14–16",
                    "district": "Marxloh",
                    "languages": ["de", "tr", "ar"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200, description="Name of the office.")
    address: str = Field(min_length=1, max_length=300, description="Postal address.")
    open_hours: str = Field(min_length=1, max_length=300, description="Opening hours.")
    district: str | None = Field(default=None, max_length=100, description="City district; null clears it.")
    languages: list[Annotated[str, Field(max_length=10)]] | None = Field(
        default=None, max_length=30, description="ISO 639-1 codes of the languages counselled in."
    )
    service_lines: list[ServiceLine] | None = Field(default=None, max_length=10, description="Service lines offered.")

    @field_validator("languages")
    @classmethod
    def known_languages(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _unique([_language(value) for value in values])

    @field_validator("service_lines")
    @classmethod
    def distinct_lines(cls, values: list[ServiceLine] | None) -> list[ServiceLine] | None:
        return None if values is None else list(dict.fromkeys(values))


class StaffInput(BaseModel):
    """A staff member, created or changed. Who leaves is deactivated (active: false), not deleted:
    the audit trail and case histories keep naming the staff id."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "office_id": "rsc-hamborn",
                    "display_name": "Fallmanagement Hamborn 3",
                    "fte": 0.75,
                    "service_lines": ["MBE", "KIM"],
                }
            ]
        },
    )

    # Required, even though it may be null: nobody becomes network-wide staff by forgetting a field.
    office_id: str | None = Field(max_length=100, description="Office the staff member works at; null: network-wide.")
    display_name: str = Field(min_length=1, max_length=200, description="Name shown in the user interface.")
    # A number in JSON (a Decimal here, so 0.75 stays 0.75); the validator below gives the range and
    # the two decimals their own messages.
    fte: Annotated[
        Decimal, WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1, "multipleOf": 0.01})
    ] = Field(description="Full-time equivalent: above 0, at most 1, two decimals.")
    service_lines: list[ServiceLine] = Field(
        default_factory=list, max_length=10, description="Service lines counselled in; none for other roles."
    )
    active: bool = Field(default=True, description="false: the staff member left (the id stays known).")

    @field_validator("fte")
    @classmethod
    def plausible_fte(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not Decimal(0) < value <= Decimal(1):
            raise ValueError("code:fte_out_of_range")
        # The column keeps two decimals: a third would be rounded away silently.
        if value != value.quantize(Decimal("0.01")):
            raise ValueError("code:fte_two_decimals")
        return value

    @field_validator("service_lines")
    @classmethod
    def distinct_lines(cls, values: list[ServiceLine]) -> list[ServiceLine]:
        return list(dict.fromkeys(values))


class RoutingRuleInput(BaseModel):
    """A routing rule, whole (what is left out takes its default: no bound, any status)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "service_line": "JMD",
                    "min_age": 12,
                    "max_age": 27,
                    "description": "Jugendmigrationsdienst: young people from 12 up to 27",
                }
            ]
        },
    )

    service_line: ServiceLine = Field(description="The service line the rule routes to.")
    min_age: int | None = Field(default=None, ge=0, le=130, description="Lowest age (inclusive); null: no bound.")
    max_age: int | None = Field(default=None, ge=1, le=130, description="Age limit (exclusive); null: no bound.")
    residence_statuses: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=20, description="Statuses the rule applies to (GET /residence-statuses); null: any."
    )
    unsecured_only: bool = Field(default=False, description="Applies only to unsecured residence statuses.")
    active: bool = Field(default=True, description="Switched on.")
    description: str = Field(min_length=1, max_length=500, description="What the rule is for.")

    @field_validator("max_age")
    @classmethod
    def above_min_age(cls, value: int | None, info: ValidationInfo) -> int | None:
        # The limit is exclusive: a rule from 27 below 27 would match nobody.
        minimum = info.data.get("min_age")
        if value is not None and minimum is not None and minimum >= value:
            raise ValueError("code:min_age_not_below_max")
        return value

    @field_validator("residence_statuses")
    @classmethod
    def some_statuses(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and not values:
            raise ValueError("code:no_statuses")
        return None if values is None else _unique(values)
