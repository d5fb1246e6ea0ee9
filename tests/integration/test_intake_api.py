"""Intake's HTTP API on the real database (no broker needed: events stop in the outbox): the
answers staff and the other services rely on, from registration to erasure."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest

from intake.api import build_router
from intake.app import MIGRATIONS
from knotenpunkt.db import Database
from knotenpunkt.http import create_api
from knotenpunkt.uow import UnitsOfWork

pytestmark = pytest.mark.integration


@pytest.fixture
async def intake(make_database) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    database = await make_database("intake", MIGRATIONS)
    app = create_api("intake under test")
    app.include_router(build_router(UnitsOfWork(database, "knotenpunkt/intake")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as http:
        yield http, database


def person(**changes: object) -> dict:
    values = {
        "family_name": f"Haddad{uuid.uuid4().hex[:6]}", "given_name": "Omar", "birth_year": 1988,
        "office_id": "rsc-hochfeld", "phone": "+49 203 555 0100", "district": "Hochfeld",
        "household_members": [{"relation": "child", "count": 2}], "residence_status": "asylum_procedure",
        "confirm_new": True,
    }  # fmt: skip
    values.update(changes)
    return values


async def outbox_types(database: Database) -> list[str]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT event_type FROM outbox ORDER BY id")
    return [row["event_type"].split(".")[-2] for row in rows]


async def test_registration_answers_the_routing_and_a_repeat_with_the_same_key_changes_nothing(intake) -> None:
    http, database = intake
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    registered = await http.post("/clients", json=person(), headers=headers)
    assert registered.status_code == 201, registered.text
    client = registered.json()
    assert set(client) == {"client_id", "service_line", "service_lines", "office_id", "registered_at", "version"}
    assert (client["service_line"], client["service_lines"], client["version"]) == ("MBE", ["MBE", "REFUGEE"], 1)
    repeated = await http.post("/clients", json=person(), headers=headers)
    assert repeated.status_code == 422 and repeated.json()["code"] == "idempotency_key_reused"
    same = await http.post("/clients", json=person(family_name="Other"), headers={"Idempotency-Key": "k1"})
    again = await http.post("/clients", json=person(family_name="Other"), headers={"Idempotency-Key": "k1"})
    assert (again.status_code, again.json()) == (201, same.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await outbox_types(database) == ["ClientRegistered", "ClientRegistered"]


async def test_a_likely_duplicate_is_a_409_with_the_candidates(intake) -> None:
    http, _ = intake
    first = person(family_name="Abdelrahman", given_name="Chadija", birth_year=1961, confirm_new=False)
    existing = (await http.post("/clients", json=first)).json()
    again = {**first, "family_name": "Abd el Rahman", "given_name": "Khadija", "birth_date": "1961-03-04"}
    warning = await http.post("/clients", json=again, headers={"Accept-Language": "en"})
    assert warning.status_code == 409
    assert warning.json()["code"] == "possible_duplicates" and "confirm_new" in warning.json()["message"]
    assert warning.json()["candidates"] == [
        {"client_id": existing["client_id"], "family_name": "Abdelrahman", "given_name": "Chadija",
         "birth_date": None, "birth_year": 1961, "office_id": "rsc-hochfeld"}
    ]  # fmt: skip
    search = await http.post("/clients/duplicate-check", json={"family_name": "Abd el Rahman", "given_name": "Khadija"})
    assert [c["client_id"] for c in search.json()] == [existing["client_id"]]
    assert (await http.post("/clients", json={**again, "confirm_new": True})).status_code == 201


async def test_registration_checks_reference_data_and_the_routing_gate(intake) -> None:
    http, _ = intake
    office = await http.post("/clients", json=person(office_id="rsc-nowhere"))
    assert office.status_code == 422 and office.json()["errors"][0]["field"] == "office_id"
    assert office.json()["errors"][0]["code"] == "unknown_office"
    status = await http.post("/clients", json=person(residence_status="martian"))
    assert status.json()["errors"][0]["code"] == "unknown_residence_status"
    unroutable = await http.post("/clients", json=person(birth_year=None, residence_status="settlement_permit"))
    assert unroutable.status_code == 422
    assert (
        unroutable.json()["errors"][0] | {"field": "birth_date", "code": "cannot_route"}
        == unroutable.json()["errors"][0]
    )
    chosen = await http.post(
        "/clients", json=person(birth_year=None, residence_status="settlement_permit", service_lines=["KIM"])
    )
    assert chosen.status_code == 201 and chosen.json()["service_lines"] == ["KIM"]


async def test_a_correction_needs_the_current_version_and_shares_only_attributes(intake) -> None:
    http, database = intake
    client_id = (await http.post("/clients", json=person())).json()["client_id"]
    url = f"/clients/{client_id}"
    record = await http.get(url)
    assert record.headers["ETag"] == '"1"'
    assert record.json()["household_members"] == [{"relation": "child", "count": 2}]
    assert record.json()["phone"] == "+49 203 555 0100" and record.json()["version"] == 1

    blind = await http.patch(url, json={"district": "Marxloh"})
    assert (blind.status_code, blind.json()["code"]) == (428, "if_match_required")
    changed = await http.patch(
        url, json={"district": "Marxloh", "phone": "+49 203 555 0199"}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"client_id": client_id, "version": 2, "changed": ["district", "phone"]}
    assert changed.headers["ETag"] == '"2"'
    stale = await http.patch(url, json={"district": "Hamborn"}, headers={"If-Match": '"1"'})
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")
    unreadable = await http.patch(url, json={"district": "Hamborn"}, headers={"If-Match": "two"})
    assert unreadable.status_code == 422 and unreadable.json()["errors"][0]["field"] == "If-Match"
    nothing = await http.patch(url, json={"district": "Marxloh"}, headers={"If-Match": '"2"'})
    assert nothing.json() == {"client_id": client_id, "version": 2, "changed": []}
    bad_status = await http.patch(url, json={"residence_status": "martian"}, headers={"If-Match": '"2"'})
    assert bad_status.status_code == 422
    assert (await http.get(url)).json()["district"] == "Marxloh"
    assert await outbox_types(database) == ["ClientRegistered", "ClientUpdated"]
    async with database.connection() as connection:
        payload = (await connection.fetchval("SELECT body FROM outbox ORDER BY id DESC LIMIT 1")).decode()
    assert "Marxloh" in payload and "555" not in payload


async def test_merging_retires_the_duplicate_once(intake) -> None:
    http, database = intake
    keep = (await http.post("/clients", json=person())).json()["client_id"]
    duplicate = (await http.post("/clients", json=person())).json()["client_id"]
    merged = await http.post(f"/clients/{keep}/merge", json={"duplicate_client_id": duplicate})
    assert merged.json() == {"client_id": keep, "merged_client_id": duplicate}
    again = await http.post(f"/clients/{keep}/merge", json={"duplicate_client_id": duplicate})
    assert (again.status_code, again.json()["code"], again.json()["merged_into"]) == (409, "already_merged", keep)
    itself = await http.post(f"/clients/{keep}/merge", json={"duplicate_client_id": keep})
    assert itself.status_code == 409 and itself.json()["errors"][0]["code"] == "merge_same"
    not_an_id = await http.post(f"/clients/{keep}/merge", json={"duplicate_client_id": "nope"})
    assert not_an_id.status_code == 422 and not_an_id.json()["errors"][0]["field"] == "duplicate_client_id"
    # The retired record leads to the surviving one.
    assert (await http.get(f"/clients/{duplicate}")).json()["client_id"] == keep
    assert (await outbox_types(database))[-1] == "ClientsMerged"


async def test_consent_is_recorded_checked_shared_minimally_and_withdrawn_once(intake) -> None:
    http, database = intake
    today = date.today()
    client_id = (await http.post("/clients", json=person())).json()["client_id"]
    given = await http.post(
        f"/clients/{client_id}/consents",
        json={"purpose": "sharing", "agency_kind": "jobcenter", "data_categories": ["name", "topic"],
              "text_version": "2026-01", "given_on": today.isoformat(),
              "valid_until": (today + timedelta(days=365)).isoformat(), "recorded_by": "staff-hochfeld-1"},
    )  # fmt: skip
    assert given.status_code == 201, given.text
    consent = given.json()
    assert (consent["valid_today"], consent["data_categories"], consent["expired_on"]) == (
        True,
        ["name", "topic"],
        None,
    )
    assert (await http.get(f"/clients/{client_id}/consents")).json() == [consent]

    check = f"/clients/{client_id}/consent-check"
    granted = await http.get(check, params={"purpose": "sharing", "agency_kind": "jobcenter", "categories": "name"})
    assert granted.json() == {
        "granted": True, "consent_id": consent["consent_id"], "categories": ["name", "topic"], "reason": None
    }  # fmt: skip
    nonsense = await http.get(check, params={"purpose": "sharing", "categories": "name,shoe_size"})
    assert nonsense.status_code == 422 and nonsense.json()["errors"][0]["field"] == "categories"
    shared = (await http.get(f"/clients/{client_id}/shared-data", params={"agency_kind": "jobcenter"})).json()
    assert shared["family_name"].startswith("Haddad") and shared["phone"] is None

    withdraw = f"/clients/{client_id}/consents/{consent['consent_id']}/withdraw"
    withdrawn = await http.post(withdraw, json={})
    assert withdrawn.status_code == 200 and withdrawn.json()["valid_today"] is False
    twice = await http.post(withdraw, json={})
    assert (twice.status_code, twice.json()["code"]) == (409, "consent_not_active")
    unknown = await http.post(f"/clients/{client_id}/consents/{uuid.uuid4()}/withdraw", json={})
    assert unknown.status_code == 404
    refused = await http.get(f"/clients/{client_id}/shared-data", params={"agency_kind": "jobcenter"})
    assert (refused.status_code, refused.json()["reason"]) == (409, "consent_withdrawn")
    assert await outbox_types(database) == ["ClientRegistered", "ConsentGiven", "ConsentWithdrawn"]


async def test_an_erased_person_answers_410_everywhere_and_erasing_again_is_fine(intake) -> None:
    http, database = intake
    client_id = (await http.post("/clients", json=person(family_name="Vasilescu"))).json()["client_id"]
    erased = await http.post(f"/clients/{client_id}/erase")
    assert erased.status_code == 200, erased.text
    assert (await http.post(f"/clients/{client_id}/erase")).json() == erased.json()
    url = f"/clients/{client_id}"
    answers = [
        await http.get(url, headers={"Accept-Language": "en"}),
        await http.patch(url, json={"district": "Marxloh"}, headers={"If-Match": '"2"'}),
        await http.get(f"{url}/consents"),
        await http.get(f"{url}/consent-check", params={"purpose": "sharing"}),
        await http.get(f"{url}/shared-data"),
    ]
    assert [answer.status_code for answer in answers] == [410] * 5
    assert all(answer.json()["code"] == "client_erased" for answer in answers)
    assert "erased" in answers[0].json()["message"]
    missing = await http.get(f"/clients/{uuid.uuid4()}")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (await http.post(f"/clients/{uuid.uuid4()}/erase")).status_code == 404
    assert await outbox_types(database) == ["ClientRegistered", "ClientErased"]


async def test_reference_data_is_served(intake) -> None:
    http, _ = intake
    offices = (await http.get("/offices")).json()
    assert {o["office_id"] for o in offices} == {"rsc-hamborn", "rsc-hochfeld", "rsc-rheinhausen"}
    assert all(o["staff"] for o in offices) and isinstance(offices[0]["staff"][0]["fte"], float)
    statuses = {s["code"]: s["secure"] for s in (await http.get("/residence-statuses")).json()}
    assert (statuses["toleration"], statuses["settlement_permit"]) == (False, True)
    rules = {r["rule_id"]: r for r in (await http.get("/routing-rules")).json()}
    assert set(rules) == {"jmd", "mbe", "refugee", "kim"}
    assert (rules["jmd"]["min_age"], rules["jmd"]["max_age"], rules["kim"]["active"]) == (12, 27, False)
