"""Composition root of cases."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from cases import handlers
from cases.api import build_router
from cases.intake import IntakeDirectory
from cases.settings import CasesSettings
from knotenpunkt import topics
from knotenpunkt.events import (
    ClientErased,
    ClientRegistered,
    ClientsMerged,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ReferralWithdrawn,
    ServiceLineHandoverDue,
)
from knotenpunkt.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: CasesSettings | None = None) -> FastAPI:
    settings = settings or CasesSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.CASES, topics.CLIENTS, topics.REFERRALS],
        title="Knotenpunkt cases",
        description="Case management: cases, consultations, integration plans, the whole case in one view.",
    )
    runtime.consume(
        {
            ClientRegistered: handlers.on_client_registered,
            ClientsMerged: handlers.on_clients_merged,
            ClientErased: handlers.on_client_erased,
            ServiceLineHandoverDue: handlers.on_handover_due,
        },
        topics.CLIENTS,
    )
    runtime.consume(
        {
            ReferralSent: handlers.on_referral_sent,
            ReferralAccepted: handlers.on_referral_answer,
            ReferralDeclined: handlers.on_referral_answer,
            ReferralCompleted: handlers.on_referral_answer,
            ReferralWithdrawn: handlers.on_referral_answer,
            ReferralExpired: handlers.on_referral_answer,
        },
        topics.REFERRALS,
    )
    intake = IntakeDirectory(settings.intake_url, settings.intake_timeout_s)
    runtime.include_router(build_router(runtime.database, intake))
    return runtime.app
