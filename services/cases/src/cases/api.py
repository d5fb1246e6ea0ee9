"""The cases HTTP API: thin routes that call the use cases."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from cases import handlers
from cases.schemas import Case, ConsultationInput
from knotenpunkt.db import Database
from knotenpunkt.http import current_correlation_id, idempotent, not_found

_CASE_COLUMNS = (
    "SELECT c.case_id, c.client_id, c.service_line, c.office_id, c.status, c.opened_at, "
    "(SELECT count(*) FROM consultations k WHERE k.case_id = c.case_id) AS consultations FROM cases c"
)


def _case(row: dict) -> Case:
    return Case(
        **{
            **row,
            "case_id": str(row["case_id"]),
            "client_id": str(row["client_id"]),
            "opened_at": row["opened_at"].isoformat(),
        }
    )


def build_router(database: Database) -> APIRouter:
    router = APIRouter(tags=["cases"])

    @router.get("/cases", summary="Cases, optionally of one person")
    async def list_cases(client_id: UUID | None = None, limit: int = 100) -> list[Case]:
        async with database.connection() as connection:
            if client_id is None:
                rows = await connection.fetch(f"{_CASE_COLUMNS} ORDER BY c.opened_at DESC LIMIT $1", min(limit, 500))
            else:
                rows = await connection.fetch(f"{_CASE_COLUMNS} WHERE c.client_id = $1 ORDER BY c.opened_at", client_id)
        return [_case(dict(row)) for row in rows]

    @router.get("/cases/{case_id}", summary="One case")
    async def get_case(case_id: UUID) -> Case:
        async with database.connection() as connection:
            row = await connection.fetchrow(f"{_CASE_COLUMNS} WHERE c.case_id = $1", case_id)
        if row is None:
            raise not_found("Der Fall", "The case")
        return _case(dict(row))

    @router.post("/cases/{case_id}/consultations", status_code=201, summary="Record a consultation")
    async def record_consultation(case_id: UUID, consultation: ConsultationInput, request: Request):  # noqa: ANN202
        async def action(connection):  # noqa: ANN001, ANN202
            return 201, await handlers.record_consultation(connection, case_id, consultation, current_correlation_id())

        return await idempotent(database, request, f"POST /cases/{case_id}/consultations", consultation, action)

    return router
