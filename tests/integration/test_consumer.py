"""Idempotent consumers on the real broker and database: redelivery, poison messages, restarts,
transient failures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from knotenpunkt.consumer import EventConsumer, EventHandler
from knotenpunkt.db import Database
from knotenpunkt.deadletters import replay
from knotenpunkt.events import ClientRegistered
from knotenpunkt.kafka import MAX_RECORD_BYTES, DeadLetterPublisher, Producer
from knotenpunkt.retry import Backoff
from knotenpunkt.testing.events import registered
from knotenpunkt.testing.fixtures import count_rows, eventually, unique
from knotenpunkt.testing.kafka import committed_total, create_topic, publish, read_topic
from knotenpunkt.uow import UnitOfWork, UnitsOfWork

pytestmark = pytest.mark.integration

T = TypeVar("T")


FAST_RETRY = Backoff(max_attempts=3, initial_s=0.05, max_s=0.2)


async def record_effect(event: ClientRegistered, uow: UnitOfWork) -> None:
    # No unique constraint on purpose: applying an event twice would show as two rows.
    await uow.connection.execute("INSERT INTO effects (client_id) VALUES ($1)", event.client_id)


@pytest.fixture
async def effects_db(database: Database) -> Database:
    async with database.transaction() as connection:
        await connection.execute("CREATE TABLE effects (client_id uuid NOT NULL)")
    return database


@contextlib.asynccontextmanager
async def consuming(
    infra,
    database: Database,
    topic: str,
    group: str,
    dead_letter_topic: str,
    handler: EventHandler = record_effect,
    retry: Backoff = FAST_RETRY,
    max_batch: int = 500,
) -> AsyncIterator[EventConsumer]:
    producer = Producer(infra.kafka_bootstrap, "test-dlq")
    await producer.start()
    consumer = EventConsumer(
        group_id=group,
        units=UnitsOfWork(database, "test"),
        bootstrap=infra.kafka_bootstrap,
        dead_letters=DeadLetterPublisher(producer, group, dead_letter_topic),
        handlers=[handler],
        topics=[topic],
        backoff=retry,
        max_batch=max_batch,
    )
    await consumer.start()
    consumer.start_background()
    try:
        yield consumer
    finally:
        await consumer.stop()
        await producer.stop()


async def settled(infra, group: str, topic: str, expected: int) -> bool:
    return await committed_total(infra.kafka_bootstrap, group, topic) == expected


async def test_the_same_event_delivered_twice_changes_nothing(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    group, dead_letters = unique("group"), unique("dlq")
    envelope = registered()
    # The same event (same ce_id) twice, as after a producer retry or a relay crash before marking.
    await publish(infra.kafka_bootstrap, topic, [envelope, envelope])

    async with consuming(infra, effects_db, topic, group, dead_letters):
        await eventually(lambda: settled(infra, group, topic, 2))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 1
    assert await count_rows(effects_db, "SELECT count(*) FROM processed_events WHERE consumer = $1", group) == 1


async def test_a_malformed_message_is_dead_lettered_and_the_consumer_goes_on(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    valid = registered()
    not_json = (
        b"k1",
        b"{this is not json",
        [("ce_type", ClientRegistered.event_type.encode()), ("ce_id", str(uuid.uuid4()).encode())],
    )
    unknown = (b"k2", b"{}", [("ce_type", b"knotenpunkt.nobody.Knows.v1"), ("ce_id", str(uuid.uuid4()).encode())])
    await publish(infra.kafka_bootstrap, topic, [not_json, unknown, valid])

    async with consuming(infra, effects_db, topic, group, dead_letters):
        await eventually(lambda: settled(infra, group, topic, 3))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects WHERE client_id = $1", valid.event.client_id) == 1
    dead = await read_topic(infra.kafka_bootstrap, dead_letters)
    assert [record.value for record in dead] == [not_json[1], unknown[1]]
    first, second = (dict(record.headers) for record in dead)
    assert b"not valid JSON" in first["dlq_reason"]
    assert b"unknown event type" in second["dlq_reason"]
    assert (first["dlq_origin_topic"], first["dlq_origin_partition"], first["dlq_origin_offset"]) == (
        topic.encode(),
        b"0",
        b"0",
    )
    assert second["dlq_origin_offset"] == b"1"
    assert first["dlq_consumer_group"] == group.encode()
    assert first["ce_type"] == ClientRegistered.event_type.encode()  # original headers kept for replay


async def test_a_consumer_restarted_mid_stream_resumes_without_loss_or_doubling(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3)
    group, dead_letters = unique("group"), unique("dlq")
    total = 300
    envelopes = [registered() for _ in range(total)]
    await publish(infra.kafka_bootstrap, topic, envelopes)

    async def some_applied() -> bool:
        return await count_rows(effects_db, "SELECT count(*) FROM effects") >= 50

    async def slow_effect(event: ClientRegistered, uow: UnitOfWork) -> None:
        await asyncio.sleep(0.005)  # slow enough that the stop falls in the middle of the stream
        await record_effect(event, uow)

    # First run, in small batches: stopped part-way (graceful stop, as on a deployment).
    async with consuming(infra, effects_db, topic, group, dead_letters, slow_effect, max_batch=10):
        await eventually(some_applied)
    applied_before_restart = await count_rows(effects_db, "SELECT count(*) FROM effects")
    assert applied_before_restart < total, "the stop must come mid-stream for this test to mean anything"

    # Second run with the same group picks up at the committed offsets.
    async with consuming(infra, effects_db, topic, group, dead_letters):
        await eventually(lambda: settled(infra, group, topic, total))

    assert await count_rows(effects_db, "SELECT count(DISTINCT client_id) FROM effects") == total
    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == total


async def test_transient_failures_are_retried_with_backoff_then_applied_once(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    group, dead_letters = unique("group"), unique("dlq")
    attempts: list[float] = []

    async def flaky(event: ClientRegistered, uow: UnitOfWork) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionRefusedError("database restarting")
        await record_effect(event, uow)

    await publish(infra.kafka_bootstrap, topic, [registered()])
    retry = Backoff(max_attempts=5, initial_s=0.2, max_s=1.0)
    async with consuming(infra, effects_db, topic, group, dead_letters, flaky, retry):
        await eventually(lambda: settled(infra, group, topic, 1))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 1
    assert len(attempts) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, f"no backoff between attempts: {gaps}"


async def test_a_failure_that_does_not_go_away_is_dead_lettered_after_the_bound(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    attempts = 0

    async def always_down(event: ClientRegistered, uow: UnitOfWork) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("database down")

    await publish(infra.kafka_bootstrap, topic, [registered(), registered()])
    async with consuming(infra, effects_db, topic, group, dead_letters, always_down):
        await eventually(lambda: settled(infra, group, topic, 2))

    assert attempts == 2 * 3  # bounded: three attempts per message, no hot loop
    dead = await read_topic(infra.kafka_bootstrap, dead_letters)
    assert len(dead) == 2
    assert all(b"gave up after 3 attempts" in dict(record.headers)["dlq_reason"] for record in dead)


async def test_a_dead_lettered_event_is_applied_once_after_replay(infra, effects_db: Database) -> None:
    from knotenpunkt.consumer import Rejected

    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    cause_fixed = False

    async def rejects_until_fixed(event: ClientRegistered, uow: UnitOfWork) -> None:
        if not cause_fixed:
            raise Rejected("reference data missing")
        await record_effect(event, uow)

    event = registered()
    await publish(infra.kafka_bootstrap, topic, [event])
    async with consuming(infra, effects_db, topic, group, dead_letters, rejects_until_fixed):
        await eventually(lambda: settled(infra, group, topic, 1))
        assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 0

        cause_fixed = True
        assert await replay(infra.kafka_bootstrap, group=group, topic=dead_letters) == 1
        await eventually(lambda: settled(infra, group, topic, 2))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects WHERE client_id = $1", event.event.client_id) == 1


def _headers(event_type: str = ClientRegistered.event_type) -> list[tuple[str, bytes]]:
    return [
        ("ce_type", event_type.encode()),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("content-type", b"application/json"),
    ]


def _dead_lettered(group: str) -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "knotenpunkt_events_handled"
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels.get("group") == group
        and sample.labels.get("outcome") == "dead_lettered"
    )


async def test_bodies_a_json_decoder_would_choke_on_are_dead_lettered_and_counted(infra, effects_db: Database) -> None:
    # Declared as JSON (content-type), but not JSON, empty, absent (a tombstone) or a large
    # binary blob: a framework decoder fails on these before any handler sees them.
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    valid = registered()
    malformed = [
        (b"k1", b"\xff\xfe not json at all", _headers()),
        (b"k2", b"", _headers()),
        (b"k3", None, _headers()),
        (b"k4", bytes(range(256)) * 400, _headers()),  # 100 KiB of binary
    ]
    await publish(infra.kafka_bootstrap, topic, [*malformed, valid])

    async with consuming(infra, effects_db, topic, group, dead_letters):
        await eventually(lambda: settled(infra, group, topic, len(malformed) + 1))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects WHERE client_id = $1", valid.event.client_id) == 1
    dead = await read_topic(infra.kafka_bootstrap, dead_letters)
    assert [record.key for record in dead] == [b"k1", b"k2", b"k3", b"k4"]
    reasons = [dict(record.headers)["dlq_reason"] for record in dead]
    assert b"not valid JSON" in reasons[0] and b"empty body" in reasons[2]
    assert dead[3].value == malformed[3][1]  # kept byte for byte for a replay
    assert _dead_lettered(group) == len(malformed)


@pytest.mark.parametrize(
    "declared_json",
    # Declared as JSON, a framework decoder dropped it silently; undeclared, the dead-letter
    # copy was over the producer's limit and the partition stalled for ever.
    [True, False],
    ids=["declared-json", "undeclared"],
)
async def test_a_record_just_under_the_broker_limit_is_dead_lettered_truncated_and_the_partition_goes_on(
    infra, effects_db: Database, declared_json: bool
) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    # Just under the broker's default limit (1 MiB + 12 bytes per record batch): the dead-letter
    # copy, the same bytes plus its headers, would be over the producer's limit.
    blob = b"x" * (MAX_RECORD_BYTES - 300)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, max_request_size=2 * MAX_RECORD_BYTES)
    await producer.start()
    try:
        headers = _headers() if declared_json else [h for h in _headers() if h[0] != "content-type"]
        await producer.send_and_wait(topic, blob, key=b"big", headers=headers)
    finally:
        await producer.stop()
    after = registered()
    await publish(infra.kafka_bootstrap, topic, [after])

    async with consuming(infra, effects_db, topic, group, dead_letters):
        await eventually(lambda: settled(infra, group, topic, 2))

    assert await count_rows(effects_db, "SELECT count(*) FROM effects WHERE client_id = $1", after.event.client_id) == 1
    [dead] = await read_topic(infra.kafka_bootstrap, dead_letters)
    headers = dict(dead.headers)
    assert headers["dlq_truncated"] == b"true"
    assert headers["dlq_original_size"] == str(len(blob)).encode()
    assert (headers["dlq_origin_topic"], headers["dlq_origin_offset"]) == (topic.encode(), b"0")
    assert 0 < len(dead.value) < len(blob) and blob.startswith(dead.value)
    # An incomplete copy is never replayed: the original is still at its origin offset.
    assert await replay(infra.kafka_bootstrap, group=group, topic=dead_letters) == 0


class _UnreachableDeadLetters(DeadLetterPublisher):
    async def send(self, record, reason, error=None) -> None:  # type: ignore[no-untyped-def]
        raise KafkaConnectionError("dead-letter topic unreachable")


async def test_a_consumer_that_cannot_get_past_a_record_reports_itself_stalled(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    group = unique("group")
    await publish(infra.kafka_bootstrap, topic, [(b"k", b"{broken", _headers()), registered()])
    producer = Producer(infra.kafka_bootstrap, "test-dlq")
    await producer.start()
    consumer = EventConsumer(
        group_id=group,
        units=UnitsOfWork(effects_db, "test"),
        bootstrap=infra.kafka_bootstrap,
        dead_letters=_UnreachableDeadLetters(producer, group, unique("dlq")),
        handlers=[record_effect],
        topics=[topic],
        backoff=Backoff(max_attempts=3, initial_s=0.05, max_s=0.2),
        stall_after_s=1.0,
    )
    await consumer.start()
    consumer.start_background()
    try:
        reason = await eventually(lambda: _async(consumer.stalled()), timeout_s=30)
        assert f"{topic}[0]" in reason and "no progress" in reason
        lag = REGISTRY.get_sample_value("knotenpunkt_consumer_lag", {"group": group, "topic": topic, "partition": "0"})
        assert lag == 2
        await eventually(
            lambda: _async(
                REGISTRY.get_sample_value("knotenpunkt_consumer_stalled", {"group": group, "consumer": consumer.name})
                == 1
            )
        )
        assert await count_rows(effects_db, "SELECT count(*) FROM effects") == 0  # nothing skipped past it
    finally:
        await consumer.stop()
        await producer.stop()


async def test_lag_is_reported_per_partition_and_falls_to_zero_when_caught_up(infra, effects_db: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3)
    group, dead_letters = unique("group"), unique("dlq")
    await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(30)])

    def lags() -> list[float | None]:
        return [
            REGISTRY.get_sample_value("knotenpunkt_consumer_lag", {"group": group, "topic": topic, "partition": str(p)})
            for p in range(3)
        ]

    async with consuming(infra, effects_db, topic, group, dead_letters) as consumer:
        await eventually(lambda: settled(infra, group, topic, 30))
        await eventually(lambda: _async(lags() == [0, 0, 0]))
        assert consumer.stalled() is None


async def _async(value: T) -> T:
    return value


async def test_the_first_start_after_the_upgrade_resumes_where_the_group_committed(infra, effects_db: Database) -> None:
    # Before decision 10 a handler consumer's position lived only in Kafka: a database that has
    # applied events of the group but stores no position resumes at the group's committed offset.
    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=1)
    group, dead_letters = unique("group"), unique("dlq")
    old, new = [registered() for _ in range(3)], [registered() for _ in range(2)]
    await publish(infra.kafka_bootstrap, topic, [*old, *new])
    async with effects_db.transaction() as connection:
        await connection.executemany(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)", [(group, e.id) for e in old[:1]]
        )
    committer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        # What the old consumer left behind: everything below offset 3 handled.
        committer.assign([TopicPartition(topic, 0)])
        await committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "")})
    finally:
        await committer.stop()

    async with consuming(infra, effects_db, topic, group, dead_letters):
        await eventually(lambda: settled(infra, group, topic, 5))

    applied = await count_rows(effects_db, "SELECT count(*) FROM effects")
    assert applied == 2  # only the two after the committed offset; the old three are not re-applied
    assert await count_rows(effects_db, "SELECT next_offset FROM consumer_offsets WHERE consumer = $1", group) == 5
