"""Composition root of cases: the runtime, a consumer per topic, the intake client, the routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from cases.api import build_router
from cases.consumers import (
    on_client_erased,
    on_client_registered,
    on_clients_merged,
    on_handover_due,
    on_referral_answer,
    on_referral_sent,
)
from cases.intake import IntakeDirectory
from cases.settings import CasesSettings
from knotenpunkt import topics
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
    runtime.consume(topics.CLIENTS, on_client_registered, on_clients_merged, on_client_erased, on_handover_due)
    runtime.consume(topics.REFERRALS, on_referral_sent, on_referral_answer)
    intake = IntakeDirectory(runtime.client(settings.intake_url, settings.intake_timeout_s))
    runtime.include_router(build_router(runtime.units, intake))
    return runtime.app
