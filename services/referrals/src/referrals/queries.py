"""Reads: each takes a connection (from `units.read()`) and returns response models."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import asyncpg

from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.events import AgencyKind
from referrals.consent_gate import ConsentGate
from referrals.domain import OPEN, Status, needs_action
from referrals.schemas import Agency, GapRow, InboxReferral, Referral

_REFERRAL_COLUMNS = (
    "r.referral_id, r.case_id, r.client_id, r.agency_id, r.topic_code, r.office_id, r.status, r.sent_at, "
    "r.remind_at, r.due_at, r.answered_at, r.decline_reason, r.completed_at, r.outcome, r.closed_at, "
    "r.withdraw_reason, c.case_manager_id"
)


def _referral(row: asyncpg.Record, now: datetime) -> Referral:
    return Referral(**dict(row), action_needed=needs_action(Status(row["status"]), row["remind_at"], now))


async def get_referral(connection: asyncpg.Connection, referral_id: UUID, now: datetime) -> Referral:
    row = await connection.fetchrow(
        f"SELECT {_REFERRAL_COLUMNS} FROM referrals r JOIN known_cases c USING (case_id) WHERE r.referral_id = $1",
        referral_id,
    )
    if row is None:
        raise NotFound("Die Vermittlung", "The referral")
    return _referral(row, now)


async def list_referrals(
    connection: asyncpg.Connection,
    now: datetime,
    *,
    case_manager_id: str | None = None,
    case_id: UUID | None = None,
    office_id: str | None = None,
    statuses: list[Status] | None = None,
    action_needed: bool = False,
    limit: int = 200,
) -> list[Referral]:
    """A case manager's referrals; `action_needed`: unanswered after half the promised time,
    declined, or expired."""
    conditions = ["($1::text IS NULL OR c.case_manager_id = $1)", "($2::uuid IS NULL OR r.case_id = $2)"]
    conditions.append("($3::text IS NULL OR r.office_id = $3)")
    conditions.append("($4::text[] IS NULL OR r.status = ANY($4::text[]))")
    if action_needed:
        conditions.append("((r.status = 'sent' AND r.remind_at <= $5) OR r.status IN ('declined', 'expired'))")
    else:
        conditions.append("$5::timestamptz IS NOT NULL")
    rows = await connection.fetch(
        f"SELECT {_REFERRAL_COLUMNS} FROM referrals r JOIN known_cases c USING (case_id) "
        f"WHERE {' AND '.join(conditions)} ORDER BY r.sent_at DESC LIMIT $6",
        case_manager_id,
        case_id,
        office_id,
        [status.value for status in statuses] if statuses else None,
        now,
        limit,
    )
    return [_referral(row, now) for row in rows]


async def inbox(connection: asyncpg.Connection, agency_id: str, gate: ConsentGate) -> list[InboxReferral]:
    """An agency's open referrals (those it still has to answer or to complete), each with the
    personal data its person consented to share with this agency, asked from intake now."""
    kind = await connection.fetchval("SELECT kind FROM agencies WHERE agency_id = $1", agency_id)
    if kind is None:
        raise NotFound("Die Partnerstelle", "The partner agency")
    rows = await connection.fetch(
        "SELECT referral_id, client_id, topic_code, office_id, status, sent_at, due_at FROM referrals "
        "WHERE agency_id = $1 AND status = ANY($2::text[]) ORDER BY sent_at",
        agency_id,
        [status.value for status in OPEN],
    )
    referrals = []
    for row in rows:
        person, unavailable = await gate.person(row["client_id"], agency_id, AgencyKind(kind))
        referrals.append(
            InboxReferral(
                referral_id=row["referral_id"],
                client_id=row["client_id"],
                topic_code=row["topic_code"],
                office_id=row["office_id"],
                status=row["status"],
                sent_at=row["sent_at"],
                answer_due_on=row["due_at"].date(),
                person=person,
                person_unavailable=unavailable,
            )
        )
    return referrals


async def agencies(connection: asyncpg.Connection, topic_code: str | None, kind: AgencyKind | None) -> list[Agency]:
    rows = await connection.fetch(
        "SELECT agency_id, name, kind, topics, languages, contact, response_days, channel FROM agencies "
        "WHERE ($1::text IS NULL OR $1 = ANY(topics)) AND ($2::text IS NULL OR kind = $2) ORDER BY agency_id",
        topic_code,
        kind.value if kind else None,
    )
    return [Agency(**dict(row)) for row in rows]


async def gaps(
    connection: asyncpg.Connection,
    topic_code: str | None,
    agency_kind: AgencyKind | None,
    office_id: str | None,
    from_date: date | None,
    to_date: date | None,
) -> list[GapRow]:
    """The gap register, counted per topic, agency kind, office, month and cause."""
    if from_date and to_date and to_date < from_date:
        raise Invalid("to_date", "period_reversed")
    rows = await connection.fetch(
        "SELECT topic_code, agency_kind, office_id, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM') AS period, "
        "cause, count(*)::int AS count FROM unmet_needs "
        "WHERE ($1::text IS NULL OR topic_code = $1) AND ($2::text IS NULL OR agency_kind = $2) "
        "AND ($3::text IS NULL OR office_id = $3) "
        "AND ($4::date IS NULL OR recorded_at >= $4::date) AND ($5::date IS NULL OR recorded_at < $5::date + 1) "
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY period, topic_code, agency_kind, office_id, cause",
        topic_code,
        agency_kind.value if agency_kind else None,
        office_id,
        from_date,
        to_date,
    )
    return [GapRow(**dict(row)) for row in rows]
