"""The data protection officer's requests on intake, on the real database and the real Keycloak:
the audit trail across the services in one request, the person's own data (Art. 15) as JSON and
as an HTML page, and an erasure after which no personal data of the person is left anywhere in
intake's database, the record of a duplicate merged into them included.

The other services are stand-ins with the shared audit router (their real `GET /audit/entries`)
and an export route, each with its own database, reached in-process through a ServiceClient
that sends intake's own token and the officer's; stats is a port nobody answers on.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Annotated, Any
from uuid import UUID

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from intake.api import build_router
from intake.app import MIGRATIONS
from knotenpunkt import audit
from knotenpunkt.clients import ServiceClient
from knotenpunkt.db import Database
from knotenpunkt.identity import ServiceCredentials, allow
from knotenpunkt.localinfra.ports import free_ports
from knotenpunkt.policy import Action
from knotenpunkt.testing import search
from knotenpunkt.testing.apps import check_guarded, secured_api
from knotenpunkt.testing.identity import Identity, dev_secret
from knotenpunkt.uow import Actor, UnitsOfWork

pytestmark = pytest.mark.integration

CASE_MANAGER = Actor.staff("staff-hochfeld-1", "case_manager", offices=("rsc-hochfeld",))


def stand_in(name: str, database: Database) -> FastAPI:
    """Another service as intake meets it: its audit entries and its part of a person's export."""
    app = secured_api(name, database)
    app.include_router(audit.audit_router(name, lambda: database))
    router = APIRouter()

    @router.get("/clients/{client_id}/export")
    async def export(client_id: UUID, actor: Annotated[Actor, Depends(allow(Action.CLIENT_EXPORT))]) -> dict[str, Any]:
        return {"service": name, "client_id": str(client_id), "asked_by": actor.subject, "via": actor.via}

    app.include_router(router)
    return check_guarded(app)


def peer(identity: Identity, app: FastAPI | None) -> ServiceClient:
    credentials = ServiceCredentials(identity.token_url, "knotenpunkt-intake", dev_secret("knotenpunkt-intake"))
    if app is None:
        [nobody] = free_ports(1)
        return ServiceClient(f"http://127.0.0.1:{nobody}", 2, credentials)
    client = ServiceClient("http://peer", 10, credentials)
    # In-process instead of a port: the same client, its transport pointed at the stand-in's app.
    client._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://peer", timeout=10)
    return client


class Network:
    def __init__(self, intake: Database, others: dict[str, Database], as_: Callable[[str], httpx.AsyncClient]):
        self.intake = intake
        self.others = others
        self.as_ = as_

    async def audited_elsewhere(self, service: str, client_id: str, actor: Actor = CASE_MANAGER) -> None:
        """An entry in another service's audit trail: `actor` read something about the person."""
        entry = audit.AuditEntry(
            actor=actor, action="case.read", method="GET", route="/cases/{case_id}", outcome="allowed", status=200,
            correlation_id=str(uuid.uuid4()), purpose="case.read", client_ids=[UUID(client_id)],
        )  # fmt: skip
        async with self.others[service].connection() as connection, connection.transaction():
            await audit.append(connection, service, entry)


async def network(make_database, identity: Identity, answering: tuple[str, ...]) -> AsyncIterator[Network]:
    database = await make_database("intake", MIGRATIONS)
    others = {name: await make_database() for name in ("cases", "referrals")}
    peers = {
        "cases": peer(identity, stand_in("cases", others["cases"]) if "cases" in answering else None),
        "referrals": peer(identity, stand_in("referrals", others["referrals"]) if "referrals" in answering else None),
        "stats": peer(identity, None),
    }
    app = secured_api("intake", database)
    app.include_router(build_router(UnitsOfWork(database, "knotenpunkt/intake"), peers))
    transport = httpx.ASGITransport(app=check_guarded(app))
    clients: list[httpx.AsyncClient] = []

    def as_(user: str) -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://intake", headers=identity.headers(user)))
        return clients[-1]

    yield Network(database, others, as_)
    for client in [*clients, *peers.values()]:
        await client.aclose() if isinstance(client, httpx.AsyncClient) else await client.close()


@pytest.fixture
async def stack(make_database, identity: Identity) -> AsyncIterator[Network]:
    async for found in network(make_database, identity, answering=("cases", "referrals")):
        yield found


@pytest.fixture
async def stack_without_referrals(make_database, identity: Identity) -> AsyncIterator[Network]:
    async for found in network(make_database, identity, answering=("cases",)):
        yield found


def person(**changes: object) -> dict:
    values = {
        "family_name": f"Nwachukwu{uuid.uuid4().hex[:6]}", "given_name": "Adaeze", "birth_date": "1979-08-23",
        "office_id": "rsc-hochfeld", "phone": "+49 203 999 4711", "email": "adaeze@example.org",
        "street": "Wanheimer Straße 17", "postcode": "47053", "city": "Duisburg", "district": "Hochfeld",
        "residence_status": "residence_permit", "confirm_new": True,
    }  # fmt: skip
    values.update(changes)
    return values


async def test_the_audit_trail_answers_for_every_service_in_one_request(stack: Network) -> None:
    client_id = (await stack.as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    assert (await stack.as_("staff-hochfeld-1").get(f"/clients/{client_id}")).status_code == 200
    await stack.audited_elsewhere("cases", client_id)
    await stack.audited_elsewhere("referrals", client_id)
    dpo = stack.as_("dpo")

    about_person = await dpo.get("/audit/trail", params={"client_id": client_id})
    assert about_person.status_code == 200, about_person.text
    trail = about_person.json()
    assert (trail["services"], trail["unavailable"]) == (["intake", "cases", "referrals"], ["stats"])
    seen = [(entry["service"], entry["actor_id"], entry["route"]) for entry in trail["entries"]]
    assert set(seen) == {
        ("intake", "intake-hochfeld", "/clients"),
        ("intake", "staff-hochfeld-1", "/clients/{client_id}"),
        ("cases", "staff-hochfeld-1", "/cases/{case_id}"),
        ("referrals", "staff-hochfeld-1", "/cases/{case_id}"),
    }
    times = [entry["at"] for entry in trail["entries"]]
    assert times == sorted(times, reverse=True)
    async with stack.intake.connection() as connection:
        asked = await connection.fetchrow("SELECT actor_id, client_ids FROM audit_log WHERE route = '/audit/trail'")
    assert (asked["actor_id"], [str(c) for c in asked["client_ids"]]) == ("dpo", [client_id])

    of_staff = (await dpo.get("/audit/trail", params={"actor_id": "staff-hochfeld-1"})).json()
    assert {entry["service"] for entry in of_staff["entries"]} == {"intake", "cases", "referrals"}
    assert {entry["actor_id"] for entry in of_staff["entries"]} == {"staff-hochfeld-1"}
    assert of_staff["unavailable"] == ["stats"]

    no_question = await dpo.get("/audit/trail")
    assert (no_question.status_code, no_question.json()["errors"][0]["code"]) == (422, "audit_question_needed")
    for role in ("lead-hochfeld", "coordinator", "admin"):
        refused = await stack.as_(role).get("/audit/trail", params={"client_id": client_id})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role"), role


async def test_the_export_gives_everything_every_service_stores_about_the_person(stack: Network) -> None:
    counter = stack.as_("intake-hochfeld")
    keep = (await counter.post("/clients", json=person(family_name="O'Brien<script>"))).json()["client_id"]
    duplicate = (await counter.post("/clients", json=person(given_name="Adaese"))).json()["client_id"]
    assert (await counter.post(f"/clients/{keep}/merge", json={"duplicate_client_id": duplicate})).status_code == 200
    consent = await stack.as_("staff-hochfeld-1").post(
        f"/clients/{keep}/consents",
        json={"purpose": "sharing", "agency_id": "jobcenter-duisburg", "data_categories": ["name"],
              "text_version": "2026-01", "given_on": date.today().isoformat()},
    )  # fmt: skip
    withdraw = f"/clients/{keep}/consents/{consent.json()['consent_id']}/withdraw"
    assert (await stack.as_("lead-hochfeld").post(withdraw, json={})).status_code == 200
    await stack.audited_elsewhere("cases", keep)
    dpo = stack.as_("dpo")

    answer = await dpo.get(f"/clients/{duplicate}/export")
    assert answer.status_code == 200, answer.text
    export = answer.json()
    assert export["client_id"] == keep
    records = {record["client_id"]: record for record in export["intake"]["records"]}
    assert set(records) == {keep, duplicate}
    assert records[keep]["family_name"] == "O'Brien<script>" and records[keep]["street"] == "Wanheimer Straße 17"
    assert (records[duplicate]["given_name"], records[duplicate]["merged_into"]) == ("Adaese", keep)
    [given] = export["intake"]["consents"]
    assert (given["recorded_by"], given["withdrawn_by"], given["withdrawn_on"]) == (
        "staff-hochfeld-1", "lead-hochfeld", date.today().isoformat()
    )  # fmt: skip
    # The other services' parts, asked with the officer's token relayed by intake.
    assert export["cases"] == {"service": "cases", "client_id": keep, "asked_by": "dpo", "via": "intake"}
    assert export["referrals"]["service"] == "referrals"
    entries = export["audit"]["entries"]
    assert {"intake", "cases"} <= {entry["service"] for entry in entries}
    assert any(entry["route"] == "/clients/{client_id}/merge" for entry in entries)
    assert export["incomplete"] == ["audit:stats"]

    page = await dpo.get(f"/clients/{keep}/export", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Auskunft über die gespeicherten Daten (Art. 15 DSGVO)" in page.text
    assert "O&#x27;Brien&lt;script&gt;" in page.text and "<script>" not in page.text
    assert "Wanheimer Straße 17" in page.text and "Unvollständig" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external assets
    by_accept = await dpo.get(f"/clients/{keep}/export", headers={"Accept": "text/html"})
    assert by_accept.headers["content-type"].startswith("text/html")

    for role in ("intake-hochfeld", "lead-hochfeld", "staff-hochfeld-1"):
        refused = await stack.as_(role).get(f"/clients/{keep}/export")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role"), role
    assert (await dpo.get(f"/clients/{uuid.uuid4()}/export")).status_code == 404


async def test_a_service_that_does_not_answer_is_named_not_left_out(stack_without_referrals: Network) -> None:
    stack = stack_without_referrals
    client_id = (await stack.as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    dpo = stack.as_("dpo")
    trail = (await dpo.get("/audit/trail", params={"client_id": client_id})).json()
    assert (trail["services"], trail["unavailable"]) == (["intake", "cases"], ["referrals", "stats"])
    export = (await dpo.get(f"/clients/{client_id}/export")).json()
    assert export["referrals"] is None and export["cases"]["service"] == "cases"
    assert export["incomplete"] == ["referrals", "audit:referrals", "audit:stats"]


async def personal_values_found(database: Database, values: list[str]) -> dict[str, int]:
    async with database.connection() as connection:
        return await search.personal_values_found(connection, values)


async def test_after_erasure_no_personal_data_of_the_person_is_left_in_intakes_database(stack: Network) -> None:
    counter = stack.as_("intake-hochfeld")
    original = person(family_name="Nwachukwu", given_name="Adaeze", name_variants=["Nwachukvu"])
    again = person(
        family_name="Nwachukwo", given_name="Adaese", phone="+49 176 1234 9876", email="a.nw@example.net",
        street="Am Buchenbaum 3", birth_date="1979-08-23",
    )  # fmt: skip
    keep = (await counter.post("/clients", json=original, headers={"Idempotency-Key": "reg-1"})).json()["client_id"]
    duplicate = (await counter.post("/clients", json=again, headers={"Idempotency-Key": "reg-2"})).json()["client_id"]
    merged = await counter.post(
        f"/clients/{keep}/merge", json={"duplicate_client_id": duplicate}, headers={"Idempotency-Key": "merge-1"}
    )
    assert merged.status_code == 200
    corrected = await counter.patch(
        f"/clients/{keep}", json={"postcode": "47055"}, headers={"If-Match": '"1"', "Idempotency-Key": "fix-1"}
    )
    assert corrected.status_code == 200, corrected.text
    consent = await counter.post(
        f"/clients/{keep}/consents",
        json={"purpose": "sharing", "agency_id": "jobcenter-duisburg", "data_categories": ["name", "contact"],
              "text_version": "2026-01", "given_on": date.today().isoformat()},
        headers={"Idempotency-Key": "consent-1"},
    )  # fmt: skip
    assert consent.status_code == 201
    found = await counter.post("/clients/duplicate-check", json={"family_name": "Nwachukwu", "given_name": "Adaeze"})
    assert [match["client_id"] for match in found.json()["candidates"]] == [keep]

    values = [
        "Nwachukwu", "Nwachukwo", "Nwachukvu", "Adaeze", "Adaese", "+49 203 999 4711", "+49 176 1234 9876",
        "Wanheimer", "Buchenbaum", "1979-08-23", "adaeze@example.org", "a.nw@example.net",
    ]  # fmt: skip
    before = await personal_values_found(stack.intake, values)
    assert before.get("clients") == 2 and "idempotency_keys" not in before  # the search finds what is there

    erased = await stack.as_("dpo").post(f"/clients/{duplicate}/erase")
    assert erased.status_code == 200, erased.text
    answer = erased.json()
    assert answer["client_id"] == keep
    assert answer["erased_client_ids"] == sorted([keep, duplicate])
    [agency_topics, _] = answer["remains_elsewhere"]
    assert (agency_topics["where"], agency_topics["agencies"], agency_topics["retention_days"]) == (
        "agency_topics", ["jobcenter-duisburg"], 30
    )  # fmt: skip
    assert "referrals" in agency_topics["en"] and "30" in agency_topics["de"]

    assert await personal_values_found(stack.intake, values) == {}
    async with stack.intake.connection() as connection:
        kept_keys = await connection.fetch("SELECT scope FROM idempotency_keys")
        erased_events = await connection.fetch(
            "SELECT message_key FROM outbox WHERE event_type LIKE '%ClientErased%' ORDER BY message_key"
        )
    # The stored answers concerning the person are gone (registrations, merge, correction, consent).
    assert [row["scope"] for row in kept_keys] == []
    assert sorted(row["message_key"] for row in erased_events) == sorted([keep, duplicate])
    # Erasing again (by either id) answers the same and erases nothing more.
    assert (await stack.as_("dpo").post(f"/clients/{keep}/erase")).json() == answer
    for client_id in (keep, duplicate):
        assert (await counter.get(f"/clients/{client_id}")).status_code == 410
