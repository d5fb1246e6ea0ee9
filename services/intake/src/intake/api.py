"""Intake's HTTP API: thin routes that call the use cases."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from intake import handlers
from intake.schemas import Client, Registered, Registration
from knotenpunkt.db import Database
from knotenpunkt.http import current_correlation_id, idempotent, not_found


def build_router(database: Database) -> APIRouter:
    router = APIRouter(tags=["clients"])

    @router.post("/clients", status_code=201, response_model=Registered, summary="Register a person")
    async def register(registration: Registration, request: Request):  # noqa: ANN202 - JSONResponse
        async def action(connection):  # noqa: ANN001, ANN202
            return 201, await handlers.register_client(connection, registration, current_correlation_id())

        return await idempotent(database, request, "POST /clients", registration, action)

    @router.get("/clients/{client_id}", response_model=Client, summary="A person's record (staff only)")
    async def get_client(client_id: UUID) -> Client:
        async with database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT client_id, family_name, given_name, birth_date, office_id, service_line "
                "FROM clients WHERE client_id = $1",
                client_id,
            )
        if row is None:
            raise not_found("Die Person", "The person")
        return Client(**{**dict(row), "client_id": str(row["client_id"])})

    @router.get("/offices", summary="Offices people can register at")
    async def offices() -> list[dict[str, str]]:
        async with database.connection() as connection:
            rows = await connection.fetch("SELECT office_id, name, address, open_hours FROM offices ORDER BY office_id")
        return [dict(row) for row in rows]

    return router
