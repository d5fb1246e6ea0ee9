"""Benchmark (not a test): how fast the stats projection ingests, against a raw decoding consumer.

`uv run python -m tests.bench.stats_throughput [--events 1000000]`

1. Starts its own Kafka and PostgreSQL (as the tests do) and publishes a realistic stream
   (tests/bench/stats_stream.py) over the three lifecycle topics.
2. (a) A raw aiokafka batch consumer reads every partition from the beginning and only decodes
   the events (the same `knotenpunkt.envelope.decode` the projection uses): the ceiling.
3. (b) The stats service is started as a process (`python -m stats`) on a fresh database; its
   projection ingests the stream. Measured from its first applied batch to the last, from the
   offsets it stores; its memory (RSS) is sampled meanwhile.
4. (c) `python -m stats.rebuild` rebuilds every read model from offset 0 into fresh tables and
   swaps them in, while the service keeps running.
Then the figures are checked against counts made while generating, asked as the coordinator
signed in through the infrastructure's Keycloak (the service trusts its realm). Targets on a 2-core
machine: ratio (b)/(a) >= 0.5, rebuild of 1,000,000 events within 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from knotenpunkt.kafka import ensure_topics
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.projection import tune_gc_for_batches
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.infrastructure import Infrastructure, infrastructure
from knotenpunkt.topics import event_topic
from tests.bench.raw import raw_decode as raw_decode_topics
from tests.bench.stats_stream import LIFECYCLE_TOPICS, Expected, count, publish_stream, stream

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Sampled:
    seconds: float
    events: int
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in MiB."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


async def produce(bootstrap: str, events: int) -> Expected:
    await ensure_topics(bootstrap, [event_topic(name, 3) for name in LIFECYCLE_TOPICS])
    total = Expected()
    chunk: list = []
    started = time.perf_counter()

    async def flush() -> None:
        part = count(chunk)
        for name in vars(total):
            if name == "consultations_by_year":
                for year, n in part.consultations_by_year.items():
                    total.consultations_by_year[year] = total.consultations_by_year.get(year, 0) + n
            else:
                setattr(total, name, getattr(total, name) + getattr(part, name))
        await publish_stream(bootstrap, chunk)
        chunk.clear()
        print(f"\r  published {total.events:,} events", end="", flush=True)

    for envelope in stream(events):
        chunk.append(envelope)
        if len(chunk) >= 50_000:
            await flush()
    await flush()
    print(f"\r  published {total.events:,} events in {time.perf_counter() - started:.0f} s")
    return total


async def raw_decode(bootstrap: str, batch: int) -> Sampled:
    rate = await raw_decode_topics(bootstrap, list(LIFECYCLE_TOPICS), batch)
    return Sampled(rate.seconds, rate.events, rss_mb(os.getpid())[1])


def service_env(infra: Infrastructure, dsn: str, port: int, batch: int) -> dict[str, str]:
    return {
        **os.environ,
        "KP_DATABASE_URL": dsn,
        "KP_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        # Tokens of the infrastructure's Keycloak are the ones the service accepts.
        "KP_OIDC_ISSUER": infra.oidc_issuer,
        "KP_HTTP_PORT": str(port),
        "KP_LOG_JSON": "true",
        "KP_LOG_LEVEL": "WARNING",
        "KP_PROJECTION_BATCH_SIZE": str(batch),
    }


async def stored(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        exists = await connection.fetchval("SELECT to_regclass('readmodel.projection_offsets') IS NOT NULL")
        if not exists:
            return 0
        return int(await connection.fetchval("SELECT coalesce(sum(next_offset), 0) FROM readmodel.projection_offsets"))
    finally:
        await connection.close()


async def projection(
    env: dict[str, str], dsn: str, total: int, log: Path
) -> tuple[Sampled, asyncio.subprocess.Process]:
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stats", env=env, cwd=ROOT, stdout=out, stderr=out
        )
    first: tuple[float, int] | None = None
    peak = 0.0
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"stats exited with {process.returncode}; see {log}")
        applied = await stored(dsn)
        now = time.perf_counter()
        peak = max(peak, rss_mb(process.pid)[1])
        if applied > 0 and first is None:
            first = (now, applied)
        if applied >= total:
            assert first is not None
            seconds = now - first[0]
            return Sampled(seconds, applied - first[1], peak), process
        await asyncio.sleep(0.25)


def rebuild(env: dict[str, str]) -> Sampled:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "stats.rebuild"], env=env, cwd=ROOT)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, rss_mb(process.pid)[1])
        time.sleep(0.2)
    if process.returncode != 0:
        raise RuntimeError(f"the rebuild failed with {process.returncode}")
    return Sampled(time.perf_counter() - started, 0, peak)


async def check(port: int, expected: Expected, keycloak_url: str) -> list[str]:
    # The figures need a coordinator's token (FIGURES_READ); small counts come back as null.
    headers = await asyncio.to_thread(Identity(keycloak_url).headers, "coordinator")
    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.get(f"http://127.0.0.1:{port}/figures", headers=headers)
        answer.raise_for_status()
        figures = answer.json()
    wanted = {
        "persons_registered": expected.persons,
        "consultations": expected.consultations,
        "family_members_counselled": expected.family_members,
        "cases_opened": expected.cases_opened,
        "unmet_needs": expected.unmet_needs,
    }
    return [f"{name}: {figures[name]} != {value}" for name, value in wanted.items() if figures[name] != value]


async def run(infra: Infrastructure, events: int, batch: int, state: Path) -> None:
    print(f"generating and publishing about {events:,} events ...")
    expected = await produce(infra.kafka_bootstrap, events)
    total = expected.events

    print("(a) raw aiokafka batch consumer, decode only ...")
    # The same garbage collection settings as the stats process: a fair ceiling.
    tune_gc_for_batches(batch)
    raw = await raw_decode(infra.kafka_bootstrap, batch)
    print(f"    {raw.events:,} events in {raw.seconds:.1f} s: {raw.rate:,.0f} events/s")

    dsn = await ensure_database(infra.postgres_admin_dsn, "bench_stats")
    [port] = free_ports(1)
    env = service_env(infra, dsn, port, batch)
    print("(b) the stats service's projection ...")
    sampled, process = await projection(env, dsn, total, state / "stats.log")
    try:
        current_rss, _ = rss_mb(process.pid)
        print(f"    {sampled.events:,} events in {sampled.seconds:.1f} s: {sampled.rate:,.0f} events/s")
        print("(c) full rebuild into fresh tables, swapped in while the service runs ...")
        rebuilt = await asyncio.to_thread(rebuild, env)
        problems = await check(port, expected, infra.keycloak_url)
        service_peak = max(sampled.peak_rss_mb, rss_mb(process.pid)[1])
    finally:
        process.terminate()
        await process.wait()

    ratio = sampled.rate / raw.rate if raw.rate else 0.0
    print()
    print(f"events                         {total:,}")
    print(f"(a) raw decode                 {raw.rate:>10,.0f} events/s")
    print(f"(b) stats projection           {sampled.rate:>10,.0f} events/s")
    print(f"    ratio (b)/(a)              {ratio:>10.2f}   (target >= 0.5)  {'OK' if ratio >= 0.5 else 'MISSED'}")
    per_million = rebuilt.seconds * 1_000_000 / total
    print(
        f"(c) full rebuild               {rebuilt.seconds:>10.1f} s        "
        f"({per_million:.1f} s per 1,000,000 events; target <= 60 s)  {'OK' if per_million <= 60 else 'MISSED'}"
    )
    print(f"stats service memory (RSS)     {current_rss:>10.0f} MiB now, {service_peak:.0f} MiB peak")
    print(f"rebuild process memory (RSS)   {rebuilt.peak_rss_mb:>10.0f} MiB peak")
    print(f"figures vs generated counts    {'equal' if not problems else '; '.join(problems)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=5000, help="most events per batch (both consumers)")
    args = parser.parse_args()
    with infrastructure() as infra, tempfile.TemporaryDirectory() as state:
        asyncio.run(run(infra, args.events, args.batch, Path(state)))


if __name__ == "__main__":
    main()
