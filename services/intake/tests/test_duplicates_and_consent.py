"""Duplicate detection with Kölner Phonetik, and the consent rules."""

from datetime import date

from intake.domain import (
    BirthData,
    Consent,
    DuplicateCandidate,
    OfficeCount,
    UnnamedCandidate,
    check_consent,
    duplicates_by_office,
    likely_duplicates,
    phonetic_codes,
)
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory

BORN = date(1990, 4, 12)


def candidate(client_id: str, family: str, given: str, birth: BirthData) -> DuplicateCandidate:
    return DuplicateCandidate(client_id, tuple(phonetic_codes(family, given)), birth)


def test_transliteration_variants_share_their_codes() -> None:
    assert phonetic_codes("Yılmaz") == phonetic_codes("Yilmaz") == phonetic_codes("Jilmas")
    assert phonetic_codes("Mohammed") == phonetic_codes("Muhamad")
    assert phonetic_codes("Müller-Lüdenscheidt") == ["657", "52682", "65752682"]
    assert set(phonetic_codes("Abdelrahman")) <= set(phonetic_codes("Abd el Rahman"))


def test_the_same_person_spelled_differently_is_a_likely_duplicate() -> None:
    existing = [
        candidate("a", "Yılmaz", "Ayşe", BirthData(BORN)),
        candidate("b", "Yilmaz", "Mehmet", BirthData(BORN)),
        candidate("c", "Jilmas", "Aische", BirthData(date(1991, 4, 12))),
    ]
    found = likely_duplicates(phonetic_codes("Yilmaz", "Ayse"), BirthData(BORN), existing)
    assert [c.client_id for c in found] == ["a"]


def test_only_a_birth_year_or_no_birth_data_still_matches_by_name() -> None:
    existing = [
        candidate("year", "Haddad", "Omar", BirthData(birth_year=1990)),
        candidate("unknown", "Hadad", "Umar", BirthData()),
        candidate("other-year", "Haddad", "Omar", BirthData(birth_year=1985)),
    ]
    found = likely_duplicates(phonetic_codes("Haddad", "Omar"), BirthData(BORN, 1990), existing)
    assert {c.client_id for c in found} == {"year", "unknown"}


def test_different_people_are_not_duplicates() -> None:
    existing = [candidate("a", "Nowak", "Piotr", BirthData(BORN))]
    assert likely_duplicates(phonetic_codes("Kowalski", "Piotr"), BirthData(BORN), existing) == []


def unnamed(office_id: str, family: str, given: str, birth: BirthData) -> UnnamedCandidate:
    return UnnamedCandidate(office_id, tuple(phonetic_codes(family, given)), birth)


def test_likely_duplicates_elsewhere_are_counted_per_office_by_the_same_rule() -> None:
    elsewhere = [
        unnamed("rsc-hamborn", "Yılmaz", "Ayşe", BirthData(BORN)),
        unnamed("rsc-hamborn", "Jilmas", "Aische", BirthData(birth_year=1990)),
        unnamed("rsc-rheinhausen", "Yilmaz", "Ayse", BirthData()),
        # The same names, another birthday: not the same person, not counted.
        unnamed("rsc-rheinhausen", "Yilmaz", "Ayse", BirthData(date(1991, 4, 12))),
        unnamed("rsc-hochfeld", "Nowak", "Piotr", BirthData(BORN)),
    ]
    assert duplicates_by_office(phonetic_codes("Yilmaz", "Ayse"), BirthData(BORN, 1990), elsewhere) == [
        OfficeCount("rsc-hamborn", 2),
        OfficeCount("rsc-rheinhausen", 1),
    ]
    assert duplicates_by_office(phonetic_codes("Kowalski", "Jan"), BirthData(BORN), elsewhere) == []


def test_a_count_elsewhere_carries_nothing_that_names_the_person() -> None:
    # The candidate type the query fills has no field for an id, a name or a birth date beyond
    # the rule's keys, and what the count returns has only the office and the number.
    assert set(UnnamedCandidate.__dataclass_fields__) == {"office_id", "phonetic_names", "birth"}
    assert set(OfficeCount.__dataclass_fields__) == {"office_id", "count"}


def consent(**changes: object) -> Consent:
    values: dict = {
        "consent_id": "c1",
        "purpose": ConsentPurpose.SHARING,
        "data_categories": frozenset({DataCategory.NAME, DataCategory.TOPIC}),
        "given_on": date(2026, 1, 10),
        "agency_kind": AgencyKind.JOBCENTER,
        "valid_until": date(2026, 12, 31),
    }
    values.update(changes)
    return Consent(**values)


def test_valid_consent_for_an_agency_kind_covers_every_agency_of_that_kind() -> None:
    decision = check_consent(
        [consent()],
        ConsentPurpose.SHARING,
        date(2026, 6, 1),
        [DataCategory.NAME],
        "jobcenter-duisburg",
        AgencyKind.JOBCENTER,
    )
    assert decision.granted and decision.consent_id == "c1"


def test_consent_for_a_named_agency_does_not_cover_another() -> None:
    named = consent(agency_kind=None, agency_id="jobcenter-duisburg")
    assert check_consent([named], ConsentPurpose.SHARING, date(2026, 6, 1), [], "jobcenter-duisburg").granted
    refused = check_consent(
        [named], ConsentPurpose.SHARING, date(2026, 6, 1), [], "jobcenter-essen", AgencyKind.JOBCENTER
    )
    assert (refused.granted, refused.reason) == (False, "no_consent")


def test_categories_beyond_the_consent_are_refused() -> None:
    decision = check_consent(
        [consent()], ConsentPurpose.SHARING, date(2026, 6, 1), [DataCategory.HEALTH], None, AgencyKind.JOBCENTER
    )
    assert (decision.granted, decision.reason) == (False, "categories_not_covered")


def test_withdrawn_and_expired_consents_are_no_longer_valid() -> None:
    withdrawn = consent(withdrawn_on=date(2026, 5, 1))
    assert check_consent([withdrawn], ConsentPurpose.SHARING, date(2026, 4, 30), [], None, AgencyKind.JOBCENTER).granted
    late = check_consent([withdrawn], ConsentPurpose.SHARING, date(2026, 5, 1), [], None, AgencyKind.JOBCENTER)
    assert (late.granted, late.reason) == (False, "consent_withdrawn")
    expired = check_consent([consent()], ConsentPurpose.SHARING, date(2027, 1, 1), [], None, AgencyKind.JOBCENTER)
    assert (expired.granted, expired.reason) == (False, "consent_expired")
    early = check_consent([consent()], ConsentPurpose.SHARING, date(2026, 1, 9), [], None, AgencyKind.JOBCENTER)
    assert not early.granted


def test_other_purposes_need_their_own_consent() -> None:
    decision = check_consent([consent()], ConsentPurpose.STATISTICS, date(2026, 6, 1))
    assert (decision.granted, decision.reason) == (False, "no_consent")
