"""Intake at the counter: duplicates, corrections, merging, consent; and what leaves intake."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import decode
from knotenpunkt.events import ClientRegistered, ClientsMerged, ClientUpdated, ConsentGiven, ConsentWithdrawn
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import read_topic
from tools.stack import Stack

pytestmark = pytest.mark.e2e


def person(**changes: object) -> dict:
    unique_name = f"Haddad{uuid.uuid4().hex[:6]}"
    values = {
        "family_name": unique_name, "given_name": "Omar", "birth_year": 1988, "office_id": "rsc-hochfeld",
        "gender": "male", "nationalities": ["SY"], "languages": ["ar", "de"], "counselling_language": "ar",
        "phone": "+49 203 555 0100", "street": "Brückenstraße 1", "postcode": "47053", "city": "Duisburg",
        "district": "Hochfeld", "household_members": [{"relation": "partner"}, {"relation": "child", "count": 3}],
        "residence_status": "asylum_procedure", "confirm_new": True, "arrival_date": "2023-09-01", "access_route": "open_office_hours",
    }  # fmt: skip
    values.update(changes)
    return values


async def events_of(stack: Stack, client_id: str) -> list:
    return [
        decode(r.headers, r.value)
        for r in await read_topic(stack.kafka_bootstrap, topics.CLIENTS)
        if r.key == client_id.encode()
    ]


async def test_registration_routes_by_age_and_status_and_shares_only_attributes(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        answer = await http.post("/clients", json=person())
    assert answer.status_code == 201, answer.text
    client = answer.json()
    # An adult with permission to stay during the asylum procedure: MBE and refugee counselling.
    assert client["service_lines"] == ["MBE", "REFUGEE"]

    async def registered() -> list:
        return await events_of(stack, client["client_id"])

    [envelope] = await eventually(registered)
    event = envelope.event
    assert isinstance(event, ClientRegistered)
    assert (event.age_band.value, event.household_size, event.arrival_year) == ("27-44", 5, 2023)
    assert event.nationalities == ("SY",) and event.residence_status == "asylum_procedure"
    body = next(
        r.value
        for r in await read_topic(stack.kafka_bootstrap, topics.CLIENTS)
        if r.key == client["client_id"].encode()
    )
    for personal in (b"Haddad", b"555 0100", "Brückenstraße".encode(), b"47053", b"1988"):
        assert personal not in body


async def test_a_likely_duplicate_is_shown_and_staff_decide(stack: Stack, identity) -> None:
    first = person(confirm_new=False, family_name="Abdelrahman", given_name="Chadija", birth_year=1961)
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        assert (await http.post("/clients", json=first)).status_code == 201
        # The same person, transliterated differently, with the full birth date this time.
        again = {**first, "family_name": "Abd el Rahman", "given_name": "Khadija", "birth_date": "1961-03-04"}
        warning = await http.post("/clients", json=again, headers={"Accept-Language": "en"})
        assert warning.status_code == 409
        assert warning.json()["code"] == "possible_duplicates"
        assert [c["family_name"] for c in warning.json()["candidates"]] == [first["family_name"]]
        confirmed = await http.post("/clients", json={**again, "confirm_new": True})
        assert confirmed.status_code == 201


async def test_corrections_need_the_current_version_and_emit_only_changed_attributes(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        client = (await http.post("/clients", json=person())).json()
        url = f"/clients/{client['client_id']}"
        etag = (await http.get(url)).headers["ETag"]
        changed = await http.patch(
            url, json={"district": "Marxloh", "phone": "+49 203 555 0199"}, headers={"If-Match": etag}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["changed"] == ["district", "phone"]
        # A second clerk still holding the old version gets a clear 409, not a lost update.
        stale = await http.patch(url, json={"district": "Hamborn"}, headers={"If-Match": etag})
        assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
        assert "Version 2" in stale.json()["message"]
        # A correction that does not say which version it is based on is refused outright.
        blind = await http.patch(url, json={"district": "Hamborn"})
        assert blind.status_code == 428
        assert (await http.get(url)).json()["district"] == "Marxloh"

    async def updated() -> list:
        return [e for e in await events_of(stack, client["client_id"]) if isinstance(e.event, ClientUpdated)]

    [update] = await eventually(updated)
    assert update.event.changed == ("district",) and update.event.district == "Marxloh"
    assert "555" not in update.event.model_dump_json()


async def test_merging_retires_the_duplicate_and_tells_the_other_services(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        keep = (await http.post("/clients", json=person())).json()["client_id"]
        duplicate = (await http.post("/clients", json=person())).json()["client_id"]
        merged = await http.post(f"/clients/{keep}/merge", json={"duplicate_client_id": duplicate})
        assert merged.status_code == 200, merged.text
        again = await http.post(f"/clients/{keep}/merge", json={"duplicate_client_id": duplicate})
        assert again.status_code == 409

    async def merge_event() -> list:
        return [e for e in await events_of(stack, keep) if isinstance(e.event, ClientsMerged)]

    [event] = await eventually(merge_event)
    assert str(event.event.merged_client_id) == duplicate


async def test_consent_is_recorded_checked_shared_minimally_and_withdrawn(stack: Stack, identity) -> None:
    today = date.today()
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        client_id = (await http.post("/clients", json=person())).json()["client_id"]
        given = await http.post(
            f"/clients/{client_id}/consents",
            json={"purpose": "sharing", "agency_kind": "jobcenter", "data_categories": ["name", "topic"],
                  "text_version": "2026-01", "given_on": today.isoformat(),
                  "valid_until": (today + timedelta(days=365)).isoformat()},
        )  # fmt: skip
        assert given.status_code == 201, given.text
        consent_id = given.json()["consent_id"]

        check = f"/clients/{client_id}/consent-check"
        name_ok = await http.get(check, params={"purpose": "sharing", "agency_kind": "jobcenter", "categories": "name"})
        assert name_ok.json()["granted"] is True
        contact = await http.get(
            check, params={"purpose": "sharing", "agency_kind": "jobcenter", "categories": "contact"}
        )
        assert contact.json() | {"granted": False, "reason": "categories_not_covered"} == contact.json()
        other_kind = await http.get(check, params={"purpose": "sharing", "agency_kind": "jugendamt"})
        assert other_kind.json()["granted"] is False

        # What an agency may receive is answered only to referrals, relaying a case manager's request.
        shared_data = f"/clients/{client_id}/shared-data"
        direct = await http.get(shared_data, params={"agency_kind": "jobcenter"})
        assert (direct.status_code, direct.json()["code"]) == (403, "forbidden_role")
        by_referrals = {
            "Authorization": f"Bearer {identity.client_token('knotenpunkt-referrals')}",
            "X-On-Behalf-Of": identity.token("staff-hochfeld-1"),
        }
        shared = (await http.get(shared_data, params={"agency_kind": "jobcenter"}, headers=by_referrals)).json()
        assert shared["family_name"].startswith("Haddad") and shared["phone"] is None and shared["birth_date"] is None

        withdrawn = await http.post(f"/clients/{client_id}/consents/{consent_id}/withdraw", json={})
        assert withdrawn.status_code == 200 and withdrawn.json()["valid_today"] is False
        after = await http.get(check, params={"purpose": "sharing", "agency_kind": "jobcenter", "categories": "name"})
        assert after.json()["reason"] == "consent_withdrawn"
        refused = await http.get(shared_data, params={"agency_kind": "jobcenter"}, headers=by_referrals)
        assert refused.status_code == 409

        invalid = await http.post(
            f"/clients/{client_id}/consents",
            json={"purpose": "sharing", "data_categories": [], "text_version": "", "given_on": "2999-01-01"},
            headers={"Accept-Language": "en"},
        )  # fmt: skip
        assert invalid.status_code == 422
        assert {e["field"] for e in invalid.json()["errors"]} >= {"data_categories", "text_version", "given_on"}

    async def consent_events() -> list:
        found = [type(e.event) for e in await events_of(stack, client_id)]
        return found if ConsentWithdrawn in found else []

    assert await eventually(consent_events) == [ClientRegistered, ConsentGiven, ConsentWithdrawn]


async def test_reference_data_is_served(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        offices = (await http.get("/offices")).json()
        statuses = {s["code"] for s in (await http.get("/residence-statuses")).json()}
        rules = {r["rule_id"] for r in (await http.get("/routing-rules")).json()}
    assert {o["office_id"] for o in offices} == {"rsc-hamborn", "rsc-hochfeld", "rsc-rheinhausen"}
    assert all(o["staff"] for o in offices)
    assert {"toleration", "asylum_procedure", "settlement_permit"} <= statuses
    assert rules == {"jmd", "mbe", "refugee", "kim"}


async def test_a_duplicate_search_finds_variants_and_keeps_names_out_of_the_logs(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, auth=identity.auth("intake-hochfeld")
    ) as http:
        registered = await http.post(
            "/clients", json=person(family_name="Kowalczyk", given_name="Jadwiga", birth_year=1975)
        )
        assert registered.status_code == 201
        found = await http.post(
            "/clients/duplicate-check", json={"family_name": "Kovalczik", "given_name": "Jadwiga", "birth_year": 1975}
        )
        assert found.status_code == 200
        assert registered.json()["client_id"] in {c["client_id"] for c in found.json()["candidates"]}
        # Even a search sent the old way (names in the query string) leaves no name in the log.
        await http.get("/clients/duplicate-check", params={"family_name": "Kovalczik"})
    log = (stack.logs / "intake.log").read_text()
    assert "Kowalczyk" not in log and "Kovalczik" not in log and "Jadwiga" not in log
