import asyncpg

from knotenpunkt.envelope import Envelope
from knotenpunkt.events import CaseOpened, ConsultationRecorded


async def on_case_opened(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, CaseOpened)
    await connection.execute(
        "INSERT INTO cases (case_id, client_id, service_line, office_id, opened_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (case_id) DO UPDATE SET service_line = EXCLUDED.service_line, "
        "office_id = EXCLUDED.office_id, opened_at = EXCLUDED.opened_at",
        event.case_id,
        event.client_id,
        event.service_line.value,
        event.office_id,
        event.opened_at,
    )


async def on_consultation_recorded(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, ConsultationRecorded)
    await connection.execute(
        "INSERT INTO consultations (consultation_id, case_id, client_id, service_line, office_id, held_on, "
        "family_members_counselled) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        event.consultation_id,
        event.case_id,
        event.client_id,
        event.service_line.value,
        event.office_id,
        event.held_on,
        event.family_members_counselled,
    )
