"""Composition root of referrals."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from knotenpunkt import topics
from knotenpunkt.events import CaseOpened, ReferralAccepted, ReferralDeclined
from knotenpunkt.service import ServiceRuntime
from referrals import handlers
from referrals.api import build_router
from referrals.settings import ReferralsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ReferralsSettings | None = None) -> FastAPI:
    settings = settings or ReferralsSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.REFERRALS, topics.CASES],
        title="Knotenpunkt referrals",
        description="Sends people to partner agencies and follows each referral to its outcome.",
    )

    async def create_agency_topics() -> None:
        async with runtime.database.connection() as connection:
            agencies = [row["agency_id"] for row in await connection.fetch("SELECT agency_id FROM agencies")]
        runtime.add_topics(
            [name for agency in agencies for name in (topics.agency_referrals(agency), topics.agency_answers(agency))]
        )

    runtime.on_startup(create_agency_topics)
    runtime.consume({CaseOpened: handlers.on_case_opened}, topics.CASES)
    runtime.consume(
        {ReferralAccepted: handlers.on_agency_answer, ReferralDeclined: handlers.on_agency_answer},
        pattern=topics.AGENCY_ANSWERS_PATTERN,
    )
    runtime.include_router(build_router(runtime.database))
    return runtime.app
