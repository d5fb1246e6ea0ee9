"""Referrals and the gap register. The lifecycle topic carries every step; an answer may be
read before the referral itself (another partition, or a rebuild), so each step fills only its
own columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from knotenpunkt.events import (
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ReferralWithdrawn,
    UnmetNeedRecorded,
)
from stats.projections._batch import columns, rounds

SENT_SQL = """
INSERT INTO referrals AS r (referral_id, client_id, case_id, agency_id, topic_code, office_id, sent_at, answer_due_on)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
    $8::date[])
ON CONFLICT (referral_id) DO UPDATE SET
client_id = EXCLUDED.client_id,
case_id = EXCLUDED.case_id,
agency_id = EXCLUDED.agency_id,
topic_code = EXCLUDED.topic_code,
office_id = EXCLUDED.office_id,
sent_at = EXCLUDED.sent_at,
answer_due_on = EXCLUDED.answer_due_on
"""


async def referral_sent(connection: asyncpg.Connection, events: list[ReferralSent]) -> None:
    for batch in rounds(events, lambda e: e.referral_id):
        await connection.execute(
            SENT_SQL,
            *columns(
                batch,
                lambda e: e.referral_id,
                lambda e: e.client_id,
                lambda e: e.case_id,
                lambda e: e.agency_id,
                lambda e: e.topic_code,
                lambda e: e.office_id,
                lambda e: e.sent_at,
                lambda e: e.answer_due_on,
            ),
        )


def _step_sql(at_column: str, detail_column: str | None) -> str:
    """One lifecycle step: its time (the latest, if it came twice) and its detail."""
    detail_insert = f", {detail_column}" if detail_column else ""
    detail_param = ", $5::text[]" if detail_column else ""
    detail_update = (
        f", {detail_column} = CASE WHEN r.{at_column} IS NULL OR r.{at_column} <= EXCLUDED.{at_column} "
        f"THEN EXCLUDED.{detail_column} ELSE r.{detail_column} END"
        if detail_column
        else ""
    )
    return (
        f"INSERT INTO referrals AS r (referral_id, client_id, agency_id, {at_column}{detail_insert}) "
        f"SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[]{detail_param}) "
        f"ON CONFLICT (referral_id) DO UPDATE SET "
        f"{at_column} = greatest(r.{at_column}, EXCLUDED.{at_column}){detail_update}"
    )


async def _step(
    connection: asyncpg.Connection,
    events: list[Any],
    at_column: str,
    at: Callable[[Any], Any],
    detail_column: str | None = None,
    detail: Callable[[Any], Any] | None = None,
) -> None:
    getters: list[Callable[[Any], Any]] = [lambda e: e.referral_id, lambda e: e.client_id, lambda e: e.agency_id, at]
    if detail is not None:
        getters.append(detail)
    sql = _step_sql(at_column, detail_column)
    for batch in rounds(events, lambda e: e.referral_id):
        await connection.execute(sql, *columns(batch, *getters))


async def referral_accepted(connection: asyncpg.Connection, events: list[ReferralAccepted]) -> None:
    await _step(connection, events, "accepted_at", lambda e: e.accepted_at)


async def referral_declined(connection: asyncpg.Connection, events: list[ReferralDeclined]) -> None:
    await _step(connection, events, "declined_at", lambda e: e.declined_at, "decline_reason", lambda e: e.reason.value)


async def referral_completed(connection: asyncpg.Connection, events: list[ReferralCompleted]) -> None:
    await _step(connection, events, "completed_at", lambda e: e.completed_at, "outcome", lambda e: e.outcome.value)


async def referral_withdrawn(connection: asyncpg.Connection, events: list[ReferralWithdrawn]) -> None:
    await _step(connection, events, "withdrawn_at", lambda e: e.withdrawn_at, "withdraw_reason", lambda e: e.reason)


async def referral_expired(connection: asyncpg.Connection, events: list[ReferralExpired]) -> None:
    await _step(connection, events, "expired_at", lambda e: e.expired_at)


async def unmet_need_recorded(connection: asyncpg.Connection, events: list[UnmetNeedRecorded]) -> None:
    await connection.execute(
        "INSERT INTO unmet_needs (referral_id, cause, client_id, topic_code, agency_kind, office_id, recorded_at) "
        "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], "
        "$7::timestamptz[]) ON CONFLICT DO NOTHING",
        *columns(
            events,
            lambda e: e.referral_id,
            lambda e: e.cause,
            lambda e: e.client_id,
            lambda e: e.topic_code,
            lambda e: e.agency_kind,
            lambda e: e.office_id,
            lambda e: e.recorded_at,
        ),
    )
