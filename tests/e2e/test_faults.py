"""Kill -9 a consumer mid-stream: after its restart nothing is lost and nothing counted twice."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import decode
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import read_topic
from tests.e2e.support import settled
from tools.stack import Stack

pytestmark = pytest.mark.e2e

PEOPLE = 40


async def test_cases_killed_mid_stream_loses_and_doubles_nothing(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        # Earlier tests' events may still be travelling; figures are compared once all is quiet.
        await eventually(lambda: settled(stack))
        before = (await http.get(f"{stack.url('stats')}/figures")).json()

        async def register(number: int) -> str:
            response = await http.post(
                f"{stack.url('intake')}/clients",
                json={
                    "family_name": f"Fault{number}",
                    "given_name": "Test",
                    "birth_date": "1990-06-01",
                    "office_id": "rsc-hochfeld",
                    # The same name and birth date forty times: staff confirmed they are distinct.
                    "confirm_new": True,
                },
            )
            assert response.status_code == 201, response.text
            return response.json()["client_id"]

        first_half = await asyncio.gather(*(register(n) for n in range(PEOPLE // 2)))
        # At once, while cases is still consuming the first half. SIGKILL: no graceful shutdown,
        # no last commit; whatever was in flight is cut off.
        stack.processes["cases"].send_signal(signal.SIGKILL)
        stack.processes["cases"].wait()
        second_half = await asyncio.gather(*(register(n) for n in range(PEOPLE // 2, PEOPLE)))
        stack.start_service("cases")
        stack.wait_ready("cases")
        clients = set(first_half) | set(second_half)

        async def every_case_counted() -> dict | None:
            now = (await http.get(f"{stack.url('stats')}/figures")).json()
            return now if now["open_cases_total"] >= before["open_cases_total"] + PEOPLE else None

        after = await eventually(every_case_counted, timeout_s=60)
        assert after["open_cases_total"] == before["open_cases_total"] + PEOPLE
        assert after["persons_registered"] == before["persons_registered"] + PEOPLE

        for client_id in clients:
            cases = (await http.get(f"{stack.url('cases')}/cases", params={"client_id": client_id})).json()
            assert len(cases) == 1

    # On the topic every person has exactly one distinct CaseOpened (a re-sent copy would
    # carry the same ce_id, which consumers ignore).
    opened = [decode(r.headers, r.value) for r in await read_topic(stack.kafka_bootstrap, topics.CASES)]
    distinct_per_client: dict[str, set] = {}
    for envelope in opened:
        if str(envelope.event.client_id) in clients and envelope.type.endswith("CaseOpened.v1"):
            distinct_per_client.setdefault(str(envelope.event.client_id), set()).add(envelope.id)
    assert len(distinct_per_client) == PEOPLE
    assert all(len(ids) == 1 for ids in distinct_per_client.values())
