"""Benchmark (not a test): latency from intake's HTTP answer to the figure visible in stats, at a
steady rate of registrations (default 100 per second for 20 seconds).

Starts its own infrastructure and the services as processes (as the end-to-end tests do). An
open-loop sender starts a registration every 1/rate seconds, whether or not earlier ones have
answered; a poller reads `persons_registered` from stats every few milliseconds. The k-th
answered registration counts as visible when the figure first reaches base + k: exact for one
at a time, and an estimate within the poll interval when several are in flight (stats counts
events from three partitions, not in answer order).
Run: `make bench` (or `uv run python -m tests.bench.story_latency --rate 100 --seconds 20`).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import tempfile
import time
from pathlib import Path

import httpx

from knotenpunkt.localinfra import free_ports
from knotenpunkt.testing.fixtures import unique
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.infrastructure import infrastructure
from tools.stack import SERVICES, Stack

POLL_INTERVAL_S = 0.005


async def measure(stack: Stack, rate: float, seconds: float) -> tuple[list[float], float, float]:
    total = int(rate * seconds)
    answered: list[float] = []
    seen: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    # Signed in as people who may do these things: the counter staff registers, the coordinator
    # reads the figures (each call checked and audited, as in production).
    identity = Identity(stack.keycloak_url)
    figures = {"Authorization": f"Bearer {identity.token('coordinator')}"}
    async with httpx.AsyncClient(timeout=30, limits=limits, auth=identity.auth("intake-hamborn")) as http:
        base = (await http.get(f"{stack.url('stats')}/figures", headers=figures)).json()["persons_registered"]
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set():
                answer = await http.get(f"{stack.url('stats')}/figures", headers=figures)
                count = answer.json()["persons_registered"] - base
                seen.append((time.perf_counter(), count))
                if count >= total:
                    done.set()
                await asyncio.sleep(POLL_INTERVAL_S)

        async def register(number: int) -> None:
            response = await http.post(
                f"{stack.url('intake')}/clients",
                json={"family_name": f"Bench{number}", "given_name": "B", "birth_date": "1995-01-01",
                      "office_id": "rsc-hamborn", "confirm_new": True},
            )  # fmt: skip
            response.raise_for_status()
            answered.append(time.perf_counter())

        poller = asyncio.create_task(poll())
        started = time.perf_counter()
        senders = []
        for number in range(total):
            # Open loop: the schedule, not the answers, sets the pace.
            await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            senders.append(asyncio.create_task(register(number)))
        sending_seconds = time.perf_counter() - started
        await asyncio.gather(*senders)
        await asyncio.wait_for(done.wait(), timeout=120)
        await poller
    counts = [count for _, count in seen]
    latencies = []
    for rank, answer_time in enumerate(sorted(answered), start=1):
        visible_at = seen[bisect.bisect_left(counts, rank)][0]
        latencies.append(max(0.0, visible_at - answer_time))
    answers = sorted(answered)
    answer_rate = (len(answers) - 1) / (answers[-1] - answers[0]) if len(answers) > 1 else 0.0
    return sorted(latencies), total / sending_seconds, answer_rate


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="registrations per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with infrastructure() as infra, tempfile.TemporaryDirectory() as state:
        stack = Stack(
            Path(state),
            service_ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
            external_kafka_bootstrap=infra.kafka_bootstrap,
            external_postgres_admin_dsn=infra.postgres_admin_dsn,
            external_keycloak_url=infra.keycloak_url,
            # Databases of their own, also on infrastructure given in the environment.
            database_prefix=unique("bench") + "_",
            partner_agencies={},
            # Exact counts: a fresh system's first registrations are small counts.
            extra_env={"KP_REPORT_SUPPRESSION_THRESHOLD": "0"},
        )
        stack.start()
        try:
            latencies, sent_rate, answer_rate = asyncio.run(measure(stack, args.rate, args.seconds))
        finally:
            stack.stop()

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    print(
        f"intake answer -> persons_registered in stats, {len(latencies)} registrations sent at {sent_rate:.0f}/s, "
        f"answered at {answer_rate:.0f}/s: p50 {ms(percentile(latencies, 0.5))}, p99 {ms(percentile(latencies, 0.99))}, "
        f"max {ms(latencies[-1])}"
    )


if __name__ == "__main__":
    main()
