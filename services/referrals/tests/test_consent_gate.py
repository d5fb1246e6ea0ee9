"""The consent gate: no valid sharing consent, no referral; with one, exactly the consented data.

intake is replaced by a fake of the port here (unit tests only); the integration and end-to-end
tests go through the HTTP adapter.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from knotenpunkt.errors import DomainError
from knotenpunkt.events import AgencyKind, DataCategory, SharedPersonData
from knotenpunkt.policy import Action
from referrals.consent_gate import Consented, ConsentGate, Recipient
from referrals.domain import REFERRAL_CATEGORIES, ConsentCheck, ConsentMissing, require_consent
from referrals.intake import IntakeRefused, IntakeUnavailable, NoSharingConsent, UnknownClient

CLIENT = uuid.uuid4()
JOBCENTER = Recipient("jobcenter-duisburg", AgencyKind.JOBCENTER, "kafka")
INBOX_AGENCY = Recipient("jugendamt-duisburg", AgencyKind.JUGENDAMT, "inbox")


class FakeIntake:
    def __init__(self, check: ConsentCheck | Exception, shared: SharedPersonData | Exception | None = None) -> None:
        self.check = check
        self.shared = shared or SharedPersonData(categories=("name",), family_name="Yılmaz", given_name="Ayşe")
        self.calls: list[tuple] = []

    async def consent_check(
        self, client_id: UUID, agency_id: str, agency_kind: AgencyKind, categories: tuple[DataCategory, ...]
    ) -> ConsentCheck:
        self.calls.append(("consent_check", client_id, agency_id, agency_kind, categories))
        if isinstance(self.check, Exception):
            raise self.check
        return self.check

    async def shared_data(self, client_id: UUID, agency_id: str, agency_kind: AgencyKind) -> SharedPersonData:
        self.calls.append(("shared_data", client_id, agency_id, agency_kind))
        if isinstance(self.shared, Exception):
            raise self.shared
        return self.shared


def gate(intake: FakeIntake, enabled: bool = True) -> ConsentGate:
    return ConsentGate(intake, enabled=enabled)


def test_require_consent_refuses_without_a_granted_consent() -> None:
    with pytest.raises(ConsentMissing) as missing:
        require_consent(ConsentCheck(granted=False, reason="no_consent_for_agency"))
    assert missing.value.reason == "no_consent_for_agency"
    granted = ConsentCheck(granted=True, consent_id="c-1", categories=("name",))
    assert require_consent(granted) is granted


async def test_without_consent_the_referral_is_refused_with_409_and_nothing_is_fetched() -> None:
    intake = FakeIntake(ConsentCheck(granted=False, reason="none"))
    with pytest.raises(DomainError) as refused:
        await gate(intake).consented_data(CLIENT, JOBCENTER)
    assert (refused.value.status_code, refused.value.code) == (409, "no_sharing_consent")
    assert [call[0] for call in intake.calls] == ["consent_check"]


async def test_the_check_asks_for_sharing_with_that_agency_and_its_kind() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-1", categories=("name", "topic")))
    await gate(intake).consented_data(CLIENT, JOBCENTER)
    assert intake.calls[0] == ("consent_check", CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, REFERRAL_CATEGORIES)
    assert intake.calls[1] == ("shared_data", CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER)


async def test_with_consent_the_agency_gets_exactly_the_consented_data_and_the_topic() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-1", categories=("name", "topic")))
    consented = await gate(intake).consented_data(CLIENT, JOBCENTER)
    assert consented.consent_id == "c-1"
    # Kept with the referral for the person's own export: the categories, never the values.
    assert consented.categories == ("name", "topic")
    shared = consented.shared
    assert shared is not None
    assert shared.categories == ("name", "topic")
    assert (shared.family_name, shared.phone, shared.birth_date) == ("Yılmaz", None, None)


async def test_the_consent_must_cover_the_topic_every_referral_discloses() -> None:
    assert REFERRAL_CATEGORIES == (DataCategory.TOPIC,)


async def test_categories_intake_already_lists_are_not_doubled() -> None:
    intake = FakeIntake(
        ConsentCheck(granted=True, consent_id="c-1", categories=("name", "topic")),
        SharedPersonData(categories=("name", "topic"), family_name="Yılmaz"),
    )
    shared = (await gate(intake).consented_data(CLIENT, JOBCENTER)).shared
    assert shared is not None and shared.categories == ("name", "topic")


async def test_an_inbox_agency_gets_no_personal_data_on_its_topic() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-2", categories=("name", "topic")))
    assert await gate(intake).consented_data(CLIENT, INBOX_AGENCY) == Consented("c-2", ("name", "topic"), None)
    assert [call[0] for call in intake.calls] == ["consent_check"]


async def test_with_the_gate_turned_off_nothing_is_checked_and_nothing_personal_shared() -> None:
    intake = FakeIntake(IntakeUnavailable("must not be called"))
    assert await gate(intake, enabled=False).consented_data(CLIENT, JOBCENTER) == Consented(None, checked=False)
    assert intake.calls == []


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (IntakeUnavailable("down"), 503, "intake_unavailable"),
        (UnknownClient("x"), 409, "unknown_client"),
        # Intake refused the person sending (e.g. the person's record is at another office): 403.
        (IntakeRefused("forbidden_office", Action.CONSENT_READ), 403, "forbidden_office"),
        (IntakeRefused("something_else", Action.CONSENT_READ), 403, "forbidden_role"),
    ],
)
async def test_intake_problems_are_clear_answers_not_500(failure: Exception, status: int, code: str) -> None:
    with pytest.raises(DomainError) as refused:
        await gate(FakeIntake(failure)).consented_data(CLIENT, JOBCENTER)
    assert (refused.value.status_code, refused.value.code) == (status, code)


def test_a_missing_consent_is_a_409_in_our_error_format() -> None:
    missing = ConsentMissing("no_consent_for_agency")
    assert (missing.status_code, missing.code) == (409, "no_sharing_consent")


async def test_a_consent_ended_between_check_and_fetch_refuses_the_referral() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-1", categories=("topic",)), NoSharingConsent("x"))
    with pytest.raises(DomainError) as refused:
        await gate(intake).consented_data(CLIENT, JOBCENTER)
    assert (refused.value.status_code, refused.value.code) == (409, "no_sharing_consent")


@pytest.mark.parametrize(
    ("failure", "why"),
    [
        (NoSharingConsent("x"), "no_consent"),
        (UnknownClient("x"), "unknown_client"),
        (IntakeUnavailable("down"), "intake_unavailable"),
        (IntakeRefused("forbidden_agency", Action.SHARED_DATA_READ), "intake_refused"),
    ],
)
async def test_the_inbox_shows_no_person_and_says_why_when_intake_gives_nothing(failure: Exception, why: str) -> None:
    intake = FakeIntake(ConsentCheck(granted=True), failure)
    assert await gate(intake).person(CLIENT, "jugendamt-duisburg", AgencyKind.JUGENDAMT) == (None, why)


async def test_the_inbox_shows_exactly_what_intake_shares_now() -> None:
    shared = SharedPersonData(categories=("name",), family_name="Yılmaz")
    intake = FakeIntake(ConsentCheck(granted=True), shared)
    assert await gate(intake).person(CLIENT, "jugendamt-duisburg", AgencyKind.JUGENDAMT) == (shared, None)
    assert intake.calls == [("shared_data", CLIENT, "jugendamt-duisburg", AgencyKind.JUGENDAMT)]


async def test_with_the_gate_turned_off_the_inbox_shows_no_person_and_asks_nobody() -> None:
    intake = FakeIntake(IntakeUnavailable("must not be called"), IntakeUnavailable("must not be called"))
    assert await gate(intake, enabled=False).person(CLIENT, "jugendamt-duisburg", AgencyKind.JUGENDAMT) == (
        None,
        "no_consent",
    )
    assert intake.calls == []
