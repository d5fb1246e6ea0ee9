"""Idempotent consumers on the real broker and database: redelivery, poison messages, restarts,
transient failures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from knotenpunkt.consumer import EventConsumer, EventHandler
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientRegistered
from knotenpunkt.events.common import AgeBand, ServiceLine
from knotenpunkt.kafka import DeadLetterPublisher, Producer
from knotenpunkt.retry import Backoff
from knotenpunkt.testing.fixtures import count_rows, eventually, unique
from knotenpunkt.testing.kafka import committed_total, create_topic, publish, read_topic
from knotenpunkt.uow import UnitOfWork, UnitsOfWork

pytestmark = pytest.mark.integration


FAST_RETRY = Backoff(max_attempts=3, initial_s=0.05, max_s=0.2)


def registered() -> Envelope:
    event = ClientRegistered(
        client_id=uuid.uuid4(),
        registered_at=datetime.now(UTC),
        age_band=AgeBand.AGE_27_44,
        service_line=ServiceLine.MBE,
        office_id="rsc-rheinhausen",
    )
    return Envelope(event=event, source="test")


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
    from knotenpunkt.deadletters import replay

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
