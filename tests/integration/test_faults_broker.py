"""The Kafka broker goes down while services keep writing: the outbox holds the events, the
relay publishes every one of them once the broker is back. Uses a broker of its own."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knotenpunkt.db import Database
from knotenpunkt.envelope import decode
from knotenpunkt.kafka import Producer
from knotenpunkt.localinfra import LocalKafka, free_ports
from knotenpunkt.outbox import OutboxRelay, add_to_outbox
from knotenpunkt.testing.events import registered
from knotenpunkt.testing.fixtures import count_rows, eventually
from knotenpunkt.testing.kafka import create_topic, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka() -> Iterator[LocalKafka]:
    state = Path(tempfile.mkdtemp(prefix="knotenpunkt-broker-faults-"))
    port, controller_port = free_ports(2)
    broker = LocalKafka(state / "kafka", port=port, controller_port=controller_port)
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(state, ignore_errors=True)


async def test_events_written_while_the_broker_is_down_are_all_published_when_it_returns(
    kafka: LocalKafka, database: Database
) -> None:
    topic = await create_topic(kafka.bootstrap, "faults.events.v1", partitions=3)
    producer = Producer(kafka.bootstrap, "faults-relay")
    await producer.start()
    relay = OutboxRelay(database, producer, poll_interval_s=0.05, batch_size=20)
    relay.start()
    written: list[str] = []

    async def keep_writing(seconds: float) -> None:
        # A service answering requests: ten events per transaction, every 50 ms.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            async with database.transaction() as connection:
                for _ in range(10):
                    envelope = registered()
                    await add_to_outbox(connection, envelope, topic=topic)
                    written.append(str(envelope.id))
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(keep_writing(8))
    try:
        await asyncio.sleep(1.5)  # the stream is flowing
        await asyncio.to_thread(kafka.stop)
        await asyncio.sleep(3)  # the outage itself
        written_during_outage = await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        await asyncio.to_thread(kafka.start)
        await writer

        async def all_published() -> bool:
            return await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        await eventually(all_published, timeout_s=90)
    finally:
        writer.cancel()
        await relay.stop()
        await producer.stop()

    assert written_during_outage > 0, "the broker must be down while events are written"
    on_topic = [str(decode(r.headers, r.value).id) for r in await read_topic(kafka.bootstrap, topic)]
    # Every event written is on the topic; a round cut off by the outage may be sent again,
    # which the idempotent consumers absorb (same ce_id).
    assert set(on_topic) == set(written)
    assert len(written) == len(set(written))
