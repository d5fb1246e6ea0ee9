"""The referral-answer consumer on a FakeUnitOfWork: an answer never creates a referral.

The connection is a stand-in that knows the referrals cases saw sent and records statements,
enough to see that an unknown referral is rejected before anything is written (the real SQL
runs in tests/integration/test_cases_service.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cases.consumers import on_referral_answer
from knotenpunkt.consumer import Rejected
from knotenpunkt.events import DeclineReason, ReferralAccepted, ReferralDeclined
from knotenpunkt.testing.uow import FakeUnitOfWork

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Referrals:
    """The `referrals` table as far as the consumer reads and writes it."""

    def __init__(self, sent: dict[uuid.UUID, str]) -> None:
        self.sent = sent  # referral id -> agency it was sent to
        self.written: list[tuple[str, tuple[Any, ...]]] = []

    async def fetchval(self, sql: str, referral_id: uuid.UUID) -> str | None:
        assert sql.startswith("SELECT agency_id FROM referrals")
        return self.sent.get(referral_id)

    async def execute(self, sql: str, *args: Any) -> None:
        self.written.append((sql, args))


def unit_of_work(sent: dict[uuid.UUID, str]) -> tuple[FakeUnitOfWork, Referrals]:
    uow = FakeUnitOfWork(source="knotenpunkt/cases")
    uow.connection = Referrals(sent)
    return uow, uow.connection


async def test_an_answer_for_a_referral_never_seen_sent_is_rejected_and_writes_nothing() -> None:
    uow, table = unit_of_work(sent={})
    answer = ReferralAccepted(
        client_id=uuid.uuid4(), referral_id=uuid.uuid4(), agency_id="jobcenter-duisburg", accepted_at=AT
    )
    with pytest.raises(Rejected) as rejected:
        await on_referral_answer(answer, uow)
    assert str(answer.referral_id) in rejected.value.reason
    assert table.written == [] and uow.published == []


async def test_an_answer_naming_another_agency_is_rejected_and_writes_nothing() -> None:
    referral_id = uuid.uuid4()
    uow, table = unit_of_work(sent={referral_id: "jobcenter-duisburg"})
    answer = ReferralDeclined(
        client_id=uuid.uuid4(), referral_id=referral_id, agency_id="caritas", declined_at=AT, reason=DeclineReason.OTHER
    )
    with pytest.raises(Rejected):
        await on_referral_answer(answer, uow)
    assert table.written == []


async def test_an_answer_for_a_referral_seen_sent_updates_its_status() -> None:
    referral_id = uuid.uuid4()
    uow, table = unit_of_work(sent={referral_id: "jobcenter-duisburg"})
    answer = ReferralDeclined(
        client_id=uuid.uuid4(),
        referral_id=referral_id,
        agency_id="jobcenter-duisburg",
        declined_at=AT,
        reason=DeclineReason.NO_CAPACITY,
    )
    await on_referral_answer(answer, uow)
    [(sql, args)] = table.written
    assert sql.startswith("UPDATE referrals") and "INSERT" not in sql
    assert args == (referral_id, "declined", "no_capacity", AT)
    assert uow.published == []
