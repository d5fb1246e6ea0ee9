"""Bad HTTP input against the real services (intake and cases on the real database and broker):
a NUL anywhere used to reach PostgreSQL, which refuses it, and the caller got a 500. Now every
such request gets a field-level 422 in our error format, before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from cases.app import create_app as create_cases
from cases.settings import CasesSettings
from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.fixtures import unique

pytestmark = pytest.mark.integration

PERSON = {"family_name": "Haddad", "given_name": "Rania", "birth_year": 1990, "office_id": "rsc-hamborn"}


@pytest.fixture(scope="module")
async def intake(infra, identity) -> AsyncIterator[httpx.AsyncClient]:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("intake"))
    settings = IntakeSettings(service_name=unique("intake"), database_url=dsn, kafka_bootstrap=infra.kafka_bootstrap)
    app = create_intake(settings)
    # Signed in as the counter staff of the office the requests name: bad input is refused
    # for someone who may otherwise do these things.
    signed_in = identity.headers("intake-hamborn")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", timeout=10, headers=signed_in
        ) as http:
            yield http


@pytest.fixture(scope="module")
async def cases(infra, identity) -> AsyncIterator[httpx.AsyncClient]:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("cases"))
    [nobody] = free_ports(1)  # intake is not needed by the requests below
    settings = CasesSettings(
        service_name=unique("cases"),
        database_url=dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        intake_url=f"http://127.0.0.1:{nobody}",
    )
    app = create_cases(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # The office lead (code lists are the admin's: those requests sign in as the admin).
        async with httpx.AsyncClient(
            transport=transport, base_url="http://cases", timeout=10, auth=identity.auth("lead-hamborn")
        ) as http:
            yield http


def refused_at(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "validation_failed" and body["correlation_id"]
    assert {error["field"]: error["code"] for error in body["errors"]} == {field: "control_character"}


async def test_intake_refuses_nul_in_body_path_and_query(intake: httpx.AsyncClient) -> None:
    refused_at(await intake.post("/clients", json={**PERSON, "family_name": "Had\x00dad"}), "family_name")
    refused_at(await intake.post("/clients", json={**PERSON, "name_variants": ["Hadad", "Ha\x00"]}), "name_variants.1")
    refused_at(
        await intake.post("/clients/duplicate-check", json={"family_name": "Had\x00dad", "given_name": "Rania"}),
        "family_name",
    )
    client_id = uuid.uuid4()
    refused_at(await intake.patch(f"/clients/{client_id}", json={"street": "Weg 1\x00"}), "street")
    refused_at(
        await intake.get(f"/clients/{client_id}/consent-check", params={"purpose": "sharing", "agency_id": "jc\x00"}),
        "agency_id",
    )
    refused_at(await intake.get(f"/clients/{client_id}/shared-data", params={"agency_id": "\x00"}), "agency_id")
    # Nothing was stored: the registration with a clean name is the only one.
    registered = await intake.post("/clients", json={**PERSON, "confirm_new": True})
    assert registered.status_code == 201, registered.text


async def test_intake_refuses_a_huge_person_record_and_answers_unknown_routes_in_our_format(
    intake: httpx.AsyncClient,
) -> None:
    huge = await intake.post("/clients", json={**PERSON, "name_variants": ["x" * 2_000_000]})
    assert (huge.status_code, huge.json()["code"]) == (413, "body_too_large")
    many = await intake.post("/clients", json={**PERSON, "name_variants": ["Hadad"] * 1000})
    assert many.status_code == 422 and many.json()["errors"][0]["field"] == "name_variants"
    unknown = await intake.get("/no-such-thing")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_route")


async def test_cases_refuses_nul_in_query_and_body(cases: httpx.AsyncClient, identity) -> None:
    refused_at(await cases.get("/cases", params={"office_id": "rsc\x00"}), "office_id")
    refused_at(await cases.get("/cases", params={"case_manager_id": "\x00"}), "case_manager_id")
    refused_at(await cases.get("/cases", params={"topic": "work\x00"}), "topic")
    refused_at(
        await cases.post(
            "/topics",
            json={"code": "nul_topic", "label_de": "Null\x00", "label_en": "Nul"},
            headers=identity.headers("admin"),
        ),
        "label_de",
    )
    refused_at(
        await cases.post(f"/cases/{uuid.uuid4()}/close", json={"reason": "other\x00"}, headers={"If-Match": '"1"'}),
        "reason",
    )
    # The refused topic was not stored.
    assert "nul_topic" not in {topic["code"] for topic in (await cases.get("/topics")).json()}
