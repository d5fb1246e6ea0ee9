"""The runtime every service is composed from: database, broker, outbox relay, dead letters,
HTTP app with health endpoints. A service's app.py (its composition root) creates one
ServiceRuntime, registers its consumers and routers, and hands back `runtime.app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from knotenpunkt import migrations
from knotenpunkt.audit import audit_router
from knotenpunkt.clients import ServiceClient
from knotenpunkt.consumer import EventConsumer, EventHandler
from knotenpunkt.db import Database
from knotenpunkt.housekeeping import Housekeeping
from knotenpunkt.http import Access, create_api
from knotenpunkt.identity import OidcConfig, ServiceCredentials, TokenVerifier, allow, check_routes
from knotenpunkt.kafka import DeadLetterPublisher, Producer, ensure_topics
from knotenpunkt.logging import configure_logging, get_logger
from knotenpunkt.outbox import OutboxRelay
from knotenpunkt.policy import Action
from knotenpunkt.projection import ProjectionConsumer, tune_gc_for_batches
from knotenpunkt.retry import Backoff
from knotenpunkt.settings import ServiceSettings
from knotenpunkt.topics import TopicSpec, dead_letter_topic, event_topic
from knotenpunkt.uow import UnitsOfWork

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
        self.units = UnitsOfWork(self.database, f"knotenpunkt/{settings.service_name}")
        # Started once the runtime is up (topics exist, the dead-letter producer runs), stopped
        # before it goes down; a stalled one turns /health/ready to 503.
        self.consumers: list[ProjectionConsumer] = []
        self._clients: list[ServiceClient] = []
        self.producer = Producer(settings.kafka_bootstrap, f"{settings.service_name}-outbox")
        self.relay = OutboxRelay(
            self.database,
            self.producer,
            poll_interval_s=settings.outbox_poll_interval_s,
            batch_size=settings.outbox_batch_size,
            backlog_refresh_s=settings.outbox_backlog_refresh_s,
        )
        self.dead_letters = DeadLetterPublisher(self.producer, self.group_id)
        self._migrations_folder = migrations_folder
        self._startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[None]]]] = []
        # Published outbox rows, processed event ids and idempotency keys past their windows.
        self.every("platform-housekeeping", settings.housekeeping_interval_s, Housekeeping(self.database, settings).run)
        self._topics: list[TopicSpec] = [event_topic(name, settings.topic_partitions) for name in topics] + [
            dead_letter_topic()
        ]
        self._backoff = Backoff(
            initial_s=settings.consumer_backoff_initial_s,
            max_s=settings.consumer_backoff_max_s,
            max_attempts=settings.consumer_max_attempts,
        )
        self.verifier = TokenVerifier(
            OidcConfig.of(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
        )
        self.credentials = ServiceCredentials(*settings.oidc_client())
        self.access = Access(
            verifier=self.verifier,
            service=settings.service_name,
            database=lambda: self.database,
            open_metrics=settings.open_metrics,
            open_docs=settings.open_docs,
        )
        self.app = create_api(
            title=title or f"Knotenpunkt {settings.service_name}",
            description=description,
            lifespan=self._lifespan,
            max_body_bytes=settings.max_body_bytes,
            access=self.access,
        )
        self.app.include_router(self._health_router())
        self.app.include_router(audit_router(settings.service_name, lambda: self.database))
        # For tools that read the composition (the generated docs' publishes/consumes table).
        self.app.state.runtime = self

    def consume(self, topic: str | None, *handlers: EventHandler, pattern: str | None = None) -> EventConsumer:
        """Register `on_<event>(event, uow)` handlers for one topic (or a topic pattern) in the
        service's consumer group; the event types come from the handlers' annotations."""
        consumer = EventConsumer(
            group_id=self.group_id,
            units=self.units,
            bootstrap=self.settings.kafka_bootstrap,
            dead_letters=self.dead_letters,
            handlers=handlers,
            topics=[topic] if topic else [],
            pattern=pattern,
            backoff=self._backoff,
            max_batch=self.settings.consumer_batch_size,
            stall_after_s=self.settings.consumer_stall_after_s,
            client_id=f"{self.settings.service_name}-consumer",
        )
        self.consumers.append(consumer)
        return consumer

    def run_consumer(self, consumer: ProjectionConsumer) -> None:
        """Run a consumer made elsewhere (a read model's projection) with the service."""
        self.consumers.append(consumer)

    def client(self, base_url: str, timeout_s: float) -> ServiceClient:
        """A long-lived HTTP client for another service, closed when this one stops."""
        client = ServiceClient(base_url, timeout_s, self.credentials)
        self._clients.append(client)
        return client

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
        # Deny by default: a route nobody guarded with a permission stops the start.
        check_routes(self.app, self.access.is_open)
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
        if self.consumers:
            tune_gc_for_batches(max(consumer.max_batch for consumer in self.consumers))
        for consumer in self.consumers:
            await consumer.start()
            consumer.start_background()
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
            # The batches in flight finish first, then nothing new is published.
            for consumer in self.consumers:
                await consumer.stop()
            await self.relay.stop()
            await self.producer.stop()
            for client in self._clients:
                await client.close()
            await self.database.close()
            log.info("service stopped", service=name)

    def _health_router(self) -> APIRouter:
        router = APIRouter(tags=["health"])

        @router.get(
            "/metrics",
            summary="Prometheus metrics",
            response_class=PlainTextResponse,
            dependencies=[] if self.settings.open_metrics else [Depends(allow(Action.OPERATIONS_READ))],
        )
        async def metrics() -> PlainTextResponse:
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @router.get("/health/live", summary="The process is up")
        async def live() -> dict[str, str]:
            return {"status": "ok"}

        @router.get("/health/ready", summary="Database and Kafka broker reachable, no consumer stalled")
        async def ready() -> JSONResponse:
            database_ok, broker_ok = await asyncio.gather(self.database.ping(), self._broker_ok())
            stalled = [reason for consumer in self.consumers if (reason := consumer.stalled())]
            checks: dict[str, object] = {
                "database": "ok" if database_ok else "unreachable",
                "kafka": "ok" if broker_ok else "unreachable",
                "outbox_relay": "leader" if self.relay.is_leader else "standby",
                "consumers": stalled or "ok",
            }
            healthy = database_ok and broker_ok and not stalled
            return JSONResponse(
                status_code=200 if healthy else 503,
                content={"status": "ready" if healthy else "not ready", "checks": checks},
            )

        return router

    async def _broker_ok(self) -> bool:
        try:
            await asyncio.wait_for(self.producer.kafka.client.fetch_all_metadata(), timeout=2)
        except Exception:
            return False
        return True


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the service's HTTP API (and with it, its consumers and relay) until SIGTERM/SIGINT."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
