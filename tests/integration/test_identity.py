"""Who is asking, on the real Keycloak: tokens that must not pass (none, expired, forged, for
another audience or issuer) get 401 and an audit entry as denied; every operation of every
service's OpenAPI document answers 401 without a token; the permission scope filters rows in
PostgreSQL; the audit trail is a hash chain that shows tampering and refuses changes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, FastAPI

from knotenpunkt import audit
from knotenpunkt.db import Database
from knotenpunkt.identity import allow
from knotenpunkt.policy import Action, Columns, scope
from knotenpunkt.testing.apps import check_guarded, secured_api
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.identity import Identity
from knotenpunkt.uow import Actor

pytestmark = pytest.mark.integration

CLIENT = uuid.UUID("0d3c1f44-8f5e-4a43-9d39-3c7a0f6a5b10")


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
async def guarded(make_database) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """An app with one route that reads a person (CLIENT_READ), as every service builds it."""
    database = await make_database()
    app = secured_api("identity-test", database)
    router = APIRouter()

    @router.get("/persons/{client_id}")
    async def person(client_id: uuid.UUID, actor: Annotated[Actor, Depends(allow(Action.CLIENT_READ))]) -> dict:
        return {"staff_id": actor.subject, "offices": sorted(actor.offices), "via": actor.via}

    app.include_router(router)
    check_guarded(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http, database


async def audit_rows(database: Database) -> list[asyncpg.Record]:
    async with database.connection() as connection:
        return await connection.fetch("SELECT * FROM audit_log ORDER BY seq")


async def test_a_signed_in_case_manager_is_let_in_with_staff_id_and_office_from_the_token(guarded, identity) -> None:
    http, database = guarded
    answer = await http.get(f"/persons/{CLIENT}", headers=identity.headers("staff-hamborn-1"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"staff_id": "staff-hamborn-1", "offices": ["rsc-hamborn"], "via": None}
    [row] = await audit_rows(database)
    assert (row["actor_id"], row["action"], row["outcome"], row["client_ids"]) == (
        "staff-hamborn-1",
        "client.read",
        "allowed",
        [CLIENT],
    )
    assert row["route"] == "/persons/{client_id}" and row["correlation_id"] == answer.headers["X-Correlation-ID"]


async def test_no_token_and_a_malformed_one_are_401_with_a_bearer_challenge_and_audited(guarded) -> None:
    http, database = guarded
    missing = await http.get(f"/persons/{CLIENT}")
    assert missing.status_code == 401 and missing.json()["code"] == "token_missing"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="knotenpunkt"'
    garbage = await http.get(f"/persons/{CLIENT}", headers={"Authorization": "Bearer not.a.token"})
    assert garbage.status_code == 401 and garbage.json()["code"] == "token_invalid"
    assert "invalid_token" in garbage.headers["WWW-Authenticate"]
    rows = await audit_rows(database)
    assert [(r["actor_id"], r["outcome"], r["status"], r["reason"]) for r in rows] == [
        ("anonymous", "denied", 401, "token_missing"),
        ("anonymous", "denied", 401, "token_invalid"),
    ]


async def test_a_forged_token_signed_with_another_key_is_refused(guarded, identity) -> None:
    http, _ = guarded
    genuine = identity.token("lead-hamborn")
    header = jwt.get_unverified_header(genuine)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Same key id, same claims, made a lead of another office: only the signature is wrong.
    claims = {**_claims(genuine), "offices": ["rsc-hochfeld"]}
    forged = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": header["kid"]})
    answer = await http.get(
        f"/persons/{CLIENT}", headers={"Authorization": f"Bearer {forged}", "Accept-Language": "en"}
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "token_invalid" and "signature" in answer.json()["message"]
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert (await http.get(f"/persons/{CLIENT}", headers={"Authorization": f"Bearer {unsigned}"})).status_code == 401


async def test_a_token_of_the_right_realm_under_another_issuer_address_is_refused(guarded, infra) -> None:
    http, _ = guarded
    # The same Keycloak and key, reached as `localhost`: the token names another issuer.
    other = Identity(infra.keycloak_url.replace("127.0.0.1", "localhost"))
    token = other.token("lead-hamborn")
    assert _claims(token)["iss"].startswith("http://localhost")
    answer = await http.get(f"/persons/{CLIENT}", headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    assert answer.status_code == 401 and "issuer" in answer.json()["message"]


def _admin(infra) -> httpx.Client:
    token = httpx.post(
        f"{infra.keycloak_url}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin"},
        timeout=15,
    ).json()["access_token"]
    return httpx.Client(
        base_url=f"{infra.keycloak_url}/admin/realms/knotenpunkt",
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )


async def test_tokens_for_another_audience_and_expired_tokens_are_refused(guarded, infra, identity) -> None:
    http, _ = guarded
    client_id = f"short-lived-{uuid.uuid4().hex[:8]}"
    with _admin(infra) as admin:
        # A client of the realm without our audience, whose tokens live 2 seconds.
        created = admin.post(
            "/clients",
            json={
                "clientId": client_id,
                "secret": "s3cret",
                "publicClient": False,
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "attributes": {"access.token.lifespan": "2"},
            },
        )
        assert created.status_code == 201, created.text
        try:
            foreign = identity.client_token(client_id, "s3cret")
            assert "knotenpunkt-api" not in str(_claims(foreign).get("aud"))
            answer = await http.get(
                f"/persons/{CLIENT}", headers={"Authorization": f"Bearer {foreign}", "Accept-Language": "en"}
            )
            assert answer.status_code == 401 and "audience" in answer.json()["message"]
        finally:
            internal_id = admin.get("/clients", params={"clientId": client_id}).json()[0]["id"]
            admin.delete(f"/clients/{internal_id}")
    # An expired token: Keycloak's tokens of the realm live 10 minutes, so one is made expired by
    # waiting on the short-lived client's token instead (expired + our 5 s clock leeway).
    expires = _claims(foreign)["exp"]
    assert expires - time.time() < 10

    async def refused_as_expired() -> bool:
        answer = await http.get(f"/persons/{CLIENT}", headers={"Authorization": f"Bearer {foreign}"})
        return answer.status_code == 401 and answer.json()["code"] == "token_expired"

    await eventually(refused_as_expired, timeout_s=30, interval_s=0.5)


async def test_a_service_relays_a_persons_request_and_acts_as_that_person(guarded, identity) -> None:
    http, _ = guarded
    relayed = await http.get(
        f"/persons/{CLIENT}",
        headers={
            "Authorization": f"Bearer {identity.client_token('knotenpunkt-cases')}",
            "X-On-Behalf-Of": identity.token("staff-hochfeld-1"),
        },
    )
    assert relayed.json() == {"staff_id": "staff-hochfeld-1", "offices": ["rsc-hochfeld"], "via": "cases"}
    # A service alone has no permission of a person; a person cannot claim to relay another.
    alone = await http.get(
        f"/persons/{CLIENT}", headers={"Authorization": f"Bearer {identity.client_token('knotenpunkt-cases')}"}
    )
    assert (alone.status_code, alone.json()["code"]) == (403, "forbidden_role")
    impostor = await http.get(
        f"/persons/{CLIENT}",
        headers={**identity.headers("coordinator"), "X-On-Behalf-Of": identity.token("staff-hochfeld-1")},
    )
    assert impostor.status_code == 401


async def test_the_scope_filters_rows_in_postgresql(database, identity) -> None:
    async with database.connection() as connection:
        await connection.execute("CREATE TABLE scoped (id int, office_id text, case_manager_id text)")
        await connection.execute(
            "INSERT INTO scoped VALUES (1, 'rsc-hamborn', 'staff-hamborn-1'), (2, 'rsc-hamborn', NULL), "
            "(3, 'rsc-hamborn', 'staff-hamborn-2'), (4, 'rsc-hochfeld', NULL)"
        )
        from knotenpunkt.identity import actor_from_claims

        seen = {}
        for user in ("staff-hamborn-1", "lead-hamborn", "coordinator"):
            actor = actor_from_claims(_claims(identity.token(user)))
            for action in (Action.CASE_READ, Action.CASE_CHANGE, Action.CASE_NOTE):
                condition, params = scope(actor, action, Columns(office="office_id", assigned="case_manager_id"), 2)
                rows = await connection.fetch(
                    f"SELECT id FROM scoped WHERE id > $1 AND {condition} ORDER BY id", 0, *params
                )
                seen[(user, action.value)] = [row["id"] for row in rows]
    assert seen == {
        ("staff-hamborn-1", "case.read"): [1, 2, 3],
        ("staff-hamborn-1", "case.change"): [1, 2],
        ("staff-hamborn-1", "case.note"): [1],
        ("lead-hamborn", "case.read"): [1, 2, 3],
        ("lead-hamborn", "case.change"): [1, 2, 3],
        ("lead-hamborn", "case.note"): [1, 2, 3],
        ("coordinator", "case.read"): [],
        ("coordinator", "case.change"): [],
        ("coordinator", "case.note"): [],
    }


async def test_the_audit_trail_is_append_only_and_its_chain_shows_tampering(guarded, identity, infra) -> None:
    http, database = guarded
    for user in ("staff-hamborn-1", "coordinator", "lead-hamborn"):
        await http.get(f"/persons/{CLIENT}", headers=identity.headers(user))
    async with database.connection() as connection:
        intact = await audit.verify(connection)
        assert (intact.intact, intact.entries) == (True, 3)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 2")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("DELETE FROM audit_log")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await connection.execute("TRUNCATE audit_log")
        # Someone with the database owner's rights switches the trigger off and rewrites a row:
        # the chain no longer adds up from that row on.
        async with connection.transaction():
            await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            await connection.execute("UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 2")
            await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        broken = await audit.verify(connection)
    assert (broken.intact, broken.broken_at) == (False, 2)


async def test_every_operation_of_every_service_answers_401_without_a_token(database) -> None:
    from cases.app import create_app as cases_app
    from intake.app import create_app as intake_app
    from referrals.app import create_app as referrals_app
    from stats.app import create_app as stats_app

    walked = 0
    for build in (intake_app, cases_app, referrals_app, stats_app):
        app: FastAPI = build()
        # Not started (no consumers, no migrations of its own): the refusals are audited in a
        # database with the platform tables, as a running service audits them in its own.
        app.state.runtime.database = database
        document = app.openapi()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            for path, operations in document["paths"].items():
                for method, operation in operations.items():
                    concrete = path
                    for parameter in operation.get("parameters", []):
                        if parameter["in"] == "path":
                            concrete = concrete.replace("{" + parameter["name"] + "}", str(uuid.uuid4()))
                    answer = await http.request(method.upper(), concrete, json={} if method != "get" else None)
                    if app.state.runtime.access.is_open(path):
                        # Open by configuration: health always, /metrics and /docs unless closed.
                        assert path.startswith("/health/") or path in ("/metrics",), path
                        assert "security" not in operation, path
                        continue
                    assert operation.get("security") == [{"bearer": []}], f"{app.title} {method} {path}"
                    assert "401" in operation["responses"] and "403" in operation["responses"]
                    assert answer.status_code == 401, f"{app.title} {method.upper()} {path}: {answer.status_code}"
                    walked += 1
    assert walked > 50
    async with database.connection() as connection:
        denied = await connection.fetchval("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND status = 401")
    assert denied == walked
