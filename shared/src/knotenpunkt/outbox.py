"""Transactional outbox and its relay.

A use case calls `add_to_outbox` inside its transaction; nothing is published outside one.
The relay publishes committed rows with an idempotent producer (acks=all) and marks them.

Per-key order: exactly one relay per database publishes at a time (a session advisory lock;
other replicas stand by), it sends rows in id order and waits for every acknowledgement of a
round before the next. It selects by `published_at IS NULL`, never `id > last_id`, so a row
whose sequence number was taken before a later-committed row's is not skipped.
A crash between send and mark publishes a row again: consumers are idempotent by ce_id.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aiokafka.errors import KafkaError

from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.kafka import Producer
from knotenpunkt.logging import get_logger
from knotenpunkt.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

NOTIFY_CHANNEL = "knotenpunkt_outbox"
_RELAY_LOCK_KEY = 7_401_002

log = get_logger("knotenpunkt.outbox")


async def add_to_outbox(connection: asyncpg.Connection, envelope: Envelope, topic: str | None = None) -> None:
    """Record an event for publishing, in the caller's transaction."""
    await connection.execute(
        "INSERT INTO outbox (event_id, topic, message_key, event_type, headers, body) VALUES ($1, $2, $3, $4, $5, $6)",
        envelope.id,
        topic or envelope.event.topic,
        envelope.key,
        envelope.type,
        [[name, value.decode()] for name, value in envelope.headers()],
        envelope.body(),
    )
    # Delivered only on commit: a wake-up hint for the relay, never the record itself.
    await connection.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        producer: Producer,
        poll_interval_s: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self._database = database
        self._producer = producer
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as error:
                self.is_leader = False
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("outbox relay interrupted, retrying", error=self.last_error, retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.5

    async def _lead(self) -> None:
        connection = await self._database.dedicated_connection()
        try:
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK_KEY):
                self.is_leader = False
                await asyncio.sleep(self._poll_interval_s * 4)
            self.is_leader = True
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
            log.info("outbox relay leading")
            while True:
                published = await self.publish_pending(connection)
                self.last_error = None
                if published >= self._batch_size:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await connection.close()

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def publish_pending(self, connection: asyncpg.Connection) -> int:
        """Publish one round of unpublished rows; returns how many were published."""
        rows = await connection.fetch(
            "SELECT id, topic, message_key, headers, body FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self._batch_size,
        )
        if not rows:
            OUTBOX_BACKLOG.set(0)
            return 0
        deliveries = []
        for row in rows:
            deliveries.append(
                await self._producer.kafka.send(
                    row["topic"],
                    value=bytes(row["body"]),
                    key=row["message_key"].encode(),
                    headers=[(name, value.encode()) for name, value in row["headers"]],
                )
            )
        await asyncio.gather(*deliveries)
        await connection.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        )
        OUTBOX_PUBLISHED.inc(len(rows))
        # A full round may leave more behind; a partial one emptied the outbox.
        OUTBOX_BACKLOG.set(
            await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if len(rows) >= self._batch_size
            else 0
        )
        return len(rows)

    async def backlog(self) -> int:
        async with self._database.connection() as connection:
            return await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
