"""Answers from agencies, checked as plain rules: who may answer, about which referral, and
whether the answer fits the referral's state. The same rules serve the agency's own service
(Kafka, dead-lettered when refused) and the web inbox (404 / 409)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from knotenpunkt.events import CompletionOutcome, DeclineReason, ReferralAccepted, ReferralCompleted, ReferralDeclined
from referrals.domain import AnsweredReferral, NotTheirs, Status, TransitionRefused, judge_answer

AGENCY = "jobcenter-duisburg"
OTHER = "jugendamt-duisburg"
CLIENT = uuid.uuid4()
REFERRAL = uuid.uuid4()
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def referral(status: Status = Status.SENT, agency_id: str = AGENCY) -> AnsweredReferral:
    return AnsweredReferral(referral_id=REFERRAL, client_id=CLIENT, agency_id=agency_id, status=status)


def accepted(agency_id: str = AGENCY) -> ReferralAccepted:
    return ReferralAccepted(client_id=CLIENT, referral_id=REFERRAL, agency_id=agency_id, accepted_at=NOW)


def declined() -> ReferralDeclined:
    return ReferralDeclined(
        client_id=CLIENT, referral_id=REFERRAL, agency_id=AGENCY, declined_at=NOW, reason=DeclineReason.NO_CAPACITY
    )


def completed() -> ReferralCompleted:
    return ReferralCompleted(
        client_id=CLIENT, referral_id=REFERRAL, agency_id=AGENCY, completed_at=NOW, outcome=CompletionOutcome.SUCCESSFUL
    )


@pytest.mark.parametrize(("answer", "target"), [(accepted(), Status.ACCEPTED), (declined(), Status.DECLINED)])
def test_the_addressed_agency_may_accept_or_decline_a_sent_referral(answer, target: Status) -> None:
    assert judge_answer(AGENCY, answer, referral(), CLIENT) == target


def test_an_accepted_referral_may_be_completed() -> None:
    assert judge_answer(AGENCY, completed(), referral(Status.ACCEPTED), CLIENT) == Status.COMPLETED


def test_an_answer_naming_another_agency_than_its_sender_is_not_theirs() -> None:
    with pytest.raises(NotTheirs) as refused:
        judge_answer(OTHER, accepted(AGENCY), referral(), CLIENT)
    assert refused.value.detail == f"answer from {OTHER} names agency {AGENCY}"


def test_an_answer_for_an_unknown_referral_is_not_theirs() -> None:
    with pytest.raises(NotTheirs) as refused:
        judge_answer(AGENCY, accepted(), None, CLIENT)
    assert "unknown referral" in refused.value.detail


def test_an_answer_for_another_agencys_referral_is_not_theirs_and_a_404() -> None:
    # The intruder answers on its own topic, naming itself, for a referral it never got.
    with pytest.raises(NotTheirs) as refused:
        judge_answer(OTHER, accepted(OTHER), referral(agency_id=AGENCY), CLIENT)
    assert f"was not sent to {OTHER}" in refused.value.detail
    # In the inbox: 404, so that an agency cannot probe for other agencies' referrals.
    assert (refused.value.status_code, refused.value.code) == (404, "not_found")


def test_an_answer_naming_another_person_is_not_theirs() -> None:
    with pytest.raises(NotTheirs) as refused:
        judge_answer(AGENCY, accepted(), referral(), uuid.uuid4())
    assert "names another client" in refused.value.detail


def test_the_same_answer_twice_changes_nothing() -> None:
    assert judge_answer(AGENCY, accepted(), referral(Status.ACCEPTED), CLIENT) is None
    assert judge_answer(AGENCY, completed(), referral(Status.COMPLETED), CLIENT) is None


def test_completing_a_referral_not_accepted_yet_is_refused_with_409() -> None:
    with pytest.raises(TransitionRefused) as refused:
        judge_answer(AGENCY, completed(), referral(Status.SENT), CLIENT)
    assert (refused.value.status_code, refused.value.code) == (409, "referral_not_accepted_yet")


@pytest.mark.parametrize("closed", [Status.DECLINED, Status.WITHDRAWN, Status.EXPIRED])
def test_an_answer_to_a_closed_referral_is_refused(closed: Status) -> None:
    with pytest.raises(TransitionRefused) as refused:
        judge_answer(AGENCY, accepted(), referral(closed), CLIENT)
    assert refused.value.code == "referral_closed"
    assert refused.value.params == {"current": closed.value, "target": "accepted"}
    assert refused.value.detail == f"referral is {closed.value}; cannot become accepted"


def test_an_accepted_referral_cannot_be_declined_afterwards() -> None:
    with pytest.raises(TransitionRefused) as refused:
        judge_answer(AGENCY, declined(), referral(Status.ACCEPTED), CLIENT)
    assert refused.value.code == "referral_transition_impossible"
