"""Composition root of intake: the runtime, the HTTP routes, the periodic jobs, and one consumer:
the offices running a person's cases (from the cases topic) widen who may work with the record."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import FastAPI

from intake import consumers, jobs
from intake.api import build_router
from intake.settings import IntakeSettings
from knotenpunkt import topics
from knotenpunkt.logging import get_logger
from knotenpunkt.service import ServiceRuntime
from knotenpunkt.uow import Actor

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
    units = runtime.units
    actor = Actor.service(settings.service_name)

    async def consent_jobs() -> None:
        # Each job in its own unit of work: one failing does not hold back the other.
        today = date.today()
        async with units.begin(actor=actor) as uow:
            expired = await jobs.expire_consents(uow, today)
        async with units.begin(actor=actor) as uow:
            handovers = await jobs.raise_handovers(uow, today)
        if expired or handovers:
            log.info("consent jobs", consents_expired=expired, handovers_raised=handovers)

    runtime.consume(topics.CASES, consumers.on_case_opened, consumers.on_case_transferred)
    runtime.every("intake-consent-jobs", settings.consent_jobs_interval_s, consent_jobs)
    # The other services, asked with the data protection officer's token (audit trail, export).
    peers = {
        "cases": runtime.client(settings.cases_url, settings.peers_timeout_s),
        "referrals": runtime.client(settings.referrals_url, settings.peers_timeout_s),
        "stats": runtime.client(settings.stats_url, settings.peers_timeout_s),
    }
    runtime.include_router(build_router(units, peers))
    return runtime.app
