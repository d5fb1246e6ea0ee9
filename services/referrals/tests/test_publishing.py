"""What referrals publishes, and to whom, checked on a FakeUnitOfWork (no database, no broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from knotenpunkt import topics
from knotenpunkt.consumer import Rejected
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    ConsentPurpose,
    ConsentWithdrawn,
    DataCategory,
    ReferralAccepted,
    ReferralSent,
    ReferralWithdrawn,
    SharedPersonData,
)
from knotenpunkt.testing.uow import FakeUnitOfWork
from knotenpunkt.uow import Cause
from referrals import commands, lifecycle
from referrals.consumers import ReferralReactions
from referrals.domain import Clock

AGENCY = "jobcenter-duisburg"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CLOCK = Clock(now_function=lambda: NOW)


def sent() -> ReferralSent:
    return ReferralSent(
        client_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        agency_id=AGENCY,
        topic_code="work",
        office_id="rsc-hamborn",
        sent_at=NOW,
        answer_due_on=date(2026, 11, 12),
    )


async def test_a_sent_referral_is_one_fact_on_two_topics_and_only_the_agency_gets_the_personal_data() -> None:
    uow = FakeUnitOfWork()
    shared = SharedPersonData(categories=("name", "topic"), family_name="Yılmaz")
    await lifecycle.publish_sent(uow, sent(), shared)
    [(lifecycle_copy, first_topic), (agency_copy, second_topic)] = uow.published
    assert (first_topic, second_topic) == (topics.REFERRALS, topics.agency_referrals(AGENCY))
    assert agency_copy.id == lifecycle_copy.id
    assert lifecycle_copy.event.shared_data is None
    assert agency_copy.event.shared_data == shared


async def test_events_for_the_agency_go_to_the_lifecycle_topic_and_the_agencys_own() -> None:
    cause = Cause(correlation_id="deadline-round")
    uow = FakeUnitOfWork(cause=cause)
    withdrawn = ReferralWithdrawn(
        client_id=uuid.uuid4(), referral_id=uuid.uuid4(), agency_id=AGENCY, withdrawn_at=NOW, reason="by_case_manager"
    )
    envelope = await lifecycle.tell_network_and_agency(uow, withdrawn)
    assert uow.published == [(envelope, topics.REFERRALS), (envelope, topics.agency_referrals(AGENCY))]
    assert envelope.correlation_id == "deadline-round"


async def test_an_answer_not_read_from_an_agencys_answers_topic_is_rejected_before_anything_happens() -> None:
    answer = ReferralAccepted(client_id=uuid.uuid4(), referral_id=uuid.uuid4(), agency_id=AGENCY, accepted_at=NOW)
    consumed = Envelope(event=answer, origin_topic=topics.REFERRALS)
    uow = FakeUnitOfWork(cause=Cause.of(consumed))
    with pytest.raises(Rejected) as rejected:
        await ReferralReactions(CLOCK).on_agency_answer(answer, uow)
    assert "not from an agency's answers topic" in rejected.value.reason
    assert uow.published == []


async def test_a_withdrawn_consent_for_another_purpose_than_sharing_changes_no_referral() -> None:
    withdrawn = ConsentWithdrawn(
        client_id=uuid.uuid4(),
        consent_id=uuid.uuid4(),
        purpose=ConsentPurpose.COUNSELLING,
        data_categories=(DataCategory.NAME,),
        withdrawn_on=date(2026, 11, 2),
    )
    uow = FakeUnitOfWork()  # would fail on any SQL
    await commands.withdraw_for_consent(uow, CLOCK, withdrawn)
    assert uow.published == []
