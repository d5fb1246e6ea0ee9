"""The admin keeps the partner directory through referrals' API (issue 9), on the real database,
broker and Keycloak: a new agency is listed and gets its Kafka topics at once, an update replaces
its entry, a deactivated agency takes no new referrals while its open ones stay; nobody but the
admin may change the directory (403 forbidden_role, audited); bad input is refused at its field
in German and English.

The consent gate is off here (nothing asks intake): these tests are about the directory, and a
referral without the gate shares no personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from knotenpunkt import topics
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import CaseOpened, ServiceLine
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.fixtures import eventually, unique
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.kafka import publish
from referrals.app import create_app
from referrals.settings import ReferralsSettings

pytestmark = pytest.mark.integration

ADMIN = "admin"
CASE_MANAGER = "staff-hamborn-1"

ENTRY: dict[str, Any] = {
    "name": "Internationaler Bund Duisburg",
    "kind": "course_provider",
    "response_days": 7,
    "channel": "kafka",
    "topics": ["language_integration_course", "vocational_training"],
    "languages": ["de", "en", "ar"],
    "contact": "IB Duisburg, Kursberatung",
}


@dataclass
class Running:
    http: httpx.AsyncClient
    database: Database
    bootstrap: str
    identity: Identity

    def as_staff(self, username: str) -> dict[str, str]:
        return self.identity.headers(username)


@pytest.fixture(scope="module")
async def service(infra, identity: Identity) -> AsyncIterator[Running]:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("referrals"))
    [nobody] = free_ports(1)
    settings = ReferralsSettings(
        service_name=unique("referrals"),
        database_url=dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        intake_url=f"http://127.0.0.1:{nobody}",  # never asked: the gate is off
        consent_gate_enabled=False,
        oidc_client_id="knotenpunkt-referrals",
        outbox_poll_interval_s=0.1,
    )
    app = create_app(settings)
    database = Database(dsn)
    async with app.router.lifespan_context(app):
        await database.connect()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://referrals", timeout=30) as http:
            yield Running(http, database, infra.kafka_bootstrap, identity)
        await database.close()


def new_agency_id() -> str:
    return f"it-admin-{uuid.uuid4().hex[:10]}"


async def put(
    running: Running, agency_id: str, entry: dict[str, Any], who: str = ADMIN, **headers: str
) -> httpx.Response:
    return await running.http.put(f"/agencies/{agency_id}", json=entry, headers={**running.as_staff(who), **headers})


async def listed(running: Running, agency_id: str, **params: Any) -> dict[str, Any] | None:
    response = await running.http.get("/agencies", params=params, headers=running.as_staff(CASE_MANAGER))
    assert response.status_code == 200, response.text
    return next((a for a in response.json() if a["agency_id"] == agency_id), None)


async def broker_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def open_case(running: Running) -> CaseOpened:
    opened = CaseOpened(
        client_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        service_line=ServiceLine.JMD,
        office_id="rsc-hamborn",
        opened_at=datetime.now(UTC),
        case_manager_id=CASE_MANAGER,
    )
    await publish(running.bootstrap, topics.CASES, [Envelope(event=opened, source="test")])

    async def known() -> bool:
        async with running.database.connection() as connection:
            return bool(await connection.fetchval("SELECT true FROM known_cases WHERE case_id = $1", opened.case_id))

    await eventually(known)
    return opened


async def refer(running: Running, case: CaseOpened, agency_id: str) -> httpx.Response:
    return await running.http.post(
        "/referrals",
        json={"case_id": str(case.case_id), "agency_id": agency_id, "topic_code": "vocational_training"},
        headers={**running.as_staff(CASE_MANAGER), "Accept-Language": "en"},
    )


async def test_the_admin_adds_an_agency_it_is_listed_and_its_topics_exist_on_the_broker(service: Running) -> None:
    agency_id = new_agency_id()
    assert topics.agency_referrals(agency_id) not in await broker_topics(service.bootstrap)

    response = await put(service, agency_id, ENTRY)

    assert response.status_code == 200, response.text
    assert response.json() == {"agency_id": agency_id, **ENTRY, "active": True, "created": True}
    assert await listed(service, agency_id) == {"agency_id": agency_id, **ENTRY, "active": True}
    assert await listed(service, agency_id, topic_code="vocational_training", kind="course_provider") is not None
    on_broker = await broker_topics(service.bootstrap)
    assert {topics.agency_referrals(agency_id), topics.agency_answers(agency_id)} <= on_broker
    # A referral to it goes out on its own topic at once.
    sent = await refer(service, await open_case(service), agency_id)
    assert sent.status_code == 201, sent.text
    async with service.database.connection() as connection:
        changed_by = await connection.fetchval("SELECT changed_by FROM agencies WHERE agency_id = $1", agency_id)
    assert changed_by == ADMIN  # from the token


async def test_the_admin_updates_an_agency_and_the_change_is_audited(service: Running) -> None:
    agency_id = new_agency_id()
    assert (await put(service, agency_id, ENTRY)).status_code == 200
    changed = ENTRY | {"name": "IB West", "channel": "inbox", "response_days": 60, "topics": ["work"], "contact": None}
    correlation_id = f"it-{uuid.uuid4()}"

    response = await put(service, agency_id, changed, **{"X-Correlation-ID": correlation_id})

    assert response.status_code == 200, response.text
    assert response.json()["created"] is False
    assert await listed(service, agency_id) == {"agency_id": agency_id, **changed, "active": True}
    assert await listed(service, agency_id, topic_code="language_integration_course") is None
    async with service.database.connection() as connection:
        entry = await connection.fetchrow(
            "SELECT actor_id, action, outcome, record_ids FROM audit_log WHERE correlation_id = $1", correlation_id
        )
    assert (entry["actor_id"], entry["action"], entry["outcome"]) == (ADMIN, "reference.write", "allowed")
    assert agency_id in entry["record_ids"]


async def test_a_put_repeated_with_its_idempotency_key_is_answered_once(service: Running) -> None:
    agency_id = new_agency_id()
    key = {"Idempotency-Key": f"it-{uuid.uuid4()}"}
    first = await put(service, agency_id, ENTRY, **key)
    again = await put(service, agency_id, ENTRY, **key)
    other_body = await put(service, agency_id, ENTRY | {"name": "Another"}, **key)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.json()["created"] is True
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_key_reused"


async def test_a_deactivated_agency_takes_no_new_referral_but_its_open_ones_stay(service: Running) -> None:
    agency_id = new_agency_id()
    assert (await put(service, agency_id, ENTRY)).status_code == 200
    case = await open_case(service)
    before = await refer(service, case, agency_id)
    assert before.status_code == 201, before.text

    response = await service.http.post(f"/agencies/{agency_id}/deactivate", headers=service.as_staff(ADMIN))

    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    refused = await refer(service, case, agency_id)
    assert refused.status_code == 409
    assert refused.json()["code"] == "agency_inactive"
    assert "deactivated" in refused.json()["message"]
    german = await service.http.post(
        "/referrals",
        json={"case_id": str(case.case_id), "agency_id": agency_id, "topic_code": "work"},
        headers={**service.as_staff(CASE_MANAGER), "Accept-Language": "de"},
    )
    assert german.status_code == 409 and "deaktiviert" in german.json()["message"]
    # Gone from the directory staff choose from, kept for the admin; the open referral stays open.
    assert await listed(service, agency_id) is None
    assert (await listed(service, agency_id, include_inactive="true") or {})["active"] is False
    still = await service.http.get(f"/referrals/{before.json()['referral_id']}", headers=service.as_staff(CASE_MANAGER))
    assert still.json()["status"] == "sent"
    # An update keeps it deactivated; activating it lets referrals through again.
    assert (await put(service, agency_id, ENTRY | {"name": "IB neu"})).json()["active"] is False
    activated = await service.http.post(f"/agencies/{agency_id}/activate", headers=service.as_staff(ADMIN))
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert (await refer(service, case, agency_id)).status_code == 201


async def test_deactivating_an_agency_not_in_the_directory_is_404(service: Running) -> None:
    response = await service.http.post(f"/agencies/{new_agency_id()}/deactivate", headers=service.as_staff(ADMIN))
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["lead-hamborn", "coordinator", "agency-jobcenter-duisburg", CASE_MANAGER, "dpo"])
async def test_nobody_but_the_admin_changes_the_directory(service: Running, who: str) -> None:
    agency_id = new_agency_id()
    correlation_id = f"it-{uuid.uuid4()}"
    created = await put(service, agency_id, ENTRY, who=who, **{"X-Correlation-ID": correlation_id})
    deactivated = await service.http.post("/agencies/jobcenter-duisburg/deactivate", headers=service.as_staff(who))

    for response in (created, deactivated):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden_role"
    assert await listed(service, agency_id, include_inactive="true") is None
    assert (await listed(service, "jobcenter-duisburg") or {}).get("active") is True
    assert topics.agency_referrals(agency_id) not in await broker_topics(service.bootstrap)
    async with service.database.connection() as connection:
        entry = await connection.fetchrow(
            "SELECT actor_id, action, outcome, status FROM audit_log WHERE correlation_id = $1", correlation_id
        )
    assert (entry["actor_id"], entry["action"], entry["outcome"], entry["status"]) == (
        who,
        "reference.write",
        "denied",
        403,
    )


async def test_the_directory_needs_a_sign_in(service: Running) -> None:
    assert (await service.http.put(f"/agencies/{new_agency_id()}", json=ENTRY)).status_code == 401
    assert (await service.http.post("/agencies/jobcenter-duisburg/deactivate")).status_code == 401


def fields_of(response: httpx.Response) -> dict[str, dict[str, str]]:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    return {error["field"]: error for error in response.json()["errors"]}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"response_days": 0}, "response_days", "greater_than_equal"),
        ({"response_days": 61}, "response_days", "less_than_equal"),
        ({"channel": "email"}, "channel", "enum"),
        ({"kind": "bank"}, "kind", "enum"),
        ({"name": "  "}, "name", "string_too_short"),
        ({"changed_by": "someone-else"}, "changed_by", "extra_forbidden"),
        ({"topics": ["work", "cooking"]}, "topics.1", "unknown_agency_topic"),
        ({"topics": ["work", "work"]}, "topics.1", "repeated_entry"),
        ({"languages": ["de", "xx"]}, "languages.1", "unknown_agency_language"),
    ],
)
async def test_bad_input_is_refused_at_its_field_and_nothing_is_saved(
    service: Running, change: dict[str, Any], field: str, code: str
) -> None:
    agency_id = new_agency_id()
    german = fields_of(await put(service, agency_id, ENTRY | change, **{"Accept-Language": "de"}))
    english = fields_of(await put(service, agency_id, ENTRY | change, **{"Accept-Language": "en"}))

    assert german[field]["code"] == english[field]["code"] == code
    assert german[field]["message"] != english[field]["message"]
    assert await listed(service, agency_id, include_inactive="true") is None


@pytest.mark.parametrize("agency_id", ["IB-Duisburg", "ib_duisburg", "x", "-ib"])
async def test_an_agency_id_that_cannot_name_its_topics_is_refused(service: Running, agency_id: str) -> None:
    response = await put(service, agency_id, ENTRY, **{"Accept-Language": "en"})
    error = fields_of(response)["agency_id"]
    assert error["code"] == "invalid_agency_id"
    assert "lowercase letters, digits and hyphens" in error["message"]
