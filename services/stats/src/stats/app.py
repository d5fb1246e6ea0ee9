"""Composition root of stats: read models built from every event."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from knotenpunkt import topics
from knotenpunkt.events import (
    CaseOpened,
    ClientRegistered,
    ConsultationRecorded,
    ReferralAccepted,
    ReferralDeclined,
    ReferralSent,
)
from knotenpunkt.service import ServiceRuntime
from stats import projections
from stats.api import build_router
from stats.settings import StatsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: StatsSettings | None = None) -> FastAPI:
    settings = settings or StatsSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.CLIENTS, topics.CASES, topics.REFERRALS],
        title="Knotenpunkt stats",
        description="Read models and figures for the network and its funders.",
    )
    runtime.consume(
        {
            ClientRegistered: projections.on_client_registered,
            CaseOpened: projections.on_case_opened,
            ConsultationRecorded: projections.on_consultation_recorded,
            ReferralSent: projections.on_referral_sent,
            ReferralAccepted: projections.on_referral_accepted,
            ReferralDeclined: projections.on_referral_declined,
        },
        topics.CLIENTS,
        topics.CASES,
        topics.REFERRALS,
    )
    runtime.include_router(build_router(runtime.database))
    return runtime.app
