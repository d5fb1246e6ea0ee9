"""The runtime every service is composed from: database, broker, outbox relay, dead letters,
HTTP app with health endpoints. A service's app.py (its composition root) creates one
ServiceRuntime, registers its consumers and routers, and hands back `runtime.app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from knotenpunkt import migrations
from knotenpunkt.consumer import EventConsumer, EventHandler, RetryPolicy
from knotenpunkt.db import Database
from knotenpunkt.events.base import Event
from knotenpunkt.http import CorrelationIdMiddleware, install_error_handlers
from knotenpunkt.kafka import DeadLetterPublisher, Producer, ensure_topics
from knotenpunkt.logging import configure_logging, get_logger
from knotenpunkt.outbox import OutboxRelay
from knotenpunkt.settings import ServiceSettings
from knotenpunkt.topics import TopicSpec, dead_letter_topic, event_topic

log = get_logger("knotenpunkt.service")


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        migrations_folder: Path,
        topics: Sequence[str] = (),
        title: str | None = None,
        description: str = "",
    ) -> None:
        self.settings = settings
        configure_logging(settings.log_level, settings.log_json)
        self.group_id = f"knotenpunkt.{settings.service_name}"
        self.database = Database(settings.database_url, settings.db_pool_min_size, settings.db_pool_max_size)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=settings.service_name,
            logger=get_logger(f"{settings.service_name}.broker"),
            # Pattern subscriptions (the agencies' answer topics) notice a new topic within a minute.
            metadata_max_age_ms=60_000,
            graceful_timeout=15,
        )
        self.producer = Producer(settings.kafka_bootstrap, f"{settings.service_name}-outbox")
        self.relay = OutboxRelay(
            self.database,
            self.producer,
            poll_interval_s=settings.outbox_poll_interval_s,
            batch_size=settings.outbox_batch_size,
        )
        self.dead_letters = DeadLetterPublisher(self.producer, self.group_id)
        self._migrations_folder = migrations_folder
        self._startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[None]]]] = []
        self._topics: list[TopicSpec] = [event_topic(name, settings.topic_partitions) for name in topics] + [
            dead_letter_topic()
        ]
        self._retry = RetryPolicy(
            settings.consumer_max_attempts, settings.consumer_backoff_initial_s, settings.consumer_backoff_max_s
        )
        self.app = FastAPI(
            title=title or f"Knotenpunkt {settings.service_name}",
            description=description,
            lifespan=self._lifespan,
        )
        self.app.add_middleware(CorrelationIdMiddleware)
        install_error_handlers(self.app)
        self.app.include_router(self._health_router())

    def consume(
        self,
        handlers: Mapping[type[Event], EventHandler],
        *topics: str,
        pattern: str | None = None,
    ) -> EventConsumer:
        """Register an idempotent consumer in the service's consumer group."""
        consumer = EventConsumer(self.group_id, self.database, self.dead_letters, handlers, self._retry)
        consumer.subscribe(self.broker, *topics, pattern=pattern)
        return consumer

    def include_router(self, router: APIRouter) -> None:
        self.app.include_router(router)

    def add_topics(self, specs: Sequence[TopicSpec]) -> None:
        """More topics to create at startup (e.g. from data, after the database is connected)."""
        self._topics.extend(specs)

    def every(self, name: str, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` periodically while the service runs (first run right after startup).

        Jobs must be safe with several replicas running them (idempotent updates, row locks).
        """
        self._periodic.append((name, interval_s, job))

    async def _run_periodically(self, name: str, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed round is logged and retried next round
                log.exception("periodic job failed", job=name)
            await asyncio.sleep(interval_s)

    def on_startup(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run after the database is connected, before topics are ensured and consumers start."""
        self._startup_hooks.append(hook)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        name = self.settings.service_name
        applied = await migrations.apply(
            self.settings.database_url, migrations.migration_sets(name, self._migrations_folder)
        )
        if applied:
            log.info("migrations applied", migrations=applied)
        await self.database.connect()
        for hook in self._startup_hooks:
            await hook()
        await ensure_topics(self.settings.kafka_bootstrap, self._topics)
        await self.producer.start()
        self.relay.start()
        await self.broker.start()
        periodic = [
            asyncio.create_task(self._run_periodically(job_name, interval, job), name=job_name)
            for job_name, interval, job in self._periodic
        ]
        log.info("service started", service=name, port=self.settings.http_port)
        try:
            yield
        finally:
            for task in periodic:
                task.cancel()
            await asyncio.gather(*periodic, return_exceptions=True)
            # In-flight handlers finish first (graceful_timeout), then nothing new is published.
            await self.broker.stop()
            await self.relay.stop()
            await self.producer.stop()
            await self.database.close()
            log.info("service stopped", service=name)

    def _health_router(self) -> APIRouter:
        router = APIRouter(tags=["health"])

        @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
        async def metrics() -> PlainTextResponse:
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @router.get("/health/live", summary="The process is up")
        async def live() -> dict[str, str]:
            return {"status": "ok"}

        @router.get("/health/ready", summary="Database and Kafka broker reachable")
        async def ready() -> JSONResponse:
            database_ok, broker_ok = await asyncio.gather(self.database.ping(), self._broker_ok())
            checks = {
                "database": "ok" if database_ok else "unreachable",
                "kafka": "ok" if broker_ok else "unreachable",
                "outbox_relay": "leader" if self.relay.is_leader else "standby",
            }
            healthy = database_ok and broker_ok
            return JSONResponse(
                status_code=200 if healthy else 503,
                content={"status": "ready" if healthy else "not ready", "checks": checks},
            )

        return router

    async def _broker_ok(self) -> bool:
        try:
            return await self.broker.ping(timeout=2)
        except Exception:
            return False


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the service's HTTP API (and with it, its consumers and relay) until SIGTERM/SIGINT."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
