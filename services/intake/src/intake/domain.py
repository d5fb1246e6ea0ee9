"""Intake's domain rules: ages from incomplete birth data, routing rules (as data), duplicate keys,
the life of a person's record (corrections, merges, erasure), consent coverage. Plain functions
and values, tested without infrastructure; a rule that says no raises a `knotenpunkt.errors` error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, TypeVar
from uuid import UUID

import cologne_phonetics

from knotenpunkt.concurrency import check_version
from knotenpunkt.errors import Conflict, Gone, Invalid
from knotenpunkt.events import AgeBand, AgencyKind, ConsentPurpose, DataCategory, ServiceLine, SharedPersonData
from knotenpunkt.topics import AGENCY_TOPIC_RETENTION_MS

MINIMUM_AGE = 12
HANDOVER_AGE = 27  # JMD ends, MBE begins
PERSON = {"de": "Die Person", "en": "The person"}


class NotEligible(ValueError):
    """The person cannot be routed to any service line."""


def age_on(birth_date: date, day: date) -> int:
    """Completed years of life on `day` (a birthday counts on the day itself)."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@dataclass(frozen=True)
class BirthData:
    """A full date, only a year (common for refugees' papers), or nothing."""

    birth_date: date | None = None
    birth_year: int | None = None

    def effective_date(self) -> date | None:
        # With only a year known, German registries record 1 January of that year; we do too,
        # so routing and age bands agree with the papers people carry.
        if self.birth_date is not None:
            return self.birth_date
        if self.birth_year is not None:
            return date(self.birth_year, 1, 1)
        return None

    def age_on(self, day: date) -> int | None:
        effective = self.effective_date()
        return None if effective is None else age_on(effective, day)


@dataclass(frozen=True)
class RoutingRule:
    rule_id: str
    service_line: ServiceLine
    min_age: int | None = None
    max_age: int | None = None  # exclusive
    residence_statuses: frozenset[str] | None = None
    unsecured_only: bool = False
    active: bool = True

    def applies(self, age: int | None, residence_status: str, status_is_secure: bool) -> bool:
        if not self.active:
            return False
        if self.min_age is not None or self.max_age is not None:
            if age is None:
                return False
            if self.min_age is not None and age < self.min_age:
                return False
            if self.max_age is not None and age >= self.max_age:
                return False
        if self.residence_statuses is not None and residence_status not in self.residence_statuses:
            return False
        return not (self.unsecured_only and status_is_secure)


def route(
    age: int | None, residence_status: str, status_is_secure: bool, rules: Sequence[RoutingRule]
) -> list[ServiceLine]:
    """Every service line whose rule applies, in rule order; a person may be in several."""
    if age is not None and age < MINIMUM_AGE:
        raise NotEligible(f"counselling starts at {MINIMUM_AGE}")
    lines: list[ServiceLine] = []
    for rule in rules:
        if rule.applies(age, residence_status, status_is_secure) and rule.service_line not in lines:
            lines.append(rule.service_line)
    return lines


def service_lines_for(
    chosen: Sequence[ServiceLine] | None,
    age: int | None,
    residence_status: str,
    status_is_secure: bool,
    rules: Sequence[RoutingRule],
) -> list[ServiceLine]:
    """Staff's choice of service lines if they made one, else what the routing rules say; a
    person no line applies to cannot be registered (the answer points at the birth data)."""
    if chosen:
        return list(chosen)
    try:
        lines = route(age, residence_status, status_is_secure, rules)
    except NotEligible:
        raise Invalid("birth_date", "too_young") from None
    if not lines:
        raise Invalid("birth_date", "cannot_route")
    return lines


def primary_service_line(lines: Sequence[ServiceLine]) -> ServiceLine:
    """The line a person's first case opens in: the age-based line if any, else the first."""
    for preferred in (ServiceLine.JMD, ServiceLine.MBE):
        if preferred in lines:
            return preferred
    return lines[0]


def age_band(age: int | None) -> AgeBand:
    if age is None:
        return AgeBand.UNKNOWN
    if age < 18:
        return AgeBand.AGE_12_17
    if age < 27:
        return AgeBand.AGE_18_26
    if age < 45:
        return AgeBand.AGE_27_44
    if age < 65:
        return AgeBand.AGE_45_64
    return AgeBand.AGE_65_PLUS


def turns_27_between(birth: BirthData, after: date, until: date) -> date | None:
    """The day the person turns 27 if it falls in (after, until], else None."""
    effective = birth.effective_date()
    if effective is None:
        return None
    try:
        birthday = effective.replace(year=effective.year + HANDOVER_AGE)
    except ValueError:  # 29 February in a year without it: the birthday is 1 March
        birthday = date(effective.year + HANDOVER_AGE, 3, 1)
    return birthday if after < birthday <= until else None


def household_size(member_counts: Iterable[int]) -> int:
    """The person and everyone living with them."""
    return 1 + sum(member_counts)


# --- duplicates -------------------------------------------------------------------------------


def phonetic_codes(*names: str) -> list[str]:
    """Kölner Phonetik codes of every part of the names, and of each multi-part name written as
    one word, so "Abd el Rahman" meets "Abdelrahman" ("Müller-Lüdenscheidt" -> three codes).

    Transliteration variants (Yilmaz / Yılmaz / Jilmas, Mohammed / Muhamad) share a code.
    """
    codes: list[str] = []
    for name in names:
        parts = cologne_phonetics.encode(name)
        if len(parts) > 1:
            parts += cologne_phonetics.encode("".join(part for part, _code in parts))
        for _part, code in parts:
            if code and code not in codes:
                codes.append(code)
    return codes


class HasDuplicateKeys(Protocol):
    """What the duplicate rule looks at: the name codes and the birth data, nothing else."""

    @property
    def phonetic_names(self) -> tuple[str, ...]: ...
    @property
    def birth(self) -> BirthData: ...


@dataclass(frozen=True)
class DuplicateCandidate:
    """A registered person within the searcher's reach (shown by name)."""

    client_id: str
    phonetic_names: tuple[str, ...]
    birth: BirthData


@dataclass(frozen=True)
class UnnamedCandidate:
    """A registered person outside the searcher's reach: only where they are registered and the
    keys the rule compares, so nothing that names them ever leaves the query."""

    office_id: str
    phonetic_names: tuple[str, ...]
    birth: BirthData


@dataclass(frozen=True)
class OfficeCount:
    office_id: str
    count: int


C = TypeVar("C", bound=HasDuplicateKeys)


def likely_duplicates(phonetic_names: Iterable[str], birth: BirthData, candidates: Iterable[C]) -> list[C]:
    """Candidates sharing at least two name codes (or all, for one-part names) and compatible
    birth data: the same date, the same year when one side knows only the year, or unknown."""
    wanted = set(phonetic_names)
    needed = min(2, len(wanted))
    found = []
    for candidate in candidates:
        if len(wanted & set(candidate.phonetic_names)) < needed or needed == 0:
            continue
        if _birth_compatible(birth, candidate.birth):
            found.append(candidate)
    return found


def duplicates_by_office(
    phonetic_names: Iterable[str], birth: BirthData, candidates: Iterable[UnnamedCandidate]
) -> list[OfficeCount]:
    """Likely duplicates outside the searcher's reach, pseudonymised: per office only how many,
    so the counter can ask that office (as SORMAS shows cases outside one's jurisdiction)."""
    counts = Counter(candidate.office_id for candidate in likely_duplicates(phonetic_names, birth, candidates))
    return [OfficeCount(office_id, count) for office_id, count in sorted(counts.items())]


def _birth_compatible(one: BirthData, other: BirthData) -> bool:
    if one.birth_date and other.birth_date:
        return one.birth_date == other.birth_date
    one_year = one.birth_year or (one.birth_date.year if one.birth_date else None)
    other_year = other.birth_year or (other.birth_date.year if other.birth_date else None)
    return one_year is None or other_year is None or one_year == other_year


# --- the person's record -----------------------------------------------------------------------

# Attributes that may travel in events (non-identifying); everything else stays in intake.
SHAREABLE = ("gender", "district", "nationalities", "languages", "counselling_language", "residence_status")
_NAME_FIELDS = ("family_name", "given_name", "name_variants")


def ensure_changeable(merged_into: UUID | None, erased: bool) -> None:
    """A record retired by a merge or emptied by erasure takes no more changes."""
    if merged_into is not None:
        raise Conflict("already_merged", details={"merged_into": str(merged_into)})
    ensure_readable(erased)


def ensure_readable(erased: bool) -> None:
    """An erased record answers 410 Gone: it existed, its content does not any more."""
    if erased:
        raise Gone("client_erased")


def check_correction_version(if_match: str | None, current_version: int) -> None:
    """A correction names the version it is based on: without one 428, a stale one (a second
    clerk's form) 409, so nobody's change is silently overwritten."""
    check_version(if_match, current_version, required=True, what=PERSON)


@dataclass(frozen=True)
class CorrectionPlan:
    """What a correction changes: the fields, the duplicate keys, and what other services learn."""

    changes: dict[str, Any]
    phonetic_names: list[str] | None  # recomputed when a name changed
    shared: dict[str, Any]  # the non-identifying attributes that changed, for ClientUpdated


def plan_correction(stored: Mapping[str, Any], sent: Mapping[str, Any]) -> CorrectionPlan:
    """Compare the fields sent with the stored record; only real changes count."""
    changes = {field: value for field, value in sent.items() if _comparable(stored[field]) != value}
    phonetic_names = None
    if set(_NAME_FIELDS) & set(changes):
        phonetic_names = phonetic_codes(
            changes.get("family_name", stored["family_name"]),
            changes.get("given_name", stored["given_name"]),
            *changes.get("name_variants", stored["name_variants"]),
        )
    return CorrectionPlan(changes, phonetic_names, shared_changes(changes))


def shared_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Only the non-identifying attributes that changed leave intake (sizes and years, not members
    and dates)."""
    shared = {field: changes[field] for field in SHAREABLE if field in changes}
    if "household_members" in changes:
        shared["household_size"] = household_size(member["count"] for member in changes["household_members"])
    if "arrival_date" in changes:
        shared["arrival_year"] = changes["arrival_date"].year if changes["arrival_date"] else None
    return shared


def _comparable(value: Any) -> Any:
    # Arrays come back from the database as lists already; anything list-like compares as a list.
    return list(value) if isinstance(value, list | tuple) else value


def ensure_mergeable(surviving_id: UUID, duplicate_id: UUID) -> None:
    if surviving_id == duplicate_id:
        # A 409 at the field, as the API has always answered it.
        raise Conflict("validation_failed", fields=[("duplicate_client_id", "merge_same", {})])


# --- consent ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    consent_id: str
    purpose: ConsentPurpose
    data_categories: frozenset[DataCategory]
    given_on: date
    agency_id: str | None = None
    agency_kind: AgencyKind | None = None
    valid_until: date | None = None
    withdrawn_on: date | None = None
    expired_on: date | None = None

    def ensure_in_effect(self) -> None:
        """Only a consent still in effect can be withdrawn."""
        if self.withdrawn_on is not None or self.expired_on is not None:
            raise Conflict("consent_not_active")

    def valid_on(self, day: date) -> bool:
        if day < self.given_on:
            return False
        if self.withdrawn_on is not None and day >= self.withdrawn_on:
            return False
        return not (self.valid_until is not None and day > self.valid_until)

    def concerns(self, agency_id: str | None, agency_kind: AgencyKind | None) -> bool:
        """A consent for an agency kind covers every agency of that kind; one for a named
        agency covers only that agency."""
        if self.purpose is not ConsentPurpose.SHARING:
            return True
        if self.agency_id is not None:
            return self.agency_id == agency_id
        return self.agency_kind is not None and self.agency_kind == agency_kind


@dataclass(frozen=True)
class ConsentDecision:
    granted: bool
    consent_id: str | None
    categories: frozenset[DataCategory]
    reason: str | None


def check_consent(
    consents: Iterable[Consent],
    purpose: ConsentPurpose,
    day: date,
    categories: Iterable[DataCategory] = (),
    agency_id: str | None = None,
    agency_kind: AgencyKind | None = None,
) -> ConsentDecision:
    """Is there valid consent for this purpose (and agency), covering these categories, on `day`?"""
    wanted = frozenset(categories)
    relevant = [c for c in consents if c.purpose is purpose and c.concerns(agency_id, agency_kind)]
    if not relevant:
        return ConsentDecision(False, None, frozenset(), "no_consent")
    valid = [c for c in relevant if c.valid_on(day)]
    if not valid:
        withdrawn = any(c.withdrawn_on is not None and c.withdrawn_on <= day for c in relevant)
        return ConsentDecision(False, None, frozenset(), "consent_withdrawn" if withdrawn else "consent_expired")
    covered: frozenset[DataCategory] = frozenset().union(*(c.data_categories for c in valid))
    if not wanted <= covered:
        return ConsentDecision(False, None, covered, "categories_not_covered")
    # Name the consent that covers everything on its own, if one does (for the audit trail).
    best = next((c for c in valid if wanted <= c.data_categories), valid[0])
    return ConsentDecision(True, best.consent_id, covered, None)


def consented_data(decision: ConsentDecision, person: Mapping[str, Any]) -> SharedPersonData:
    """Exactly the personal data the person consented to share, nothing more; a refused decision
    is a 409 with its reason."""
    if not decision.granted:
        raise Conflict("no_valid_consent", details={"reason": decision.reason})
    categories = decision.categories
    data: dict[str, Any] = {"categories": tuple(sorted(category.value for category in categories))}
    if DataCategory.NAME in categories:
        data.update(family_name=person["family_name"], given_name=person["given_name"])
    if DataCategory.CONTACT in categories:
        data.update(phone=person["phone"], email=person["email"])
    if DataCategory.BIRTH_DATE in categories:
        data.update(birth_date=person["birth_date"])
    if DataCategory.RESIDENCE_STATUS in categories:
        data.update(residence_status=person["residence_status"])
    return SharedPersonData(**data)


# --- what an erasure cannot reach -------------------------------------------------------------


@dataclass(frozen=True)
class Remaining:
    """Data of an erased person that intake's erasure does not delete, where it is and until when."""

    where: str
    agencies: tuple[str, ...]
    retention_days: int | None
    de: str
    en: str


def remaining_elsewhere(agencies_consented: Sequence[str]) -> list[Remaining]:
    """What stays outside intake after an erasure. Only referrals knows which agencies actually
    received the person's data (its export lists what each received); intake knows whom the
    person consented to share with. What an agency received stays on its own topic until the
    topic's retention ends, and in the agency's own systems under its own responsibility."""
    days = AGENCY_TOPIC_RETENTION_MS // (24 * 3600 * 1000)
    return [
        Remaining(
            where="agency_topics",
            agencies=tuple(agencies_consented),
            retention_days=days,
            de=f"Was eine Partnerstelle mit einer Überweisung erhalten hat, bleibt auf ihrem Topic "
            f"(knotenpunkt.agency.<Stelle>.referrals.v1), bis dessen Aufbewahrungsfrist von {days} Tagen endet, "
            "und in den Systemen der Stelle in deren Verantwortung. Welche Stellen Daten erhalten haben, nennt der "
            "Export des Überweisungsdienstes (GET /clients/{client_id}/export bei referrals); hier stehen die "
            "Stellen (oder Arten von Stellen, kind:…), für die eine Einwilligung zur Weitergabe vorlag.",
            en=f"What a partner agency received with a referral stays on its topic "
            f"(knotenpunkt.agency.<agency>.referrals.v1) until the topic's retention of {days} days ends, and in "
            "the agency's own systems under its responsibility. Which agencies received data is listed by the "
            "referrals service's export (GET /clients/{client_id}/export on referrals); listed here are the "
            "agencies (or kinds of agency, kind:…) the person consented to share with.",
        ),
        Remaining(
            where="other_services",
            agencies=(),
            retention_days=None,
            de="Fälle, Beratungen und Überweisungen löschen cases und referrals auf das Ereignis ClientErased hin; "
            "anonyme Zahlen der Statistik bleiben, sie identifizieren niemanden.",
            en="Cases, consultations and referrals are erased by cases and referrals on the ClientErased event; "
            "anonymous figures in stats stay, they never identified anyone.",
        ),
    ]
