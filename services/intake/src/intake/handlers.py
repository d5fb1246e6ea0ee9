"""Intake's use cases: one transaction each, outgoing events through the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from intake.domain import age_band, age_on, route
from intake.schemas import Registration
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientRegistered
from knotenpunkt.http import ApiError
from knotenpunkt.logging import get_logger
from knotenpunkt.outbox import add_to_outbox

SOURCE = "knotenpunkt/intake"
log = get_logger("intake")


async def register_client(
    connection: asyncpg.Connection, registration: Registration, correlation_id: str, today: date | None = None
) -> dict[str, Any]:
    office = await connection.fetchval("SELECT office_id FROM offices WHERE office_id = $1", registration.office_id)
    if office is None:
        raise ApiError(422, "validation_failed", fields=[("office_id", "unknown_office", {})])
    age = age_on(registration.birth_date, today or date.today())
    service_line = route(age)  # the schema already refused under-12s
    client_id = uuid.uuid4()
    registered_at = datetime.now(UTC)
    await connection.execute(
        "INSERT INTO clients (client_id, family_name, given_name, birth_date, phone, email, office_id, "
        "service_line, registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        client_id,
        registration.family_name,
        registration.given_name,
        registration.birth_date,
        registration.phone,
        registration.email,
        registration.office_id,
        service_line.value,
        registered_at,
    )
    event = ClientRegistered(
        client_id=client_id,
        registered_at=registered_at,
        age_band=age_band(age),
        service_line=service_line,
        office_id=registration.office_id,
    )
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    log.info("client registered", client_id=str(client_id), service_line=service_line.value)
    return {
        "client_id": str(client_id),
        "service_line": service_line.value,
        "office_id": registration.office_id,
        "registered_at": registered_at.isoformat(),
    }
