"""Housekeeping of the platform tables and the outbox's personal data and backlog gauge, on the
real PostgreSQL: old rows go, newer ones stay, unpublished outbox rows are never touched, a
published agency referral keeps no personal data, and the backlog gauge is the real count."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from knotenpunkt import migrations, topics
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import CaseOpened, ReferralSent, ServiceLine
from knotenpunkt.events.referrals import SharedPersonData
from knotenpunkt.housekeeping import Housekeeping
from knotenpunkt.kafka import Producer
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.metrics import OUTBOX_BACKLOG
from knotenpunkt.outbox import _RELAY_LOCK_KEY, OutboxRelay, add_to_outbox
from knotenpunkt.settings import ServiceSettings
from knotenpunkt.testing.fixtures import count_rows, eventually, unique

pytestmark = pytest.mark.integration

AGENCY = "jobcenter-duisburg"


def settings(**retention: Any) -> ServiceSettings:
    return ServiceSettings(service_name="test", **retention)


def case_opened() -> Envelope:
    event = CaseOpened(
        client_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        service_line=ServiceLine.MBE,
        office_id="rsc-hochfeld",
        opened_at=datetime.now(UTC),
    )
    return Envelope(event=event, source="test")


def referral_sent(shared: SharedPersonData | None = None) -> Envelope:
    event = ReferralSent(
        client_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        agency_id=AGENCY,
        topic_code="work",
        office_id="rsc-hochfeld",
        sent_at=datetime.now(UTC),
        shared_data=shared,
    )
    return Envelope(event=event, source="test")


PERSON = SharedPersonData(
    categories=("name", "birth_date"), family_name="Nowak", given_name="Ewa", birth_date=date(1980, 1, 1)
)


class FakeKafka:
    """Stands in for the producer's Kafka client: records what is sent, acknowledges at once,
    and can do something while a round is in flight (another transaction committing)."""

    def __init__(self, during_send: Callable[[], Awaitable[None]] | None = None, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self._during_send = during_send
        self._fail = fail

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> asyncio.Future:
        if self._fail:
            raise KafkaConnectionError("broker unreachable")
        self.sent.append((topic, value))
        if self._during_send is not None:
            await self._during_send()
        acknowledged: asyncio.Future = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged


class FakeProducer:
    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka


def relay_with(database: Database, kafka: FakeKafka, **options: Any) -> OutboxRelay:
    return OutboxRelay(database, cast(Producer, FakeProducer(kafka)), **options)


def backlog_gauge() -> float | None:
    return REGISTRY.get_sample_value("knotenpunkt_outbox_backlog")


async def execute(database: Database, sql: str, *args: object) -> None:
    async with database.connection() as connection:
        await connection.execute(sql, *args)


# --- pruning ----------------------------------------------------------------------------------


async def test_published_outbox_rows_go_after_the_window_unpublished_ones_never(database: Database) -> None:
    async with database.transaction() as connection:
        for _ in range(5):
            await add_to_outbox(connection, case_opened())  # published long ago
        await add_to_outbox(connection, case_opened())  # published an hour ago
        await add_to_outbox(connection, case_opened())  # never published, written long ago
    async with database.connection() as connection:
        ids = [row["id"] for row in await connection.fetch("SELECT id FROM outbox ORDER BY id")]
    await execute(database, "UPDATE outbox SET created_at = now() - interval '30 days'")
    await execute(database, "UPDATE outbox SET published_at = now() - interval '169 hours' WHERE id = ANY($1)", ids[:5])
    await execute(database, "UPDATE outbox SET published_at = now() - interval '1 hour' WHERE id = $1", ids[5])

    # Batches of two: five old rows take three deletes.
    housekeeping = Housekeeping(database, settings(outbox_retention_hours=168), batch_size=2)
    assert (await housekeeping.run_once())["outbox"] == 5
    assert await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 1
    assert await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    assert (await housekeeping.run_once())["outbox"] == 0


async def test_processed_events_and_idempotency_keys_go_after_their_windows(database: Database) -> None:
    async with database.transaction() as connection:
        for age_days in (46, 50, 44, 0):
            await connection.execute(
                "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('cases', $1, now() - $2::interval)",
                uuid.uuid4(),
                timedelta(days=age_days),
            )
        for age_days in (8, 6, 0):
            await connection.execute(
                "INSERT INTO idempotency_keys (idempotency_key, scope, request_hash, status_code, response_body, "
                "created_at) VALUES ($1, 'POST /clients', 'h', 201, '{}', now() - $2::interval)",
                unique("key"),
                timedelta(days=age_days),
            )

    housekeeping = Housekeeping(
        database, settings(processed_events_retention_days=45, idempotency_keys_retention_days=7), batch_size=1
    )
    assert await housekeeping.run_once() == {"outbox": 0, "processed_events": 2, "idempotency_keys": 1, "audit_log": 0}
    assert await count_rows(database, "SELECT count(*) FROM processed_events") == 2
    assert await count_rows(database, "SELECT count(*) FROM idempotency_keys") == 2

    # 0 keeps them, however old.
    await execute(database, "UPDATE processed_events SET processed_at = now() - interval '10 years'")
    await execute(database, "UPDATE idempotency_keys SET created_at = now() - interval '10 years'")
    keep = Housekeeping(database, settings(processed_events_retention_days=0, idempotency_keys_retention_days=0))
    assert await keep.run_once() == {"outbox": 0, "processed_events": 0, "idempotency_keys": 0, "audit_log": 0}


async def test_audit_entries_go_after_their_retention_and_the_kept_chain_stays_intact(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from knotenpunkt import audit
    from knotenpunkt.uow import Actor

    today = datetime.now(UTC)

    class Then(datetime):
        moment = today

        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return cls.moment

    monkeypatch.setattr(audit, "datetime", Then)
    async with database.transaction() as connection:
        for age_days in (800, 731, 700, 0):
            Then.moment = today - timedelta(days=age_days)
            entry = audit.AuditEntry(
                actor=Actor.staff("staff-hamborn-1", "case_manager", offices=("rsc-hamborn",)),
                action="client.read",
                method="GET",
                route="/clients/{client_id}",
                outcome="allowed",
                status=200,
                correlation_id=unique("c"),
                purpose="client.read",
            )
            await audit.append(connection, "test", entry)

    kept = Housekeeping(database, settings(audit_retention_days=0))
    assert (await kept.run_once())["audit_log"] == 0
    housekeeping = Housekeeping(database, settings(audit_retention_days=730), batch_size=1)
    assert (await housekeeping.run_once())["audit_log"] == 2
    async with database.connection() as connection:
        checked = await audit.verify(connection)
        # Only the retention job may delete: anyone else is refused by the trigger.
        with pytest.raises(Exception, match="append-only"):
            await connection.execute("DELETE FROM audit_log")
    assert (checked.intact, checked.entries, checked.first_seq) == (True, 2, 3)


# --- personal data in the outbox ---------------------------------------------------------------


async def test_a_published_agency_referral_keeps_no_personal_data(database: Database) -> None:
    lifecycle = referral_sent()
    to_agency = Envelope(
        event=lifecycle.event.model_copy(update={"shared_data": PERSON}),
        id=lifecycle.id,
        source=lifecycle.source,
        correlation_id=lifecycle.correlation_id,
    )
    async with database.transaction() as connection:
        await add_to_outbox(connection, lifecycle)
        await add_to_outbox(connection, to_agency, topic=topics.agency_referrals(AGENCY))
    async with database.connection() as connection:
        marked = dict(await connection.fetch("SELECT topic, personal_data FROM outbox"))
    assert marked == {topics.REFERRALS: False, topics.agency_referrals(AGENCY): True}

    kafka = FakeKafka()
    async with database.connection() as connection:
        assert await relay_with(database, kafka).publish_pending(connection) == 2

    # The agency got the data; our copy of it is gone, the lifecycle row is untouched.
    assert b"Nowak" in dict(kafka.sent)[topics.agency_referrals(AGENCY)]
    async with database.connection() as connection:
        rows = {row["topic"]: row for row in await connection.fetch("SELECT * FROM outbox")}
    agency_row, lifecycle_row = rows[topics.agency_referrals(AGENCY)], rows[topics.REFERRALS]
    assert agency_row["published_at"] is not None and agency_row["body"] is None
    assert agency_row["event_id"] == lifecycle.id and agency_row["event_type"] == lifecycle.type
    assert b"Nowak" not in str(agency_row["headers"]).encode()
    assert bytes(lifecycle_row["body"]) == lifecycle.body()


async def test_the_migration_clears_agency_bodies_published_before_it(infra, tmp_path: Path) -> None:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("t"))
    first = tmp_path / "platform"
    first.mkdir()
    shutil.copy(migrations.PLATFORM_MIGRATIONS / "001_platform.sql", first)
    await migrations.apply(dsn, [("platform", first)])
    database = Database(dsn)
    await database.connect()
    try:
        sent = referral_sent(PERSON)
        async with database.transaction() as connection:
            for topic, published in ((topics.agency_referrals(AGENCY), True), (topics.agency_referrals(AGENCY), False)):
                await connection.execute(
                    "INSERT INTO outbox (event_id, topic, message_key, event_type, headers, body, published_at) "
                    "VALUES ($1, $2, $3, $4, '[]', $5, CASE WHEN $6 THEN now() END)",
                    uuid.uuid4(),
                    topic,
                    sent.key,
                    sent.type,
                    sent.body(),
                    published,
                )
            await connection.execute(
                "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('cases', $1, $2)",
                uuid.uuid4(),
                datetime(2020, 1, 1, tzinfo=UTC),
            )
        await migrations.apply(dsn, [("platform", migrations.PLATFORM_MIGRATIONS)])
        async with database.connection() as connection:
            rows = await connection.fetch(
                "SELECT published_at IS NOT NULL AS published, personal_data, body FROM outbox"
            )
        assert {(row["published"], row["personal_data"], row["body"] is None) for row in rows} == {
            (True, True, True),  # published: cleared now
            (False, True, False),  # still to deliver: kept, cleared when published
        }
        # Ids recorded before the upgrade count from the upgrade: a consumer that reads its topics
        # from offset 0 again (no stored positions yet) must still recognise every event.
        pruned = await Housekeeping(database, settings(processed_events_retention_days=45)).run_once()
        assert pruned["processed_events"] == 0
    finally:
        await database.close()


# --- the backlog gauge -------------------------------------------------------------------------


async def test_the_backlog_gauge_counts_rows_committed_during_a_partial_round(database: Database) -> None:
    async with database.transaction() as connection:
        for _ in range(3):
            await add_to_outbox(connection, case_opened())
    committed_meanwhile = False

    async def another_use_case_commits() -> None:
        nonlocal committed_meanwhile
        if not committed_meanwhile:
            committed_meanwhile = True
            async with database.transaction() as connection:
                await add_to_outbox(connection, case_opened())

    OUTBOX_BACKLOG.set(-1)
    async with database.connection() as connection:
        # A partial round (3 of at most 500): the old relay concluded "empty" and showed 0.
        assert await relay_with(database, FakeKafka(another_use_case_commits)).publish_pending(connection) == 3
    assert await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    assert backlog_gauge() == 1


async def test_a_standby_replica_shows_the_real_backlog(database: Database) -> None:
    leader = await database.dedicated_connection()  # another replica holds the relay's lock
    try:
        assert await leader.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK_KEY)
        OUTBOX_BACKLOG.set(-1)
        async with database.transaction() as connection:
            for _ in range(3):
                await add_to_outbox(connection, case_opened())
        standby = relay_with(database, FakeKafka(), poll_interval_s=0.05, backlog_refresh_s=0.05)
        standby.start()
        try:
            await eventually(lambda: _gauge_is(3))
            async with database.transaction() as connection:
                await add_to_outbox(connection, case_opened())
            await eventually(lambda: _gauge_is(4))
            assert not standby.is_leader
        finally:
            await standby.stop()
    finally:
        await leader.close()


async def test_a_relay_that_cannot_reach_kafka_shows_the_real_backlog(database: Database) -> None:
    OUTBOX_BACKLOG.set(-1)
    async with database.transaction() as connection:
        for _ in range(2):
            await add_to_outbox(connection, case_opened())
    relay = relay_with(database, FakeKafka(fail=True), poll_interval_s=0.05, backlog_refresh_s=0.05)
    relay.start()
    try:
        await eventually(lambda: _gauge_is(2))
        await eventually(lambda: _has_error(relay))
    finally:
        await relay.stop()
    assert await count_rows(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 2


async def _gauge_is(expected: int) -> bool:
    return backlog_gauge() == expected


async def _has_error(relay: OutboxRelay) -> bool:
    return relay.last_error is not None and "KafkaConnectionError" in relay.last_error
