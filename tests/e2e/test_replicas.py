"""Two processes of cases and of stats in one consumer group each, on topics with several
partitions: one of each is SIGKILLed mid-stream; the other takes its partitions over, nothing
is lost or doubled, and exactly one relay of cases publishes the outbox at any time."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import decode
from knotenpunkt.localinfra import free_ports
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import read_topic
from tests.e2e.support import settled
from tools.stack import Stack

pytestmark = pytest.mark.e2e

PEOPLE = 120


async def relay_roles(http: httpx.AsyncClient, stack: Stack, names: list[str]) -> list[str]:
    roles = []
    for name in names:
        ready = (await http.get(f"{stack.url(name)}/health/ready")).json()
        roles.append(ready["checks"]["outbox_relay"])
    return roles


async def test_a_replica_killed_mid_stream_leaves_nothing_lost_or_doubled(stack: Stack, identity) -> None:
    cases_port, stats_port = free_ports(2)
    stack.start_replica("cases", "cases-b", cases_port)
    stack.start_replica("stats", "stats-b", stats_port)
    try:
        stack.wait_ready("cases-b")
        stack.wait_ready("stats-b")
        async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hamborn")) as http:
            await eventually(lambda: settled(stack))
            before = (await http.get(f"{stack.url('stats')}/figures")).json()

            # Both cases processes share one database: exactly one leads its outbox relay.
            roles = await relay_roles(http, stack, ["cases", "cases-b"])
            assert sorted(roles) == ["leader", "standby"], roles

            async def register(number: int) -> str:
                response = await http.post(
                    f"{stack.url('intake')}/clients",
                    json={
                        "family_name": f"Replica{number}",
                        "given_name": "Test",
                        "birth_date": "1985-02-01",
                        "office_id": "rsc-hamborn",
                        "confirm_new": True,
                    },
                )
                assert response.status_code == 201, response.text
                return response.json()["client_id"]

            first = await asyncio.gather(*(register(n) for n in range(PEOPLE // 2)))
            # The relay's leader is killed, so the standby must take the outbox over too.
            leader = "cases" if roles[0] == "leader" else "cases-b"
            stack.processes[leader].send_signal(signal.SIGKILL)
            stack.processes["stats-b"].send_signal(signal.SIGKILL)
            stack.processes[leader].wait()
            stack.processes["stats-b"].wait()
            second = await asyncio.gather(*(register(n) for n in range(PEOPLE // 2, PEOPLE)))
            clients = set(first) | set(second)
            survivor = "cases-b" if leader == "cases" else "cases"

            async def survivor_leads() -> bool:
                return await relay_roles(http, stack, [survivor]) == ["leader"]

            await eventually(survivor_leads, timeout_s=60)

            async def all_counted() -> dict | None:
                now = (await http.get(f"{stack.url('stats')}/figures")).json()
                return now if now["open_cases_total"] >= before["open_cases_total"] + PEOPLE else None

            after = await eventually(all_counted, timeout_s=90)
            assert after["open_cases_total"] == before["open_cases_total"] + PEOPLE
            assert after["persons_registered"] == before["persons_registered"] + PEOPLE
            for client_id in clients:
                cases = (await http.get(f"{stack.url(survivor)}/cases", params={"client_id": client_id})).json()
                assert len(cases) == 1, client_id
    finally:
        for name in ("cases", "cases-b", "stats-b"):
            process = stack.processes.get(name)
            if process is not None and process.poll() is not None:
                stack.processes.pop(name)
        stack.stop_process("cases-b")
        stack.stop_process("stats-b")
        stack.replica_ports.clear()
        if "cases" not in stack.processes:
            stack.start_service("cases")
            stack.wait_ready("cases")

    opened = [decode(r.headers, r.value) for r in await read_topic(stack.kafka_bootstrap, topics.CASES)]
    distinct: dict[str, set] = {}
    for envelope in opened:
        if str(envelope.event.client_id) in clients and envelope.type.endswith("CaseOpened.v1"):
            distinct.setdefault(str(envelope.event.client_id), set()).add(envelope.id)
    assert len(distinct) == PEOPLE
    assert all(len(ids) == 1 for ids in distinct.values())
