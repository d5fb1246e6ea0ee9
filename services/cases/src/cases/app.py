"""Composition root of cases."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from cases import handlers
from cases.api import build_router
from cases.settings import CasesSettings
from knotenpunkt import topics
from knotenpunkt.events import ClientRegistered
from knotenpunkt.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: CasesSettings | None = None) -> FastAPI:
    settings = settings or CasesSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.CASES, topics.CLIENTS],
        title="Knotenpunkt cases",
        description="Case management: cases, consultations, integration plans.",
    )
    runtime.consume({ClientRegistered: handlers.on_client_registered}, topics.CLIENTS)
    runtime.include_router(build_router(runtime.database))
    return runtime.app
