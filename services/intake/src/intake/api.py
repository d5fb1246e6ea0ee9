"""Intake's HTTP API: one call per route (a command through `run_command`, or a query), plus
the HTTP concerns: status codes, If-Match and ETag, parameters that are not JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Mapping
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from intake import commands, disclosure, export_page, queries
from intake.schemas import (
    OFFICE_ID,
    RULE_ID,
    STAFF_ID,
    ClientRecord,
    ConsentCheckResult,
    ConsentInput,
    ConsentRecord,
    Correction,
    CorrectionResult,
    DuplicateCheckResult,
    DuplicateSearch,
    ErasureResult,
    Merge,
    MergeResult,
    NamesRequest,
    OfficeInput,
    OfficeRecord,
    PersonName,
    PersonSearch,
    PersonSearchResult,
    RegisteredClient,
    Registration,
    ResidenceStatusRecord,
    RoutingRuleInput,
    RoutingRuleRecord,
    StaffInput,
    StaffRecord,
    Withdrawal,
)
from knotenpunkt import audit
from knotenpunkt.clients import ServiceClient
from knotenpunkt.concurrency import etag
from knotenpunkt.errors import Conflict, Invalid
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory, SharedPersonData
from knotenpunkt.http import run_command
from knotenpunkt.i18n import register_messages
from knotenpunkt.identity import allow
from knotenpunkt.openapi import error_responses
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor, UnitsOfWork

register_messages(
    {
        "audit_question_needed": {
            "de": "Bitte eine Person (client_id) oder eine Fachkraft (actor_id) angeben.",
            "en": "Name a person (client_id) or a staff member (actor_id).",
        }
    }
)

# Every route on one person's record may meet an erased one.
_GONE = error_responses(410)


def build_router(units: UnitsOfWork, peers: Mapping[str, ServiceClient] | None = None) -> APIRouter:
    """Intake's routes. `peers` are the other services (cases, referrals, stats) the data
    protection officer's questions gather from; a missing one is named as unavailable."""
    router = APIRouter()
    peers = peers or {}

    @router.post(
        "/clients",
        status_code=201,
        response_model=RegisteredClient,
        tags=["clients"],
        summary="Register a person (with duplicate check)",
    )
    async def register(
        registration: Registration, request: Request, _actor: Annotated[Actor, Depends(allow(Action.CLIENT_REGISTER))]
    ) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: _naming_candidates(request, commands.register_client(uow, registration)),
            scope="POST /clients",
            payload=registration,
            status_code=201,
        )

    @router.post(
        "/clients/duplicate-check",
        tags=["clients"],
        summary="Likely duplicates (Kölner Phonetik + birth data); at other offices only counted",
    )
    async def duplicates(
        search: DuplicateSearch, request: Request, actor: Annotated[Actor, Depends(allow(Action.CLIENT_SEARCH))]
    ) -> DuplicateCheckResult:
        # A POST, not a GET with query parameters: names must not end up in access logs.
        async with units.read() as connection:
            found = await queries.duplicates(connection, search, actor)
        # Only the persons shown are named; those counted elsewhere were seen by nobody.
        audit.concerns(request, client_ids=[match.client_id for match in found.candidates])
        return found

    @router.post(
        "/clients/search",
        tags=["clients"],
        summary="Find persons by (part of) a name, spelling variants (Kölner Phonetik) and birth data, "
        "among those of your offices",
    )
    async def search(
        search: PersonSearch, request: Request, actor: Annotated[Actor, Depends(allow(Action.CLIENT_SEARCH))]
    ) -> PersonSearchResult:
        # A POST, as the duplicate check: what is searched for must not end up in access logs.
        async with units.read() as connection:
            found = await queries.search(connection, search, actor)
        audit.concerns(request, client_ids=[person.client_id for person in found.persons])
        return found

    @router.post(
        "/clients/names",
        tags=["clients"],
        summary="Names for a page of cases in one call: of the persons you may read, others left out",
    )
    async def names(
        asked: NamesRequest, request: Request, actor: Annotated[Actor, Depends(allow(Action.CLIENT_READ))]
    ) -> list[PersonName]:
        async with units.read() as connection:
            found = await queries.names(connection, asked.client_ids, actor)
        audit.concerns(request, client_ids=[person.client_id for person in found])
        return found

    @router.get("/clients/{client_id}", tags=["clients"], summary="A person's record (staff only)", responses=_GONE)
    async def get_client(
        client_id: UUID, response: Response, actor: Annotated[Actor, Depends(allow(Action.CLIENT_READ))]
    ) -> ClientRecord:
        async with units.read() as connection:
            record = await queries.client_record(connection, client_id, actor)
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
        _actor: Annotated[Actor, Depends(allow(Action.CLIENT_CORRECT))],
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
    async def merge(
        client_id: UUID, merge: Merge, request: Request, _actor: Annotated[Actor, Depends(allow(Action.CLIENT_MERGE))]
    ) -> JSONResponse:
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
        summary="Erase a person's data on request (data protection officer)",
    )
    async def erase(
        client_id: UUID, request: Request, _actor: Annotated[Actor, Depends(allow(Action.CLIENT_ERASE))]
    ) -> JSONResponse:
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
    async def give_consent(
        client_id: UUID,
        consent: ConsentInput,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.CONSENT_RECORD))],
    ) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.give_consent(uow, client_id, consent),
            scope=f"POST /clients/{client_id}/consents",
            payload=consent,
            status_code=201,
        )

    @router.get("/clients/{client_id}/consents", tags=["consent"], summary="A person's consents", responses=_GONE)
    async def list_consents(
        client_id: UUID, actor: Annotated[Actor, Depends(allow(Action.CONSENT_READ))]
    ) -> list[ConsentRecord]:
        async with units.read() as connection:
            return await queries.consents(connection, client_id, actor, date.today())

    @router.post(
        "/clients/{client_id}/consents/{consent_id}/withdraw",
        response_model=ConsentRecord,
        tags=["consent"],
        summary="Withdraw a consent",
        responses=_GONE,
    )
    async def withdraw(
        client_id: UUID,
        consent_id: UUID,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.CONSENT_WITHDRAW))],
        withdrawal: Withdrawal | None = None,
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
        actor: Annotated[Actor, Depends(allow(Action.CONSENT_READ))],
        purpose: ConsentPurpose,
        agency_id: str | None = None,
        agency_kind: AgencyKind | None = None,
        categories: Annotated[str, Query(description="Comma-separated data categories")] = "",
        on: date | None = None,
    ) -> ConsentCheckResult:
        wanted = _categories(categories)
        async with units.read() as connection:
            return await queries.consent_check(
                connection, client_id, actor, purpose, wanted, agency_id, agency_kind, on or date.today()
            )

    @router.get(
        "/clients/{client_id}/shared-data",
        tags=["consent"],
        summary="The personal data a partner agency may receive under the person's consent",
        responses=error_responses(409, 410),
    )
    async def shared_data(
        client_id: UUID,
        actor: Annotated[Actor, Depends(allow(Action.SHARED_DATA_READ))],
        agency_id: str | None = None,
        agency_kind: AgencyKind | None = None,
    ) -> SharedPersonData:
        async with units.read() as connection:
            return await queries.shared_data(connection, client_id, actor, agency_id, agency_kind, date.today())

    @router.get(
        "/audit/trail",
        tags=["audit"],
        summary="Who saw or changed person X, or what staff member Y accessed: every service in one answer "
        "(data protection officer)",
        dependencies=[Depends(allow(Action.AUDIT_READ))],
    )
    async def audit_trail(
        request: Request,
        client_id: Annotated[UUID | None, Query(description="Entries concerning this person.")] = None,
        actor_id: Annotated[str | None, Query(max_length=200, description="Entries of this staff member.")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> disclosure.AuditTrail:
        if client_id is None and actor_id is None:
            raise Invalid("client_id", "audit_question_needed")
        # Asking who saw a person is itself a read about that person.
        audit.concerns(request, client_ids=[client_id])
        return await disclosure.audit_trail(
            units.read,
            peers,
            client_ids=[client_id] if client_id else [],
            actor_id=actor_id,
            since=since,
            until=until,
            limit=limit,
        )

    @router.get(
        "/clients/{client_id}/export",
        tags=["clients"],
        summary="Everything every service stores about a person, DSGVO Art. 15 (data protection officer)",
        response_model=disclosure.PersonExport,
        responses={200: {"content": {"text/html": {}}}, **error_responses(404)},
    )
    async def export(
        client_id: UUID,
        request: Request,
        actor: Annotated[Actor, Depends(allow(Action.CLIENT_EXPORT))],
        format: Annotated[
            Literal["json", "html"] | None, Query(description="html: a readable German page; default JSON.")
        ] = None,
    ) -> Response:
        answer = await disclosure.export(units.read, peers, client_id, actor)
        audit.concerns(request, client_ids=[answer.client_id])
        wants_html = format == "html" or (
            format is None and "text/html" in request.headers.get("accept", "").split(",")[0]
        )
        if wants_html:
            return HTMLResponse(export_page.render(answer))
        return JSONResponse(jsonable_encoder(answer))

    @router.get(
        "/offices",
        tags=["reference data"],
        summary="Offices with their staff",
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def offices() -> list[OfficeRecord]:
        async with units.read() as connection:
            return await queries.offices(connection)

    @router.get(
        "/residence-statuses",
        tags=["reference data"],
        summary="The residence status code list",
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def residence_statuses() -> list[ResidenceStatusRecord]:
        async with units.read() as connection:
            return await queries.residence_statuses(connection)

    @router.get(
        "/routing-rules",
        tags=["reference data"],
        summary="The routing rules (data, not code)",
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def routing_rules() -> list[RoutingRuleRecord]:
        async with units.read() as connection:
            return await queries.routing_rules(connection)

    @router.get(
        "/staff",
        tags=["reference data"],
        summary="Every staff member, network-wide ones and those who left (active: false) included",
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def staff() -> list[StaffRecord]:
        async with units.read() as connection:
            return await queries.staff(connection)

    # Writing reference data (admin): create or change with PUT (201 when created), each change in
    # its own transaction with its audit entry. No versions (the tables have none): the last
    # change wins, as it did with SQL.
    @router.put(
        "/offices/{office_id}",
        response_model=OfficeRecord,
        tags=["reference data"],
        summary="Create or change an office (admin)",
        responses={201: {"model": OfficeRecord, "description": "Created"}},
    )
    async def put_office(
        office_id: str,
        office: OfficeInput,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.REFERENCE_WRITE))],
    ) -> JSONResponse:
        _reference_id("office_id", office_id, OFFICE_ID, "invalid_reference_id")
        return await run_command(
            units,
            request,
            lambda uow: commands.put_office(uow, office_id, office),
            scope=f"PUT /offices/{office_id}",
            payload=office.model_dump(mode="json", exclude_unset=True),
            status_code=await _created_or_changed(units, "offices", "office_id", office_id),
        )

    @router.put(
        "/staff/{staff_id}",
        response_model=StaffRecord,
        tags=["reference data"],
        summary="Create or change a staff member; active: false when they leave (admin)",
        responses={201: {"model": StaffRecord, "description": "Created"}, **error_responses(404)},
    )
    async def put_staff(
        staff_id: str,
        member: StaffInput,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.REFERENCE_WRITE))],
    ) -> JSONResponse:
        _reference_id("staff_id", staff_id, STAFF_ID, "invalid_staff_id_format")
        return await run_command(
            units,
            request,
            lambda uow: commands.put_staff(uow, staff_id, member),
            scope=f"PUT /staff/{staff_id}",
            payload=member,
            status_code=await _created_or_changed(units, "staff", "staff_id", staff_id),
        )

    @router.put(
        "/routing-rules/{rule_id}",
        response_model=RoutingRuleRecord,
        tags=["reference data"],
        summary="Create a routing rule or replace its data; the next registration is routed by it (admin)",
        responses={201: {"model": RoutingRuleRecord, "description": "Created"}},
    )
    async def put_routing_rule(
        rule_id: str,
        rule: RoutingRuleInput,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.REFERENCE_WRITE))],
    ) -> JSONResponse:
        _reference_id("rule_id", rule_id, RULE_ID, "invalid_rule_id")
        return await run_command(
            units,
            request,
            lambda uow: commands.put_routing_rule(uow, rule_id, rule),
            scope=f"PUT /routing-rules/{rule_id}",
            payload=rule,
            status_code=await _created_or_changed(units, "routing_rules", "rule_id", rule_id),
        )

    return router


async def _created_or_changed(units: UnitsOfWork, table: str, key: str, value: str) -> int:
    """201 for a PUT that creates, 200 for one that changes. Asked before the change's own
    transaction (run_command fixes the status first): two simultaneous first PUTs of one id
    may both say 201; either way the record ends as the last one sent."""
    # `table` and `key` are constants of the routes, never request input.
    async with units.read() as connection:
        exists = await connection.fetchval(f"SELECT 1 FROM {table} WHERE {key} = $1", value)
    return 200 if exists else 201


def _reference_id(field: str, value: str, pattern: re.Pattern[str], code: str) -> None:
    """Ids of reference data are chosen by the admin once and then referenced everywhere: a
    plain form, so they travel safely in paths, events and other services' records."""
    if not pattern.match(value):
        raise Invalid(field, code)


async def _naming_candidates(request: Request, registering: Awaitable[RegisteredClient]) -> RegisteredClient:
    """A registration refused for likely duplicates showed those persons: its audit entry names them."""
    try:
        return await registering
    except Conflict as conflict:
        candidates = conflict.details.get("candidates", [])
        audit.concerns(request, client_ids=[candidate.client_id for candidate in candidates])
        raise


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
