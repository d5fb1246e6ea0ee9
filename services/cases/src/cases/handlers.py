"""Cases' use cases: one transaction each, outgoing events through the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from cases.schemas import ConsultationInput
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import CaseOpened, ClientRegistered, ConsultationRecorded
from knotenpunkt.http import ApiError, not_found
from knotenpunkt.logging import get_logger
from knotenpunkt.outbox import add_to_outbox

SOURCE = "knotenpunkt/cases"
log = get_logger("cases")


async def on_client_registered(connection: asyncpg.Connection, envelope: Envelope) -> None:
    """A registered person gets a case in the service line and office intake routed them to."""
    registered = envelope.event
    assert isinstance(registered, ClientRegistered)
    case_id = uuid.uuid4()
    opened_at = datetime.now(UTC)
    inserted = await connection.fetchval(
        "INSERT INTO cases (case_id, client_id, service_line, office_id, opened_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (client_id, service_line) DO NOTHING RETURNING true",
        case_id,
        registered.client_id,
        registered.service_line.value,
        registered.office_id,
        opened_at,
    )
    if not inserted:
        return
    opened = CaseOpened(
        client_id=registered.client_id,
        case_id=case_id,
        service_line=registered.service_line,
        office_id=registered.office_id,
        opened_at=opened_at,
    )
    await add_to_outbox(connection, envelope.caused(opened, SOURCE))
    log.info("case opened", case_id=str(case_id), client_id=str(registered.client_id))


async def record_consultation(
    connection: asyncpg.Connection, case_id: UUID, consultation: ConsultationInput, correlation_id: str
) -> dict[str, Any]:
    case = await connection.fetchrow(
        "SELECT case_id, client_id, service_line, office_id, status FROM cases WHERE case_id = $1 FOR UPDATE",
        case_id,
    )
    if case is None:
        raise not_found("Der Fall", "The case")
    if case["status"] != "open":
        raise ApiError(409, "case_closed")
    consultation_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO consultations (consultation_id, case_id, held_on, duration_minutes, topics, "
        "family_members_counselled, note) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        consultation_id,
        case_id,
        consultation.held_on,
        consultation.duration_minutes,
        consultation.topics,
        consultation.family_members_counselled,
        consultation.note,
    )
    event = ConsultationRecorded(
        client_id=case["client_id"],
        consultation_id=consultation_id,
        case_id=case_id,
        service_line=case["service_line"],
        office_id=case["office_id"],
        held_on=consultation.held_on,
        duration_minutes=consultation.duration_minutes,
        topics=tuple(consultation.topics),
        family_members_counselled=consultation.family_members_counselled,
    )
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    return {"consultation_id": str(consultation_id), "case_id": str(case_id)}
