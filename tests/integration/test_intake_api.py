"""Intake's HTTP API on the real database and the real Keycloak (no broker needed: events stop in
the outbox): the answers staff and the other services rely on, from registration to erasure,
each asked by a signed-in demo user, and each permission rule from its allowed and its denied
side."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta

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


def intake_app(database: Database, peers: dict | None = None) -> FastAPI:
    app = secured_api("intake", database)
    app.include_router(build_router(UnitsOfWork(database, "knotenpunkt/intake"), peers or {}))
    return check_guarded(app)


@pytest.fixture
async def intake(make_database, identity: Identity) -> AsyncIterator[tuple[As, Database]]:
    """`as_("intake-hochfeld")`: an HTTP client of intake signed in as that demo user."""
    database = await make_database("intake", MIGRATIONS)
    as_ = SignedIn(intake_app(database), identity, "http://intake")
    yield as_, database
    await as_.aclose()


def relayed(identity: Identity, service: str, person: str) -> dict[str, str]:
    """What a service sends when it asks intake on a person's behalf."""
    return {
        "Authorization": f"Bearer {identity.client_token(f'knotenpunkt-{service}')}",
        "X-On-Behalf-Of": identity.token(person),
    }


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
    as_, database = intake
    http = as_("intake-hochfeld")
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


async def test_registering_is_allowed_at_ones_own_office_only(intake) -> None:
    as_, database = intake
    assert (await as_("intake-hochfeld").post("/clients", json=person())).status_code == 201
    assert (await as_("lead-hochfeld").post("/clients", json=person())).status_code == 201
    elsewhere = await as_("intake-hamborn").post("/clients", json=person(), headers={"Accept-Language": "en"})
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_office")
    assert "another office" in elsewhere.json()["message"]
    coordinator = await as_("coordinator").post("/clients", json=person())
    assert (coordinator.status_code, coordinator.json()["code"]) == (403, "forbidden_role")
    assert (await as_("nobody").post("/clients", json=person())).status_code == 401
    assert await outbox_types(database) == ["ClientRegistered", "ClientRegistered"]
    async with database.connection() as connection:
        denied = await connection.fetch(
            "SELECT actor_id, outcome, reason FROM audit_log WHERE route = '/clients' AND status = 403 ORDER BY seq"
        )
    assert [tuple(row) for row in denied] == [
        ("intake-hamborn", "denied", "forbidden_office"),
        ("coordinator", "denied", "forbidden_role"),
    ]


async def test_a_likely_duplicate_is_a_409_with_the_candidates(intake) -> None:
    as_, _ = intake
    http = as_("intake-hochfeld")
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
    assert warning.json()["elsewhere"] == [] and "outside your reach" not in warning.json()["message"]
    search = await http.post("/clients/duplicate-check", json={"family_name": "Abd el Rahman", "given_name": "Khadija"})
    assert [c["client_id"] for c in search.json()["candidates"]] == [existing["client_id"]]
    assert (await http.post("/clients", json={**again, "confirm_new": True})).status_code == 201


async def test_the_duplicate_search_names_only_persons_of_ones_own_offices(intake) -> None:
    as_, database = intake
    registered = await as_("intake-hochfeld").post(
        "/clients", json=person(family_name="Kowalczyk", given_name="Jadwiga", birth_year=1975)
    )
    wanted = {"family_name": "Kowalczyk", "given_name": "Jadwiga", "birth_year": 1975}
    same_office = await as_("staff-hochfeld-1").post("/clients/duplicate-check", json=wanted)
    assert [c["client_id"] for c in same_office.json()["candidates"]] == [registered.json()["client_id"]]
    assert same_office.json()["elsewhere"] == []
    # Another office learns only that there is someone at Hochfeld, not who.
    other_office = await as_("intake-hamborn").post("/clients/duplicate-check", json=wanted)
    assert (other_office.status_code, other_office.json()) == (
        200, {"candidates": [], "elsewhere": [{"office_id": "rsc-hochfeld", "count": 1}]}
    )  # fmt: skip
    coordinator = await as_("coordinator").post("/clients/duplicate-check", json=wanted)
    assert (coordinator.status_code, coordinator.json()["code"]) == (403, "forbidden_role")
    async with database.connection() as connection:
        concerned = dict(
            await connection.fetch(
                "SELECT actor_id, client_ids FROM audit_log WHERE route = '/clients/duplicate-check' AND status = 200"
            )
        )
    # The audit names the person shown; the one only counted elsewhere was seen by nobody.
    assert [str(c) for c in concerned["staff-hochfeld-1"]] == [registered.json()["client_id"]]
    assert concerned["intake-hamborn"] == []


async def test_a_person_registered_at_another_office_is_reported_there_without_who(intake) -> None:
    as_, database = intake
    hamborn = await as_("intake-hamborn").post(
        "/clients", json=person(family_name="Wiśniewska", given_name="Zofia", birth_date="1969-07-14", birth_year=None,
                                phone="+49 203 777 1969", office_id="rsc-hamborn")
    )  # fmt: skip
    hamborn_id = hamborn.json()["client_id"]
    # The same person at Hochfeld's counter, heard a little differently, with only the year known.
    again = person(family_name="Wisniewska", given_name="Sofia", birth_year=1969, confirm_new=False)
    warning = await as_("intake-hochfeld").post("/clients", json=again, headers={"Accept-Language": "en"})
    assert warning.status_code == 409, warning.text
    body = warning.json()
    assert (body["code"], body["candidates"], body["elsewhere"]) == (
        "possible_duplicates", [], [{"office_id": "rsc-hamborn", "count": 1}]
    )  # fmt: skip
    assert "outside your reach (rsc-hamborn: 1)" in body["message"] and "ask that office" in body["message"]
    german = await as_("intake-hochfeld").post("/clients", json=again)
    assert "außerhalb Ihres Bereichs erfasst (rsc-hamborn: 1)" in german.json()["message"]
    # Nothing in the answer names the Hamborn person: no id, no name, no birth data, no phone.
    for text in (warning.text, german.text):
        for personal in (hamborn_id, "Wiśniewska", "Zofia", "1969-07-14", "777 1969"):
            assert personal not in text
    search = await as_("staff-hochfeld-1").post(
        "/clients/duplicate-check", json={"family_name": "Wisniewska", "given_name": "Sofia", "birth_year": 1969}
    )
    assert search.json() == {"candidates": [], "elsewhere": [{"office_id": "rsc-hamborn", "count": 1}]}
    # A different birth year is a different person: not counted.
    other = await as_("staff-hochfeld-1").post(
        "/clients/duplicate-check", json={"family_name": "Wisniewska", "given_name": "Sofia", "birth_year": 1970}
    )
    assert other.json() == {"candidates": [], "elsewhere": []}
    # Staff who checked with Hamborn confirm a new registration here.
    assert (await as_("intake-hochfeld").post("/clients", json={**again, "confirm_new": True})).status_code == 201
    async with database.connection() as connection:
        refused = await connection.fetch(
            "SELECT client_ids FROM audit_log WHERE route = '/clients' AND status = 409 ORDER BY seq"
        )
    assert [list(row["client_ids"]) for row in refused] == [[], []]


async def test_registration_checks_reference_data_and_the_routing_gate(intake) -> None:
    as_, _ = intake
    http = as_("intake-hochfeld")
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
    as_, database = intake
    http = as_("intake-hochfeld")
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
    # The phone numbers, not just "555": a random client id may contain that.
    assert "Marxloh" in payload and "555 01" not in payload


async def test_a_persons_record_is_read_and_corrected_at_its_office_only(intake, identity: Identity) -> None:
    as_, _ = intake
    client_id = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    url = f"/clients/{client_id}"
    assert (await as_("staff-hochfeld-1").get(url)).status_code == 200
    assert (await as_("lead-hochfeld").patch(url, json={"city": "Duisburg"}, headers={"If-Match": '"1"'})).json()[
        "changed"
    ] == ["city"]
    other = await as_("staff-hamborn-1").get(url)
    assert (other.status_code, other.json()["code"]) == (403, "forbidden_office")
    not_corrected = await as_("intake-hamborn").patch(url, json={"city": "Moers"}, headers={"If-Match": '"2"'})
    assert (not_corrected.status_code, not_corrected.json()["code"]) == (403, "forbidden_office")
    for role in ("coordinator", "admin", "dpo", "agency-jobcenter-duisburg"):
        refused = await as_(role).get(url)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role"), role
    # Cases relaying a case manager's request: the same check applies to the person behind it.
    http = as_("nobody")
    assert (await http.get(url, headers=relayed(identity, "cases", "staff-hochfeld-1"))).status_code == 200
    relayed_other = await http.get(url, headers=relayed(identity, "cases", "staff-hamborn-1"))
    assert (relayed_other.status_code, relayed_other.json()["code"]) == (403, "forbidden_office")
    # A service on its own may read nobody.
    alone = await http.get(url, headers={"Authorization": f"Bearer {identity.client_token('knotenpunkt-cases')}"})
    assert alone.status_code == 403
    assert (await http.get(url)).status_code == 401


async def test_merging_retires_the_duplicate_once(intake) -> None:
    as_, database = intake
    http = as_("intake-hochfeld")
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


async def test_merging_needs_both_records_in_reach(intake) -> None:
    as_, database = intake
    hochfeld = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    hamborn = (await as_("intake-hamborn").post("/clients", json=person(office_id="rsc-hamborn"))).json()["client_id"]
    other = (await as_("intake-hamborn").post("/clients", json=person(office_id="rsc-hamborn"))).json()["client_id"]
    across = await as_("lead-hamborn").post(f"/clients/{hamborn}/merge", json={"duplicate_client_id": hochfeld})
    assert (across.status_code, across.json()["code"]) == (403, "forbidden_office")
    case_manager = await as_("staff-hamborn-1").post(f"/clients/{hamborn}/merge", json={"duplicate_client_id": other})
    assert (case_manager.status_code, case_manager.json()["code"]) == (403, "forbidden_role")
    allowed = await as_("lead-hamborn").post(f"/clients/{hamborn}/merge", json={"duplicate_client_id": other})
    assert allowed.status_code == 200, allowed.text
    assert (await outbox_types(database)).count("ClientsMerged") == 1


async def test_consent_is_recorded_checked_shared_minimally_and_withdrawn_once(intake, identity: Identity) -> None:
    as_, database = intake
    http = as_("staff-hochfeld-1")
    today = date.today()
    client_id = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    given = await http.post(
        f"/clients/{client_id}/consents",
        json={"purpose": "sharing", "agency_kind": "jobcenter", "data_categories": ["name", "topic"],
              "text_version": "2026-01", "given_on": today.isoformat(),
              "valid_until": (today + timedelta(days=365)).isoformat()},
    )  # fmt: skip
    assert given.status_code == 201, given.text
    consent = given.json()
    assert (consent["valid_today"], consent["data_categories"], consent["expired_on"]) == (
        True,
        ["name", "topic"],
        None,
    )
    # Who recorded it comes from the sign-in.
    assert consent["recorded_by"] == "staff-hochfeld-1"
    assert (await http.get(f"/clients/{client_id}/consents")).json() == [consent]

    check = f"/clients/{client_id}/consent-check"
    params = {"purpose": "sharing", "agency_kind": "jobcenter", "categories": "name"}
    granted = await http.get(check, params=params)
    assert granted.json() == {
        "granted": True, "consent_id": consent["consent_id"], "categories": ["name", "topic"], "reason": None
    }  # fmt: skip
    nonsense = await http.get(check, params={"purpose": "sharing", "categories": "name,shoe_size"})
    assert nonsense.status_code == 422 and nonsense.json()["errors"][0]["field"] == "categories"
    from_referrals = relayed(identity, "referrals", "staff-hochfeld-1")
    shared = (await http.get(f"/clients/{client_id}/shared-data", params={"agency_kind": "jobcenter"},
                             headers=from_referrals)).json()  # fmt: skip
    assert shared["family_name"].startswith("Haddad") and shared["phone"] is None

    withdraw = f"/clients/{client_id}/consents/{consent['consent_id']}/withdraw"
    withdrawn = await as_("lead-hochfeld").post(withdraw, json={})
    assert withdrawn.status_code == 200 and withdrawn.json()["valid_today"] is False
    assert withdrawn.json()["withdrawn_by"] == "lead-hochfeld"
    twice = await http.post(withdraw, json={})
    assert (twice.status_code, twice.json()["code"]) == (409, "consent_not_active")
    unknown = await http.post(f"/clients/{client_id}/consents/{uuid.uuid4()}/withdraw", json={})
    assert unknown.status_code == 404
    refused = await http.get(
        f"/clients/{client_id}/shared-data", params={"agency_kind": "jobcenter"}, headers=from_referrals
    )
    assert (refused.status_code, refused.json()["reason"]) == (409, "consent_withdrawn")
    assert await outbox_types(database) == ["ClientRegistered", "ConsentGiven", "ConsentWithdrawn"]


async def test_who_recorded_a_consent_cannot_be_given_in_the_body(intake) -> None:
    as_, _ = intake
    client_id = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    forged = await as_("intake-hochfeld").post(
        f"/clients/{client_id}/consents",
        json={"purpose": "counselling", "data_categories": ["name"], "text_version": "1",
              "given_on": date.today().isoformat(), "recorded_by": "staff-hamborn-1"},
    )  # fmt: skip
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "recorded_by"


async def test_consents_are_kept_by_staff_of_the_persons_office_only(intake, identity: Identity) -> None:
    as_, _ = intake
    client_id = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    body = {"purpose": "sharing", "agency_id": "jobcenter-duisburg", "data_categories": ["name"],
            "text_version": "1", "given_on": date.today().isoformat()}  # fmt: skip
    url = f"/clients/{client_id}/consents"
    elsewhere = await as_("intake-hamborn").post(url, json=body)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_office")
    consent = (await as_("intake-hochfeld").post(url, json=body)).json()
    assert consent["recorded_by"] == "intake-hochfeld"
    assert (await as_("staff-hamborn-1").get(url)).status_code == 403
    assert (await as_("coordinator").get(url)).json()["code"] == "forbidden_role"
    assert (await as_("lead-hochfeld").get(url)).status_code == 200
    withdraw = f"{url}/{consent['consent_id']}/withdraw"
    assert (await as_("staff-hamborn-1").post(withdraw, json={})).json()["code"] == "forbidden_office"
    check = f"/clients/{client_id}/consent-check"
    params = {"purpose": "sharing", "agency_id": "jobcenter-duisburg", "categories": "name"}
    http = as_("nobody")
    from_referrals = await http.get(check, params=params, headers=relayed(identity, "referrals", "staff-hochfeld-2"))
    assert from_referrals.json()["granted"] is True
    other_office = await http.get(check, params=params, headers=relayed(identity, "referrals", "staff-hamborn-2"))
    assert (other_office.status_code, other_office.json()["code"]) == (403, "forbidden_office")


async def test_shared_data_is_answered_only_to_referrals(intake, identity: Identity) -> None:
    as_, _ = intake
    client_id = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    await as_("intake-hochfeld").post(
        f"/clients/{client_id}/consents",
        json={"purpose": "sharing", "agency_id": "jobcenter-duisburg", "data_categories": ["name"],
              "text_version": "1", "given_on": date.today().isoformat()},
    )  # fmt: skip
    url = f"/clients/{client_id}/shared-data"
    params = {"agency_id": "jobcenter-duisburg"}
    direct = await as_("staff-hochfeld-1").get(url, params=params)
    assert (direct.status_code, direct.json()["code"]) == (403, "forbidden_not_relayed")
    http = as_("nobody")
    via_cases = await http.get(url, params=params, headers=relayed(identity, "cases", "staff-hochfeld-1"))
    assert (via_cases.status_code, via_cases.json()["code"]) == (403, "forbidden_not_relayed")
    via_referrals = await http.get(url, params=params, headers=relayed(identity, "referrals", "staff-hochfeld-1"))
    assert via_referrals.status_code == 200 and via_referrals.json()["family_name"].startswith("Haddad")
    other = await http.get(url, params=params, headers=relayed(identity, "referrals", "staff-hamborn-1"))
    assert (other.status_code, other.json()["code"]) == (403, "forbidden_office")
    intake_staff = await http.get(url, params=params, headers=relayed(identity, "referrals", "intake-hochfeld"))
    assert (intake_staff.status_code, intake_staff.json()["code"]) == (403, "forbidden_role")
    # The agency itself, through referrals' inbox: what was consented for it, for no other agency.
    agency = relayed(identity, "referrals", "agency-jobcenter-duisburg")
    own = await http.get(url, params=params, headers=agency)
    assert own.status_code == 200 and own.json()["family_name"].startswith("Haddad")
    foreign = await http.get(url, params={"agency_id": "jugendamt-duisburg"}, headers=agency)
    assert (foreign.status_code, foreign.json()["code"]) == (403, "forbidden_agency")
    by_kind = await http.get(url, params={"agency_kind": "jobcenter"}, headers=agency)
    assert (by_kind.status_code, by_kind.json()["code"]) == (403, "forbidden_agency")


async def test_an_erased_person_answers_410_everywhere_and_erasing_again_is_fine(intake) -> None:
    as_, database = intake
    http = as_("intake-hochfeld")
    client_id = (await http.post("/clients", json=person(family_name="Vasilescu"))).json()["client_id"]
    erased = await as_("dpo").post(f"/clients/{client_id}/erase")
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased_client_ids"] == [client_id]
    assert (await as_("dpo").post(f"/clients/{client_id}/erase")).json() == erased.json()
    url = f"/clients/{client_id}"
    answers = [
        await http.get(url, headers={"Accept-Language": "en"}),
        await http.patch(url, json={"district": "Marxloh"}, headers={"If-Match": '"2"'}),
        await http.get(f"{url}/consents"),
        await http.get(f"{url}/consent-check", params={"purpose": "sharing"}),
    ]
    assert [answer.status_code for answer in answers] == [410] * 4
    assert all(answer.json()["code"] == "client_erased" for answer in answers)
    assert "erased" in answers[0].json()["message"]
    missing = await http.get(f"/clients/{uuid.uuid4()}")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (await as_("dpo").post(f"/clients/{uuid.uuid4()}/erase")).status_code == 404
    assert await outbox_types(database) == ["ClientRegistered", "ClientErased"]


async def test_only_the_data_protection_officer_erases(intake) -> None:
    as_, database = intake
    client_id = (await as_("intake-hochfeld").post("/clients", json=person())).json()["client_id"]
    for role in ("intake-hochfeld", "lead-hochfeld", "staff-hochfeld-1", "admin"):
        refused = await as_(role).post(f"/clients/{client_id}/erase")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role"), role
    assert (await as_("intake-hochfeld").get(f"/clients/{client_id}")).status_code == 200
    assert (await as_("dpo").post(f"/clients/{client_id}/erase")).status_code == 200
    assert await outbox_types(database) == ["ClientRegistered", "ClientErased"]


async def test_reference_data_is_served_to_every_signed_in_role(intake) -> None:
    as_, _ = intake
    http = as_("coordinator")
    offices = (await http.get("/offices")).json()
    assert {o["office_id"] for o in offices} == {"rsc-hamborn", "rsc-hochfeld", "rsc-rheinhausen"}
    assert all(o["staff"] for o in offices) and isinstance(offices[0]["staff"][0]["fte"], float)
    statuses = {s["code"]: s["secure"] for s in (await http.get("/residence-statuses")).json()}
    assert (statuses["toleration"], statuses["settlement_permit"]) == (False, True)
    rules = {r["rule_id"]: r for r in (await as_("agency-jobcenter-duisburg").get("/routing-rules")).json()}
    assert set(rules) == {"jmd", "mbe", "refugee", "kim"}
    assert (rules["jmd"]["min_age"], rules["jmd"]["max_age"], rules["kim"]["active"]) == (12, 27, False)
    assert (await as_("nobody").get("/offices")).status_code == 401


async def test_an_agencys_software_reads_no_reference_data(intake, identity: Identity) -> None:
    as_, _ = intake
    machine = {"Authorization": f"Bearer {identity.client_token('agency-jobcenter-duisburg')}"}
    refused = await as_("nobody").get("/offices", headers=machine)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")


async def test_every_demo_staff_member_is_in_the_staff_list(intake) -> None:
    _, database = intake
    from tools.realm import STAFF  # the realm's demo users, generated from this list

    async with database.connection() as connection:
        rows = {row["staff_id"]: row for row in await connection.fetch("SELECT * FROM staff")}
    assert {username for username, *_ in STAFF} <= set(rows)
    for username, role, office, *_ in STAFF:
        assert rows[username]["office_id"] == office, username
        if role != "case_manager":
            assert (rows[username]["service_lines"], float(rows[username]["fte"])) == ([], 1.0), username
