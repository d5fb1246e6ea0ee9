from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from knotenpunkt.db import Database
from knotenpunkt.http import current_correlation_id, idempotent
from referrals import handlers
from referrals.schemas import Referral, ReferralInput


def build_router(database: Database) -> APIRouter:
    router = APIRouter(tags=["referrals"])

    @router.post("/referrals", status_code=201, summary="Refer a person to a partner agency")
    async def send(referral: ReferralInput, request: Request):  # noqa: ANN202
        async def action(connection):  # noqa: ANN001, ANN202
            return 201, await handlers.send_referral(connection, referral, current_correlation_id())

        return await idempotent(database, request, "POST /referrals", referral, action)

    @router.get("/referrals/{referral_id}", summary="One referral and its status")
    async def get(referral_id: UUID) -> Referral:
        async with database.connection() as connection:
            return Referral(**await handlers.get_referral(connection, referral_id))

    @router.get("/agencies", summary="The partner directory")
    async def agencies() -> list[dict[str, object]]:
        async with database.connection() as connection:
            rows = await connection.fetch("SELECT * FROM agencies ORDER BY agency_id")
        return [dict(row) for row in rows]

    return router
