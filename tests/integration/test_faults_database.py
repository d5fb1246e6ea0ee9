"""PostgreSQL goes down mid-stream and comes back: the consumer waits it out, nothing is lost,
nothing is applied twice, nothing is dead-lettered. Uses a PostgreSQL of its own, so stopping it
disturbs no other test."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from knotenpunkt import migrations
from knotenpunkt.db import Database
from knotenpunkt.events import ClientRegistered
from knotenpunkt.localinfra import LocalPostgres, free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.retry import Backoff
from knotenpunkt.testing.events import registered
from knotenpunkt.testing.fixtures import count_rows, eventually, unique
from knotenpunkt.testing.kafka import create_topic, publish, read_topic
from knotenpunkt.uow import UnitOfWork
from tests.integration.test_consumer import consuming, settled

pytestmark = pytest.mark.integration

EVENTS = 120


@pytest.fixture
def postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL of this test's own (the server user must reach its folder, hence not tmp_path)."""
    state = Path(tempfile.mkdtemp(prefix="knotenpunkt-faults-"))
    state.chmod(0o755)
    [port] = free_ports(1)
    server = LocalPostgres(state / "pg" / "data", port=port)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(state, ignore_errors=True)


async def test_a_database_restart_mid_stream_loses_and_doubles_nothing(infra, postgres: LocalPostgres) -> None:
    dsn = await ensure_database(postgres.admin_dsn, "faults")
    await migrations.apply(dsn, [("platform", migrations.PLATFORM_MIGRATIONS)])
    connection = await asyncpg.connect(dsn)
    await connection.execute("CREATE TABLE effects (client_id uuid NOT NULL)")
    await connection.close()
    database = Database(dsn, min_size=1, max_size=3)
    await database.connect()

    topic = await create_topic(infra.kafka_bootstrap, unique("events"), partitions=3)
    dead_letters = await create_topic(infra.kafka_bootstrap, unique("dlq"), partitions=1)
    group = unique("group")
    await publish(infra.kafka_bootstrap, topic, [registered() for _ in range(EVENTS)])

    async def slow_effect(event: ClientRegistered, uow: UnitOfWork) -> None:
        # Slow enough that the restart falls in the middle of the stream.
        await asyncio.sleep(0.02)
        await uow.connection.execute("INSERT INTO effects (client_id) VALUES ($1)", event.client_id)

    async def some_applied() -> bool:
        return await count_rows(database, "SELECT count(*) FROM effects") >= 20

    retry = Backoff(max_attempts=60, initial_s=0.2, max_s=1.0)
    async with consuming(infra, database, topic, group, dead_letters, slow_effect, retry):
        await eventually(some_applied)
        await asyncio.to_thread(postgres.stop)  # fast shutdown: sessions are cut off
        await asyncio.sleep(3)  # the outage itself, not a wait for a result
        await asyncio.to_thread(postgres.start)
        await eventually(lambda: settled(infra, group, topic, EVENTS), timeout_s=90)

    assert await count_rows(database, "SELECT count(*) FROM effects") == EVENTS
    assert await count_rows(database, "SELECT count(DISTINCT client_id) FROM effects") == EVENTS
    assert await read_topic(infra.kafka_bootstrap, dead_letters) == []
    await database.close()
