"""Referrals' use cases: sending, and applying the agencies' checked answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from knotenpunkt import topics
from knotenpunkt.consumer import Rejected
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import CaseOpened, ReferralAccepted, ReferralDeclined, ReferralSent
from knotenpunkt.http import ApiError, not_found
from knotenpunkt.logging import get_logger
from knotenpunkt.outbox import add_to_outbox
from referrals.domain import Status, can_move
from referrals.schemas import ReferralInput

SOURCE = "knotenpunkt/referrals"
log = get_logger("referrals")


async def on_case_opened(connection: asyncpg.Connection, envelope: Envelope) -> None:
    opened = envelope.event
    assert isinstance(opened, CaseOpened)
    await connection.execute(
        "INSERT INTO known_cases (case_id, client_id, service_line, office_id) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (case_id) DO NOTHING",
        opened.case_id,
        opened.client_id,
        opened.service_line.value,
        opened.office_id,
    )


async def send_referral(connection: asyncpg.Connection, referral: ReferralInput, correlation_id: str) -> dict[str, Any]:
    case = await connection.fetchrow(
        "SELECT case_id, client_id, office_id FROM known_cases WHERE case_id = $1", referral.case_id
    )
    if case is None:
        raise not_found("Der Fall", "The case")
    if not await connection.fetchval("SELECT 1 FROM agencies WHERE agency_id = $1", referral.agency_id):
        raise ApiError(422, "validation_failed", fields=[("agency_id", "unknown_agency", {})])
    referral_id = uuid.uuid4()
    sent_at = datetime.now(UTC)
    await connection.execute(
        "INSERT INTO referrals (referral_id, case_id, client_id, agency_id, topic_code, office_id, status, sent_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        referral_id,
        referral.case_id,
        case["client_id"],
        referral.agency_id,
        referral.topic_code,
        case["office_id"],
        Status.SENT.value,
        sent_at,
    )
    sent = ReferralSent(
        client_id=case["client_id"],
        referral_id=referral_id,
        case_id=referral.case_id,
        agency_id=referral.agency_id,
        topic_code=referral.topic_code,
        office_id=case["office_id"],
        sent_at=sent_at,
    )
    envelope = Envelope(event=sent, source=SOURCE, correlation_id=correlation_id)
    # One fact, two readers: the network's lifecycle topic and the agency's own topic.
    await add_to_outbox(connection, envelope)
    await add_to_outbox(connection, envelope, topic=topics.agency_referrals(referral.agency_id))
    log.info("referral sent", referral_id=str(referral_id), agency_id=referral.agency_id)
    return {"referral_id": str(referral_id), "status": Status.SENT.value}


async def on_agency_answer(connection: asyncpg.Connection, envelope: Envelope) -> None:
    """Apply an agency's answer after checking it concerns a referral sent to that agency.

    The answering agency is the owner of the topic the answer was read from (only that agency
    may write to it), not what the answer claims.
    """
    answering_agency = topics.agency_of_topic(envelope.origin_topic or "")
    if answering_agency is None:
        raise Rejected(f"answer read from {envelope.origin_topic}, not from an agency's answers topic")
    answer = envelope.event
    assert isinstance(answer, ReferralAccepted | ReferralDeclined)
    if answer.agency_id != answering_agency:
        raise Rejected(f"answer on {answering_agency}'s topic names agency {answer.agency_id}")
    referral = await connection.fetchrow(
        "SELECT referral_id, client_id, agency_id, status FROM referrals WHERE referral_id = $1 FOR UPDATE",
        answer.referral_id,
    )
    if referral is None:
        raise Rejected(f"unknown referral {answer.referral_id}")
    if referral["agency_id"] != answering_agency:
        raise Rejected(f"referral {answer.referral_id} was not sent to {answering_agency}")
    if referral["client_id"] != answer.client_id:
        raise Rejected(f"answer for referral {answer.referral_id} names another client")
    target = Status.ACCEPTED if isinstance(answer, ReferralAccepted) else Status.DECLINED
    current = Status(referral["status"])
    if current == target:
        return  # the agency repeated itself
    if not can_move(current, target):
        raise Rejected(f"referral {answer.referral_id} is {current.value}; cannot become {target.value}")
    answered_at = answer.accepted_at if isinstance(answer, ReferralAccepted) else answer.declined_at
    await connection.execute(
        "UPDATE referrals SET status = $2, answered_at = $3, decline_reason = $4 WHERE referral_id = $1",
        answer.referral_id,
        target.value,
        answered_at,
        answer.reason.value if isinstance(answer, ReferralDeclined) else None,
    )
    # Re-published on the lifecycle topic as the network's confirmed fact.
    await add_to_outbox(connection, envelope.caused(answer, SOURCE))
    log.info("referral answered", referral_id=str(answer.referral_id), status=target.value)


def referral_row(row: asyncpg.Record) -> dict[str, Any]:
    return {
        **dict(row),
        "referral_id": str(row["referral_id"]),
        "case_id": str(row["case_id"]),
        "client_id": str(row["client_id"]),
        "sent_at": row["sent_at"].isoformat(),
        "answered_at": row["answered_at"].isoformat() if row["answered_at"] else None,
    }


async def get_referral(connection: asyncpg.Connection, referral_id: UUID) -> dict[str, Any]:
    row = await connection.fetchrow(
        "SELECT referral_id, case_id, client_id, agency_id, topic_code, status, sent_at, answered_at, decline_reason "
        "FROM referrals WHERE referral_id = $1",
        referral_id,
    )
    if row is None:
        raise not_found("Die Vermittlung", "The referral")
    return referral_row(row)
