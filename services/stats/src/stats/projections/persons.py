import asyncpg

from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ClientRegistered


async def on_client_registered(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, ClientRegistered)
    await connection.execute(
        "INSERT INTO persons (client_id, registered_at, age_band, service_line, office_id) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO UPDATE SET "
        "registered_at = EXCLUDED.registered_at, age_band = EXCLUDED.age_band, "
        "service_line = EXCLUDED.service_line, office_id = EXCLUDED.office_id",
        event.client_id,
        event.registered_at,
        event.age_band.value,
        event.service_line.value,
        event.office_id,
    )
