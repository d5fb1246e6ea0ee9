"""Transactional outbox and its relay.

A use case calls `add_to_outbox` inside its transaction; nothing is published outside one.
The relay publishes committed rows with an idempotent producer (acks=all) and marks them.

Per-key order: exactly one relay per database publishes at a time (a session advisory lock;
other replicas stand by), it sends rows in id order and waits for every acknowledgement of a
round before the next. It selects by `published_at IS NULL`, never `id > last_id`, so a row
whose sequence number was taken before a later-committed row's is not skipped.
A crash between send and mark publishes a row again: consumers are idempotent by ce_id.

Personal data: a row for an agency's own topic carries the personal data the person consented
to share with that agency. Once Kafka has it, the row keeps only its metadata: the body is
cleared in the same statement that marks the row published. Published rows are deleted later
by knotenpunkt.housekeeping (docs/decisions/0011-housekeeping.md).

The backlog gauge is counted from the table, after every round and every few seconds on every
replica (leader or standby, with or without Kafka), so it never shows an old or guessed value.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg
from aiokafka.errors import KafkaError

from knotenpunkt import topics
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.kafka import Producer
from knotenpunkt.logging import get_logger
from knotenpunkt.metrics import OUTBOX_BACKLOG, OUTBOX_BACKLOG_COUNTED_AT, OUTBOX_PUBLISHED
from knotenpunkt.retry import Backoff

NOTIFY_CHANNEL = "knotenpunkt_outbox"
_RELAY_LOCK_KEY = 7_401_002
_BACKLOG_SQL = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
_DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
# The relay cannot dead-letter a row, so it waits out any failure, for ever, with the shared policy.
_BACKOFF = Backoff(initial_s=0.5, max_s=10.0)
# A database that does not answer must not hold the gauge's refresh loop for ever.
_COUNT_TIMEOUT_S = 30.0
_FULL_ROUND_COUNT_EVERY_S = 1.0

log = get_logger("knotenpunkt.outbox")


def carries_personal_data(topic: str) -> bool:
    """Whether events on `topic` may carry personal data.

    Agency topics do: `ReferralSent.shared_data` (the consented personal data) is only ever put
    on the receiving agency's own topic (decision 0007), never on a lifecycle topic, whose
    events carry nothing but the pseudonymous client id. The topic decides, not the event
    class: the same ReferralSent (same ce_id) goes to both, with the data only on one.
    """
    return topics.agency_of_topic(topic) is not None


async def add_to_outbox(
    connection: asyncpg.Connection,
    envelope: Envelope,
    topic: str | None = None,
    *,
    personal_data: bool | None = None,
) -> None:
    """Record an event for publishing, in the caller's transaction.

    `personal_data` marks the row for clearing at publish time; by default the topic decides
    (`carries_personal_data`). Pass True for an event with personal data on any other topic.
    """
    await add_many_to_outbox(connection, [(envelope, topic)], personal_data=personal_data)


async def add_many_to_outbox(
    connection: asyncpg.Connection,
    items: Sequence[tuple[Envelope, str | None]],
    *,
    personal_data: bool | None = None,
) -> None:
    """Record several events (each to its own topic, or the given one) in one round trip.

    A consumer applying a batch publishes hundreds of events per transaction; one statement
    each would make the database round trip, not the work, the limit.
    """
    if not items:
        return
    rows = []
    for envelope, topic in items:
        target = topic or envelope.event.topic
        rows.append(
            (
                envelope.id,
                target,
                envelope.key,
                envelope.type,
                [[name, value.decode()] for name, value in envelope.headers()],
                envelope.body(),
                carries_personal_data(target) if personal_data is None else personal_data,
            )
        )
    # executemany pipelines the rows: one round trip, not one per row.
    await connection.executemany(
        "INSERT INTO outbox (event_id, topic, message_key, event_type, headers, body, personal_data) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        rows,
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
        backlog_refresh_s: float = 15.0,
    ) -> None:
        self._database = database
        self._producer = producer
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._backlog_refresh_s = backlog_refresh_s
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.is_leader = False
        self.last_error: str | None = None
        self._count_failing = False
        self._counted_at = 0.0  # time.monotonic() of the last count

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            # Separate from leading: a standby, or a leader that cannot reach Kafka, still
            # reports the true backlog (the leader loop would not get to count).
            asyncio.create_task(self._refresh_backlog_periodically(), name="outbox-backlog"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except (*_DATABASE_ERRORS, KafkaError) as error:
                self.is_leader = False
                self.last_error = f"{type(error).__name__}: {error}"
                attempt += 1
                delay = _BACKOFF.delay(attempt)
                log.warning("outbox relay interrupted, retrying", error=self.last_error, retry_in_s=delay)
                await asyncio.sleep(delay)
            else:
                attempt = 0

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
            # Nothing unpublished in this snapshot: the count is exactly 0, no need to ask again.
            self._show_backlog(0)
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
        # Kafka has the personal data now (for the agency topic's retention); our copy goes.
        await connection.execute(
            "UPDATE outbox SET published_at = now(), body = CASE WHEN personal_data THEN NULL ELSE body END "
            "WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        )
        OUTBOX_PUBLISHED.inc(len(rows))
        # Counted, never inferred from the round's size: rows committed while the round was in
        # flight (or with a sequence number below the round's) are waiting too. While a large
        # backlog drains in full rounds, counting it after each would cost more than sending
        # it: then at most once a second.
        if len(rows) < self._batch_size or time.monotonic() - self._counted_at >= _FULL_ROUND_COUNT_EVERY_S:
            await self._set_backlog(connection)
        return len(rows)

    async def backlog(self) -> int:
        async with self._database.connection() as connection:
            return await connection.fetchval(_BACKLOG_SQL)

    async def refresh_backlog(self) -> int | None:
        """Count the backlog into the gauge; None (gauge unchanged) if the database does not answer.

        The gauge then keeps its last count; `knotenpunkt_outbox_backlog_counted_at_seconds`
        shows how old that count is.
        """
        try:
            async with asyncio.timeout(_COUNT_TIMEOUT_S), self._database.connection() as connection:
                waiting = await self._set_backlog(connection)
        except _DATABASE_ERRORS as error:
            if not self._count_failing:  # once per outage, not every round
                log.warning("outbox backlog not counted", error=type(error).__name__)
            self._count_failing = True
            return None
        self._count_failing = False
        return waiting

    async def _set_backlog(self, connection: asyncpg.Connection) -> int:
        waiting = int(await connection.fetchval(_BACKLOG_SQL))
        self._show_backlog(waiting)
        return waiting

    def _show_backlog(self, waiting: int) -> None:
        self._counted_at = time.monotonic()
        OUTBOX_BACKLOG.set(waiting)
        OUTBOX_BACKLOG_COUNTED_AT.set(time.time())

    async def _refresh_backlog_periodically(self) -> None:
        while True:
            with contextlib.suppress(RuntimeError):  # pool not connected (yet, or any more): next round
                await self.refresh_backlog()
            await asyncio.sleep(self._backlog_refresh_s)
