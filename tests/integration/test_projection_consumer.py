"""The batch projection consumer on the real broker and database: offsets stored with the effect,
exactly-once effects across restarts, rebalances and moved offsets, dead letters, retries."""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import asyncpg
import pytest

from knotenpunkt.consumer import Rejected
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientRegistered
from knotenpunkt.kafka import DeadLetterPublisher, Producer
from knotenpunkt.projection import Backoff, ProjectionConsumer, offsets_table_ddl
from knotenpunkt.testing.events import registered
from knotenpunkt.testing.fixtures import count_rows, eventually, unique
from knotenpunkt.testing.kafka import create_topic, publish, read_topic

pytestmark = pytest.mark.integration

OFFSETS = "public.projection_offsets"
FAST = Backoff(initial_s=0.05, max_s=0.3)


class Effects:
    """A toy read model that shows every double application: one row per applied event, no key."""

    def __init__(self, name: str = "effects", fail: Callable[[Envelope], Awaitable[None]] | None = None) -> None:
        self.name = name
        self._fail = fail
        self.batch_sizes: list[int] = []

    async def prepare(self, connection: asyncpg.Connection) -> None:
        return None

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        self.batch_sizes.append(len(envelopes))
        for envelope in envelopes:
            if self._fail is not None:
                await self._fail(envelope)
        await connection.executemany(
            "INSERT INTO effects (client_id, office_id) VALUES ($1, $2)",
            [(e.event.client_id, e.event.office_id) for e in envelopes],
        )


@pytest.fixture
async def effects_db(database: Database) -> Database:
    async with database.transaction() as connection:
        await connection.execute("CREATE TABLE effects (client_id uuid NOT NULL, office_id text NOT NULL)")
        await connection.execute(offsets_table_ddl(OFFSETS))
    return database


@contextlib.asynccontextmanager
async def projecting(
    infra,
    database: Database,
    topics: Sequence[str],
    projection: Effects,
    group: str | None,
    dead_letter_topic: str | None = None,
    max_batch: int = 500,
) -> AsyncIterator[ProjectionConsumer]:
    producer = Producer(infra.kafka_bootstrap, "test-dlq")
    await producer.start()
    dead_letters = DeadLetterPublisher(producer, group or "rebuild", dead_letter_topic or unique("dlq"))
    consumer = ProjectionConsumer(
        projection=projection,
        database=database,
        bootstrap=infra.kafka_bootstrap,
        topics=topics,
        offsets_table=OFFSETS,
        dead_letters=dead_letters,
        group_id=group,
        max_batch=max_batch,
        backoff=FAST,
        idle_check_s=0.2,
    )
    await consumer.start()
    consumer.start_background()
    try:
        yield consumer
    finally:
        await consumer.stop()
        await producer.stop()


async def stored_total(database: Database, consumer: str = "effects") -> int:
    return await count_rows(
        database, f"SELECT coalesce(sum(next_offset), 0) FROM {OFFSETS} WHERE consumer = $1", consumer
    )


async def test_batches_are_applied_once_with_their_offsets(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3)
    envelopes = [registered() for _ in range(600)]
    await publish(infra.kafka_bootstrap, topic, envelopes)
    projection = Effects()

    async with projecting(infra, effects_db, [topic], projection, unique("group"), max_batch=200):
        await eventually(lambda: _equals(stored_total(effects_db), 600))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 600
    assert await count_rows(effects_db, "SELECT count(DISTINCT client_id) FROM effects") == 600
    # It really batches: fewer transactions than events, none larger than the bound.
    assert len(projection.batch_sizes) < 600 and max(projection.batch_sizes) <= 200


async def test_a_restart_resumes_at_the_stored_offsets_not_at_kafkas(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3)
    total = 900
    await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(total)])

    async def some_applied() -> bool:
        return await count_rows(effects_db, "SELECT count(*) FROM effects") >= 100

    async with projecting(infra, effects_db, [topic], Effects(), unique("group"), max_batch=50):
        await eventually(some_applied)
    before = await count_rows(effects_db, "SELECT count(*) FROM effects")
    assert before < total, "the stop must come mid-stream for this test to mean anything"

    # A new group id: Kafka knows no committed offset for it and would start at 0. Only the
    # offsets stored with the effects keep it from applying anything twice.
    async with projecting(infra, effects_db, [topic], Effects(), unique("other-group")):
        await eventually(lambda: _equals(stored_total(effects_db), total))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == total
    assert await count_rows(effects_db, "SELECT count(DISTINCT client_id) FROM effects") == total


async def test_two_members_of_a_group_share_the_partitions_and_apply_each_event_once(
    infra, effects_db: Database
) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3)
    group = unique("group")
    first_half = [registered() for _ in range(300)]
    second_half = [registered() for _ in range(300)]
    await publish(infra.kafka_bootstrap, topic, first_half)
    first, second = Effects(), Effects()

    async with projecting(infra, effects_db, [topic], first, group, max_batch=20):
        await eventually(lambda: _at_least(count_rows(effects_db, "SELECT count(*) FROM effects"), 50))
        # A second member joins mid-stream: a rebalance moves partitions between them.
        async with projecting(infra, effects_db, [topic], second, group, max_batch=20) as joined:

            async def rebalanced() -> bool:
                return bool(joined.stored_offsets())

            await eventually(rebalanced)
            await publish(infra.kafka_bootstrap, topic, second_half)
            await eventually(lambda: _equals(stored_total(effects_db), 600))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 600
    assert await count_rows(effects_db, "SELECT count(DISTINCT client_id) FROM effects") == 600
    assert first.batch_sizes and second.batch_sizes, "both members should have applied something"


async def test_moved_stored_offsets_are_followed_even_while_idle(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=2)
    await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(100)])

    async with projecting(infra, effects_db, [topic], Effects(), unique("group")):
        await eventually(lambda: _equals(stored_total(effects_db), 100))
        # What a rebuild swap does: other tables with other offsets (here: empty, from 0).
        async with effects_db.transaction() as connection:
            await connection.execute("DELETE FROM effects")
            await connection.execute(f"UPDATE {OFFSETS} SET next_offset = 0")
        # No new event arrives; the idle check notices and the consumer seeks back.
        await eventually(lambda: _equals(count_rows(effects_db, "SELECT count(*) FROM effects"), 100))
        await eventually(lambda: _equals(stored_total(effects_db), 100))

    assert await count_rows(effects_db, "SELECT count(DISTINCT client_id) FROM effects") == 100


async def test_undecodable_messages_are_dead_lettered_with_their_origin_and_the_rest_applied(
    infra, effects_db: Database
) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    valid = [registered(), registered()]
    not_json = (
        b"k1",
        b"{oops",
        [("ce_type", ClientRegistered.event_type.encode()), ("ce_id", str(uuid.uuid4()).encode())],
    )
    await publish(infra.kafka_bootstrap, topic, [valid[0], not_json, valid[1]])

    async with projecting(infra, effects_db, [topic], Effects(), group, dead_letters):
        await eventually(lambda: _equals(stored_total(effects_db), 3))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 2
    [dead] = await read_topic(infra.kafka_bootstrap, dead_letters)
    headers = dict(dead.headers)
    assert dead.value == not_json[1]
    assert b"not valid JSON" in headers["dlq_reason"]
    assert (headers["dlq_origin_topic"], headers["dlq_origin_partition"], headers["dlq_origin_offset"]) == (
        topic.encode(),
        b"0",
        b"1",
    )
    assert headers["dlq_consumer_group"] == group.encode()
    assert headers["ce_type"] == ClientRegistered.event_type.encode()


async def test_an_event_the_projection_cannot_apply_is_isolated_and_dead_lettered(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    envelopes = [registered() for _ in range(5)] + [registered("rsc-atlantis")] + [registered() for _ in range(5)]

    async def refuse_atlantis(envelope: Envelope) -> None:
        if envelope.event.office_id == "rsc-atlantis":
            raise Rejected("unknown office")

    await publish(infra.kafka_bootstrap, topic, envelopes)
    async with projecting(infra, effects_db, [topic], Effects(fail=refuse_atlantis), unique("group"), dead_letters):
        await eventually(lambda: _equals(stored_total(effects_db), 11))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 10
    assert await count_rows(effects_db, "SELECT count(*) FROM effects WHERE office_id = 'rsc-atlantis'") == 0
    [dead] = await read_topic(infra.kafka_bootstrap, dead_letters)
    assert dict(dead.headers)["dlq_reason"] == b"unknown office"
    assert dict(dead.headers)["dlq_origin_offset"] == b"5"


async def test_transient_database_failures_are_retried_with_growing_delays(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    attempts: list[float] = []

    async def database_restarting(envelope: Envelope) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise ConnectionRefusedError("database restarting")

    await publish(infra.kafka_bootstrap, topic, [registered()])
    async with projecting(infra, effects_db, [topic], Effects(fail=database_restarting), unique("group")):
        await eventually(lambda: _equals(stored_total(effects_db), 1))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 1
    assert len(attempts) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2, f"no growing backoff: {gaps}"


async def test_without_a_group_every_partition_is_read_up_to_given_ends(infra, effects_db: Database) -> None:
    topics = [await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3) for _ in range(2)]
    for topic in topics:
        await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(50)])
    producer = Producer(infra.kafka_bootstrap, "test-dlq")
    await producer.start()
    consumer = ProjectionConsumer(
        projection=Effects(),
        database=effects_db,
        bootstrap=infra.kafka_bootstrap,
        topics=topics,
        offsets_table=OFFSETS,
        dead_letters=DeadLetterPublisher(producer, "rebuild", unique("dlq")),
        backoff=FAST,
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets()
        seen: list[int] = []
        await consumer.run_until(ends, seen.append)
    finally:
        await consumer.stop()
        await producer.stop()
    assert sum(ends.values()) == 100 and len(ends) == 6
    assert seen[-1] == 100
    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 100


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _at_least(value: Awaitable[int], expected: int) -> bool:
    return await value >= expected


class _FailingPrepare(Effects):
    """A read model whose transactions fail a few times before any event is touched (outside
    the per-event savepoints), with an error no retry policy knows."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.prepared = False

    async def prepare(self, connection: asyncpg.Connection) -> None:
        # Only in batch transactions: reading the stored offsets at assignment works.
        if self.failures > 0 and self.batch_sizes == [] and self.prepared:
            self.failures -= 1
            raise RuntimeError("a bug outside the events")
        self.prepared = True


async def test_a_batch_whose_failure_escapes_is_fetched_again_not_skipped(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(30)])
    projection = _FailingPrepare(failures=2)

    # Batches of 10: while the first one fails, the next ones are already fetched ahead.
    async with projecting(infra, effects_db, [topic], projection, unique("group"), max_batch=10):
        await eventually(lambda: _equals(stored_total(effects_db), 30))

    assert projection.failures == 0
    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 30
    assert await count_rows(effects_db, "SELECT count(DISTINCT client_id) FROM effects") == 30


async def test_a_read_only_database_holds_the_batch_instead_of_dead_lettering_it(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(5)])
    read_only = {"left": 6}

    async def failover_in_progress(envelope: Envelope) -> None:
        # What every statement meets while a primary is being replaced by a read-only standby.
        if read_only["left"] > 0:
            read_only["left"] -= 1
            raise asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction")

    async with projecting(
        infra, effects_db, [topic], Effects(fail=failover_in_progress), unique("group"), dead_letter_topic=dead_letters
    ):
        await eventually(lambda: _equals(stored_total(effects_db), 5))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 5
    assert await read_topic(infra.kafka_bootstrap, dead_letters) == []
