"""Thin HTTP routes: each runs one use case (a command in one unit of work, or a query)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from knotenpunkt.events import AgencyKind
from knotenpunkt.http import run_command
from knotenpunkt.uow import UnitsOfWork
from referrals import commands, queries
from referrals.consent_gate import ConsentGate
from referrals.deadlines import run_deadlines
from referrals.domain import Clock, Status
from referrals.inbox_auth import check_agency_token
from referrals.schemas import (
    Agency,
    ChangedReferral,
    CompleteInput,
    DeadlineRun,
    DeclineInput,
    GapRow,
    InboxReferral,
    Referral,
    ReferralInput,
    SentReferral,
    WithdrawInput,
)


def build_router(units: UnitsOfWork, clock: Clock, gate: ConsentGate) -> APIRouter:
    router = APIRouter()

    # --- case managers ------------------------------------------------------------------------

    @router.post(
        "/referrals",
        status_code=201,
        response_model=SentReferral,
        summary="Refer a person to a partner agency",
        tags=["referrals"],
    )
    async def send(referral: ReferralInput, request: Request) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.send_referral(uow, referral, clock, gate),
            scope="POST /referrals",
            payload=referral,
            status_code=201,
        )

    @router.get("/referrals", summary="Referrals by case manager, case, office and status", tags=["referrals"])
    async def list_referrals(
        case_manager_id: str | None = None,
        case_id: UUID | None = None,
        office_id: str | None = None,
        status: Annotated[list[Status] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Referral]:
        async with units.read() as connection:
            return await queries.list_referrals(
                connection,
                clock.now(),
                case_manager_id=case_manager_id,
                case_id=case_id,
                office_id=office_id,
                statuses=status,
                limit=limit,
            )

    @router.get(
        "/referrals/action-needed",
        summary="Referrals to look at: no answer after half the promised time, declined, expired",
        tags=["referrals"],
    )
    async def action_needed(
        case_manager_id: str | None = None,
        office_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Referral]:
        async with units.read() as connection:
            return await queries.list_referrals(
                connection,
                clock.now(),
                case_manager_id=case_manager_id,
                office_id=office_id,
                action_needed=True,
                limit=limit,
            )

    @router.get("/referrals/{referral_id}", summary="One referral and its status", tags=["referrals"])
    async def get(referral_id: UUID) -> Referral:
        async with units.read() as connection:
            return await queries.get_referral(connection, referral_id, clock.now())

    @router.post(
        "/referrals/{referral_id}/withdraw",
        response_model=ChangedReferral,
        summary="The case manager takes a referral back",
        tags=["referrals"],
    )
    async def withdraw(referral_id: UUID, request: Request, body: WithdrawInput | None = None) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.withdraw_referral(uow, referral_id, clock),
            scope=f"POST /referrals/{referral_id}/withdraw",
            payload={},
        )

    # --- the network ----------------------------------------------------------------------------

    @router.get("/agencies", summary="The partner directory", tags=["directory"])
    async def agencies(topic_code: str | None = None, kind: AgencyKind | None = None) -> list[Agency]:
        async with units.read() as connection:
            return await queries.agencies(connection, topic_code, kind)

    @router.get("/gaps", summary="The gap register: needs nobody could meet, counted", tags=["gaps"])
    async def gaps(
        topic_code: str | None = None,
        agency_kind: AgencyKind | None = None,
        office_id: str | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> list[GapRow]:
        async with units.read() as connection:
            return await queries.gaps(connection, topic_code, agency_kind, office_id, from_date, to_date)

    # --- the web inbox of agencies without their own software -----------------------------------

    async def agency_token(agency_id: str, authorization: Annotated[str | None, Header()] = None) -> None:
        async with units.read() as connection:
            await check_agency_token(connection, agency_id, authorization)

    # Every inbox route acts for the agency in its path, so every one checks that agency's token.
    inbox = APIRouter(prefix="/inbox/{agency_id}/referrals", tags=["inbox"], dependencies=[Depends(agency_token)])

    @inbox.get("", summary="An agency's open referrals")
    async def open_referrals(agency_id: str) -> list[InboxReferral]:
        async with units.read() as connection:
            return await queries.inbox(connection, agency_id, gate)

    async def answer(
        request: Request, agency_id: str, referral_id: UUID, kind: str, details: DeclineInput | CompleteInput | None
    ) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.answer_from_inbox(uow, clock, agency_id, referral_id, details),
            scope=f"POST /inbox/{agency_id}/referrals/{referral_id}/{kind}",
            payload=details or {},
        )

    @inbox.post("/{referral_id}/accept", response_model=ChangedReferral, summary="Accept a referral")
    async def accept(agency_id: str, referral_id: UUID, request: Request) -> JSONResponse:
        return await answer(request, agency_id, referral_id, "accept", None)

    @inbox.post("/{referral_id}/decline", response_model=ChangedReferral, summary="Decline a referral")
    async def decline(agency_id: str, referral_id: UUID, body: DeclineInput, request: Request) -> JSONResponse:
        return await answer(request, agency_id, referral_id, "decline", body)

    @inbox.post(
        "/{referral_id}/complete", response_model=ChangedReferral, summary="Report the outcome of an accepted referral"
    )
    async def complete(agency_id: str, referral_id: UUID, body: CompleteInput, request: Request) -> JSONResponse:
        return await answer(request, agency_id, referral_id, "complete", body)

    router.include_router(inbox)

    # --- operations -----------------------------------------------------------------------------

    @router.post(
        "/admin/deadlines/run",
        response_model=DeadlineRun,
        summary="Send due reminders and expire overdue referrals now (the service also does it periodically)",
        tags=["operations"],
    )
    async def deadlines_now(request: Request) -> JSONResponse:
        return await run_command(
            units, request, lambda uow: run_deadlines(uow, clock), scope="POST /admin/deadlines/run"
        )

    return router
