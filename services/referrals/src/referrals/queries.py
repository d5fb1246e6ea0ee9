"""Reads: each takes a connection (from `units.read()`) and returns response models. What the
actor may see is decided here: lists are filtered in SQL (`access.read_scope`), single records
checked (`access.require_read`, `access.require_addressed_to`)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import asyncpg

from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.events import AgencyKind
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor
from referrals import access
from referrals.consent_gate import ConsentGate
from referrals.domain import OPEN, Status, needs_action
from referrals.schemas import (
    Agency,
    AgencyReceived,
    ClientReferrals,
    GapRow,
    HistoryStep,
    InboxReferral,
    Referral,
    ReferralExport,
)

_REFERRAL_COLUMNS = (
    "r.referral_id, r.case_id, r.client_id, r.agency_id, r.topic_code, r.office_id, r.status, r.sent_at, "
    "r.remind_at, r.due_at, r.answered_at, r.decline_reason, r.completed_at, r.outcome, r.closed_at, "
    "r.withdraw_reason, r.dismissed_at, c.case_manager_id"
)


def _referral(row: asyncpg.Record, now: datetime) -> Referral:
    dismissed = row["dismissed_at"] is not None
    return Referral(**dict(row), action_needed=needs_action(Status(row["status"]), row["remind_at"], now, dismissed))


async def get_referral(connection: asyncpg.Connection, actor: Actor, referral_id: UUID, now: datetime) -> Referral:
    row = await connection.fetchrow(
        f"SELECT {_REFERRAL_COLUMNS}, c.office_id AS case_office_id "
        "FROM referrals r JOIN known_cases c USING (case_id) WHERE r.referral_id = $1",
        referral_id,
    )
    if row is None:
        raise NotFound("Die Vermittlung", "The referral")
    access.require_read(actor, row["office_id"], row["case_office_id"], row["case_manager_id"])
    return _referral(row, now)


async def list_referrals(
    connection: asyncpg.Connection,
    actor: Actor,
    now: datetime,
    *,
    case_manager_id: str | None = None,
    case_id: UUID | None = None,
    office_id: str | None = None,
    statuses: list[Status] | None = None,
    action_needed: bool = False,
    limit: int = 200,
) -> list[Referral]:
    """Referrals the actor may read (filtered in SQL), narrowed by the filters; `action_needed`:
    unanswered after half the promised time, declined, or expired."""
    conditions = ["($1::text IS NULL OR c.case_manager_id = $1)", "($2::uuid IS NULL OR r.case_id = $2)"]
    conditions.append("($3::text IS NULL OR r.office_id = $3)")
    conditions.append("($4::text[] IS NULL OR r.status = ANY($4::text[]))")
    if action_needed:
        conditions.append(
            "((r.status = 'sent' AND r.remind_at <= $5) OR r.status IN ('declined', 'expired')) "
            "AND r.dismissed_at IS NULL"
        )
    else:
        conditions.append("$5::timestamptz IS NOT NULL")
    allowed, allowed_params = access.read_scope(actor, first_param=7)
    conditions.append(allowed)
    rows = await connection.fetch(
        f"SELECT {_REFERRAL_COLUMNS} FROM referrals r JOIN known_cases c USING (case_id) "
        f"WHERE {' AND '.join(conditions)} ORDER BY r.sent_at DESC LIMIT $6",
        case_manager_id,
        case_id,
        office_id,
        [status.value for status in statuses] if statuses else None,
        now,
        limit,
        *allowed_params,
    )
    return [_referral(row, now) for row in rows]


_INBOX_COLUMNS = "r.referral_id, r.client_id, r.agency_id, r.topic_code, r.office_id, r.status, r.sent_at, r.due_at"


async def inbox(connection: asyncpg.Connection, actor: Actor, agency_id: str, gate: ConsentGate) -> list[InboxReferral]:
    """An agency's open referrals (those it still has to answer or to complete), each with the
    personal data its person consented to share with this agency, asked from intake now. The
    route checked that `agency_id` is the signed-in agency; the SQL keeps to it as well."""
    kind = await connection.fetchval("SELECT kind FROM agencies WHERE agency_id = $1", agency_id)
    if kind is None:
        raise NotFound("Die Partnerstelle", "The partner agency")
    addressed, params = access.agency_scope(actor, first_param=3)
    rows = await connection.fetch(
        f"SELECT {_INBOX_COLUMNS} FROM referrals r "
        f"WHERE r.agency_id = $1 AND r.status = ANY($2::text[]) AND {addressed} ORDER BY r.sent_at",
        agency_id,
        [status.value for status in OPEN],
        *params,
    )
    return [await _inbox_referral(row, AgencyKind(kind), gate) for row in rows]


async def inbox_referral(
    connection: asyncpg.Connection, actor: Actor, referral_id: UUID, gate: ConsentGate
) -> InboxReferral:
    """One referral in the inbox, open or not: only for the agency it is addressed to (403
    forbidden_agency for any other), with the consented data as of now."""
    row = await connection.fetchrow(
        f"SELECT {_INBOX_COLUMNS}, a.kind FROM referrals r JOIN agencies a USING (agency_id) WHERE r.referral_id = $1",
        referral_id,
    )
    if row is None:
        raise NotFound("Die Vermittlung", "The referral")
    access.require_addressed_to(actor, Action.AGENCY_INBOX, row["agency_id"])
    return await _inbox_referral(row, AgencyKind(row["kind"]), gate)


async def _inbox_referral(row: asyncpg.Record, kind: AgencyKind, gate: ConsentGate) -> InboxReferral:
    # Only open referrals show the person: a closed one no longer needs their data.
    if Status(row["status"]) in OPEN:
        person, unavailable = await gate.person(row["client_id"], row["agency_id"], kind)
    else:
        person, unavailable = None, "referral_closed"
    return InboxReferral(
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


async def agencies(
    connection: asyncpg.Connection, topic_code: str | None, kind: AgencyKind | None, include_inactive: bool = False
) -> list[Agency]:
    rows = await connection.fetch(
        "SELECT agency_id, name, kind, topics, languages, contact, response_days, channel, active FROM agencies "
        "WHERE ($1::text IS NULL OR $1 = ANY(topics)) AND ($2::text IS NULL OR kind = $2) AND (active OR $3) "
        "ORDER BY agency_id",
        topic_code,
        kind.value if kind else None,
        include_inactive,
    )
    return [Agency(**dict(row)) for row in rows]


async def gaps(
    connection: asyncpg.Connection,
    topic_code: str | None,
    agency_kind: AgencyKind | None,
    office_id: str | None,
    from_date: date | None,
    to_date: date | None,
    threshold: int = 0,
) -> list[GapRow]:
    """The gap register, counted per topic, agency kind, office, month and cause. Counts from 1
    to `threshold` are not answered: every answer has rows of this one granularity only (filters
    select rows, they never sum them), so no published count gives a suppressed one back."""
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
    return [
        GapRow(**{**dict(row), "count": None, "suppressed": True})
        if 0 < row["count"] <= threshold
        else GapRow(**dict(row))
        for row in rows
    ]


# --- the person's own data (DSGVO Art. 15) ----------------------------------------------------


async def client_export(connection: asyncpg.Connection, client_id: UUID) -> ClientReferrals:
    """Every referral of the person (also those recorded under an id merged into theirs since),
    its history and answers, and what each agency received: the data categories (the values went
    only on the agency's own topic, or were shown live in the inbox, and are not kept here)."""
    rows = await connection.fetch(
        "SELECT r.*, a.name AS agency_name, a.kind AS agency_kind, a.channel FROM referrals r "
        "JOIN agencies a USING (agency_id) "
        "WHERE r.client_id = $1 OR r.client_id = (SELECT client_id FROM merged_clients WHERE merged_client_id = $1) "
        "ORDER BY r.sent_at",
        client_id,
    )
    merged = await connection.fetch(
        "SELECT merged_client_id FROM merged_clients WHERE client_id = $1 ORDER BY merged_client_id", client_id
    )
    return ClientReferrals(
        client_id=client_id,
        merged_client_ids=[row["merged_client_id"] for row in merged],
        referrals=[_export(row) for row in rows],
    )


def _export(row: asyncpg.Record) -> ReferralExport:
    history = [HistoryStep(at=row["sent_at"], step="sent", by=row["sent_by"])]
    if row["reminded_at"] is not None:
        history.append(HistoryStep(at=row["reminded_at"], step="agency_reminded", by="deadline_watch"))
    status = Status(row["status"])
    if row["answered_at"] is not None:
        step = "declined" if status == Status.DECLINED else "accepted"
        history.append(
            HistoryStep(at=row["answered_at"], step=step, by=row["answered_by"], detail=row["decline_reason"])
        )
    if row["completed_at"] is not None:
        history.append(
            HistoryStep(at=row["completed_at"], step="completed", by=row["completed_by"], detail=row["outcome"])
        )
    if row["closed_at"] is not None and status in (Status.WITHDRAWN, Status.EXPIRED):
        history.append(
            HistoryStep(at=row["closed_at"], step=status.value, by=row["closed_by"], detail=row["withdraw_reason"])
        )
    kafka = row["channel"] == "kafka"
    return ReferralExport(
        referral_id=row["referral_id"],
        case_id=row["case_id"],
        agency_id=row["agency_id"],
        agency_name=row["agency_name"],
        topic_code=row["topic_code"],
        office_id=row["office_id"],
        status=status,
        consent_id=row["consent_id"],
        history=sorted(history, key=lambda step: step.at),
        agency_received=AgencyReceived(
            channel=row["channel"],
            data_categories=list(row["shared_categories"]) if row["shared_categories"] is not None else None,
            how=(
                "Sent once on the agency's own Kafka topic with the referral; the values are not kept by referrals."
                if kafka
                else "Shown in the agency's web inbox while the referral was open and the consent valid, as intake "
                "gave them at each look; the values are not kept by referrals (each look is in the audit trail)."
            ),
        ),
    )
