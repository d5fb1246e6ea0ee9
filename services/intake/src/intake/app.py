"""Composition root of intake."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from intake.api import build_router
from intake.settings import IntakeSettings
from knotenpunkt import topics
from knotenpunkt.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.CLIENTS],
        title="Knotenpunkt intake",
        description="Registers people, records consent, routes them to a service line and office.",
    )
    runtime.include_router(build_router(runtime.database))
    return runtime.app
