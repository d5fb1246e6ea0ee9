"""An agency's own service: reads its referrals, decides, answers. Built only on the published
contract (event models, envelope, topic names) and a plain Kafka client.

Delivery: the answer is acknowledged by Kafka (idempotent producer, acks=all) before the
referral's offset is committed, so a crash answers twice at worst; the answer's id is derived
from the referral, so Knotenpunkt recognises the repeat and ignores it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from knotenpunkt import topics
from knotenpunkt.envelope import Envelope, InvalidEvent, decode
from knotenpunkt.events import (
    CompletionOutcome,
    DeclineReason,
    Event,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
)

log = logging.getLogger("partner_agency")
_ANSWER_NAMESPACE = uuid.UUID("7b0c1f3e-5d2a-4e58-9d1c-2f6a0b8e4c11")

# How the example answers (PARTNER_DECISION):
#   accept               accept every referral (the default)
#   decline              decline every referral for lack of capacity
#   accept_and_complete  accept, then report the outcome "successful" (as if the work were done)
#   ignore               never answer (Knotenpunkt reminds, then lets the referral expire)
DECISIONS = ("accept", "decline", "accept_and_complete", "ignore")


def decide(referral: ReferralSent, decision: str) -> list[ReferralAccepted | ReferralDeclined | ReferralCompleted]:
    """Our agency's business rule: the answers to one referral, in the order they are sent."""
    ids = {"client_id": referral.client_id, "referral_id": referral.referral_id, "agency_id": referral.agency_id}
    if decision == "ignore":
        return []
    if decision == "decline":
        return [ReferralDeclined(**ids, declined_at=datetime.now(UTC), reason=DeclineReason.NO_CAPACITY)]
    accepted = ReferralAccepted(**ids, accepted_at=datetime.now(UTC))
    if decision == "accept_and_complete":
        # A real agency reports the outcome when its work is done, days later; the example at once.
        return [
            accepted,
            ReferralCompleted(**ids, completed_at=datetime.now(UTC), outcome=CompletionOutcome.SUCCESSFUL),
        ]
    return [accepted]


async def run(agency_id: str, bootstrap: str, decision: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        topics.agency_referrals(agency_id),
        bootstrap_servers=bootstrap,
        group_id=f"partner.{agency_id}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    await consumer.start()
    log.info("agency %s listening on %s", agency_id, topics.agency_referrals(agency_id))
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=100)
            for records in batches.values():
                for record in records:
                    await answer(producer, record.headers, record.value, agency_id, decision)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def answer(
    producer: AIOKafkaProducer, headers: object, body: bytes | None, agency_id: str, decision: str
) -> None:
    try:
        received = decode(headers or (), body)  # type: ignore[arg-type]
    except InvalidEvent as invalid:
        log.warning("skipping unreadable message: %s", invalid.reason)
        return
    event = received.event
    if not isinstance(event, ReferralSent):
        note(event)
        return
    # Personal data (event.shared_data) is for the caseworker's screen, never for the log.
    for reply in decide(event, decision):
        envelope = Envelope(
            event=reply,
            id=uuid.uuid5(_ANSWER_NAMESPACE, f"{event.referral_id}:{reply.event_type}"),
            source=f"agency/{agency_id}",
            correlation_id=received.correlation_id,
            causation_id=str(received.id),
        )
        await producer.send_and_wait(
            topics.agency_answers(agency_id),
            value=envelope.body(),
            key=envelope.key.encode(),
            headers=envelope.headers(),
        )
        log.info("answered referral %s: %s", event.referral_id, reply.event_type)


def note(event: Event) -> None:
    """What Knotenpunkt tells the agency besides new referrals: stop, or hurry up."""
    if isinstance(event, ReferralWithdrawn):
        log.info("referral %s withdrawn (%s): stop working on it", event.referral_id, event.reason)
    elif isinstance(event, ReferralReminderSent):
        log.info("reminder: referral %s needs an answer by %s", event.referral_id, event.answer_due_on)
    elif isinstance(event, ReferralExpired):
        log.info("referral %s expired without our answer", event.referral_id)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    agency_id = os.environ.get("PARTNER_AGENCY_ID", "jobcenter-duisburg")
    bootstrap = os.environ.get("PARTNER_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    decision = os.environ.get("PARTNER_DECISION", "accept")
    if decision not in DECISIONS:
        raise SystemExit(f"PARTNER_DECISION must be one of {', '.join(DECISIONS)}, not {decision!r}")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(agency_id, bootstrap, decision, stop)

    asyncio.run(serve())
