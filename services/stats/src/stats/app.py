"""Composition root of stats: read models fed in batches from every lifecycle topic."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from knotenpunkt import topics
from knotenpunkt.db import Database
from knotenpunkt.kafka import DeadLetterPublisher
from knotenpunkt.projection import ProjectionConsumer
from knotenpunkt.service import ServiceRuntime
from stats import readmodel, staff
from stats.api import build_router
from stats.projections import StatsProjection
from stats.reports import load_definitions
from stats.settings import StatsSettings

MIGRATIONS = Path(__file__).parent / "migrations"
TOPICS = (topics.CLIENTS, topics.CASES, topics.REFERRALS)


def projection_consumer(
    settings: StatsSettings,
    database: Database,
    dead_letters: DeadLetterPublisher,
    schema: str = readmodel.LIVE_SCHEMA,
    group_id: str | None = "knotenpunkt.stats",
    topic_names: tuple[str, ...] = TOPICS,
) -> ProjectionConsumer:
    """The stats projection consumer: the live one (a group member) or a rebuild's (all partitions)."""
    return ProjectionConsumer(
        projection=StatsProjection(schema),
        database=database,
        bootstrap=settings.kafka_bootstrap,
        topics=topic_names,
        offsets_table=readmodel.offsets_table(schema),
        dead_letters=dead_letters,
        group_id=group_id,
        client_id=f"{settings.service_name}-projection",
        max_batch=settings.projection_batch_size,
    )


def create_app(settings: StatsSettings | None = None) -> FastAPI:
    settings = settings or StatsSettings()
    runtime = ServiceRuntime(
        settings,
        MIGRATIONS,
        topics=list(TOPICS),
        title="Knotenpunkt stats",
        description="Read models and figures for the network and its funders.",
    )
    definitions = load_definitions()
    seed = staff.read_seed(settings.staff_seed_path)
    consumer = projection_consumer(settings, runtime.database, runtime.dead_letters)

    async def prepare() -> None:
        await readmodel.ensure_live(runtime.database)
        await staff.load_staff(runtime.database, seed)

    runtime.on_startup(prepare)
    runtime.include_router(build_router(runtime.database, definitions, settings.report_suppression_threshold))

    runtime.run_consumer(consumer)
    app = runtime.app
    return app
