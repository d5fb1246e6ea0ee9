"""Benchmark (not a test): how fast each consumer service applies its events, against a raw
aiokafka consumer that only decodes the same events, measured in the same run.

`uv run python -m tests.bench.consumer_throughput [--events 50000]`

1. Starts its own Kafka and PostgreSQL and publishes `--events` ClientRegistered events (one
   service line each) to the clients topic, as intake would.
2. cases: (a) a raw aiokafka batch consumer decodes the clients topic (the ceiling); (b) the
   cases service is started as a process on a fresh database; its consumer opens one case per
   person and publishes CaseOpened through its outbox. Its rate is measured from the offsets it
   stores with its effects, from its first applied batch to the last.
3. referrals: (a) raw decode of the cases topic cases just filled; (b) the referrals service
   applies those CaseOpened events.
4. stats: (a) raw decode of both topics; (b) the stats projection ingests both.
Each line prints the service's rate, the raw rate and their ratio. Target on a 2-core machine
(issue 8): cases applies ClientRegistered at >= 2,000 events/s (aim 5,000).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from knotenpunkt import topics
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientRegistered
from knotenpunkt.events.common import AgeBand, ServiceLine
from knotenpunkt.kafka import ensure_topics
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.projection import tune_gc_for_batches
from knotenpunkt.testing.infrastructure import Infrastructure, infrastructure
from knotenpunkt.topics import event_topic
from tests.bench.raw import Rate, end_total, raw_decode
from tests.bench.stats_throughput import service_env

ROOT = Path(__file__).resolve().parents[2]
OFFICES = ("rsc-hamborn", "rsc-rheinhausen", "rsc-mitte")


async def publish_registrations(bootstrap: str, events: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=20)
    await producer.start()
    try:
        pending = []
        for index in range(events):
            event = ClientRegistered(
                client_id=uuid.uuid4(),
                registered_at=datetime.now(UTC),
                age_band=AgeBand.AGE_27_44,
                service_line=ServiceLine.MBE,
                office_id=OFFICES[index % len(OFFICES)],
            )
            envelope = Envelope(event=event, source="knotenpunkt/intake")
            pending.append(
                await producer.send(
                    topics.CLIENTS, envelope.body(), key=envelope.key.encode(), headers=envelope.headers()
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def stored_offsets(table: str, names: Sequence[str]) -> Callable[[str], Awaitable[int]]:
    async def read(dsn: str) -> int:
        connection = await asyncpg.connect(dsn)
        try:
            if not await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                return 0
            return int(
                await connection.fetchval(
                    f"SELECT coalesce(sum(next_offset), 0) FROM {table} WHERE topic = ANY($1::text[])", list(names)
                )
            )
        finally:
            await connection.close()

    return read


async def service_rate(
    infra: Infrastructure,
    service: str,
    total: int,
    applied: Callable[[str], Awaitable[int]],
    log: Path,
    processes: list[asyncio.subprocess.Process],
) -> Rate:
    """Start the service on a fresh database; its rate from its first applied batch to the last."""
    dsn = await ensure_database(infra.postgres_admin_dsn, f"bench_{service}")
    [port] = free_ports(1)
    env = service_env(infra, dsn, port, 5000)
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", service, env=env, cwd=ROOT, stdout=out, stderr=out
        )
    processes.append(process)
    first: tuple[float, int] | None = None
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"{service} exited with {process.returncode}; see {log}")
        done = await applied(dsn)
        now = time.perf_counter()
        if done > 0 and first is None:
            first = (now, done)
        if done >= total:
            assert first is not None
            return Rate(done - first[1], now - first[0])
        await asyncio.sleep(0.05)


async def wait_for_records(bootstrap: str, names: Sequence[str], expected: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while await end_total(bootstrap, names) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{names} did not reach {expected} records")
        await asyncio.sleep(0.5)


def line(name: str, service: Rate, raw: Rate) -> str:
    ratio = service.per_second / raw.per_second if raw.per_second else 0.0
    return (
        f"{name:<44} {service.per_second:>9,.0f} events/s   raw decode {raw.per_second:>9,.0f} events/s   "
        f"ratio {ratio:.3f}"
    )


async def run(infra: Infrastructure, events: int, state: Path) -> None:
    await ensure_topics(
        infra.kafka_bootstrap, [event_topic(name, 3) for name in (topics.CLIENTS, topics.CASES, topics.REFERRALS)]
    )
    # The same garbage collection settings as the service processes: a fair ceiling.
    tune_gc_for_batches(5000)
    print(f"publishing {events:,} ClientRegistered events ...")
    await publish_registrations(infra.kafka_bootstrap, events)
    processes: list[asyncio.subprocess.Process] = []
    try:
        print("cases: raw decode, then the service ...")
        raw_clients = await raw_decode(infra.kafka_bootstrap, [topics.CLIENTS])
        cases = await service_rate(
            infra,
            "cases",
            events,
            stored_offsets("consumer_offsets", [topics.CLIENTS]),
            state / "cases.log",
            processes,
        )
        await wait_for_records(infra.kafka_bootstrap, [topics.CASES], events)
        print("referrals: raw decode, then the service ...")
        raw_cases = await raw_decode(infra.kafka_bootstrap, [topics.CASES])
        referrals = await service_rate(
            infra,
            "referrals",
            events,
            stored_offsets("consumer_offsets", [topics.CASES]),
            state / "referrals.log",
            processes,
        )
        print("stats: raw decode, then the service ...")
        both = [topics.CLIENTS, topics.CASES]
        raw_both = await raw_decode(infra.kafka_bootstrap, both)
        stats = await service_rate(
            infra,
            "stats",
            2 * events,
            stored_offsets("readmodel.projection_offsets", both),
            state / "stats.log",
            processes,
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()
    print()
    print(f"events per service: {events:,} (stats: {2 * events:,})")
    print(line("cases      ClientRegistered -> case opened", cases, raw_clients))
    print(line("referrals  CaseOpened -> case recorded", referrals, raw_cases))
    print(line("stats      ClientRegistered + CaseOpened", stats, raw_both))
    verdict = "OK" if cases.per_second >= 2000 else "MISSED"
    print(f"target: cases >= 2,000 events/s (aim 5,000): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="ClientRegistered events (default 50,000)")
    args = parser.parse_args()
    with infrastructure() as infra, tempfile.TemporaryDirectory() as state:
        asyncio.run(run(infra, args.events, Path(state)))


if __name__ == "__main__":
    main()
