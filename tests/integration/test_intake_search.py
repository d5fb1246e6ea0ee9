"""Intake's additions for the web app (issue 10) on the real database and the real Keycloak: the
person search (Kölner Phonetik, parts of a name, variants, birth data; filtered to the searcher's
offices in SQL; paged; audited with the persons listed), names for a page of cases in one call,
and the correction of the birth date. Each rule from its allowed and its denied side."""

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


def intake_app(database: Database) -> FastAPI:
    app = secured_api("intake", database)
    app.include_router(build_router(UnitsOfWork(database, "knotenpunkt/intake"), {}))
    return check_guarded(app)


@pytest.fixture
async def intake(make_database, identity: Identity) -> AsyncIterator[tuple[As, Database]]:
    """`as_("intake-hochfeld")`: an HTTP client of intake signed in as that demo user."""
    database = await make_database("intake", MIGRATIONS)
    as_ = SignedIn(intake_app(database), identity, "http://intake")
    yield as_, database
    await as_.aclose()


async def register(http: httpx.AsyncClient, family_name: str, given_name: str, **more: object) -> str:
    body = {"family_name": family_name, "given_name": given_name, "office_id": "rsc-hochfeld",
            "birth_year": 1990, "confirm_new": True, **more}  # fmt: skip
    answer = await http.post("/clients", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["client_id"]


async def found(http: httpx.AsyncClient, **search: object) -> list[str]:
    answer = await http.post("/clients/search", json=search)
    assert answer.status_code == 200, answer.text
    return [person["client_id"] for person in answer.json()["persons"]]


async def audited_clients(database: Database, route: str) -> list[tuple[str, int, list[str]]]:
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT actor_id, status, client_ids FROM audit_log WHERE route = $1 ORDER BY seq", route
        )
    return [(row["actor_id"], row["status"], sorted(str(c) for c in row["client_ids"])) for row in rows]


async def test_the_search_finds_spelling_variants_parts_of_names_variants_and_birth_data(intake) -> None:
    as_, database = intake
    counter = as_("intake-hochfeld")
    rania = await register(counter, "Haddad", "Rania", name_variants=["Hadad"], birth_date="1990-05-04")
    ayse = await register(counter, "Yılmaz", "Ayşe", birth_year=1985, name_variants=["Yilmaz"])
    omar = await register(counter, "Abd el Rahman", "Omar", birth_year=1990)
    # Spelling variants by Kölner Phonetik, in any order, upper or lower case.
    assert await found(counter, name="Hadat") == [rania]
    assert await found(counter, name="rania HADDAD") == [rania]
    assert await found(counter, name="Jilmas") == [ayse]
    # A part of a name, of a family name written in several words, of a variant.
    assert await found(counter, name="Had") == [rania]
    assert await found(counter, name="el Rah") == [omar]
    # Kölner Phonetik hears "Rahm" as "Rania": a sound-alike is listed, staff see the names.
    assert sorted(await found(counter, name="rahm")) == sorted([rania, omar])
    assert await found(counter, name="Yilm") == [ayse]
    # Every word must match: a second name that fits nobody finds nobody.
    assert await found(counter, name="Haddad Omar") == []
    # Birth data alone or with a name; a date matches a person known only by the year.
    assert sorted(await found(counter, birth_year=1990)) == sorted([rania, omar])
    assert await found(counter, name="Omar", birth_date="1990-11-30") == [omar]
    assert await found(counter, name="Rania", birth_date="1990-11-30") == []
    # LIKE's wildcards typed are plain characters.
    assert await found(counter, name="%") == []
    # The audit entry names exactly the persons listed.
    entries = await audited_clients(database, "/clients/search")
    assert entries[0] == ("intake-hochfeld", 200, [rania])
    assert entries[-1] == ("intake-hochfeld", 200, [])


async def test_the_search_lists_only_persons_of_the_searchers_offices_and_the_coordinator_none(intake) -> None:
    as_, database = intake
    hochfeld = await register(as_("intake-hochfeld"), "Nowak", "Jan")
    hamborn = await register(as_("intake-hamborn"), "Nowak", "Jana", office_id="rsc-hamborn")
    assert await found(as_("intake-hochfeld"), name="Nowak") == [hochfeld]
    assert await found(as_("staff-hochfeld-2"), name="nowak") == [hochfeld]
    assert await found(as_("intake-hamborn"), name="Nowak") == [hamborn]
    for refused in ("coordinator", "admin", "dpo"):
        answer = await as_(refused).post("/clients/search", json={"name": "Nowak"})
        assert answer.status_code == 403, refused
        assert answer.json()["code"] == "forbidden_role"
    assert (await as_("nobody").post("/clients/search", json={"name": "Nowak"})).status_code == 401
    denied = [entry for entry in await audited_clients(database, "/clients/search") if entry[1] == 403]
    assert [entry[0] for entry in denied] == ["coordinator", "admin", "dpo"]
    assert all(entry[2] == [] for entry in denied)


async def test_the_search_is_paged_and_needs_something_to_search_for(intake) -> None:
    as_, _database = intake
    counter = as_("intake-hochfeld")
    ids = [await register(counter, "Petrov", f"Ivan{letter}") for letter in "abc"]
    first = (await counter.post("/clients/search", json={"name": "Petrov", "limit": 2})).json()
    assert ([p["client_id"] for p in first["persons"]], first["more"]) == (ids[:2], True)
    rest = (await counter.post("/clients/search", json={"name": "Petrov", "limit": 2, "offset": 2})).json()
    assert ([p["client_id"] for p in rest["persons"]], rest["more"]) == (ids[2:], False)
    assert set(first["persons"][0]) == {"client_id", "family_name", "given_name", "name_variants", "birth_date",
                                        "birth_year", "office_id", "service_lines"}  # fmt: skip
    empty = await counter.post("/clients/search", json={"name": "  "}, headers={"Accept-Language": "de"})
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["code"] == "search_needs_criteria"
    assert "Geburtsjahr" in empty.json()["errors"][0]["message"]
    too_many = await counter.post("/clients/search", json={"name": "Petrov", "limit": 51})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "limit"


async def test_names_for_a_page_of_cases_leave_out_the_persons_one_may_not_read(intake) -> None:
    as_, database = intake
    mine = await register(as_("intake-hochfeld"), "Haddad", "Rania", birth_date="1990-05-04")
    other = await register(as_("intake-hamborn"), "Kaya", "Emre", office_id="rsc-hamborn")
    unknown = str(uuid.uuid4())
    answer = await as_("staff-hochfeld-1").post("/clients/names", json={"client_ids": [mine, other, unknown, mine]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"client_id": mine, "family_name": "Haddad", "given_name": "Rania", "birth_year": 1990}]
    hamborn = await as_("lead-hamborn").post("/clients/names", json={"client_ids": [mine, other]})
    assert [person["client_id"] for person in hamborn.json()] == [other]
    refused = await as_("coordinator").post("/clients/names", json={"client_ids": [mine]})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
    too_many = await as_("staff-hochfeld-1").post("/clients/names", json={"client_ids": [unknown] * 201})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "client_ids"
    assert await audited_clients(database, "/clients/names") == [
        ("staff-hochfeld-1", 200, [mine]),
        ("lead-hamborn", 200, [other]),
        ("coordinator", 403, []),
        ("staff-hochfeld-1", 422, []),
    ]


async def test_the_birth_date_is_corrected_with_its_year_and_other_services_learn_the_age_band(intake) -> None:
    as_, database = intake
    counter = as_("intake-hochfeld")
    client_id = await register(counter, "Haddad", "Rania", birth_year=2000)
    record = await counter.get(f"/clients/{client_id}")
    corrected = await counter.patch(
        f"/clients/{client_id}", json={"birth_date": "1970-02-03"}, headers={"If-Match": record.headers["ETag"]}
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["changed"] == ["birth_date", "birth_year"]
    now = (await counter.get(f"/clients/{client_id}")).json()
    assert (now["birth_date"], now["birth_year"]) == ("1970-02-03", 1970)
    async with database.connection() as connection:
        body = await connection.fetchval(
            "SELECT convert_from(body, 'UTF8') FROM outbox WHERE event_type LIKE '%ClientUpdated%' ORDER BY id DESC"
        )
    assert '"age_band":"45-64"' in body.replace(" ", "")
    assert "1970" not in body  # the birth data itself stays in intake
    etag = corrected.headers["ETag"]
    # A year that contradicts the stored date is refused at the field; both together must agree.
    conflict = await counter.patch(f"/clients/{client_id}", json={"birth_year": 1971}, headers={"If-Match": etag})
    assert (conflict.status_code, conflict.json()["errors"][0]["field"]) == (422, "birth_year")
    both = await counter.patch(
        f"/clients/{client_id}", json={"birth_date": "1970-02-03", "birth_year": 1971}, headers={"If-Match": etag}
    )
    assert both.status_code == 422 and both.json()["errors"][0]["code"] == "birth_year_conflict"
    future = await counter.patch(
        f"/clients/{client_id}", json={"birth_date": date.today().replace(year=date.today().year + 1).isoformat()},
        headers={"If-Match": etag},
    )  # fmt: skip
    assert (future.status_code, future.json()["errors"][0]["field"]) == (422, "birth_date")
    # Only the date removed: the year stays known.
    unknown = await counter.patch(f"/clients/{client_id}", json={"birth_date": None}, headers={"If-Match": etag})
    assert unknown.status_code == 200 and unknown.json()["changed"] == ["birth_date"]
    now = (await counter.get(f"/clients/{client_id}")).json()
    assert (now["birth_date"], now["birth_year"]) == (None, 1970)
    # A name sent empty (null) is refused, never stored as nothing.
    nameless = await counter.patch(
        f"/clients/{client_id}", json={"family_name": None}, headers={"If-Match": unknown.headers["ETag"]}
    )
    assert (nameless.status_code, nameless.json()["errors"][0]["code"]) == (422, "name_required")
    # Another office may not correct it.
    elsewhere = await as_("intake-hamborn").patch(
        f"/clients/{client_id}", json={"birth_year": 1971}, headers={"If-Match": unknown.headers["ETag"]}
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_office")
