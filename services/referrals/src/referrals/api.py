"""Thin HTTP routes: translate a request into one use case (one transaction) and its answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request

from knotenpunkt.db import Database
from knotenpunkt.events import AgencyKind
from knotenpunkt.http import ApiError, current_correlation_id, idempotent
from referrals import handlers
from referrals.domain import Status
from referrals.handlers import ReferralNetwork
from referrals.inbox_auth import check_agency_token
from referrals.schemas import (
    Agency,
    CompleteInput,
    DeclineInput,
    GapRow,
    InboxReferral,
    Referral,
    ReferralInput,
    WithdrawInput,
)


def build_router(database: Database, network: ReferralNetwork) -> APIRouter:
    router = APIRouter()

    # --- case managers ------------------------------------------------------------------------

    @router.post("/referrals", status_code=201, summary="Refer a person to a partner agency", tags=["referrals"])
    async def send(referral: ReferralInput, request: Request):  # noqa: ANN202
        async def action(connection: asyncpg.Connection) -> tuple[int, Any]:
            return 201, await network.send(connection, referral, current_correlation_id())

        return await idempotent(database, request, "POST /referrals", referral, action)

    @router.get("/referrals", summary="Referrals by case manager, case, office and status", tags=["referrals"])
    async def list_referrals(
        case_manager_id: str | None = None,
        case_id: UUID | None = None,
        office_id: str | None = None,
        status: Annotated[list[Status] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Referral]:
        async with database.connection() as connection:
            rows = await handlers.list_referrals(
                connection,
                network.clock.now(),
                case_manager_id=case_manager_id,
                case_id=case_id,
                office_id=office_id,
                statuses=status,
                limit=limit,
            )
        return [Referral(**row) for row in rows]

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
        async with database.connection() as connection:
            rows = await handlers.list_referrals(
                connection,
                network.clock.now(),
                case_manager_id=case_manager_id,
                office_id=office_id,
                action_needed=True,
                limit=limit,
            )
        return [Referral(**row) for row in rows]

    @router.get("/referrals/{referral_id}", summary="One referral and its status", tags=["referrals"])
    async def get(referral_id: UUID) -> Referral:
        async with database.connection() as connection:
            return Referral(**await handlers.get_referral(connection, referral_id, network.clock.now()))

    @router.post(
        "/referrals/{referral_id}/withdraw", summary="The case manager takes a referral back", tags=["referrals"]
    )
    async def withdraw(referral_id: UUID, request: Request, body: WithdrawInput | None = None):  # noqa: ANN202
        async def action(connection: asyncpg.Connection) -> tuple[int, Any]:
            return 200, await network.withdraw(connection, referral_id, current_correlation_id())

        return await idempotent(database, request, f"POST /referrals/{referral_id}/withdraw", {}, action)

    # --- the network ----------------------------------------------------------------------------

    @router.get("/agencies", summary="The partner directory", tags=["directory"])
    async def agencies(topic_code: str | None = None, kind: AgencyKind | None = None) -> list[Agency]:
        async with database.connection() as connection:
            rows = await handlers.agencies(connection, topic_code, kind.value if kind else None)
        return [Agency(**row) for row in rows]

    @router.get("/gaps", summary="The gap register: needs nobody could meet, counted", tags=["gaps"])
    async def gaps(
        topic_code: str | None = None,
        agency_kind: AgencyKind | None = None,
        office_id: str | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> list[GapRow]:
        if from_date and to_date and to_date < from_date:
            raise ApiError(422, "validation_failed", fields=[("to_date", "period_reversed", {})])
        async with database.connection() as connection:
            rows = await handlers.gaps(
                connection, topic_code, agency_kind.value if agency_kind else None, office_id, from_date, to_date
            )
        return [GapRow(**row) for row in rows]

    # --- the web inbox of agencies without their own software -----------------------------------

    async def agency_token(agency_id: str, authorization: Annotated[str | None, Header()] = None) -> None:
        async with database.connection() as connection:
            await check_agency_token(connection, agency_id, authorization)

    # Every inbox route acts for the agency in its path, so every one checks that agency's token.
    inbox = APIRouter(prefix="/inbox/{agency_id}/referrals", tags=["inbox"], dependencies=[Depends(agency_token)])

    @inbox.get("", summary="An agency's open referrals")
    async def open_referrals(agency_id: str) -> list[InboxReferral]:
        async with database.connection() as connection:
            referrals = await handlers.inbox(connection, agency_id)
            await network.with_people(connection, agency_id, referrals)
        return [InboxReferral(**row) for row in referrals]

    def answer(agency_id: str, referral_id: UUID, request: Request, kind: str, payload: Any, **details: Any):  # noqa: ANN202
        async def action(connection: asyncpg.Connection) -> tuple[int, Any]:
            return 200, await network.answer_from_inbox(
                connection, agency_id, referral_id, kind, current_correlation_id(), **details
            )

        scope = f"POST /inbox/{agency_id}/referrals/{referral_id}/{kind}"
        return idempotent(database, request, scope, payload, action)

    @inbox.post("/{referral_id}/accept", summary="Accept a referral")
    async def accept(agency_id: str, referral_id: UUID, request: Request):  # noqa: ANN202
        return await answer(agency_id, referral_id, request, "accept", {})

    @inbox.post("/{referral_id}/decline", summary="Decline a referral")
    async def decline(agency_id: str, referral_id: UUID, body: DeclineInput, request: Request):  # noqa: ANN202
        return await answer(agency_id, referral_id, request, "decline", body, reason=body.reason)

    @inbox.post("/{referral_id}/complete", summary="Report the outcome of an accepted referral")
    async def complete(agency_id: str, referral_id: UUID, body: CompleteInput, request: Request):  # noqa: ANN202
        return await answer(agency_id, referral_id, request, "complete", body, outcome=body.outcome)

    router.include_router(inbox)

    # --- operations -----------------------------------------------------------------------------

    @router.post(
        "/admin/deadlines/run",
        summary="Send due reminders and expire overdue referrals now (the service also does it periodically)",
        tags=["operations"],
    )
    async def run_deadlines() -> dict[str, int]:
        async with database.transaction() as connection:
            return await network.run_deadlines(connection)

    return router
