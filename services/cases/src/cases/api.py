"""The cases HTTP API: thin routes that call the use cases."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from cases import handlers
from cases.domain import CaseStatus
from cases.intake import IntakeDirectory
from cases.schemas import (
    Assignment,
    Case,
    CaseOpening,
    CasePage,
    Closing,
    ConsultationInput,
    GoalInput,
    GoalStatusInput,
    Reopening,
    TopicInput,
    TransferInput,
)
from knotenpunkt.concurrency import etag
from knotenpunkt.db import Database
from knotenpunkt.events import ServiceLine
from knotenpunkt.http import current_correlation_id, idempotent
from knotenpunkt.i18n import message, negotiate
from knotenpunkt.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor

IF_MATCH = Header(
    default=None,
    alias="If-Match",
    description='The case\'s ETag from your GET (e.g. "3"); a stale one is answered 409.',
)


def _with_etag(response: JSONResponse) -> JSONResponse:
    """A changed case answers with its new ETag, also when the answer is a replay."""
    if response.status_code < 300:
        body = json.loads(response.body)
        if isinstance(body, dict) and isinstance(body.get("version"), int):
            response.headers["ETag"] = etag(body["version"])
    return response


def build_router(database: Database, intake: IntakeDirectory) -> APIRouter:
    router = APIRouter(tags=["cases"])

    async def change(
        request: Request,
        scope: str,
        payload: Any,
        use_case: Callable[[asyncpg.Connection], Awaitable[dict[str, Any]]],
        status_code: int = 200,
    ) -> JSONResponse:
        async def action(connection: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
            return status_code, await use_case(connection)

        return _with_etag(await idempotent(database, request, scope, payload, action))

    @router.get(
        "/cases",
        summary="Cases for daily work: filtered, newest first, one page at a time",
        response_model=list[Case] | CasePage,
        description=(
            "With `client_id`: every case of that person as a plain list (a person has a handful; other "
            "filters do not apply). Otherwise a page `{items, next_cursor}`: pass `next_cursor` back as "
            "`cursor` for the next page; `next_cursor` is null on the last page."
        ),
    )
    async def list_cases(
        client_id: UUID | None = None,
        case_manager_id: str | None = Query(default=None, description="My cases: the case manager's staff id."),
        office_id: str | None = Query(default=None, description="Cases of one office."),
        service_line: ServiceLine | None = None,
        status: CaseStatus | None = None,
        topic: str | None = Query(default=None, description="Cases with a consultation on this topic code."),
        handover_due: bool | None = Query(default=None, description="JMD cases whose person turned 27."),
        limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        cursor: str | None = Query(default=None, description="`next_cursor` of the previous page."),
    ) -> Any:
        async with database.connection() as connection:
            if client_id is not None:
                return await handlers.cases_of_client(connection, client_id)
            page = await handlers.list_cases(
                connection,
                case_manager_id=case_manager_id,
                office_id=office_id,
                service_line=service_line,
                status=status,
                topic=topic,
                handover_due=handover_due,
                limit=limit,
                cursor=decode_cursor(cursor),
            )
        return {"items": page.items, "next_cursor": page.next_cursor}

    @router.post("/cases", status_code=201, response_model=Case, summary="Open a case by hand in a service line")
    async def open_case(opening: CaseOpening, request: Request) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            "POST /cases",
            opening,
            lambda connection: handlers.open_case(connection, opening, correlation_id),
            status_code=201,
        )

    @router.get("/cases/{case_id}", summary="One case (its ETag is the version to send as If-Match)")
    async def get_case(case_id: UUID, response: Response) -> Case:
        async with database.connection() as connection:
            case = await handlers.get_case(connection, case_id)
        response.headers["ETag"] = etag(case["version"])
        return Case(**case)

    @router.get("/cases/{case_id}/overview", summary="The whole case in one answer (Gesamtfall im Überblick)")
    async def overview(case_id: UUID, request: Request) -> JSONResponse:
        # One snapshot of everything cases knows, then the person from intake outside the
        # transaction: a slow intake must not hold a database connection.
        async with database.connection() as connection, connection.transaction(isolation="repeatable_read"):
            whole = await handlers.case_overview(connection, case_id)
        lookup = await intake.person_summary(UUID(whole["case"]["client_id"]))
        language = negotiate(request.headers.get("accept-language"))
        unavailable = (
            None
            if lookup.unavailable is None
            else {"code": lookup.unavailable, "message": message(lookup.unavailable, language)}
        )
        body = {"person": lookup.person, "person_unavailable": unavailable, **whole}
        return JSONResponse(body, headers={"ETag": etag(whole["case"]["version"])})

    @router.post("/cases/{case_id}/assign", response_model=Case, summary="Assign a case manager (first time)")
    async def assign(
        case_id: UUID, assignment: Assignment, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/assign",
            assignment,
            lambda connection: handlers.assign(connection, case_id, assignment, if_match, correlation_id),
        )

    @router.post(
        "/cases/{case_id}/transfer", response_model=Case, summary="Transfer to another case manager and/or office"
    )
    async def transfer(
        case_id: UUID, request_body: TransferInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/transfer",
            request_body,
            lambda connection: handlers.transfer(connection, case_id, request_body, if_match, correlation_id),
        )

    @router.post("/cases/{case_id}/close", response_model=Case, summary="Close with a reason from the code list")
    async def close(case_id: UUID, closing: Closing, request: Request, if_match: str | None = IF_MATCH) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/close",
            closing,
            lambda connection: handlers.close(connection, case_id, closing, if_match, correlation_id),
        )

    @router.post("/cases/{case_id}/reopen", response_model=Case, summary="Reopen a closed case")
    async def reopen(
        case_id: UUID, request: Request, reopening: Reopening | None = None, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/reopen",
            reopening or Reopening(),
            lambda connection: handlers.reopen(connection, case_id, if_match, correlation_id),
        )

    @router.post("/cases/{case_id}/consultations", status_code=201, summary="Record a consultation")
    async def record_consultation(
        case_id: UUID, consultation: ConsultationInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/consultations",
            consultation,
            lambda connection: handlers.record_consultation(
                connection, case_id, consultation, correlation_id, if_match
            ),
            status_code=201,
        )

    @router.post("/cases/{case_id}/plan/goals", status_code=201, summary="Add a goal to the integration plan")
    async def set_goal(
        case_id: UUID, goal: GoalInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/plan/goals",
            goal,
            lambda connection: handlers.set_goal(connection, case_id, goal, correlation_id, if_match),
            status_code=201,
        )

    @router.post("/cases/{case_id}/plan/goals/{goal_id}/status", summary="A goal reached, dropped or opened again")
    async def change_goal_status(
        case_id: UUID, goal_id: UUID, change_input: GoalStatusInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        correlation_id = current_correlation_id()
        return await change(
            request,
            f"POST /cases/{case_id}/plan/goals/{goal_id}/status",
            change_input,
            lambda connection: handlers.change_goal_status(
                connection, case_id, goal_id, change_input, if_match, correlation_id
            ),
        )

    @router.get("/topics", tags=["code lists"], summary="The counselling topic taxonomy")
    async def topics() -> list[dict[str, Any]]:
        async with database.connection() as connection:
            return await handlers.list_topics(connection)

    @router.post("/topics", status_code=201, tags=["code lists"], summary="Add a city's own counselling topic")
    async def add_topic(topic: TopicInput, request: Request) -> JSONResponse:
        return await change(
            request, "POST /topics", topic, lambda connection: handlers.add_topic(connection, topic), status_code=201
        )

    @router.get("/reasons", tags=["code lists"], summary="Reasons to close or transfer a case")
    async def reasons() -> dict[str, list[dict[str, str]]]:
        async with database.connection() as connection:
            return await handlers.list_reasons(connection)

    return router
