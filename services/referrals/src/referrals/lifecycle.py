"""Steps of a referral's lifecycle that several use cases take: telling the network and the
agency, withdrawing one referral, recording a gap, finding a person's current id.

Each runs in the caller's unit of work; events go out through its outbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from knotenpunkt import topics
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
    SharedPersonData,
    UnmetNeedRecorded,
)
from knotenpunkt.logging import get_logger
from knotenpunkt.uow import UnitOfWork
from referrals.domain import Clock, Status

log = get_logger("referrals")

ToAgency = ReferralWithdrawn | ReferralReminderSent | ReferralExpired


async def publish_sent(uow: UnitOfWork, sent: ReferralSent, shared: SharedPersonData | None) -> Envelope:
    """ReferralSent on the lifecycle topic every service reads, without personal data; the same
    fact (same ce_id) on the agency's own topic, with the consented personal data."""
    lifecycle = await uow.publish(sent)
    to_agency = dataclasses.replace(lifecycle, event=sent.model_copy(update={"shared_data": shared}))
    await uow.publish_again(to_agency, topics.agency_referrals(sent.agency_id))
    return lifecycle


async def tell_network_and_agency(uow: UnitOfWork, event: ToAgency) -> Envelope:
    """One fact (one ce_id) on the lifecycle topic and on the agency's own topic."""
    envelope = await uow.publish(event)
    await uow.publish_again(envelope, topics.agency_referrals(event.agency_id))
    return envelope


async def current_client_id(uow: UnitOfWork, client_id: UUID) -> UUID:
    """The person's id now: a retired id (ClientsMerged) resolves to the surviving one."""
    current = await uow.connection.fetchval(
        "SELECT client_id FROM merged_clients WHERE merged_client_id = $1", client_id
    )
    return current or client_id


async def withdraw(uow: UnitOfWork, clock: Clock, referral: Mapping[str, Any], reason: str, by: str) -> None:
    """Close one open referral as withdrawn (the caller checked that it may be) and tell the agency.
    `by`: the case manager's staff id (from the token), or "intake" for a consent or erasure."""
    now = clock.now()
    await uow.connection.execute(
        "UPDATE referrals SET status = $2, closed_at = $3, withdraw_reason = $4, closed_by = $5 WHERE referral_id = $1",
        referral["referral_id"],
        Status.WITHDRAWN.value,
        now,
        reason,
        by,
    )
    await tell_network_and_agency(
        uow,
        ReferralWithdrawn(
            client_id=referral["client_id"],
            referral_id=referral["referral_id"],
            agency_id=referral["agency_id"],
            withdrawn_at=now,
            reason=reason,
        ),
    )
    log.info("referral withdrawn", referral_id=str(referral["referral_id"]), reason=reason)


async def record_gap(uow: UnitOfWork, clock: Clock, referral: Mapping[str, Any], cause: str) -> None:
    """An entry in the gap register (at most one per referral), and UnmetNeedRecorded for stats.

    `referral` carries referral_id, client_id, topic_code, kind (the agency's), agency_id, office_id.
    """
    now = clock.now()
    inserted = await uow.connection.fetchval(
        "INSERT INTO unmet_needs (need_id, referral_id, topic_code, agency_kind, agency_id, office_id, cause, "
        "recorded_at) VALUES ($1, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
        referral["referral_id"],
        referral["topic_code"],
        referral["kind"],
        referral["agency_id"],
        referral["office_id"],
        cause,
        now,
    )
    if inserted:
        await uow.publish(
            UnmetNeedRecorded(
                client_id=referral["client_id"],
                referral_id=referral["referral_id"],
                topic_code=referral["topic_code"],
                agency_kind=referral["kind"],
                office_id=referral["office_id"],
                cause=cause,
                recorded_at=now,
            )
        )
