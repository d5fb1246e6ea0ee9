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
from knotenpunkt.events import DeclineReason, ReferralAccepted, ReferralDeclined, ReferralSent

log = logging.getLogger("partner_agency")
_ANSWER_NAMESPACE = uuid.UUID("7b0c1f3e-5d2a-4e58-9d1c-2f6a0b8e4c11")


def decide(referral: ReferralSent, decision: str) -> ReferralAccepted | ReferralDeclined:
    """Our agency's business rule; the example accepts everything unless told to decline."""
    if decision == "decline":
        return ReferralDeclined(
            client_id=referral.client_id,
            referral_id=referral.referral_id,
            agency_id=referral.agency_id,
            declined_at=datetime.now(UTC),
            reason=DeclineReason.NO_CAPACITY,
        )
    return ReferralAccepted(
        client_id=referral.client_id,
        referral_id=referral.referral_id,
        agency_id=referral.agency_id,
        accepted_at=datetime.now(UTC),
    )


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
    referral = received.event
    if not isinstance(referral, ReferralSent):
        return
    reply = decide(referral, decision)
    envelope = Envelope(
        event=reply,
        id=uuid.uuid5(_ANSWER_NAMESPACE, f"{referral.referral_id}:{reply.event_type}"),
        source=f"agency/{agency_id}",
        correlation_id=received.correlation_id,
        causation_id=str(received.id),
    )
    await producer.send_and_wait(
        topics.agency_answers(agency_id), value=envelope.body(), key=envelope.key.encode(), headers=envelope.headers()
    )
    log.info("answered referral %s: %s", referral.referral_id, reply.event_type)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    agency_id = os.environ.get("PARTNER_AGENCY_ID", "jobcenter-duisburg")
    bootstrap = os.environ.get("PARTNER_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    decision = os.environ.get("PARTNER_DECISION", "accept")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(agency_id, bootstrap, decision, stop)

    asyncio.run(serve())
