"""Referrals and the gap register.

Only a `ReferralSent` makes a referral count: an answer or another step (accepted, declined,
completed, withdrawn, expired) for a referral id stats has not seen sent never creates a
referral. It waits in `referral_steps_waiting` and is moved onto the referral when the
ReferralSent arrives. In the real system the sent event comes first (same lifecycle topic, same
key), but a step may still be read before it: a batch applies its event types one after the
other, and after a merge the steps may be keyed by the surviving person (another partition).
A forged step for a referral that was never sent waits for ever and changes no figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from prometheus_client import Counter

from knotenpunkt.events import (
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ReferralWithdrawn,
    UnmetNeedRecorded,
)
from knotenpunkt.logging import get_logger
from stats.projections._batch import columns, rounds

log = get_logger("stats.projections.referrals")

REFERRAL_STEPS_WAITING = Counter(
    "knotenpunkt_stats_referral_steps_waiting_total",
    "Referral steps (answers, expiries, ...) for a referral stats had not seen sent: held back, not counted "
    "(outcome=held), and later counted when the ReferralSent arrived (outcome=released). Held minus released: "
    "forged or lost referrals.",
    ["step", "outcome"],
)

# step -> (its time column, its detail column) in `referrals`
STEPS: dict[str, tuple[str, str | None]] = {
    "accepted": ("accepted_at", None),
    "declined": ("declined_at", "decline_reason"),
    "completed": ("completed_at", "outcome"),
    "withdrawn": ("withdrawn_at", "withdraw_reason"),
    "expired": ("expired_at", None),
}

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


def _latest_detail(detail: str, at: str, old: str, new: str) -> str:
    """The detail of whichever of two step times is the later one (the new one on a tie)."""
    return f"CASE WHEN {old}.{at} IS NULL OR {old}.{at} <= {new}.{at} THEN {new}.{detail} ELSE {old}.{detail} END"


def _release_sql() -> str:
    """Move the waiting steps of just-sent referrals onto them, each step as if applied now."""
    picks, sets = [], []
    for step, (at, detail) in STEPS.items():
        picks.append(f"max(at) FILTER (WHERE step = '{step}') AS {at}")
        sets.append(f"{at} = greatest(r.{at}, s.{at})")
        if detail:
            # One waiting row per referral and step, so max() picks that row's detail.
            picks.append(f"max(detail) FILTER (WHERE step = '{step}') AS {detail}")
            sets.append(
                f"{detail} = CASE WHEN s.{at} IS NOT NULL AND (r.{at} IS NULL OR r.{at} <= s.{at}) "
                f"THEN s.{detail} ELSE r.{detail} END"
            )
    return (
        "WITH released AS (DELETE FROM referral_steps_waiting WHERE referral_id = ANY($1::uuid[]) "
        "RETURNING referral_id, step, at, detail), "
        f"steps AS (SELECT referral_id, {', '.join(picks)} FROM released GROUP BY referral_id), "
        f"applied AS (UPDATE referrals r SET {', '.join(sets)} FROM steps s WHERE r.referral_id = s.referral_id) "
        "SELECT step, count(*) FROM released GROUP BY step"
    )


RELEASE_SQL = _release_sql()


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
    for row in await connection.fetch(RELEASE_SQL, list({e.referral_id for e in events})):
        REFERRAL_STEPS_WAITING.labels(row["step"], "released").inc(row["count"])


def _step_sql(step: str) -> str:
    """One lifecycle step: onto its referral if stats has seen it sent, else into the waiting
    room. Its time is the latest if it came twice, its detail the latest one's. Returns how many
    steps had to wait."""
    at, detail = STEPS[step]
    detail_set = f", {detail} = {_latest_detail(detail, at, 'r', 's')}" if detail else ""
    return (
        "WITH s AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[]) "
        f"AS s(referral_id, client_id, agency_id, {at}, {detail or 'detail'})), "
        f"known AS (UPDATE referrals r SET {at} = greatest(r.{at}, s.{at}){detail_set} "
        "FROM s WHERE r.referral_id = s.referral_id RETURNING r.referral_id), "
        "held AS (INSERT INTO referral_steps_waiting AS w (referral_id, step, client_id, agency_id, at, detail) "
        f"SELECT s.referral_id, '{step}', s.client_id, s.agency_id, s.{at}, s.{detail or 'detail'} FROM s "
        "WHERE s.referral_id NOT IN (SELECT referral_id FROM known) "
        "ON CONFLICT (referral_id, step) DO UPDATE SET "
        "client_id = CASE WHEN w.at <= EXCLUDED.at THEN EXCLUDED.client_id ELSE w.client_id END, "
        "agency_id = CASE WHEN w.at <= EXCLUDED.at THEN EXCLUDED.agency_id ELSE w.agency_id END, "
        "detail = CASE WHEN w.at <= EXCLUDED.at THEN EXCLUDED.detail ELSE w.detail END, "
        "at = greatest(w.at, EXCLUDED.at) RETURNING 1) "
        "SELECT count(*) FROM held"
    )


STEP_SQL = {step: _step_sql(step) for step in STEPS}


async def _step(
    connection: asyncpg.Connection,
    events: list[Any],
    step: str,
    at: Callable[[Any], Any],
    detail: Callable[[Any], Any] | None = None,
) -> None:
    getters: list[Callable[[Any], Any]] = [
        lambda e: e.referral_id,
        lambda e: e.client_id,
        lambda e: e.agency_id,
        at,
        detail or (lambda _e: None),
    ]
    held = 0
    for batch in rounds(events, lambda e: e.referral_id):
        held += await connection.fetchval(STEP_SQL[step], *columns(batch, *getters))
    if held:
        # Counts only, no ids. Debug: a batch applies its answers before its sent events, so
        # steps of a referral sent in the same batch wait here briefly in normal operation.
        log.debug("referral steps for referrals not seen sent are held back", step=step, held=held)
        REFERRAL_STEPS_WAITING.labels(step, "held").inc(held)


async def referral_accepted(connection: asyncpg.Connection, events: list[ReferralAccepted]) -> None:
    await _step(connection, events, "accepted", lambda e: e.accepted_at)


async def referral_declined(connection: asyncpg.Connection, events: list[ReferralDeclined]) -> None:
    await _step(connection, events, "declined", lambda e: e.declined_at, lambda e: e.reason.value)


async def referral_completed(connection: asyncpg.Connection, events: list[ReferralCompleted]) -> None:
    await _step(connection, events, "completed", lambda e: e.completed_at, lambda e: e.outcome.value)


async def referral_withdrawn(connection: asyncpg.Connection, events: list[ReferralWithdrawn]) -> None:
    await _step(connection, events, "withdrawn", lambda e: e.withdrawn_at, lambda e: e.reason)


async def referral_expired(connection: asyncpg.Connection, events: list[ReferralExpired]) -> None:
    await _step(connection, events, "expired", lambda e: e.expired_at)


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
