"""Intake's HTTP API: thin routes that call the use cases."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from intake import handlers
from intake.domain import BirthData
from intake.schemas import ConsentInput, Correction, DuplicateSearch, Merge, Registration, Withdrawal
from knotenpunkt.concurrency import etag
from knotenpunkt.db import Database
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory, SharedPersonData
from knotenpunkt.http import ApiError, current_correlation_id, idempotent

_PERSON_FIELDS = (
    "family_name", "given_name", "name_variants", "birth_date", "birth_year", "gender", "nationalities", "languages",
    "counselling_language", "phone", "email", "street", "postcode", "city", "district", "household_members",
    "residence_status", "arrival_date", "access_route", "office_id", "service_line", "service_lines", "registered_at",
    "version",
)  # fmt: skip


def build_router(database: Database) -> APIRouter:
    router = APIRouter()

    @router.post("/clients", status_code=201, tags=["clients"], summary="Register a person (with duplicate check)")
    async def register(registration: Registration, request: Request) -> JSONResponse:
        async def action(connection):  # noqa: ANN001, ANN202
            return 201, await handlers.register_client(connection, registration, current_correlation_id())

        return await idempotent(database, request, "POST /clients", registration, action)

    @router.post(
        "/clients/duplicate-check", tags=["clients"], summary="Likely duplicates (Kölner Phonetik + birth data)"
    )
    async def duplicates(search: DuplicateSearch) -> list[dict[str, Any]]:
        # A POST, not a GET with query parameters: names must not end up in access logs.
        birth = BirthData(
            search.birth_date, search.birth_year or (search.birth_date.year if search.birth_date else None)
        )
        async with database.connection() as connection:
            return await handlers.find_duplicates(connection, [search.family_name, search.given_name], birth)

    @router.get("/clients/{client_id}", tags=["clients"], summary="A person's record (staff only)")
    async def get_client(client_id: UUID, response: Response) -> dict[str, Any]:
        async with database.connection() as connection:
            row = await handlers._existing_client(connection, client_id)
        response.headers["ETag"] = etag(row["version"])
        return {"client_id": str(row["client_id"]), **{field: row[field] for field in _PERSON_FIELDS}}

    @router.patch("/clients/{client_id}", tags=["clients"], summary="Correct a person's record")
    async def correct(
        client_id: UUID,
        correction: Correction,
        response: Response,
        if_match: Annotated[str | None, Header(description="The ETag of the version being corrected.")] = None,
    ) -> dict[str, Any]:
        async with database.transaction() as connection:
            result = await handlers.correct_client(
                connection, client_id, correction, if_match, current_correlation_id()
            )
        response.headers["ETag"] = etag(result["version"])
        return result

    @router.post("/clients/{client_id}/merge", tags=["clients"], summary="Merge a duplicate record into this one")
    async def merge(client_id: UUID, merge: Merge) -> dict[str, Any]:
        try:
            duplicate = UUID(merge.duplicate_client_id)
        except ValueError:
            raise ApiError(422, "validation_failed", fields=[("duplicate_client_id", "uuid_parsing", {})]) from None
        async with database.transaction() as connection:
            return await handlers.merge_clients(connection, client_id, duplicate, current_correlation_id())

    @router.post("/clients/{client_id}/erase", tags=["clients"], summary="Erase a person's data on request")
    async def erase(client_id: UUID) -> dict[str, Any]:
        async with database.transaction() as connection:
            return await handlers.erase_client(connection, client_id, current_correlation_id())

    @router.post("/clients/{client_id}/consents", status_code=201, tags=["consent"], summary="Record a consent")
    async def give_consent(client_id: UUID, consent: ConsentInput, request: Request) -> JSONResponse:
        async def action(connection):  # noqa: ANN001, ANN202
            return 201, await handlers.give_consent(connection, client_id, consent, current_correlation_id())

        return await idempotent(database, request, f"POST /clients/{client_id}/consents", consent, action)

    @router.get("/clients/{client_id}/consents", tags=["consent"], summary="A person's consents")
    async def list_consents(client_id: UUID) -> list[dict[str, Any]]:
        async with database.connection() as connection:
            client = await handlers._existing_client(connection, client_id)
            rows = await connection.fetch(
                "SELECT * FROM consents WHERE client_id = $1 ORDER BY given_on, recorded_at", client["client_id"]
            )
        return [handlers.consent_view(row, date.today()) for row in rows]

    @router.post("/clients/{client_id}/consents/{consent_id}/withdraw", tags=["consent"], summary="Withdraw a consent")
    async def withdraw(client_id: UUID, consent_id: UUID, withdrawal: Withdrawal | None = None) -> dict[str, Any]:
        async with database.transaction() as connection:
            return await handlers.withdraw_consent(
                connection,
                client_id,
                consent_id,
                withdrawal.withdrawn_on if withdrawal else None,
                current_correlation_id(),
            )

    @router.get(
        "/clients/{client_id}/consent-check",
        tags=["consent"],
        summary="Is there valid consent for this purpose, agency and data categories on this day?",
    )
    async def consent_check(
        client_id: UUID,
        purpose: ConsentPurpose,
        agency_id: str | None = None,
        agency_kind: AgencyKind | None = None,
        categories: Annotated[str, Query(description="Comma-separated data categories")] = "",
        on: date | None = None,
    ) -> dict[str, Any]:
        try:
            wanted = [DataCategory(c.strip()) for c in categories.split(",") if c.strip()]
        except ValueError:
            raise ApiError(
                422, "validation_failed",
                fields=[("categories", "enum", {"expected": ", ".join(c.value for c in DataCategory)})],
            ) from None  # fmt: skip
        async with database.connection() as connection:
            _client, decision = await handlers.decide_consent(
                connection, client_id, purpose, wanted, agency_id, agency_kind, on or date.today()
            )
        return {
            "granted": decision.granted,
            "consent_id": decision.consent_id,
            "categories": sorted(category.value for category in decision.categories),
            "reason": decision.reason,
        }

    @router.get(
        "/clients/{client_id}/shared-data",
        tags=["consent"],
        summary="The personal data a partner agency may receive under the person's consent",
    )
    async def shared_data(
        client_id: UUID, agency_id: str | None = None, agency_kind: AgencyKind | None = None
    ) -> SharedPersonData:
        async with database.connection() as connection:
            return await handlers.shared_data(connection, client_id, agency_id, agency_kind, date.today())

    @router.get("/offices", tags=["reference data"], summary="Offices with their staff")
    async def offices() -> list[dict[str, Any]]:
        async with database.connection() as connection:
            offices = await connection.fetch("SELECT * FROM offices ORDER BY office_id")
            staff = await connection.fetch("SELECT * FROM staff ORDER BY staff_id")
        return [
            {**dict(office), "staff": [dict(member) for member in staff if member["office_id"] == office["office_id"]]}
            for office in offices
        ]

    @router.get("/residence-statuses", tags=["reference data"], summary="The residence status code list")
    async def residence_statuses() -> list[dict[str, Any]]:
        async with database.connection() as connection:
            return [dict(row) for row in await connection.fetch("SELECT * FROM residence_statuses ORDER BY code")]

    @router.get("/routing-rules", tags=["reference data"], summary="The routing rules (data, not code)")
    async def routing_rules() -> list[dict[str, Any]]:
        async with database.connection() as connection:
            return [dict(row) for row in await connection.fetch("SELECT * FROM routing_rules ORDER BY rule_id")]

    return router
