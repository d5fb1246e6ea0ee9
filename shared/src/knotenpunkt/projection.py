"""Batch projection consumer, written once for any read model.

A read model (stats' figures, a search index, ...) is fed from the event log in batches:

1. `getmany` fetches up to `max_batch` records from the assigned partitions;
2. every record is decoded; one that cannot be decoded goes to the dead-letter topic at once
   (the same headers as the per-event consumer: `knotenpunkt.kafka.DeadLetterPublisher`);
3. in ONE PostgreSQL transaction the projection applies the decoded events and the partition
   offsets `(consumer, topic, partition, next_offset)` are written to the offsets table;
4. only afterwards, best effort, the offsets are also committed to Kafka, purely so that
   `kafka-consumer-groups` shows the lag. Correctness never relies on Kafka commits.

The offsets table is the truth about what the read model contains:

- on partition assignment (ConsumerRebalanceListener, or manual assignment for a rebuild) the
  consumer seeks to the stored offsets;
- every batch transaction locks the stored offsets of its partitions (`FOR UPDATE`) and
  compares them with the position this consumer believes it stored. If they differ, someone
  else moved them (a rebuild swapped the tables in, or a zombie member of the group), so the
  partition's records are not applied and the consumer seeks to the stored offset. Records
  below the stored offset are skipped: a redelivered event changes nothing;
- while idle, the consumer compares its positions with the stored offsets once a second, so a
  table swap is noticed even when no new event arrives.

A non-transient failure of a batch (a bug, a constraint violation) is isolated: the batch is
applied again event by event under savepoints, and only the failing events are dead-lettered
(a projection may raise `knotenpunkt.consumer.Rejected` to dead-letter on purpose). Transient
failures (database unreachable, a table swapped under a prepared statement, deadlocks) are
retried with bounded exponential backoff for as long as it takes: an event is never skipped
because the database was down. If the dead-letter topic cannot be written, the batch is not
committed and is fetched again after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope, InvalidEvent, decode, header_map
from knotenpunkt.errors import DomainError
from knotenpunkt.kafka import DeadLetterPublisher
from knotenpunkt.logging import get_logger
from knotenpunkt.metrics import CONSUMER_LAG, CONSUMER_STALLED, EVENTS_HANDLED
from knotenpunkt.retry import TRANSIENT_ERRORS, Backoff, database_failing, is_transient

__all__ = ["Backoff", "EventFailed", "Projection", "ProjectionConsumer", "Rejected", "offsets_table_ddl"]

log = get_logger("knotenpunkt.projection")

# Besides an unreachable database: errors a concurrent swap of the read-model tables causes for
# a moment (a prepared statement planned against the dropped tables, a deadlock with the swap).
PROJECTION_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT_ERRORS,
    asyncpg.InvalidCachedStatementError,
    asyncpg.UndefinedTableError,
    asyncpg.InvalidSchemaNameError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
)

_QUALIFIED_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def tune_gc_for_batches(max_batch: int = 5000) -> None:
    """Garbage collection settings for a process that holds batches of decoded events.

    A batch of 5,000 decoded events is ~100,000 live container objects, and the pipeline holds
    a few batches at once. CPython collects the youngest generation whenever allocations exceed
    deallocations by the threshold (700 by default), so while batches are alive every collection
    traverses them again; that cost more than the decoding itself (measured: decoding plus
    keeping a batch ran at 52,000 events/s with the default, 72,000 with this). With a
    threshold above the pipeline's live set, a collection runs only when garbage really grows.
    Memory stays bounded: batches are freed by reference counting when they are applied.
    Process-wide: call it from a composition root.
    """
    gc.freeze()
    gc.set_threshold(max(100_000, max_batch * 200), 20, 20)


def offsets_table_ddl(table: str, unlogged: bool = False) -> str:
    """DDL of an offsets table; a read model creates it next to its own tables.

    `unlogged` for read models that are unlogged themselves: offsets and tables must share
    their fate (after a crash PostgreSQL empties unlogged tables, and the projection then
    starts again from offset 0)."""
    return (
        f"CREATE {'UNLOGGED ' if unlogged else ''}TABLE IF NOT EXISTS {_checked_name(table)} ("
        "consumer text NOT NULL, topic text NOT NULL, partition integer NOT NULL, "
        "next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
        "PRIMARY KEY (consumer, topic, partition))"
    )


def _checked_name(table: str) -> str:
    if not _QUALIFIED_NAME.match(table):
        raise ValueError(f"invalid table name {table!r}")
    return table


class Projection(Protocol):
    """A read model fed in batches. `apply` runs inside the batch's transaction."""

    name: str

    async def prepare(self, connection: asyncpg.Connection) -> None:
        """First statement of every batch transaction (e.g. `SET LOCAL search_path`)."""

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """Apply the events in log order per partition. Must be idempotent per event as well
        (the same event may be published twice, at two offsets)."""


class Rejected(Exception):
    """The event is well-formed but can never be applied (e.g. an answer from the wrong agency).

    Raised by a handler or projection; the event goes to the dead-letter topic with this reason
    and what it did is rolled back, so it changes nothing.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventFailed(Exception):
    """Raised by a projection that applies events one by one: which event failed (the cause
    is chained). Lets the consumer count that attempt against the event's bound."""

    def __init__(self, envelope: Envelope) -> None:
        super().__init__(envelope.type)
        self.envelope = envelope


@dataclass
class ProjectionStats:
    """What the consumer has done so far (for progress bars, benchmarks and health)."""

    records_seen: int = 0
    events_applied: int = 0
    dead_lettered: int = 0
    batches: int = 0
    last_batch_at: float = field(default_factory=time.monotonic)


class _SeekNeeded(Exception):
    """The batch must not be committed; seek its partitions back and fetch again."""


class ProjectionConsumer:
    """Feeds one projection from Kafka in batches, with offsets stored in PostgreSQL.

    `group_id` set: a member of a consumer group (replicas share the partitions). `group_id`
    None: every partition of the topics is assigned to this consumer (a rebuild).
    """

    def __init__(
        self,
        *,
        projection: Projection,
        database: Database,
        bootstrap: str,
        topics: Sequence[str],
        offsets_table: str,
        dead_letters: DeadLetterPublisher,
        group_id: str | None = None,
        client_id: str = "knotenpunkt-projection",
        max_batch: int = 5000,
        backoff: Backoff | None = None,
        idle_check_s: float = 1.0,
        pattern: str | None = None,
        stall_after_s: float = 300.0,
        seed_from_group_offsets: bool = False,
    ) -> None:
        self.projection = projection
        self.stats = ProjectionStats()
        self._database = database
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._offsets_table = _checked_name(offsets_table)
        self._dead_letters = dead_letters
        self._group_id = group_id
        self._client_id = client_id
        self._max_batch = max_batch
        self._backoff = backoff or Backoff(initial_s=0.2)
        self._idle_check_s = idle_check_s
        self._pattern = pattern
        self._stall_after_s = stall_after_s
        # The label of this consumer's metrics: its group, or the projection for a rebuild.
        self._metrics_label = group_id or projection.name
        # An upgrade from Kafka-committed positions: see `_initial_offsets`.
        self._seed_from_group_offsets = seed_from_group_offsets
        # Per partition, the offset after the last record fetched: what is below it and not yet
        # stored is waiting in this process; above it there may be only transaction markers.
        self._fetched_end: dict[TopicPartition, int] = {}
        # Since when a partition has had records waiting without any progress (lag > 0).
        self._waiting_since: dict[TopicPartition, float] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # The offset this consumer last stored (or read) per partition: the next record it applies.
        self._stored: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_idle_check = 0.0
        # Batches fetched and decoded ahead, tagged with the generation of the positions they
        # were fetched from; every seek starts a new generation and drops what was fetched ahead.
        self._prefetched: asyncio.Queue[tuple[int, dict, list]] = asyncio.Queue(maxsize=2)
        self._generation = 0
        self._fetcher: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and join (or assign); `run` or `run_until` then does the work."""
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            # A large batch takes a while to apply; the group must not think we are dead.
            max_poll_interval_ms=600_000,
            # A pattern subscription (the agencies' answer topics) notices a new topic within a minute.
            metadata_max_age_ms=60_000,
            # A partner may write its answers in Kafka transactions: what it aborted never applies.
            isolation_level="read_committed",
        )
        CONSUMER_STALLED.labels(self._metrics_label, self.name).set_function(lambda: 1.0 if self.stalled() else 0.0)
        await self._consumer.start()
        if self._group_id is None:
            partitions = await self._all_partitions()
            self._consumer.assign(partitions)
            await self._on_assigned(partitions)
        elif self._pattern is not None:
            self._consumer.subscribe(pattern=self._pattern, listener=_Listener(self))
        else:
            self._consumer.subscribe(self._topics, listener=_Listener(self))

    def start_background(self) -> None:
        """Run the consumer loop as a task of the running event loop (a service's lifespan)."""
        self._task = asyncio.create_task(self._run_supervised(), name=f"projection:{self.projection.name}")

    async def stop(self) -> None:
        """Finish the batch in flight, then leave the group."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None
        if self._fetcher is not None:
            self._fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._fetcher
            self._fetcher = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _run_supervised(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                await self.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                attempt += 1
                delay = self._backoff.delay(attempt)
                log.exception("projection loop failed; restarting", projection=self.projection.name, retry_in_s=delay)
                # What was fetched ahead lies beyond the batch that failed: fetch again from
                # the stored offsets, or a later batch would store offsets past it.
                async with self._lock:
                    self._reset_positions()
                await asyncio.sleep(delay)

    async def run(self) -> None:
        """Apply batches until `stop()`."""
        while not self._stopping:
            await self.step()

    async def run_until(
        self,
        end_offsets: Mapping[TopicPartition, int],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Apply batches until every partition has reached the given end offset (a rebuild)."""
        while not self._stopping and not self.reached(end_offsets):
            await self.step()
            if progress is not None:
                progress(self.applied_position(end_offsets))

    def reached(self, end_offsets: Mapping[TopicPartition, int]) -> bool:
        return all(self._stored.get(tp, 0) >= end for tp, end in end_offsets.items())

    def applied_position(self, end_offsets: Mapping[TopicPartition, int]) -> int:
        """How many records below the given end offsets are stored as applied."""
        return sum(min(self._stored.get(tp, 0), end) for tp, end in end_offsets.items())

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The current end of every partition of the topics."""
        partitions = await self._all_partitions()
        return dict(await self.kafka.end_offsets(partitions))

    @property
    def kafka(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("projection consumer not started")
        return self._consumer

    @property
    def name(self) -> str:
        """The consumer's group (or projection) and what it reads, for metrics and logs."""
        return f"{self._metrics_label}:{self._pattern or ','.join(self._topics)}"

    @property
    def max_batch(self) -> int:
        return self._max_batch

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._topics)

    @property
    def pattern(self) -> str | None:
        """The topic pattern subscribed to instead of named topics, if any."""
        return self._pattern

    def stored_offsets(self) -> dict[TopicPartition, int]:
        return dict(self._stored)

    def stalled(self) -> str | None:
        """Why this consumer is stalled, or None: records have waited on a partition for longer
        than `stall_after_s` without any of them being applied (for /health/ready)."""
        now = time.monotonic()
        stuck = sorted(
            f"{tp.topic}[{tp.partition}]"
            for tp, since in self._waiting_since.items()
            if now - since > self._stall_after_s
        )
        if not stuck:
            return None
        return f"{self.name}: no progress for over {self._stall_after_s:g} s on {', '.join(stuck)}"

    async def _observe_lag(self, progressed: Iterable[TopicPartition] = ()) -> None:
        """Lag per partition from the fetcher's high watermark (no extra request), and the time
        since records have been waiting without progress."""
        now = time.monotonic()
        progressed = set(progressed)
        for tp, stored in list(self._stored.items()):
            highwater = self.kafka.highwater(tp) if self._consumer is not None else None
            if highwater is None:
                continue
            lag = max(0, highwater - stored)
            if lag and stored >= self._fetched_end.get(tp, -1) and await self._fetched_past(tp, highwater):
                # Everything fetched is applied and the fetcher is at the end: what remains
                # below the high watermark are transaction markers, which are never delivered.
                lag = 0
            CONSUMER_LAG.labels(self._metrics_label, tp.topic, str(tp.partition)).set(lag)
            if lag == 0 or tp in progressed:
                self._waiting_since.pop(tp, None)
                if lag > 0:
                    self._waiting_since[tp] = now
            else:
                self._waiting_since.setdefault(tp, now)
        for tp in [tp for tp in self._waiting_since if tp not in self._stored]:
            del self._waiting_since[tp]

    async def _fetched_past(self, tp: TopicPartition, highwater: int) -> bool:
        try:
            # Bounded: an unknown position is looked up at the coordinator, and the batch lock is held.
            return await asyncio.wait_for(self.kafka.position(tp), timeout=1) >= highwater
        except (KafkaError, TimeoutError):
            return False
        except Exception:  # no longer assigned (a rebalance meanwhile)
            return False

    # --- one batch ------------------------------------------------------------------------

    async def step(self, timeout_s: float = 0.5) -> None:
        """Apply the next fetched batch (or check the stored offsets while idle).

        Fetching and decoding run ahead in a task of their own, so that the next batch is
        decoded while PostgreSQL applies this one (the two use different cores).
        """
        if self._fetcher is None or self._fetcher.done():
            if self._fetcher is not None and not self._fetcher.cancelled() and self._fetcher.exception():
                log.error("fetcher failed; restarting it", error=repr(self._fetcher.exception()))
            self._fetcher = asyncio.create_task(self._fetch_ahead(), name=f"fetch:{self.projection.name}")
        try:
            generation, decoded, invalid = await asyncio.wait_for(self._prefetched.get(), timeout_s)
        except TimeoutError:
            generation, decoded, invalid = self._generation, {}, []
        async with self._lock:
            if generation != self._generation:
                return  # fetched before a seek or a rebalance: the positions were reset since
            # Only what is still assigned counts.
            batch = {tp: rows for tp, rows in decoded.items() if rows and tp in self._stored}
            if not batch:
                await self._idle_check()
                await self._observe_lag()
                return
            before = {tp: self._stored.get(tp) for tp in batch}
            now = time.monotonic()
            for tp in batch:
                # Records are waiting from now on: a batch that hangs shows as a stall.
                self._waiting_since.setdefault(tp, now)
            await self._apply_batch(batch, invalid)
            await self._observe_lag(progressed=[tp for tp in batch if self._stored.get(tp) != before[tp]])

    async def _fetch_ahead(self) -> None:
        while True:
            generation = self._generation
            fetched = await self.kafka.getmany(timeout_ms=500, max_records=self._max_batch)
            if generation != self._generation:
                # A seek or a rebalance happened meanwhile (possibly inside getmany, which then
                # returned records from the new positions): drop them and start over from the
                # stored offsets, the positions of the new generation.
                self._seek(self._stored)
                continue
            decoded: dict[TopicPartition, list[tuple[ConsumerRecord, Envelope | None]]] = {}
            invalid: list[tuple[ConsumerRecord, str]] = []
            for tp, records in fetched.items():
                if records:
                    self._fetched_end[tp] = records[-1].offset + 1
                rows = decoded.setdefault(tp, [])
                for index, record in enumerate(records):
                    if index % 100 == 99:
                        # Decoding is CPU work on the event loop: let the applier send its next
                        # statement meanwhile, so PostgreSQL works while this batch is decoded.
                        await asyncio.sleep(0)
                    try:
                        envelope = decode(record.headers or (), record.value, record.topic)
                    except InvalidEvent as error:
                        invalid.append((record, error.reason))
                        rows.append((record, None))
                    else:
                        rows.append((record, envelope))
            if decoded:
                await self._prefetched.put((generation, decoded, invalid))
            elif self._prefetched.empty():
                # Nothing arrived: let the applier do its idle check.
                await self._prefetched.put((generation, {}, []))

    def _reset_positions(self) -> None:
        """Forget what was fetched ahead and fetch again from the stored offsets."""
        self._generation += 1
        while not self._prefetched.empty():
            self._prefetched.get_nowait()
        self._seek(self._stored)

    async def _apply_batch(
        self,
        decoded: dict[TopicPartition, list[tuple[ConsumerRecord, Envelope | None]]],
        invalid: list[tuple[ConsumerRecord, str]],
    ) -> None:
        self.stats.records_seen += sum(len(rows) for rows in decoded.values())
        partitions = set(decoded)
        invalid = [
            (record, reason)
            for record, reason in invalid
            if TopicPartition(record.topic, record.partition) in partitions
        ]
        try:
            # Undecodable messages first: retrying cannot fix them, and the offsets must not
            # pass them before they are secured.
            for record, reason in invalid:
                await self._dead_letter(record, reason, None)
            committed = await self._commit_with_retries(decoded)
        except _SeekNeeded:
            await asyncio.sleep(self._backoff.max_s)
            self._reset_positions()
            return
        self.stats.batches += 1
        self.stats.last_batch_at = time.monotonic()
        await self._commit_to_kafka(committed)

    async def _commit_with_retries(
        self, decoded: dict[TopicPartition, list[tuple[ConsumerRecord, Envelope | None]]]
    ) -> dict[TopicPartition, int]:
        """Apply the batch in one transaction; on a failure, find the failing events.

        The whole batch goes in one transaction first (fast). When that fails, the batch is
        applied again event by event under savepoints, and only the failing events are
        dead-lettered. A consumer with a bound on attempts (`Backoff.max_attempts`, the event
        handlers) retries an event that keeps failing transiently up to the bound, inside its
        savepoint, then dead-letters it; one without (the projections) waits out transient
        failures for as long as they last. A transaction that cannot even run (the database is
        down) is retried with backoff for ever: an event is never skipped because of that.
        """
        attempt = 0
        isolate = False
        tries: dict[int, int] = {}  # attempts so far per event (by envelope identity)
        while True:
            attempt += 1
            try:
                return await self._transaction(decoded, isolate, tries)
            except _SeekNeeded:
                raise
            except Exception as error:
                cause = error.__cause__ if isinstance(error, EventFailed) else error
                transient = is_transient(cause, PROJECTION_TRANSIENT_ERRORS)
                if not isolate and (not transient or self._backoff.max_attempts is not None):
                    if isinstance(error, EventFailed):
                        tries[id(error.envelope)] = 1  # the batch's try was that event's first
                    # One bad event must not stop the others: find it, event by event.
                    log.warning(
                        "batch failed; applying it event by event",
                        projection=self.projection.name,
                        error=type(cause).__name__,
                    )
                    isolate = True
                    continue
                if not transient:
                    raise
                delay = self._backoff.delay(attempt)
                log.warning(
                    "transient failure applying a batch; retrying",
                    projection=self.projection.name,
                    error=type(cause).__name__,
                    attempt=attempt,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)

    async def _transaction(
        self,
        decoded: dict[TopicPartition, list[tuple[ConsumerRecord, Envelope | None]]],
        isolate: bool,
        tries: dict[int, int],
    ) -> dict[TopicPartition, int]:
        """One transaction: check the stored offsets, apply, store the new offsets."""
        mismatched: dict[TopicPartition, int] = {}
        async with self._database.transaction() as connection:
            await self.projection.prepare(connection)
            stored = await self._lock_stored(connection, decoded.keys())
            envelopes: list[Envelope] = []
            new_offsets: dict[TopicPartition, int] = {}
            for tp, rows in decoded.items():
                current = stored.get(tp, 0)
                if current != self._stored.get(tp):
                    mismatched[tp] = current
                    continue
                # Normally the whole batch is new; below the stored offset only after a seek.
                fresh = rows if rows[0][0].offset >= current else [row for row in rows if row[0].offset >= current]
                if not fresh:
                    continue
                envelopes.extend(envelope for _, envelope in fresh if envelope is not None)
                new_offsets[tp] = fresh[-1][0].offset + 1
            failed: list[tuple[Envelope, str, BaseException]] = []
            if envelopes:
                if isolate:
                    failed = await self._apply_isolated(connection, envelopes, tries)
                else:
                    await self.projection.apply(connection, envelopes)
            if failed:
                records = {id(envelope): record for rows in decoded.values() for record, envelope in rows}
                for envelope, reason, error in failed:
                    await self._dead_letter(records[id(envelope)], reason, error)
            if new_offsets:
                await connection.executemany(
                    f"INSERT INTO {self._offsets_table} (consumer, topic, partition, next_offset) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (consumer, topic, partition) "
                    "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                    [(self.projection.name, tp.topic, tp.partition, offset) for tp, offset in new_offsets.items()],
                )
        self._stored.update(new_offsets)
        self.stats.events_applied += len(envelopes) - len(failed)
        committed = getattr(self.projection, "committed", None)
        if committed is not None:
            committed()
        if mismatched:
            log.info(
                "stored offsets moved under this consumer (a rebuild swap or another member); seeking",
                projection=self.projection.name,
                partitions=len(mismatched),
            )
            self._stored.update(mismatched)
            self._reset_positions()
        return new_offsets

    async def _apply_isolated(
        self, connection: asyncpg.Connection, envelopes: list[Envelope], tries: dict[int, int]
    ) -> list[tuple[Envelope, str, BaseException]]:
        failed = []
        for envelope in envelopes:
            while True:
                if tries.get(id(envelope)):
                    await asyncio.sleep(self._backoff.delay(tries[id(envelope)]))
                try:
                    async with connection.transaction():  # a savepoint
                        await self.projection.apply(connection, [envelope])
                except Exception as raised:
                    error = raised.__cause__ if isinstance(raised, EventFailed) and raised.__cause__ else raised
                    if connection.is_closed() or database_failing(error):
                        raise  # the database itself failed: the whole batch waits for it
                    if isinstance(error, PROJECTION_TRANSIENT_ERRORS):
                        if self._backoff.max_attempts is None:
                            raise  # the database itself: the whole batch waits for it
                        tries[id(envelope)] = attempt = tries.get(id(envelope), 0) + 1
                        if not self._backoff.gives_up_after(attempt):
                            log.warning(
                                "transient failure, retrying",
                                projection=self.projection.name,
                                event_type=envelope.type,
                                error=type(error).__name__,
                                attempt=attempt,
                            )
                            continue
                        reason = f"gave up after {attempt} attempts: {type(error).__name__}"
                    elif isinstance(error, Rejected):
                        reason = error.reason
                    elif isinstance(error, DomainError):
                        reason = f"rejected: {error.code}"
                    else:
                        log.exception(
                            "projection failed on an event", projection=self.projection.name, event_type=envelope.type
                        )
                        reason = f"handler failed: {type(error).__name__}"
                    failed.append((envelope, reason, error))
                break
        return failed

    async def _lock_stored(self, connection: asyncpg.Connection, partitions: Iterable[TopicPartition]) -> dict:
        wanted = list(partitions)
        rows = await connection.fetch(
            f"SELECT topic, partition, next_offset FROM {self._offsets_table} "
            "WHERE consumer = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[])) "
            "FOR UPDATE",
            self.projection.name,
            [tp.topic for tp in wanted],
            [tp.partition for tp in wanted],
        )
        return {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}

    async def _dead_letter(self, record: ConsumerRecord, reason: str, error: BaseException | None) -> None:
        try:
            await self._dead_letters.send(record, reason, error)
        except KafkaError as failure:
            log.error("dead-letter topic unreachable; the batch will be fetched again", error=type(failure).__name__)
            raise _SeekNeeded from failure
        self.stats.dead_lettered += 1
        event_type = header_map(record.headers or ()).get("ce_type", "undecodable")[:200]
        EVENTS_HANDLED.labels(self._metrics_label, event_type, "dead_lettered").inc()

    # --- offsets: stored in PostgreSQL, mirrored to Kafka ------------------------------------

    async def _read_stored(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Stored offsets of the partitions; rows are created so that batches can lock them.

        Retried until it works, whatever the error: the rebalance listener that calls it has no
        one to report to (aiokafka logs and drops its exceptions), and a partition without a
        stored offset would be silently ignored."""
        attempt = 0
        while True:
            attempt += 1
            try:
                initial = await self._initial_offsets(partitions)
                async with self._database.transaction() as connection:
                    await self.projection.prepare(connection)
                    await connection.executemany(
                        f"INSERT INTO {self._offsets_table} (consumer, topic, partition, next_offset) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        [(self.projection.name, tp.topic, tp.partition, initial.get(tp, 0)) for tp in partitions],
                    )
                    rows = await connection.fetch(
                        f"SELECT topic, partition, next_offset FROM {self._offsets_table} WHERE consumer = $1",
                        self.projection.name,
                    )
                stored = {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}
                return {tp: stored.get(tp, 0) for tp in partitions}
            except asyncio.CancelledError:
                raise
            except Exception as error:
                delay = self._backoff.delay(attempt)
                if is_transient(error, (*PROJECTION_TRANSIENT_ERRORS, KafkaError)):
                    log.warning("cannot read stored offsets; retrying", error=type(error).__name__, retry_in_s=delay)
                else:
                    log.exception("cannot read stored offsets; retrying", retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _initial_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Where a partition without a stored offset starts: at 0, except right after the upgrade
        from consumers that kept their positions only in Kafka (decision 10). A database that
        has applied events of this group before but stores no position for it is that upgrade;
        it resumes at the group's committed offsets, so that nothing applied or dead-lettered
        back then is applied again. A new or emptied database replays from 0."""
        if not self._seed_from_group_offsets or self._group_id is None:
            return {}
        async with self._database.connection() as connection:
            positions = await connection.fetchval(
                f"SELECT count(*) FROM {self._offsets_table} WHERE consumer = $1", self.projection.name
            )
            applied_before = await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = $1)", self.projection.name
            )
        if positions or not applied_before:
            return {}
        initial = {}
        for tp in partitions:
            committed = await self.kafka.committed(tp)
            if committed is not None and committed > 0:
                initial[tp] = committed
        if initial:
            log.info("first start with stored offsets: resuming at the group's committed ones", partitions=len(initial))
        return initial

    async def _on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        if not partitions:
            return
        stored = await self._read_stored(partitions)
        self._stored.update(stored)
        self._reset_positions()
        log.info("partitions assigned", projection=self.projection.name, partitions=len(partitions))

    async def _on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        # Wait for the batch in flight: it commits its offsets before another member takes over.
        async with self._lock:
            for tp in partitions:
                self._stored.pop(tp, None)
                self._fetched_end.pop(tp, None)
                # Another member reports this partition's lag from now on.
                with contextlib.suppress(KeyError):
                    CONSUMER_LAG.remove(self._metrics_label, tp.topic, str(tp.partition))
            self._generation += 1

    async def _idle_check(self) -> None:
        """While nothing arrives: notice stored offsets moved by someone else (a rebuild swap)."""
        now = time.monotonic()
        if not self._stored or now - self._last_idle_check < self._idle_check_s:
            return
        self._last_idle_check = now
        try:
            async with self._database.transaction() as connection:
                await self.projection.prepare(connection)
                rows = await connection.fetch(
                    f"SELECT topic, partition, next_offset FROM {self._offsets_table} WHERE consumer = $1",
                    self.projection.name,
                )
        except PROJECTION_TRANSIENT_ERRORS as error:
            log.warning("idle offset check failed", error=type(error).__name__)
            return
        stored = {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}
        moved = {tp: stored.get(tp, 0) for tp, mine in self._stored.items() if stored.get(tp, 0) != mine}
        if moved:
            log.info("stored offsets moved while idle; seeking", projection=self.projection.name, partitions=len(moved))
            self._stored.update(moved)
            self._reset_positions()
        # Keep the group's committed offsets (lag monitoring) in step with what is stored, also
        # where a swap or a skip moved them without a batch of this consumer.
        await self._commit_to_kafka({tp: offset for tp, offset in self._stored.items() if offset > 0})

    def _seek(self, offsets: Mapping[TopicPartition, int], only: Iterable[TopicPartition] | None = None) -> None:
        assigned = self.kafka.assignment()
        chosen = set(only) if only is not None else set(offsets)
        for tp, offset in offsets.items():
            if tp in chosen and tp in assigned:
                self.kafka.seek(tp, offset)

    async def _commit_to_kafka(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._group_id is None or not offsets:
            return
        try:
            # Bounded: aiokafka retries an unavailable coordinator for ever, and this runs while
            # the batch lock is held.
            await asyncio.wait_for(
                self.kafka.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}), timeout=5
            )
        except (KafkaError, TimeoutError) as error:
            # Only for lag monitoring; the stored offsets are what counts.
            log.debug("offset mirror to Kafka failed", error=type(error).__name__)

    async def _all_partitions(self) -> list[TopicPartition]:
        consumer = self.kafka
        partitions: list[TopicPartition] = []
        for topic in self._topics:
            found = consumer.partitions_for_topic(topic)
            deadline = time.monotonic() + 30
            while not found:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(topic)
                if not found:
                    await asyncio.sleep(0.2)
            partitions.extend(TopicPartition(topic, p) for p in sorted(found))
        return partitions


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: ProjectionConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._owner._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._owner._on_assigned(assigned)
