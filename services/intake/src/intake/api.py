"""Intake's HTTP API: one call per route (a command through `run_command`, or a query), plus
the HTTP concerns: status codes, If-Match and ETag, parameters that are not JSON."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from intake import commands, queries
from intake.schemas import (
    ClientRecord,
    ConsentCheckResult,
    ConsentInput,
    ConsentRecord,
    Correction,
    CorrectionResult,
    DuplicateMatch,
    DuplicateSearch,
    ErasureResult,
    Merge,
    MergeResult,
    OfficeRecord,
    RegisteredClient,
    Registration,
    ResidenceStatusRecord,
    RoutingRuleRecord,
    Withdrawal,
)
from knotenpunkt.concurrency import etag
from knotenpunkt.errors import Invalid
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory, SharedPersonData
from knotenpunkt.http import run_command
from knotenpunkt.openapi import error_responses
from knotenpunkt.uow import UnitsOfWork

# Every route on one person's record may meet an erased one.
_GONE = error_responses(410)


def build_router(units: UnitsOfWork) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/clients",
        status_code=201,
        response_model=RegisteredClient,
        tags=["clients"],
        summary="Register a person (with duplicate check)",
    )
    async def register(registration: Registration, request: Request) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.register_client(uow, registration),
            scope="POST /clients",
            payload=registration,
            status_code=201,
        )

    @router.post(
        "/clients/duplicate-check", tags=["clients"], summary="Likely duplicates (Kölner Phonetik + birth data)"
    )
    async def duplicates(search: DuplicateSearch) -> list[DuplicateMatch]:
        # A POST, not a GET with query parameters: names must not end up in access logs.
        async with units.read() as connection:
            return await queries.duplicates(connection, search)

    @router.get("/clients/{client_id}", tags=["clients"], summary="A person's record (staff only)", responses=_GONE)
    async def get_client(client_id: UUID, response: Response) -> ClientRecord:
        async with units.read() as connection:
            record = await queries.client_record(connection, client_id)
        response.headers["ETag"] = etag(record.version)
        return record

    @router.patch(
        "/clients/{client_id}",
        response_model=CorrectionResult,
        tags=["clients"],
        summary="Correct a person's record",
        responses=_GONE,
    )
    async def correct(
        client_id: UUID,
        correction: Correction,
        request: Request,
        if_match: Annotated[str | None, Header(description="The ETag of the version being corrected.")] = None,
    ) -> JSONResponse:
        return _with_etag(
            await run_command(
                units,
                request,
                lambda uow: commands.correct_client(uow, client_id, correction, if_match),
                scope=f"PATCH /clients/{client_id}",
                payload={"correction": correction.model_dump(exclude_unset=True), "if_match": if_match},
            )
        )

    @router.post(
        "/clients/{client_id}/merge",
        response_model=MergeResult,
        tags=["clients"],
        summary="Merge a duplicate record into this one",
        responses=_GONE,
    )
    async def merge(client_id: UUID, merge: Merge, request: Request) -> JSONResponse:
        duplicate_id = _uuid("duplicate_client_id", merge.duplicate_client_id)
        return await run_command(
            units,
            request,
            lambda uow: commands.merge_clients(uow, client_id, duplicate_id),
            scope=f"POST /clients/{client_id}/merge",
            payload=merge,
        )

    @router.post(
        "/clients/{client_id}/erase",
        response_model=ErasureResult,
        tags=["clients"],
        summary="Erase a person's data on request",
    )
    async def erase(client_id: UUID, request: Request) -> JSONResponse:
        return await run_command(
            units, request, lambda uow: commands.erase_client(uow, client_id), scope=f"POST /clients/{client_id}/erase"
        )

    @router.post(
        "/clients/{client_id}/consents",
        status_code=201,
        response_model=ConsentRecord,
        tags=["consent"],
        summary="Record a consent",
        responses=_GONE,
    )
    async def give_consent(client_id: UUID, consent: ConsentInput, request: Request) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.give_consent(uow, client_id, consent),
            scope=f"POST /clients/{client_id}/consents",
            payload=consent,
            status_code=201,
        )

    @router.get("/clients/{client_id}/consents", tags=["consent"], summary="A person's consents", responses=_GONE)
    async def list_consents(client_id: UUID) -> list[ConsentRecord]:
        async with units.read() as connection:
            return await queries.consents(connection, client_id, date.today())

    @router.post(
        "/clients/{client_id}/consents/{consent_id}/withdraw",
        response_model=ConsentRecord,
        tags=["consent"],
        summary="Withdraw a consent",
        responses=_GONE,
    )
    async def withdraw(
        client_id: UUID, consent_id: UUID, request: Request, withdrawal: Withdrawal | None = None
    ) -> JSONResponse:
        withdrawn_on = withdrawal.withdrawn_on if withdrawal else None
        return await run_command(
            units,
            request,
            lambda uow: commands.withdraw_consent(uow, client_id, consent_id, withdrawn_on),
            scope=f"POST /clients/{client_id}/consents/{consent_id}/withdraw",
            payload=withdrawal,
        )

    @router.get(
        "/clients/{client_id}/consent-check",
        tags=["consent"],
        summary="Is there valid consent for this purpose, agency and data categories on this day?",
        responses=_GONE,
    )
    async def consent_check(
        client_id: UUID,
        purpose: ConsentPurpose,
        agency_id: str | None = None,
        agency_kind: AgencyKind | None = None,
        categories: Annotated[str, Query(description="Comma-separated data categories")] = "",
        on: date | None = None,
    ) -> ConsentCheckResult:
        wanted = _categories(categories)
        async with units.read() as connection:
            return await queries.consent_check(
                connection, client_id, purpose, wanted, agency_id, agency_kind, on or date.today()
            )

    @router.get(
        "/clients/{client_id}/shared-data",
        tags=["consent"],
        summary="The personal data a partner agency may receive under the person's consent",
        responses=error_responses(409, 410),
    )
    async def shared_data(
        client_id: UUID, agency_id: str | None = None, agency_kind: AgencyKind | None = None
    ) -> SharedPersonData:
        async with units.read() as connection:
            return await queries.shared_data(connection, client_id, agency_id, agency_kind, date.today())

    @router.get("/offices", tags=["reference data"], summary="Offices with their staff")
    async def offices() -> list[OfficeRecord]:
        async with units.read() as connection:
            return await queries.offices(connection)

    @router.get("/residence-statuses", tags=["reference data"], summary="The residence status code list")
    async def residence_statuses() -> list[ResidenceStatusRecord]:
        async with units.read() as connection:
            return await queries.residence_statuses(connection)

    @router.get("/routing-rules", tags=["reference data"], summary="The routing rules (data, not code)")
    async def routing_rules() -> list[RoutingRuleRecord]:
        async with units.read() as connection:
            return await queries.routing_rules(connection)

    return router


def _with_etag(response: JSONResponse) -> JSONResponse:
    """The new version as ETag, also on a replayed answer (read from the body both carry)."""
    if response.status_code == 200:
        response.headers["ETag"] = etag(json.loads(response.body)["version"])
    return response


def _uuid(field: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise Invalid(field, "uuid_parsing") from None


def _categories(text: str) -> list[DataCategory]:
    """The comma-separated `categories` query parameter."""
    try:
        return [DataCategory(c.strip()) for c in text.split(",") if c.strip()]
    except ValueError:
        raise Invalid("categories", "enum", expected=", ".join(c.value for c in DataCategory)) from None
