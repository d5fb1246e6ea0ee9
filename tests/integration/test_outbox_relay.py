"""The relay publishes exactly what was committed, in order per key, and nothing rolled back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope, decode
from knotenpunkt.events import CaseOpened, ServiceLine
from knotenpunkt.kafka import Producer
from knotenpunkt.outbox import OutboxRelay, add_to_outbox
from knotenpunkt.testing.fixtures import count_rows, eventually, unique
from knotenpunkt.testing.kafka import create_topic, read_topic

pytestmark = pytest.mark.integration


def case_opened(client_id: uuid.UUID) -> Envelope:
    event = CaseOpened(
        client_id=client_id,
        case_id=uuid.uuid4(),
        service_line=ServiceLine.MBE,
        office_id="rsc-hochfeld",
        opened_at=datetime.now(UTC),
    )
    return Envelope(event=event, source="test")


class RollBack(Exception):
    pass


async def test_relay_publishes_committed_events_and_nothing_rolled_back(infra, database: Database) -> None:
    topic = await create_topic(infra.kafka_bootstrap, unique("outbox"))
    client = uuid.uuid4()
    committed = [case_opened(client) for _ in range(5)]
    rolled_back = case_opened(client)

    async with database.transaction() as connection:
        for envelope in committed[:3]:
            await add_to_outbox(connection, envelope, topic=topic)
    with pytest.raises(RollBack):
        async with database.transaction() as connection:
            await add_to_outbox(connection, rolled_back, topic=topic)
            raise RollBack
    async with database.transaction() as connection:
        for envelope in committed[3:]:
            await add_to_outbox(connection, envelope, topic=topic)

    producer = Producer(infra.kafka_bootstrap, "test-relay")
    await producer.start()
    relay = OutboxRelay(database, producer, poll_interval_s=0.05)
    relay.start()
    try:
        await eventually(lambda: _unpublished_is_zero(database))
    finally:
        await relay.stop()
        await producer.stop()

    records = await read_topic(infra.kafka_bootstrap, topic)
    published = [decode(record.headers, record.value) for record in records]
    # Exactly the committed events, once each, in commit order (one key: one partition).
    assert [envelope.id for envelope in published] == [envelope.id for envelope in committed]
    assert {record.key for record in records} == {str(client).encode()}
    assert rolled_back.id not in {envelope.id for envelope in published}


async def _unpublished_is_zero(database: Database) -> bool:
    return await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_only_one_relay_leads_per_database(infra, database: Database) -> None:
    producer = Producer(infra.kafka_bootstrap, "test-relay")
    await producer.start()
    first, second = OutboxRelay(database, producer, 0.05), OutboxRelay(database, producer, 0.05)
    first.start()
    try:
        await eventually(lambda: _is_leader(first))
        second.start()
        topic = await create_topic(infra.kafka_bootstrap, unique("outbox"))
        async with database.transaction() as connection:
            await add_to_outbox(connection, case_opened(uuid.uuid4()), topic=topic)
        await eventually(lambda: _unpublished_is_zero(database))
        assert first.is_leader and not second.is_leader
        assert len(await read_topic(infra.kafka_bootstrap, topic)) == 1
    finally:
        await first.stop()
        await second.stop()
        await producer.stop()


async def _is_leader(relay: OutboxRelay) -> bool:
    return relay.is_leader
