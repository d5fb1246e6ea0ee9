"""Benchmark (not a test): latency from intake's HTTP answer to the figure visible in stats.

Starts its own infrastructure and the services as processes (as the end-to-end tests do),
registers people one after another and, for each, polls stats until the count moved.
Run: `make bench` (or `uv run python -m tests.bench.story_latency --people 100`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from knotenpunkt.localinfra import free_ports
from knotenpunkt.testing.infrastructure import infrastructure
from tools.stack import SERVICES, Stack


async def measure(stack: Stack, people: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=10) as http:
        for number in range(people):
            before = (await http.get(f"{stack.url('stats')}/figures")).json()["persons_registered"]
            response = await http.post(
                f"{stack.url('intake')}/clients",
                json={
                    "family_name": f"Bench{number}",
                    "given_name": "B",
                    "birth_date": "1995-01-01",
                    "office_id": "rsc-hamborn",
                },
            )
            answered = time.perf_counter()
            response.raise_for_status()
            # Polling is the measurement here: stats has no push channel to wait on.
            while (await http.get(f"{stack.url('stats')}/figures")).json()["persons_registered"] <= before:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - answered)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=50)
    args = parser.parse_args()
    with infrastructure() as infra, tempfile.TemporaryDirectory() as state:
        stack = Stack(
            Path(state),
            service_ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
            external_kafka_bootstrap=infra.kafka_bootstrap,
            external_postgres_admin_dsn=infra.postgres_admin_dsn,
            partner_agencies={},
        )
        stack.start()
        try:
            latencies = sorted(asyncio.run(measure(stack, args.people)))
        finally:
            stack.stop()

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(
        f"intake answer -> persons_registered in stats, {len(latencies)} sequential registrations: "
        f"p50 {ms(statistics.median(latencies))}, p95 {ms(p95)}, max {ms(latencies[-1])}"
    )


if __name__ == "__main__":
    main()
