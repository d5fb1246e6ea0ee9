"""Reference data through intake's API instead of SQL (issue 9): the admin creates and changes
offices, staff and routing rules, each change audited in its own transaction; every other role
is refused; bad input is refused at its field; what was saved is served and used (a changed
routing rule routes the next registration). On the real database and the real Keycloak."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from intake.api import build_router
from intake.app import MIGRATIONS
from knotenpunkt.db import Database
from knotenpunkt.testing.apps import SignedIn, check_guarded, secured_api
from knotenpunkt.testing.identity import Identity
from knotenpunkt.uow import UnitsOfWork

pytestmark = pytest.mark.integration

As = Callable[[str], httpx.AsyncClient]
OFFICE = {"name": "RSC Marxloh", "address": "Weseler Straße 80, Duisburg", "open_hours": "Di 10–12",
          "district": "Marxloh", "languages": ["de", "tr"]}  # fmt: skip
STAFF = {"office_id": "rsc-hamborn", "display_name": "Fallmanagement Hamborn 3", "fte": 0.75, "service_lines": ["MBE"]}
JMD = {"service_line": "JMD", "min_age": 12, "max_age": 27,
       "description": "Jugendmigrationsdienst: young people from 12 up to 27"}  # fmt: skip


def intake_app(database: Database) -> FastAPI:
    app = secured_api("intake", database)
    app.include_router(build_router(UnitsOfWork(database, "knotenpunkt/intake"), {}))
    return check_guarded(app)


@pytest.fixture
async def intake(make_database, identity: Identity) -> AsyncIterator[tuple[As, Database]]:
    """`as_("admin")`: an HTTP client of intake signed in as that demo user."""
    database = await make_database("intake", MIGRATIONS)
    as_ = SignedIn(intake_app(database), identity, "http://intake")
    yield as_, database
    await as_.aclose()


async def audited(database: Database, route: str) -> list[tuple]:
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT actor_id, method, record_ids, outcome, status, reason FROM audit_log WHERE route = $1 ORDER BY seq",
            route,
        )
    return [tuple(row) for row in rows]


def at_field(answer: httpx.Response) -> tuple[int, str, str]:
    error = answer.json()["errors"][0]
    return answer.status_code, error["field"], error["code"]


async def test_the_admin_creates_and_changes_an_office_and_the_offices_list_serves_it(intake) -> None:
    as_, database = intake
    admin = as_("admin")
    created = await admin.put("/offices/rsc-marxloh", json=OFFICE)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "office_id": "rsc-marxloh", "name": "RSC Marxloh", "address": "Weseler Straße 80, Duisburg",
        "open_hours": "Di 10–12", "district": "Marxloh", "languages": ["de", "tr"],
        "service_lines": ["JMD", "MBE", "REFUGEE", "KIM"], "staff": [],
    }  # fmt: skip
    # Only the opening hours sent: the district and languages stay as they were.
    changed = await admin.put("/offices/rsc-marxloh", json={**_without(OFFICE, "district", "languages"),
                                                            "open_hours": "Di 10–13"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    served = {o["office_id"]: o for o in (await as_("coordinator").get("/offices")).json()}
    assert served["rsc-marxloh"] == {**created.json(), "open_hours": "Di 10–13"}
    # A district sent as null is cleared; service lines sent replace the offer.
    cleared = await admin.put("/offices/rsc-marxloh", json={**OFFICE, "district": None, "service_lines": ["MBE"]})
    assert (cleared.json()["district"], cleared.json()["service_lines"]) == (None, ["MBE"])
    # An existing office keeps its staff in the answer.
    hamborn = await admin.put("/offices/rsc-hamborn", json={"name": "RSC Hamborn", "address": "Neue Straße 1",
                                                            "open_hours": "Mo 9–12"})  # fmt: skip
    assert hamborn.status_code == 200 and "staff-hamborn-1" in {s["staff_id"] for s in hamborn.json()["staff"]}
    assert hamborn.json()["languages"] == ["de", "en", "tr", "ar", "bg", "ro"]
    assert await audited(database, "/offices/{office_id}") == [
        ("admin", "PUT", ["rsc-marxloh"], "allowed", 201, None),
        ("admin", "PUT", ["rsc-marxloh"], "allowed", 200, None),
        ("admin", "PUT", ["rsc-marxloh"], "allowed", 200, None),
        ("admin", "PUT", ["rsc-hamborn"], "allowed", 200, None),
    ]


async def test_a_repeated_put_with_the_same_key_answers_the_first_and_changes_nothing(intake) -> None:
    as_, database = intake
    admin = as_("admin")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await admin.put("/offices/rsc-walsum", json=OFFICE, headers=key)
    again = await admin.put("/offices/rsc-walsum", json=OFFICE, headers=key)
    assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await admin.put("/offices/rsc-walsum", json={**OFFICE, "name": "Walsum"}, headers=key)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    offices = {o["office_id"]: o for o in (await admin.get("/offices")).json()}
    assert offices["rsc-walsum"]["name"] == "RSC Marxloh"
    # Every call is in the audit trail, the replayed answer and the refused reuse too.
    assert [row[3:5] for row in await audited(database, "/offices/{office_id}")] == [
        ("allowed", 201), ("allowed", 201), ("refused", 422)
    ]  # fmt: skip


@pytest.mark.parametrize("user", ["lead-hochfeld", "staff-hochfeld-1", "coordinator", "intake-hochfeld", "dpo"])
async def test_only_the_admin_writes_reference_data(intake, user: str) -> None:
    as_, database = intake
    http = as_(user)
    answers = [
        await http.put("/offices/rsc-hochfeld", json={**OFFICE, "name": "Übernommen"}),
        await http.put("/staff/staff-hochfeld-1", json={**STAFF, "office_id": "rsc-hochfeld", "active": False}),
        await http.put("/routing-rules/jmd", json={**JMD, "max_age": 99}),
    ]
    assert [(answer.status_code, answer.json()["code"]) for answer in answers] == [(403, "forbidden_role")] * 3
    assert "reference.write" in answers[0].json()["message"]
    # Nothing changed, and each refusal is in the audit trail with its reason.
    admin = as_("admin")
    offices = {o["office_id"]: o for o in (await admin.get("/offices")).json()}
    assert offices["rsc-hochfeld"]["name"] == "RSC Hochfeld"
    assert "staff-hochfeld-1" in {s["staff_id"] for s in offices["rsc-hochfeld"]["staff"]}
    assert {r["rule_id"]: r for r in (await admin.get("/routing-rules")).json()}["jmd"]["max_age"] == 27
    for route in ("/offices/{office_id}", "/staff/{staff_id}", "/routing-rules/{rule_id}"):
        assert [(row[0], *row[3:]) for row in await audited(database, route)] == [
            (user, "denied", 403, "forbidden_role")
        ]


async def test_without_a_token_nobody_writes_reference_data(intake) -> None:
    as_, _ = intake
    assert (await as_("nobody").put("/routing-rules/jmd", json=JMD)).status_code == 401


async def test_the_admin_adds_changes_and_deactivates_a_staff_member(intake) -> None:
    as_, database = intake
    admin = as_("admin")
    created = await admin.put("/staff/staff-hamborn-3", json=STAFF)
    assert created.status_code == 201, created.text
    assert created.json() == {"staff_id": "staff-hamborn-3", "office_id": "rsc-hamborn",
                              "display_name": "Fallmanagement Hamborn 3", "fte": 0.75, "service_lines": ["MBE"],
                              "active": True}  # fmt: skip
    moved = await admin.put("/staff/staff-hamborn-3", json={**STAFF, "office_id": "rsc-hochfeld", "fte": 1})
    assert (moved.status_code, moved.json()["office_id"], moved.json()["fte"]) == (200, "rsc-hochfeld", 1.0)
    offices = {o["office_id"]: o for o in (await as_("staff-hochfeld-1").get("/offices")).json()}
    assert "staff-hamborn-3" in {s["staff_id"] for s in offices["rsc-hochfeld"]["staff"]}
    assert "staff-hamborn-3" not in {s["staff_id"] for s in offices["rsc-hamborn"]["staff"]}
    # Who leaves is deactivated, not deleted: off the office's list, still known by id.
    left = await admin.put("/staff/staff-hamborn-3", json={**STAFF, "office_id": "rsc-hochfeld", "active": False})
    assert (left.status_code, left.json()["active"]) == (200, False)
    offices = {o["office_id"]: o for o in (await admin.get("/offices")).json()}
    assert "staff-hamborn-3" not in {s["staff_id"] for o in offices.values() for s in o["staff"]}
    everyone = {s["staff_id"]: s for s in (await as_("coordinator").get("/staff")).json()}
    assert everyone["staff-hamborn-3"]["active"] is False
    # Network-wide staff work at no office.
    network = await admin.put("/staff/controlling", json={**STAFF, "office_id": None, "service_lines": []})
    assert network.status_code == 201 and network.json()["office_id"] is None
    assert (await admin.get("/staff")).json()[0]["staff_id"] == "admin"
    assert {s["staff_id"]: s for s in (await admin.get("/staff")).json()}["controlling"]["office_id"] is None
    assert [row[4] for row in await audited(database, "/staff/{staff_id}")] == [201, 200, 200, 201]


async def test_a_staff_member_at_an_unknown_office_is_404_and_bad_values_422_at_the_field(intake) -> None:
    as_, database = intake
    admin = as_("admin")
    unknown = await admin.put("/staff/staff-x", json={**STAFF, "office_id": "rsc-atlantis"}, headers=_EN)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert unknown.json()["message"] == "The office was not found."
    zero = await admin.put("/staff/staff-x", json={**STAFF, "fte": 0})
    assert at_field(zero) == (422, "fte", "fte_out_of_range")
    assert zero.json()["errors"][0]["message"] == "Der Stellenanteil muss größer als 0 und höchstens 1 sein."
    fraction = await admin.put("/staff/staff-x", json={**STAFF, "fte": 0.333}, headers=_EN)
    assert at_field(fraction) == (422, "fte", "fte_two_decimals")
    assert "two decimals" in fraction.json()["errors"][0]["message"]
    assert at_field(await admin.put("/staff/staff-x", json={**STAFF, "fte": 1.5})) == (422, "fte", "fte_out_of_range")
    assert at_field(await admin.put("/staff/staff-x", json=_without(STAFF, "office_id"))) == (
        422, "office_id", "missing"
    )  # fmt: skip
    assert at_field(await admin.put("/staff/staff-x", json={**STAFF, "service_lines": ["ASTRO"]})) == (
        422, "service_lines.0", "enum"
    )  # fmt: skip
    bad_id = await admin.put("/staff/staff%20x", json=STAFF)
    assert at_field(bad_id) == (422, "staff_id", "invalid_staff_id_format")
    assert "staff-x" not in {s["staff_id"] for s in (await admin.get("/staff")).json()}
    assert [row[3:5] for row in await audited(database, "/staff/{staff_id}")] == [("refused", 404)] + [
        ("refused", 422)
    ] * 6


async def test_a_changed_routing_rule_routes_the_next_registration(intake) -> None:
    as_, database = intake
    admin, counter = as_("admin"), as_("intake-hochfeld")
    aged_28 = {"family_name": "Nguyen", "given_name": "Thi", "birth_year": date.today().year - 28,
               "office_id": "rsc-hochfeld", "residence_status": "settlement_permit", "confirm_new": True}  # fmt: skip
    before = (await counter.post("/clients", json=aged_28)).json()
    assert (before["service_line"], before["service_lines"]) == ("MBE", ["MBE"])
    # The city extends the youth migration service to 30.
    changed = await admin.put("/routing-rules/jmd", json={**JMD, "max_age": 30})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**JMD, "rule_id": "jmd", "max_age": 30, "residence_statuses": None,
                              "unsecured_only": False, "active": True}  # fmt: skip
    rules = {r["rule_id"]: r for r in (await counter.get("/routing-rules")).json()}
    assert rules["jmd"]["max_age"] == 30
    after = (await counter.post("/clients", json={**aged_28, "given_name": "Lan"})).json()
    assert (after["service_line"], after["service_lines"]) == ("JMD", ["JMD", "MBE"])
    # A new rule: KIM for tolerated persons of any age, used at once.
    kim = await admin.put("/routing-rules/kim-toleration", json={
        "service_line": "KIM", "residence_statuses": ["toleration"], "description": "KIM for tolerated persons"})  # fmt: skip
    assert (kim.status_code, kim.json()["min_age"], kim.json()["residence_statuses"]) == (201, None, ["toleration"])
    tolerated = (await counter.post("/clients", json={**aged_28, "given_name": "Mai",
                                                      "residence_status": "toleration"})).json()  # fmt: skip
    assert tolerated["service_lines"] == ["JMD", "KIM", "MBE", "REFUGEE"]
    assert [row[4] for row in await audited(database, "/routing-rules/{rule_id}")] == [200, 201]


async def test_a_routing_rule_is_refused_at_the_wrong_field(intake) -> None:
    as_, _ = intake
    admin = as_("admin")
    backwards = await admin.put("/routing-rules/jmd", json={**JMD, "min_age": 30, "max_age": 20}, headers=_EN)
    assert at_field(backwards) == (422, "max_age", "min_age_not_below_max")
    assert "below the age limit" in backwards.json()["errors"][0]["message"]
    statuses = await admin.put("/routing-rules/jmd", json={**JMD, "residence_statuses": ["toleration", "martian"]})
    assert at_field(statuses) == (422, "residence_statuses.1", "unknown_residence_status")
    assert statuses.json()["errors"][0]["message"] == "Unbekannte Aufenthaltsstatus-Kategorie."
    assert at_field(await admin.put("/routing-rules/jmd", json={**JMD, "service_line": "ASTRO"})) == (
        422, "service_line", "enum"
    )  # fmt: skip
    assert at_field(await admin.put("/routing-rules/jmd", json={**JMD, "residence_statuses": []})) == (
        422, "residence_statuses", "no_statuses"
    )  # fmt: skip
    assert at_field(await admin.put("/routing-rules/JMD!", json=JMD)) == (422, "rule_id", "invalid_rule_id")
    assert at_field(await admin.put("/offices/RSC", json=OFFICE)) == (422, "office_id", "invalid_reference_id")
    assert at_field(await admin.put("/offices/rsc-x", json={**OFFICE, "languages": ["xx"]})) == (
        422, "languages", "unknown_language"
    )  # fmt: skip
    rules = {r["rule_id"]: r for r in (await admin.get("/routing-rules")).json()}
    assert (rules["jmd"]["min_age"], rules["jmd"]["max_age"], rules["jmd"]["residence_statuses"]) == (12, 27, None)
    assert "JMD!" not in rules and "rsc-x" not in {o["office_id"] for o in (await admin.get("/offices")).json()}


_EN = {"Accept-Language": "en"}


def _without(body: dict, *fields: str) -> dict:
    return {key: value for key, value in body.items() if key not in fields}
