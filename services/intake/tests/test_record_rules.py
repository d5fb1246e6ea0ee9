"""The rules on a person's record: the routing gate at registration, corrections (If-Match, what
changes, what leaves intake), merged and erased records, merging, and what consent lets out."""

import uuid
from datetime import date

import pytest

from intake import commands
from intake.domain import (
    BirthData,
    Consent,
    ConsentDecision,
    RoutingRule,
    check_correction_version,
    consented_data,
    ensure_changeable,
    ensure_mergeable,
    ensure_readable,
    household_size,
    phonetic_codes,
    plan_correction,
    service_lines_for,
)
from knotenpunkt.errors import Conflict, Gone, Invalid, PreconditionRequired
from knotenpunkt.events import ConsentPurpose, DataCategory, Gender, ServiceLine
from knotenpunkt.testing.uow import FakeUnitOfWork

RULES = [
    RoutingRule("jmd", ServiceLine.JMD, min_age=12, max_age=27),
    RoutingRule("mbe", ServiceLine.MBE, min_age=27),
    RoutingRule("refugee", ServiceLine.REFUGEE, unsecured_only=True),
]

STORED = {
    "family_name": "Haddad",
    "given_name": "Omar",
    "name_variants": ["Hadad"],
    "phone": "+49 203 555 0100",
    "district": "Hochfeld",
    "languages": ["ar", "de"],
    "household_members": [{"relation": "partner", "count": 1}],
    "arrival_date": date(2023, 9, 1),
    "gender": "male",
}


# --- the routing gate at registration ---------------------------------------------------------


def test_staff_choice_of_service_lines_wins_over_the_rules() -> None:
    assert service_lines_for([ServiceLine.KIM], 30, "settlement_permit", True, RULES) == [ServiceLine.KIM]


def test_the_rules_decide_without_a_choice() -> None:
    assert service_lines_for(None, 30, "toleration", False, RULES) == [ServiceLine.MBE, ServiceLine.REFUGEE]
    assert service_lines_for([], 20, "settlement_permit", True, RULES) == [ServiceLine.JMD]


def test_a_child_is_refused_at_the_birth_date() -> None:
    with pytest.raises(Invalid) as refused:
        service_lines_for(None, 11, "toleration", False, RULES)
    assert (refused.value.status_code, refused.value.fields) == (422, [("birth_date", "too_young", {})])


def test_without_an_age_and_a_secure_status_nothing_applies() -> None:
    with pytest.raises(Invalid) as refused:
        service_lines_for(None, None, "settlement_permit", True, RULES)
    assert refused.value.fields == [("birth_date", "cannot_route", {})]


def test_the_household_counts_the_person_too() -> None:
    assert household_size([]) == 1
    assert household_size([1, 3]) == 5


# --- corrections ------------------------------------------------------------------------------


def test_a_correction_must_name_the_version_it_is_based_on() -> None:
    with pytest.raises(PreconditionRequired) as blind:
        check_correction_version(None, 2)
    assert (blind.value.status_code, blind.value.code) == (428, "if_match_required")


def test_a_stale_version_is_a_conflict_that_says_which_version_is_current() -> None:
    with pytest.raises(Conflict) as stale:
        check_correction_version('"1"', 2)
    assert (stale.value.status_code, stale.value.code) == (409, "version_conflict")
    assert (stale.value.params["current"], stale.value.params["given"]) == (2, "1")
    assert stale.value.params["what"] == {"de": "Die Person", "en": "The person"}


def test_an_unreadable_if_match_is_invalid_and_the_current_one_passes() -> None:
    with pytest.raises(Invalid) as unreadable:
        check_correction_version("version two", 2)
    assert (unreadable.value.status_code, unreadable.value.field) == (422, "If-Match")
    check_correction_version('"2"', 2)
    check_correction_version('W/"2"', 2)


def test_only_fields_that_really_change_count() -> None:
    plan = plan_correction(STORED, {"district": "Marxloh", "phone": "+49 203 555 0199", "languages": ["ar", "de"]})
    assert plan.changes == {"district": "Marxloh", "phone": "+49 203 555 0199"}
    assert plan.phonetic_names is None


def test_only_non_identifying_attributes_leave_intake() -> None:
    plan = plan_correction(STORED, {"district": "Marxloh", "phone": "+49 203 555 0199"})
    assert plan.shared == {"district": "Marxloh"}
    assert plan_correction(STORED, {"phone": "+49 203 555 0199"}).shared == {}


def test_household_and_arrival_leave_intake_as_size_and_year() -> None:
    plan = plan_correction(
        STORED,
        {"household_members": [{"relation": "child", "count": 2}], "arrival_date": date(2022, 5, 1)},
    )
    assert plan.shared == {"household_size": 3, "arrival_year": 2022}
    assert plan_correction(STORED, {"arrival_date": None}).shared == {"arrival_year": None}


def test_a_changed_name_recomputes_the_duplicate_keys_from_the_whole_name() -> None:
    plan = plan_correction(STORED, {"given_name": "Umar"})
    assert plan.changes == {"given_name": "Umar"}
    assert plan.phonetic_names == phonetic_codes("Haddad", "Umar", "Hadad")
    assert plan.shared == {}


def test_an_unchanged_enum_value_is_no_change() -> None:
    assert plan_correction(STORED, {"gender": Gender.MALE}).changes == {}


# --- merged and erased records ----------------------------------------------------------------


def test_a_merged_record_takes_no_changes_and_says_where_it_went() -> None:
    survivor = uuid.uuid4()
    with pytest.raises(Conflict) as merged:
        ensure_changeable(survivor, erased=False)
    assert (merged.value.status_code, merged.value.code) == (409, "already_merged")
    assert merged.value.details == {"merged_into": str(survivor)}


def test_an_erased_record_is_gone() -> None:
    with pytest.raises(Gone) as gone:
        ensure_changeable(None, erased=True)
    assert (gone.value.status_code, gone.value.code) == (410, "client_erased")
    with pytest.raises(Gone):
        ensure_readable(erased=True)
    ensure_changeable(None, erased=False)
    ensure_readable(erased=False)


def test_a_person_cannot_be_merged_with_itself() -> None:
    same = uuid.uuid4()
    with pytest.raises(Conflict) as refused:
        ensure_mergeable(same, same)
    assert refused.value.status_code == 409
    assert refused.value.fields == [("duplicate_client_id", "merge_same", {})]
    ensure_mergeable(same, uuid.uuid4())


async def test_merging_a_person_with_itself_is_refused_before_anything_is_touched() -> None:
    # FakeUnitOfWork refuses SQL: the rule is checked before any record is loaded.
    uow = FakeUnitOfWork()
    same = uuid.uuid4()
    with pytest.raises(Conflict):
        await commands.merge_clients(uow, same, same)  # type: ignore[arg-type]
    assert uow.events == []


# --- consent ----------------------------------------------------------------------------------


def consent(**changes: object) -> Consent:
    values: dict = {
        "consent_id": "c1",
        "purpose": ConsentPurpose.SHARING,
        "data_categories": frozenset({DataCategory.NAME}),
        "given_on": date(2026, 1, 10),
    }
    values.update(changes)
    return Consent(**values)


def test_only_a_consent_in_effect_can_be_withdrawn() -> None:
    consent().ensure_in_effect()
    for ended in (consent(withdrawn_on=date(2026, 2, 1)), consent(expired_on=date(2026, 2, 1))):
        with pytest.raises(Conflict) as refused:
            ended.ensure_in_effect()
        assert (refused.value.status_code, refused.value.code) == (409, "consent_not_active")


PERSON = {
    "family_name": "Haddad",
    "given_name": "Omar",
    "phone": "+49 203 555 0100",
    "email": "omar@example.org",
    "birth_date": date(1988, 3, 4),
    "residence_status": "asylum_procedure",
}


def test_exactly_the_consented_categories_are_shared() -> None:
    decision = ConsentDecision(True, "c1", frozenset({DataCategory.NAME, DataCategory.TOPIC}), None)
    shared = consented_data(decision, PERSON)
    assert shared.categories == ("name", "topic")
    assert (shared.family_name, shared.given_name) == ("Haddad", "Omar")
    assert shared.phone is shared.email is shared.birth_date is shared.residence_status is None


def test_contact_birth_date_and_status_each_need_their_category() -> None:
    categories = frozenset({DataCategory.CONTACT, DataCategory.BIRTH_DATE, DataCategory.RESIDENCE_STATUS})
    shared = consented_data(ConsentDecision(True, "c1", categories, None), PERSON)
    assert (shared.phone, shared.email) == ("+49 203 555 0100", "omar@example.org")
    assert (shared.birth_date, shared.residence_status) == (date(1988, 3, 4), "asylum_procedure")
    assert shared.family_name is None


def test_nothing_is_shared_without_valid_consent_and_the_answer_says_why() -> None:
    with pytest.raises(Conflict) as refused:
        consented_data(ConsentDecision(False, None, frozenset(), "consent_withdrawn"), PERSON)
    assert (refused.value.status_code, refused.value.code) == (409, "no_valid_consent")
    assert refused.value.details == {"reason": "consent_withdrawn"}


def test_birth_data_from_a_year_only_still_routes_by_age() -> None:
    age = BirthData(birth_year=2000).age_on(date(2026, 6, 1))
    assert service_lines_for(None, age, "settlement_permit", True, RULES) == [ServiceLine.JMD]
