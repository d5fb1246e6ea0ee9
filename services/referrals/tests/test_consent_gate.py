"""The consent gate: no valid sharing consent, no referral; with one, exactly the consented data.

intake is replaced by a fake of the port here (unit tests only); the integration and end-to-end
tests go through the HTTP adapter.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from knotenpunkt.events import AgencyKind, DataCategory, SharedPersonData
from knotenpunkt.http import ApiError
from referrals.domain import REFERRAL_CATEGORIES, Clock, ConsentCheck, ConsentMissing, require_consent
from referrals.handlers import ReferralNetwork
from referrals.intake import IntakeUnavailable, UnknownClient

CLIENT = uuid.uuid4()
JOBCENTER = {"agency_id": "jobcenter-duisburg", "kind": "jobcenter", "channel": "kafka", "response_days": 10}
INBOX_AGENCY = {"agency_id": "jugendamt-duisburg", "kind": "jugendamt", "channel": "inbox", "response_days": 10}


class FakeIntake:
    def __init__(self, check: ConsentCheck | Exception, shared: SharedPersonData | None = None) -> None:
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
        return self.shared


def network(intake: FakeIntake, gate: bool = True) -> ReferralNetwork:
    return ReferralNetwork(clock=Clock(), intake=intake, consent_gate_enabled=gate)


def test_require_consent_refuses_without_a_granted_consent() -> None:
    with pytest.raises(ConsentMissing) as missing:
        require_consent(ConsentCheck(granted=False, reason="no_consent_for_agency"))
    assert missing.value.reason == "no_consent_for_agency"
    granted = ConsentCheck(granted=True, consent_id="c-1", categories=("name",))
    assert require_consent(granted) is granted


async def test_without_consent_the_referral_is_refused_with_409_and_nothing_is_fetched() -> None:
    intake = FakeIntake(ConsentCheck(granted=False, reason="none"))
    with pytest.raises(ApiError) as refused:
        await network(intake)._consented_data(CLIENT, JOBCENTER)
    assert (refused.value.status_code, refused.value.code) == (409, "no_sharing_consent")
    assert [call[0] for call in intake.calls] == ["consent_check"]


async def test_the_check_asks_for_sharing_with_that_agency_and_its_kind() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-1", categories=("name", "topic")))
    await network(intake)._consented_data(CLIENT, JOBCENTER)
    assert intake.calls[0] == ("consent_check", CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, REFERRAL_CATEGORIES)
    assert intake.calls[1] == ("shared_data", CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER)


async def test_with_consent_the_agency_gets_exactly_the_consented_data_and_the_topic() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-1", categories=("name", "topic")))
    consent_id, shared = await network(intake)._consented_data(CLIENT, JOBCENTER)
    assert consent_id == "c-1"
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
    _, shared = await network(intake)._consented_data(CLIENT, JOBCENTER)
    assert shared is not None and shared.categories == ("name", "topic")


async def test_an_inbox_agency_gets_no_personal_data_on_its_topic() -> None:
    intake = FakeIntake(ConsentCheck(granted=True, consent_id="c-2", categories=("name", "topic")))
    assert await network(intake)._consented_data(CLIENT, INBOX_AGENCY) == ("c-2", None)
    assert [call[0] for call in intake.calls] == ["consent_check"]


async def test_with_the_gate_turned_off_nothing_is_checked_and_nothing_personal_shared() -> None:
    intake = FakeIntake(IntakeUnavailable("must not be called"))
    assert await network(intake, gate=False)._consented_data(CLIENT, JOBCENTER) == (None, None)
    assert intake.calls == []


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [(IntakeUnavailable("down"), 503, "intake_unavailable"), (UnknownClient("x"), 409, "unknown_client")],
)
async def test_intake_problems_are_clear_answers_not_500(failure: Exception, status: int, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        await network(FakeIntake(failure))._consented_data(CLIENT, JOBCENTER)
    assert (refused.value.status_code, refused.value.code) == (status, code)
