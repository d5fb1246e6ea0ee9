import asyncpg

from knotenpunkt.envelope import Envelope
from knotenpunkt.events import ReferralAccepted, ReferralDeclined, ReferralSent

# An answer may arrive before the referral itself (different partitions of different topics):
# each event fills only its own columns.


async def on_referral_sent(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, ReferralSent)
    await connection.execute(
        "INSERT INTO referrals (referral_id, agency_id, topic_code, office_id, sent_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (referral_id) DO UPDATE SET topic_code = EXCLUDED.topic_code, "
        "office_id = EXCLUDED.office_id, sent_at = EXCLUDED.sent_at",
        event.referral_id,
        event.agency_id,
        event.topic_code,
        event.office_id,
        event.sent_at,
    )


async def on_referral_accepted(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, ReferralAccepted)
    await connection.execute(
        "INSERT INTO referrals (referral_id, agency_id, accepted_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (referral_id) DO UPDATE SET accepted_at = EXCLUDED.accepted_at",
        event.referral_id,
        event.agency_id,
        event.accepted_at,
    )


async def on_referral_declined(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, ReferralDeclined)
    await connection.execute(
        "INSERT INTO referrals (referral_id, agency_id, declined_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (referral_id) DO UPDATE SET declined_at = EXCLUDED.declined_at",
        event.referral_id,
        event.agency_id,
        event.declined_at,
    )
