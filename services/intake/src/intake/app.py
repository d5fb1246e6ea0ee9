"""Composition root of intake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import FastAPI

from intake import handlers
from intake.api import build_router
from intake.settings import IntakeSettings
from knotenpunkt import topics
from knotenpunkt.logging import get_logger
from knotenpunkt.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger("intake")


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=[topics.CLIENTS],
        title="Knotenpunkt intake",
        description="Registers people, records consent, routes them to a service line and office.",
    )

    async def housekeeping() -> None:
        async with runtime.database.transaction() as connection:
            expired = await handlers.expire_consents(connection, date.today())
            handovers = await handlers.raise_handovers(connection, date.today())
        if expired or handovers:
            log.info("housekeeping", consents_expired=expired, handovers_raised=handovers)

    runtime.every("intake-housekeeping", settings.housekeeping_interval_s, housekeeping)
    runtime.include_router(build_router(runtime.database))
    return runtime.app
