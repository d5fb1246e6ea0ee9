"""Stats counts a referral's steps only for referrals it has seen sent: forged answers for ids
nobody sent change no figure, and a step read before its ReferralSent counts once it arrives.
Same set-up as test_stats_projection: the real broker and database, asked through the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from knotenpunkt.events import (
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ReferralWithdrawn,
)
from knotenpunkt.events.referrals import CompletionOutcome, DeclineReason
from knotenpunkt.testing.fixtures import count_rows
from tests.integration.test_stats_projection import T0, Stats, envelope, stats_service

pytestmark = pytest.mark.integration

AGENCY = "jobcenter-duisburg"


@pytest.fixture
async def stats(infra, make_database) -> AsyncIterator[Stats]:
    # What is counted, exactly: suppression off (tests/integration/test_stats_access.py checks it).
    async with stats_service(infra, make_database, threshold=0) as running:
        yield running


def sent(client: uuid.UUID, referral: uuid.UUID) -> ReferralSent:
    return ReferralSent(
        client_id=client,
        referral_id=referral,
        case_id=uuid.uuid4(),
        agency_id=AGENCY,
        topic_code="work",
        office_id="rsc-hamborn",
        sent_at=T0,
    )


def every_step(client: uuid.UUID, referral: uuid.UUID) -> list:
    at = T0 + timedelta(days=2)
    common = {"client_id": client, "referral_id": referral, "agency_id": AGENCY}
    return [
        ReferralAccepted(**common, accepted_at=at),
        ReferralDeclined(**common, declined_at=at, reason=DeclineReason.NO_CAPACITY),
        ReferralCompleted(**common, completed_at=at, outcome=CompletionOutcome.SUCCESSFUL),
        ReferralWithdrawn(**common, withdrawn_at=at, reason="by_case_manager"),
        ReferralExpired(**common, expired_at=at),
    ]


async def referral_figures(stats: Stats) -> dict:
    return (await stats.figures())["referrals"]


async def test_forged_answers_for_referrals_never_sent_change_no_figure(stats: Stats) -> None:
    client, referral = uuid.uuid4(), uuid.uuid4()
    await stats.publish(
        [
            envelope(sent(client, referral)),
            envelope(ReferralAccepted(client_id=client, referral_id=referral, agency_id=AGENCY, accepted_at=T0)),
        ]
    )
    await stats.settled()
    before = await referral_figures(stats)
    assert before == {"sent": 1, "accepted": 1, "declined": 0, "completed": 0, "expired": 0, "withdrawn": 0}
    by_agency = {"measures": "referrals_sent,referrals_accepted,referrals_declined", "by": "agency"}
    query_before = await stats.query(**by_agency)

    # Answers and other steps quoting ids stats never saw sent, for a known person and a stranger.
    forged = [envelope(step) for owner in (client, uuid.uuid4()) for step in every_step(owner, uuid.uuid4())]
    await stats.publish(forged)
    await stats.settled()

    assert await referral_figures(stats) == before
    assert await stats.query(**by_agency) == query_before
    # They are held back, not lost: were their ReferralSent ever to arrive, they would count.
    assert await count_rows(stats.database, "SELECT count(*) FROM readmodel.referral_steps_waiting") == len(forged)


async def test_steps_read_before_their_referral_count_once_it_arrives(stats: Stats) -> None:
    client, accepted, declined = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    answered = T0 + timedelta(hours=30)
    # The steps first, in batches of their own (as after a merge, from another partition).
    await stats.publish(
        [
            envelope(ReferralAccepted(client_id=client, referral_id=accepted, agency_id=AGENCY, accepted_at=answered)),
            envelope(
                ReferralCompleted(
                    client_id=client,
                    referral_id=accepted,
                    agency_id=AGENCY,
                    completed_at=answered + timedelta(days=9),
                    outcome=CompletionOutcome.PARTLY_SUCCESSFUL,
                )
            ),
            envelope(
                ReferralDeclined(
                    client_id=client,
                    referral_id=declined,
                    agency_id=AGENCY,
                    declined_at=answered,
                    reason=DeclineReason.NOT_RESPONSIBLE,
                )
            ),
        ]
    )
    await stats.settled()
    assert await referral_figures(stats) == {
        "sent": 0,
        "accepted": 0,
        "declined": 0,
        "completed": 0,
        "expired": 0,
        "withdrawn": 0,
    }

    await stats.publish([envelope(sent(client, accepted)), envelope(sent(client, declined))])
    await stats.settled()
    assert await referral_figures(stats) == {
        "sent": 2,
        "accepted": 1,
        "declined": 1,
        "completed": 1,
        "expired": 0,
        "withdrawn": 0,
    }
    async with stats.database.connection() as connection:
        details = dict(await connection.fetch("SELECT decline_reason, outcome FROM readmodel.referrals"))
    assert details == {None: "partly_successful", "not_responsible": None}
    answer = await stats.query(measures="answer_hours_median", by="agency")
    assert answer == [{"agency": AGENCY, "answer_hours_median": 30.0}]
    assert await count_rows(stats.database, "SELECT count(*) FROM readmodel.referral_steps_waiting") == 0
