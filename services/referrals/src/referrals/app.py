"""Composition root of referrals."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from knotenpunkt import topics
from knotenpunkt.events import (
    CaseAssigned,
    CaseOpened,
    CaseTransferred,
    ClientErased,
    ClientsMerged,
    ConsentWithdrawn,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
)
from knotenpunkt.service import ServiceRuntime
from referrals.api import build_router
from referrals.domain import Clock
from referrals.handlers import ReferralNetwork
from referrals.intake import HttpIntake, IntakePort
from referrals.settings import ReferralsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: ReferralsSettings | None = None, intake: IntakePort | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or ReferralsSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.REFERRALS, topics.CASES, topics.CLIENTS],
        title="Knotenpunkt referrals",
        description="Sends people to partner agencies and follows each referral to its outcome.",
    )
    network = ReferralNetwork(
        clock=clock or Clock(day_seconds=settings.referral_day_seconds),
        intake=intake or HttpIntake(settings.intake_url, settings.intake_timeout_s),
        consent_gate_enabled=settings.consent_gate_enabled,
    )

    async def create_agency_topics() -> None:
        async with runtime.database.connection() as connection:
            agencies = [row["agency_id"] for row in await connection.fetch("SELECT agency_id FROM agencies")]
        runtime.add_topics(
            [
                topics.agency_topic(name, settings.topic_partitions)
                for agency in agencies
                for name in (topics.agency_referrals(agency), topics.agency_answers(agency))
            ]
        )

    runtime.on_startup(create_agency_topics)
    runtime.consume(
        {
            CaseOpened: network.on_case_opened,
            CaseAssigned: network.on_case_assigned,
            CaseTransferred: network.on_case_transferred,
        },
        topics.CASES,
    )
    runtime.consume(
        {
            ConsentWithdrawn: network.on_consent_withdrawn,
            ClientsMerged: network.on_clients_merged,
            ClientErased: network.on_client_erased,
        },
        topics.CLIENTS,
    )
    runtime.consume(
        {
            ReferralAccepted: network.on_agency_answer,
            ReferralDeclined: network.on_agency_answer,
            ReferralCompleted: network.on_agency_answer,
        },
        pattern=topics.AGENCY_ANSWERS_PATTERN,
    )
    runtime.include_router(build_router(runtime.database, network))

    async def deadlines() -> None:
        async with runtime.database.transaction() as connection:
            await network.run_deadlines(connection)

    # Reminders and expiries run inside the service, next to its consumers (safe with replicas:
    # run_deadlines locks the rows it takes and skips those another replica holds).
    runtime.every("referral-deadlines", settings.deadline_check_interval_s, deadlines)
    return runtime.app
