"""The partner directory's rules without a broker or database: who may keep it, what an entry
must look like, which topics an agency gets. The integration tests (tests/integration/
test_referrals_admin.py) show the same with real Keycloak tokens, the database and the broker."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from knotenpunkt import topics
from knotenpunkt.errors import Forbidden
from knotenpunkt.i18n import message
from knotenpunkt.policy import Action, require
from knotenpunkt.uow import Actor
from referrals import directory
from referrals.schemas import AgencyId, AgencyInput

GOOD: dict[str, Any] = {
    "name": "Internationaler Bund Duisburg",
    "kind": "course_provider",
    "response_days": 7,
    "channel": "inbox",
    "topics": ["language_integration_course"],
    "languages": ["de", "ar"],
}
KNOWN_TOPICS = {"language_integration_course", "work"}


@pytest.mark.parametrize(
    ("actor", "may_write"),
    [
        (Actor.staff("admin", "admin"), True),
        (Actor.staff("lead-hamborn", "office_lead", offices=("rsc-hamborn",)), False),
        (Actor.staff("coordinator", "coordinator"), False),
        (Actor.staff("staff-hamborn-1", "case_manager", offices=("rsc-hamborn",)), False),
        (Actor.staff("intake-hamborn", "intake_staff", offices=("rsc-hamborn",)), False),
        (Actor.staff("dpo", "data_protection_officer"), False),
        (Actor.staff("agency-jobcenter-duisburg", "agency_staff", agency_id="jobcenter-duisburg"), False),
    ],
)
def test_only_the_admin_keeps_the_directory_and_everyone_signed_in_reads_it(actor: Actor, may_write: bool) -> None:
    require(actor, Action.REFERENCE_READ)
    if may_write:
        require(actor, Action.REFERENCE_WRITE)
    else:
        with pytest.raises(Forbidden) as refused:
            require(actor, Action.REFERENCE_WRITE)
        assert refused.value.code == "forbidden_role"


def test_a_complete_entry_is_accepted_and_languages_default_to_german() -> None:
    entry = AgencyInput.model_validate({k: v for k, v in GOOD.items() if k != "languages"})
    assert entry.languages == ["de"]
    assert directory.entry_problems(entry, KNOWN_TOPICS) == []


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    """Field path -> error type (or the domain code a validator names) of a refused entry."""
    with pytest.raises(ValidationError) as refused:
        AgencyInput.model_validate(body)
    return {
        ".".join(str(p) for p in e["loc"]): str(e["ctx"]["error"]) if e["type"] == "value_error" else e["type"]
        for e in refused.value.errors()
    }


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"response_days": 0}, "response_days", "greater_than_equal"),
        ({"response_days": 61}, "response_days", "less_than_equal"),
        ({"channel": "email"}, "channel", "enum"),
        ({"kind": "bank"}, "kind", "enum"),
        ({"name": ""}, "name", "string_too_short"),
        ({"topics": []}, "topics", "too_short"),
        ({"recorded_by": "admin"}, "recorded_by", "extra_forbidden"),
    ],
)
def test_a_malformed_entry_is_refused_at_its_field(change: dict[str, Any], field: str, error: str) -> None:
    assert errors_of(GOOD | change)[field] == error


def test_unknown_topics_and_languages_and_repeats_are_named_at_their_position() -> None:
    entry = AgencyInput.model_validate(GOOD | {"topics": ["work", "cooking", "work"], "languages": ["de", "xx", "DE"]})
    assert directory.entry_problems(entry, KNOWN_TOPICS) == [
        ("topics.1", "unknown_agency_topic", {"topic": "cooking"}),
        ("topics.2", "repeated_entry", {"value": "work"}),
        ("languages.1", "unknown_agency_language", {"value": "xx"}),
        ("languages.2", "unknown_agency_language", {"value": "DE"}),
    ]


def test_the_iso_639_1_list_is_complete() -> None:
    assert len(directory.ISO_639_1) == 184
    assert {"de", "en", "ar", "tr", "ru", "uk", "fa", "ps", "ti", "ku"} <= directory.ISO_639_1


@pytest.mark.parametrize("agency_id", ["ib-duisburg", "a1", "0-9", "x" * 63])
def test_an_agency_id_that_can_name_topics_is_accepted(agency_id: str) -> None:
    assert TypeAdapter(AgencyId).validate_python(agency_id) == agency_id
    assert [spec.name for spec in directory.agency_topics(agency_id, 3)] == [
        topics.agency_referrals(agency_id),
        topics.agency_answers(agency_id),
    ]


@pytest.mark.parametrize(
    "agency_id", ["IB-Duisburg", "x", "-ib", "ib_duisburg", "ib.duisburg", "x" * 64, "ib duisburg"]
)
def test_an_agency_id_that_cannot_be_part_of_a_topic_name_is_refused(agency_id: str) -> None:
    with pytest.raises(ValidationError, match="code:invalid_agency_id"):
        TypeAdapter(AgencyId).validate_python(agency_id)


def test_agency_topics_keep_personal_data_only_for_the_delivery_period() -> None:
    for spec in directory.agency_topics("ib-duisburg", 3):
        assert spec.retention_ms == topics.AGENCY_TOPIC_RETENTION_MS
        assert spec.partitions == 3


def test_every_problem_reads_in_german_and_english_with_the_value_named() -> None:
    entry = AgencyInput.model_validate(GOOD | {"topics": ["work", "cooking", "work"], "languages": ["xx"]})
    for _field, code, params in directory.entry_problems(entry, KNOWN_TOPICS):
        german, english = message(code, "de", **params), message(code, "en", **params)
        assert german != english
        assert all(str(value) in german and str(value) in english for value in params.values())
