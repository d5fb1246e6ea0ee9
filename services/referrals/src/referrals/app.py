"""Composition root of referrals: the runtime, the clock, the port to intake, the consumers,
the routes and the deadline watch. Tests swap the clock and the intake port here, nowhere else."""

from __future__ import annotations

from pathlib import Path

from aiokafka.errors import KafkaError
from fastapi import FastAPI

from knotenpunkt import topics
from knotenpunkt.errors import Unavailable
from knotenpunkt.i18n import register_messages
from knotenpunkt.kafka import ensure_topics
from knotenpunkt.logging import get_logger
from knotenpunkt.service import ServiceRuntime
from knotenpunkt.uow import Actor
from referrals import consumers, directory
from referrals.api import build_router
from referrals.consent_gate import ConsentGate
from referrals.deadlines import run_deadlines
from referrals.domain import Clock
from referrals.intake import HttpIntake, IntakePort
from referrals.settings import ReferralsSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a directory change waits for the broker to create a new agency's topics.
AGENCY_TOPICS_TIMEOUT_S = 15.0

log = get_logger("referrals")

register_messages(
    {
        "agency_topics_pending": {
            "de": "Die Partnerstelle ist gespeichert, aber ihre Kafka-Topics konnten gerade nicht angelegt werden "
            "(Broker nicht erreichbar). Bitte dieselbe Anfrage später wiederholen.",
            "en": "The partner agency is saved, but its Kafka topics could not be created just now (broker "
            "unreachable). Please repeat the same request later.",
        },
    }
)


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
    clock = clock or Clock(day_seconds=settings.referral_day_seconds)
    intake = intake or HttpIntake(runtime.client(settings.intake_url, settings.intake_timeout_s))
    gate = ConsentGate(intake, enabled=settings.consent_gate_enabled)

    async def create_agency_topics() -> None:
        async with runtime.units.read() as connection:
            agencies = [row["agency_id"] for row in await connection.fetch("SELECT agency_id FROM agencies")]
        runtime.add_topics(
            [spec for agency in agencies for spec in directory.agency_topics(agency, settings.topic_partitions)]
        )

    async def create_topics_of_agency(agency_id: str) -> None:
        """A directory change committed: the agency's topics, now (the startup hook does it for
        the agencies there at start). The answers topic is picked up by the pattern subscription."""
        try:
            await ensure_topics(
                settings.kafka_bootstrap,
                directory.agency_topics(agency_id, settings.topic_partitions),
                timeout_s=AGENCY_TOPICS_TIMEOUT_S,
            )
        except (KafkaError, OSError) as error:
            log.warning("agency topics not created", agency_id=agency_id, error=type(error).__name__)
            raise Unavailable("agency_topics_pending", details={"agency_id": agency_id}) from error

    runtime.on_startup(create_agency_topics)
    reactions = consumers.ReferralReactions(clock)
    runtime.consume(topics.CASES, consumers.on_case_opened, consumers.on_case_assigned, consumers.on_case_transferred)
    runtime.consume(
        topics.CLIENTS,
        reactions.on_consent_withdrawn,
        reactions.on_consent_expired,
        consumers.on_clients_merged,
        reactions.on_client_erased,
    )
    runtime.consume(None, reactions.on_agency_answer, pattern=topics.AGENCY_ANSWERS_PATTERN)
    runtime.include_router(
        build_router(runtime.units, clock, gate, settings.gap_suppression_threshold, create_topics_of_agency)
    )

    watcher = Actor.service(f"{settings.service_name}.deadlines")

    async def deadlines() -> None:
        async with runtime.units.begin(actor=watcher) as uow:
            await run_deadlines(uow, clock)

    # Reminders and expiries run inside the service, next to its consumers (safe with replicas:
    # run_deadlines locks the rows it takes and skips those another replica holds).
    runtime.every("referral-deadlines", settings.deadline_check_interval_s, deadlines)
    return runtime.app
