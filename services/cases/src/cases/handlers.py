"""Cases' use cases: one transaction each, outgoing events through the outbox.

Every event of a case also goes into `case_history` in the same transaction, so the overview's
history is exactly what was published. Every change of a case raises its `version` (optimistic
concurrency, knotenpunkt.concurrency).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from cases.domain import (
    DUPLICATE_RECORD,
    CaseAtMerge,
    CaseStatus,
    Conflict,
    Invalid,
    duplicates_at_merge,
    ensure_can_assign,
    ensure_can_close,
    ensure_can_reopen,
    ensure_goal_transition,
    ensure_open,
    plan_transfer,
    service_lines_to_open,
    unknown_codes,
)
from cases.schemas import (
    Assignment,
    CaseOpening,
    Closing,
    ConsultationInput,
    GoalInput,
    GoalStatusInput,
    TopicInput,
    TransferInput,
)
from knotenpunkt.concurrency import check_version
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ClientErased,
    ClientRegistered,
    ClientsMerged,
    ConsultationRecorded,
    Event,
    GoalStatus,
    PlanGoalSet,
    PlanGoalStatusChanged,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ReferralWithdrawn,
    ServiceLine,
    ServiceLineHandoverDue,
)
from knotenpunkt.http import ApiError, not_found
from knotenpunkt.logging import get_logger
from knotenpunkt.outbox import add_to_outbox
from knotenpunkt.pagination import Cursor, Page

SOURCE = "knotenpunkt/cases"
CASE = {"de": "Der Fall", "en": "The case"}
log = get_logger("cases")

CASE_COLUMNS = (
    "SELECT c.case_id, c.client_id, c.service_line, c.office_id, c.status, c.opened_at, c.case_manager_id, "
    "c.opened_by_hand, c.closed_at, c.close_reason, c.version, c.handover_due_on, "
    "(SELECT count(*) FROM consultations k WHERE k.case_id = c.case_id) AS consultations FROM cases c"
)


# --- helpers ---------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def case_dict(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    return {
        **row,
        "case_id": str(row["case_id"]),
        "client_id": str(row["client_id"]),
        "opened_at": _iso(row["opened_at"]),
        "closed_at": _iso(row.get("closed_at")),
        "handover_due_on": _iso(row.get("handover_due_on")),
    }


@contextmanager
def _rules() -> Iterator[None]:
    """A broken domain rule becomes the HTTP answer that explains it."""
    try:
        yield
    except Conflict as conflict:
        raise ApiError(409, conflict.code, **conflict.params) from None
    except Invalid as invalid:
        raise ApiError(422, "validation_failed", fields=[(invalid.field, invalid.code, invalid.params)]) from None


async def _record(connection: asyncpg.Connection, case_id: UUID, envelope: Envelope) -> None:
    """Publish a case's event (outbox) and keep it in the case's history, in the caller's transaction."""
    await add_to_outbox(connection, envelope)
    await _remember(connection, case_id, envelope)


async def _remember(connection: asyncpg.Connection, case_id: UUID, envelope: Envelope) -> None:
    """Keep an event in the case's history (also one another service published about the case)."""
    await connection.execute(
        "INSERT INTO case_history (case_id, event_id, event_type, occurred_at, data) VALUES ($1, $2, $3, $4, $5)",
        case_id,
        envelope.id,
        envelope.type,
        envelope.time,
        envelope.event.model_dump(mode="json"),
    )


def _by_request(event: Event, correlation_id: str) -> Envelope:
    return Envelope(event=event, source=SOURCE, correlation_id=correlation_id)


async def _case_for_update(connection: asyncpg.Connection, case_id: UUID) -> asyncpg.Record:
    case = await connection.fetchrow("SELECT * FROM cases WHERE case_id = $1 FOR UPDATE", case_id)
    if case is None:
        raise not_found("Der Fall", "The case")
    return case


async def _changed(connection: asyncpg.Connection, case_id: UUID) -> dict[str, Any]:
    """Raise the case's version after a change; returns the case as the API shows it."""
    await connection.execute("UPDATE cases SET version = version + 1, updated_at = now() WHERE case_id = $1", case_id)
    return case_dict(await connection.fetchrow(f"{CASE_COLUMNS} WHERE c.case_id = $1", case_id))


async def _check_codes(connection: asyncpg.Connection, sql: str, field: str, codes: list[str], message: str) -> None:
    known = [row[0] for row in await connection.fetch(sql, codes)]
    unknown = unknown_codes(codes, known)
    if unknown:
        paths = [field if len(codes) == 1 and field != "topics" else f"{field}.{index}" for index in unknown]
        raise ApiError(422, "validation_failed", fields=[(path, message, {}) for path in paths])


async def _check_topics(connection: asyncpg.Connection, codes: list[str], field: str) -> None:
    await _check_codes(
        connection, "SELECT code FROM topics WHERE code = ANY($1::text[])", field, codes, "unknown_topic"
    )


async def _check_reason(connection: asyncpg.Connection, kind: str, reason: str) -> None:
    await _check_codes(
        connection,
        f"SELECT code FROM reason_codes WHERE kind = '{kind}' AND code = ANY($1::text[])",
        "reason",
        [reason],
        f"unknown_{kind}_reason",
    )


async def resolve_client(connection: asyncpg.Connection, client_id: UUID) -> UUID:
    """The surviving id of a person whose records may have been merged (possibly more than once)."""
    seen = {client_id}
    while True:
        merged_into = await connection.fetchval("SELECT merged_into FROM persons WHERE client_id = $1", client_id)
        if merged_into is None or merged_into in seen:
            return client_id
        seen.add(merged_into)
        client_id = merged_into


async def _open_case(
    connection: asyncpg.Connection,
    client_id: UUID,
    service_line: ServiceLine,
    office_id: str,
    envelope_for: Any,
    case_manager_id: str | None = None,
    opened_by_hand: bool = False,
) -> UUID | None:
    """Open a case unless the person has an open one in that line; None when they have."""
    case_id = uuid.uuid4()
    opened_at = _now()
    inserted = await connection.fetchval(
        "INSERT INTO cases (case_id, client_id, service_line, office_id, opened_at, case_manager_id, opened_by_hand) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (client_id, service_line) WHERE status = 'open' DO NOTHING RETURNING true",
        case_id,
        client_id,
        service_line.value,
        office_id,
        opened_at,
        case_manager_id,
        opened_by_hand,
    )
    if not inserted:
        return None
    opened = CaseOpened(
        client_id=client_id,
        case_id=case_id,
        service_line=service_line,
        office_id=office_id,
        opened_at=opened_at,
        case_manager_id=case_manager_id,
        opened_by_hand=opened_by_hand,
    )
    await _record(connection, case_id, envelope_for(opened))
    log.info("case opened", case_id=str(case_id), client_id=str(client_id), service_line=service_line.value)
    return case_id


# --- consumed events -------------------------------------------------------------------------


async def on_client_registered(connection: asyncpg.Connection, envelope: Envelope) -> None:
    """A registered person gets a case in every service line intake routed them to."""
    registered = envelope.event
    assert isinstance(registered, ClientRegistered)
    await connection.execute(
        "INSERT INTO persons (client_id, office_id, service_line, registered_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (client_id) DO UPDATE SET office_id = EXCLUDED.office_id, "
        "service_line = EXCLUDED.service_line, registered_at = EXCLUDED.registered_at",
        registered.client_id,
        registered.office_id,
        registered.service_line.value,
        registered.registered_at,
    )
    # A merge may have been seen first: the cases then belong to the surviving record.
    client_id = await resolve_client(connection, registered.client_id)
    for service_line in service_lines_to_open(registered.service_line, registered.service_lines):
        await _open_case(
            connection,
            client_id,
            service_line,
            registered.office_id,
            lambda event: envelope.caused(event, SOURCE),
        )


async def on_clients_merged(connection: asyncpg.Connection, envelope: Envelope) -> None:
    """The retired record's cases move to the surviving one; a duplicate open case is closed."""
    merged = envelope.event
    assert isinstance(merged, ClientsMerged)
    retired = merged.merged_client_id
    survivor = await resolve_client(connection, merged.client_id)
    if survivor == retired:
        return
    await connection.execute(
        "INSERT INTO persons (client_id, merged_into) VALUES ($1, $2) "
        "ON CONFLICT (client_id) DO UPDATE SET merged_into = EXCLUDED.merged_into",
        retired,
        survivor,
    )
    await connection.execute("UPDATE persons SET merged_into = $2 WHERE merged_into = $1", retired, survivor)
    moving = await connection.fetch(
        "SELECT case_id, service_line, office_id, status FROM cases WHERE client_id = $1 ORDER BY opened_at FOR UPDATE",
        retired,
    )
    survivor_open = await connection.fetch(
        "SELECT service_line FROM cases WHERE client_id = $1 AND status = 'open'", survivor
    )
    duplicates = duplicates_at_merge(
        [CaseAtMerge(row["case_id"], row["service_line"], CaseStatus(row["status"])) for row in moving],
        {row["service_line"] for row in survivor_open},
    )
    closed_at = _now()
    for row in moving:
        if row["case_id"] in duplicates:
            # Closed before it moves: the survivor may have only one open case per line.
            await connection.execute(
                "UPDATE cases SET status = 'closed', closed_at = $2, close_reason = $3 WHERE case_id = $1",
                row["case_id"],
                closed_at,
                DUPLICATE_RECORD,
            )
    await connection.execute("UPDATE cases SET client_id = $2 WHERE client_id = $1", retired, survivor)
    await connection.execute("UPDATE referrals SET client_id = $2 WHERE client_id = $1", retired, survivor)
    for row in moving:
        # The merge itself is part of each moved case's history (pseudonymous ids only).
        await _remember(connection, row["case_id"], envelope)
        if row["case_id"] in duplicates:
            closed = CaseClosed(
                client_id=survivor,
                case_id=row["case_id"],
                service_line=ServiceLine(row["service_line"]),
                office_id=row["office_id"],
                reason=DUPLICATE_RECORD,
                closed_at=closed_at,
            )
            await _record(connection, row["case_id"], envelope.caused(closed, SOURCE))
        await _changed(connection, row["case_id"])
    log.info("client records merged", moved_cases=len(moving), closed_duplicates=len(duplicates))


async def on_client_erased(connection: asyncpg.Connection, envelope: Envelope) -> None:
    """Erasure on request: the free texts written about the person go; the anonymous facts
    (dates, topics, durations, statuses) stay, as the statistics and the case history need them."""
    erased = envelope.event
    assert isinstance(erased, ClientErased)
    client_id = await resolve_client(connection, erased.client_id)
    cases = await connection.fetch("SELECT case_id FROM cases WHERE client_id = $1", client_id)
    case_ids = [row["case_id"] for row in cases]
    await connection.execute("UPDATE consultations SET note = NULL WHERE case_id = ANY($1::uuid[])", case_ids)
    await connection.execute("UPDATE plan_goals SET description = NULL WHERE case_id = ANY($1::uuid[])", case_ids)
    for case_id in case_ids:
        await _remember(connection, case_id, envelope)
        await _changed(connection, case_id)
    log.info("client erased: notes removed", cases=len(case_ids))


async def on_handover_due(connection: asyncpg.Connection, envelope: Envelope) -> None:
    """The person turned 27: their open JMD case is flagged for the case manager's decision."""
    due = envelope.event
    assert isinstance(due, ServiceLineHandoverDue)
    client_id = await resolve_client(connection, due.client_id)
    rows = await connection.fetch(
        "UPDATE cases SET handover_due_on = $3 WHERE client_id = $1 AND service_line = $2 AND status = 'open' "
        "AND handover_due_on IS NULL RETURNING case_id",
        client_id,
        due.from_service_line.value,
        due.due_on,
    )
    for row in rows:
        await _remember(connection, row["case_id"], envelope)
        await _changed(connection, row["case_id"])


_REFERRAL_ANSWERS: dict[type[Event], tuple[str, str, str | None]] = {
    # event -> (status, the event's timestamp field, the field worth showing as detail)
    ReferralAccepted: ("accepted", "accepted_at", None),
    ReferralDeclined: ("declined", "declined_at", "reason"),
    ReferralCompleted: ("completed", "completed_at", "outcome"),
    ReferralWithdrawn: ("withdrawn", "withdrawn_at", "reason"),
    ReferralExpired: ("expired", "expired_at", None),
}


async def on_referral_sent(connection: asyncpg.Connection, envelope: Envelope) -> None:
    sent = envelope.event
    assert isinstance(sent, ReferralSent)
    # An answer seen first (only possible across a merge) keeps its newer status.
    await connection.execute(
        "INSERT INTO referrals (referral_id, case_id, client_id, agency_id, topic_code, status, sent_at, "
        "answer_due_on, updated_at) VALUES ($1, $2, $3, $4, $5, 'sent', $6, $7, $6) "
        "ON CONFLICT (referral_id) DO UPDATE SET case_id = EXCLUDED.case_id, client_id = EXCLUDED.client_id, "
        "agency_id = EXCLUDED.agency_id, topic_code = EXCLUDED.topic_code, sent_at = EXCLUDED.sent_at, "
        "answer_due_on = EXCLUDED.answer_due_on",
        sent.referral_id,
        sent.case_id,
        await resolve_client(connection, sent.client_id),
        sent.agency_id,
        sent.topic_code,
        sent.sent_at,
        sent.answer_due_on,
    )


async def on_referral_answer(connection: asyncpg.Connection, envelope: Envelope) -> None:
    event = envelope.event
    status, time_field, detail_field = _REFERRAL_ANSWERS[type(event)]
    detail = getattr(event, detail_field) if detail_field else None
    await connection.execute(
        "INSERT INTO referrals (referral_id, client_id, agency_id, status, detail, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (referral_id) DO UPDATE SET status = EXCLUDED.status, detail = EXCLUDED.detail, "
        "updated_at = EXCLUDED.updated_at",
        event.referral_id,
        await resolve_client(connection, event.client_id),
        event.agency_id,
        status,
        None if detail is None else str(detail),
        getattr(event, time_field),
    )


# --- HTTP use cases --------------------------------------------------------------------------


async def open_case(connection: asyncpg.Connection, opening: CaseOpening, correlation_id: str) -> dict[str, Any]:
    """Open a case by hand for a person cases knows (from ClientRegistered)."""
    known = await connection.fetchrow(
        "SELECT registered_at, merged_into FROM persons WHERE client_id = $1", opening.client_id
    )
    if known is None or (known["registered_at"] is None and known["merged_into"] is None):
        raise not_found("Die Person", "The person")
    client_id = await resolve_client(connection, opening.client_id)
    case_id = await _open_case(
        connection,
        client_id,
        opening.service_line,
        opening.office_id,
        lambda event: _by_request(event, correlation_id),
        case_manager_id=opening.case_manager_id,
        opened_by_hand=True,
    )
    if case_id is None:
        existing = await connection.fetchval(
            "SELECT case_id FROM cases WHERE client_id = $1 AND service_line = $2 AND status = 'open'",
            client_id,
            opening.service_line.value,
        )
        raise ApiError(409, "open_case_exists", case_id=str(existing))
    return case_dict(await connection.fetchrow(f"{CASE_COLUMNS} WHERE c.case_id = $1", case_id))


async def assign(
    connection: asyncpg.Connection, case_id: UUID, assignment: Assignment, if_match: str | None, correlation_id: str
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    check_version(if_match, case["version"], required=True, what=CASE)
    with _rules():
        ensure_can_assign(CaseStatus(case["status"]), case["case_manager_id"])
    await connection.execute(
        "UPDATE cases SET case_manager_id = $2 WHERE case_id = $1", case_id, assignment.case_manager_id
    )
    event = CaseAssigned(
        client_id=case["client_id"],
        case_id=case_id,
        case_manager_id=assignment.case_manager_id,
        assigned_at=_now(),
    )
    await _record(connection, case_id, _by_request(event, correlation_id))
    return await _changed(connection, case_id)


async def transfer(
    connection: asyncpg.Connection, case_id: UUID, request: TransferInput, if_match: str | None, correlation_id: str
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    await _check_reason(connection, "transfer", request.reason)
    check_version(if_match, case["version"], required=True, what=CASE)
    with _rules():
        moved = plan_transfer(
            CaseStatus(case["status"]),
            case["office_id"],
            case["case_manager_id"],
            request.to_office_id,
            request.to_case_manager_id,
        )
    await connection.execute(
        "UPDATE cases SET office_id = $2, case_manager_id = $3 WHERE case_id = $1",
        case_id,
        moved.to_office_id,
        moved.to_case_manager_id,
    )
    event = CaseTransferred(
        client_id=case["client_id"],
        case_id=case_id,
        from_office_id=moved.from_office_id,
        to_office_id=moved.to_office_id,
        from_case_manager_id=moved.from_case_manager_id,
        to_case_manager_id=moved.to_case_manager_id,
        reason=request.reason,
        transferred_at=_now(),
    )
    await _record(connection, case_id, _by_request(event, correlation_id))
    return await _changed(connection, case_id)


async def close(
    connection: asyncpg.Connection, case_id: UUID, closing: Closing, if_match: str | None, correlation_id: str
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    await _check_reason(connection, "close", closing.reason)
    check_version(if_match, case["version"], required=True, what=CASE)
    with _rules():
        ensure_can_close(CaseStatus(case["status"]))
    closed_at = _now()
    await connection.execute(
        "UPDATE cases SET status = 'closed', closed_at = $2, close_reason = $3 WHERE case_id = $1",
        case_id,
        closed_at,
        closing.reason,
    )
    event = CaseClosed(
        client_id=case["client_id"],
        case_id=case_id,
        service_line=ServiceLine(case["service_line"]),
        office_id=case["office_id"],
        reason=closing.reason,
        closed_at=closed_at,
    )
    await _record(connection, case_id, _by_request(event, correlation_id))
    return await _changed(connection, case_id)


async def reopen(
    connection: asyncpg.Connection, case_id: UUID, if_match: str | None, correlation_id: str
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    check_version(if_match, case["version"], required=True, what=CASE)
    with _rules():
        ensure_can_reopen(CaseStatus(case["status"]))
    other = await connection.fetchval(
        "SELECT case_id FROM cases WHERE client_id = $1 AND service_line = $2 AND status = 'open'",
        case["client_id"],
        case["service_line"],
    )
    if other is not None:
        raise ApiError(409, "open_case_exists", case_id=str(other))
    await connection.execute(
        "UPDATE cases SET status = 'open', closed_at = NULL, close_reason = NULL WHERE case_id = $1", case_id
    )
    event = CaseReopened(client_id=case["client_id"], case_id=case_id, reopened_at=_now())
    await _record(connection, case_id, _by_request(event, correlation_id))
    return await _changed(connection, case_id)


async def record_consultation(
    connection: asyncpg.Connection,
    case_id: UUID,
    consultation: ConsultationInput,
    correlation_id: str,
    if_match: str | None = None,
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    await _check_topics(connection, consultation.topics, "topics")
    # Adding a consultation loses nobody's change, so If-Match is checked only when sent.
    check_version(if_match, case["version"], required=False, what=CASE)
    with _rules():
        ensure_open(CaseStatus(case["status"]))
    consultation_id = uuid.uuid4()
    case_manager_id = consultation.case_manager_id or case["case_manager_id"]
    await connection.execute(
        "INSERT INTO consultations (consultation_id, case_id, held_on, duration_minutes, topics, "
        "family_members_counselled, note, mode, language, interpreter_used, case_manager_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        consultation_id,
        case_id,
        consultation.held_on,
        consultation.duration_minutes,
        consultation.topics,
        consultation.family_members_counselled,
        consultation.note,
        consultation.mode.value,
        consultation.language,
        consultation.interpreter_used,
        case_manager_id,
    )
    # The note is not part of the event: it stays in this database.
    event = ConsultationRecorded(
        client_id=case["client_id"],
        consultation_id=consultation_id,
        case_id=case_id,
        service_line=case["service_line"],
        office_id=case["office_id"],
        held_on=consultation.held_on,
        duration_minutes=consultation.duration_minutes,
        topics=tuple(consultation.topics),
        family_members_counselled=consultation.family_members_counselled,
        mode=consultation.mode,
        language=consultation.language,
        interpreter_used=consultation.interpreter_used,
        case_manager_id=case_manager_id,
    )
    await _record(connection, case_id, _by_request(event, correlation_id))
    changed = await _changed(connection, case_id)
    return {"consultation_id": str(consultation_id), "case_id": str(case_id), "version": changed["version"]}


def _goal_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "goal_id": str(row["goal_id"]),
        "case_id": str(row["case_id"]),
        "topic_code": row["topic_code"],
        "description": row["description"],
        "target_date": _iso(row["target_date"]),
        "status": row["status"],
        "set_at": _iso(row["set_at"]),
        "changed_at": _iso(row["changed_at"]),
    }


async def set_goal(
    connection: asyncpg.Connection, case_id: UUID, goal: GoalInput, correlation_id: str, if_match: str | None = None
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    await _check_topics(connection, [goal.topic_code], "topic_code")
    # A new goal loses nobody's change either: If-Match is checked only when sent.
    check_version(if_match, case["version"], required=False, what=CASE)
    with _rules():
        ensure_open(CaseStatus(case["status"]))
    goal_id, set_at = uuid.uuid4(), _now()
    row = await connection.fetchrow(
        "INSERT INTO plan_goals (goal_id, case_id, topic_code, description, target_date, status, set_at, changed_at) "
        "VALUES ($1, $2, $3, $4, $5, 'open', $6, $6) RETURNING *",
        goal_id,
        case_id,
        goal.topic_code,
        goal.description,
        goal.target_date,
        set_at,
    )
    event = PlanGoalSet(
        client_id=case["client_id"],
        goal_id=goal_id,
        case_id=case_id,
        topic_code=goal.topic_code,
        target_date=goal.target_date,
        set_at=set_at,
    )
    await _record(connection, case_id, _by_request(event, correlation_id))
    changed = await _changed(connection, case_id)
    return {**_goal_dict(row), "version": changed["version"]}


async def change_goal_status(
    connection: asyncpg.Connection,
    case_id: UUID,
    goal_id: UUID,
    change: GoalStatusInput,
    if_match: str | None,
    correlation_id: str,
) -> dict[str, Any]:
    case = await _case_for_update(connection, case_id)
    goal = await connection.fetchrow(
        "SELECT * FROM plan_goals WHERE goal_id = $1 AND case_id = $2 FOR UPDATE", goal_id, case_id
    )
    if goal is None:
        raise not_found("Das Ziel", "The goal")
    # Changing a goal can overwrite someone else's change of it: If-Match is required.
    check_version(if_match, case["version"], required=True, what=CASE)
    with _rules():
        ensure_goal_transition(CaseStatus(case["status"]), GoalStatus(goal["status"]), change.status)
    changed_at = _now()
    row = await connection.fetchrow(
        "UPDATE plan_goals SET status = $2, changed_at = $3 WHERE goal_id = $1 RETURNING *",
        goal_id,
        change.status.value,
        changed_at,
    )
    event = PlanGoalStatusChanged(
        client_id=case["client_id"], goal_id=goal_id, case_id=case_id, status=change.status, changed_at=changed_at
    )
    await _record(connection, case_id, _by_request(event, correlation_id))
    changed = await _changed(connection, case_id)
    return {**_goal_dict(row), "version": changed["version"]}


# --- code lists ------------------------------------------------------------------------------


async def list_topics(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await connection.fetch("SELECT code, label_de, label_en, built_in FROM topics ORDER BY code")
    return [dict(row) for row in rows]


async def add_topic(connection: asyncpg.Connection, topic: TopicInput) -> dict[str, Any]:
    row = await connection.fetchrow(
        "INSERT INTO topics (code, label_de, label_en) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING "
        "RETURNING code, label_de, label_en, built_in",
        topic.code,
        topic.label_de,
        topic.label_en,
    )
    if row is None:
        raise ApiError(409, "topic_exists", topic_code=topic.code)
    return dict(row)


async def list_reasons(connection: asyncpg.Connection) -> dict[str, list[dict[str, str]]]:
    rows = await connection.fetch("SELECT kind, code, label_de, label_en FROM reason_codes ORDER BY kind, code")
    reasons: dict[str, list[dict[str, str]]] = {"close": [], "transfer": []}
    for row in rows:
        reasons[row["kind"]].append({"code": row["code"], "label_de": row["label_de"], "label_en": row["label_en"]})
    return reasons


# --- reading ---------------------------------------------------------------------------------


async def get_case(connection: asyncpg.Connection, case_id: UUID) -> dict[str, Any]:
    row = await connection.fetchrow(f"{CASE_COLUMNS} WHERE c.case_id = $1", case_id)
    if row is None:
        raise not_found("Der Fall", "The case")
    return case_dict(row)


async def cases_of_client(connection: asyncpg.Connection, client_id: UUID) -> list[dict[str, Any]]:
    client_id = await resolve_client(connection, client_id)
    rows = await connection.fetch(f"{CASE_COLUMNS} WHERE c.client_id = $1 ORDER BY c.opened_at, c.case_id", client_id)
    return [case_dict(row) for row in rows]


async def list_cases(
    connection: asyncpg.Connection,
    *,
    case_manager_id: str | None,
    office_id: str | None,
    service_line: ServiceLine | None,
    status: CaseStatus | None,
    topic: str | None,
    limit: int,
    cursor: Cursor | None,
    handover_due: bool | None = None,
) -> Page[dict[str, Any]]:
    """The newest cases first, filtered, one page at a time (keyset pagination)."""
    conditions: list[str] = []
    args: list[Any] = []

    def where(sql: str, *values: Any) -> None:
        placeholders = []
        for value in values:
            args.append(value)
            placeholders.append(f"${len(args)}")
        conditions.append(sql.format(*placeholders))

    if case_manager_id is not None:
        where("c.case_manager_id = {}", case_manager_id)
    if office_id is not None:
        where("c.office_id = {}", office_id)
    if service_line is not None:
        where("c.service_line = {}", service_line.value)
    if status is not None:
        where("c.status = {}", status.value)
    if topic is not None:
        where(
            "EXISTS (SELECT 1 FROM consultations k WHERE k.case_id = c.case_id AND k.topics @> ARRAY[{}::text])", topic
        )
    if handover_due is not None:
        conditions.append("c.handover_due_on IS NOT NULL" if handover_due else "c.handover_due_on IS NULL")
    if cursor is not None:
        if not isinstance(cursor.sort_key, datetime):
            raise ApiError(422, "validation_failed", fields=[("cursor", "invalid_cursor", {})])
        where("(c.opened_at, c.case_id) < ({}::timestamptz, {}::uuid)", cursor.sort_key, cursor.id_as_uuid())
    args.append(limit + 1)
    sql = (
        f"{CASE_COLUMNS} {'WHERE ' + ' AND '.join(conditions) if conditions else ''} "
        f"ORDER BY c.opened_at DESC, c.case_id DESC LIMIT ${len(args)}"
    )
    rows = await connection.fetch(sql, *args)
    page = Page.of(rows, limit, key=lambda row: (row["opened_at"], row["case_id"]))
    return Page([case_dict(row) for row in page.items], page.next_cursor)


async def case_overview(connection: asyncpg.Connection, case_id: UUID) -> dict[str, Any]:
    """Everything cases knows about one case (the person summary comes from intake, in api.py)."""
    case = await get_case(connection, case_id)
    client_id = UUID(case["client_id"])
    lines = await connection.fetch(
        "SELECT case_id, service_line, office_id, status, case_manager_id, opened_at FROM cases "
        "WHERE client_id = $1 ORDER BY opened_at, case_id",
        client_id,
    )
    consultations = await connection.fetch(
        "SELECT consultation_id, held_on, duration_minutes, mode, language, interpreter_used, topics, "
        "family_members_counselled, case_manager_id, note, recorded_at FROM consultations "
        "WHERE case_id = $1 ORDER BY held_on, recorded_at",
        case_id,
    )
    goals = await connection.fetch("SELECT * FROM plan_goals WHERE case_id = $1 ORDER BY set_at, goal_id", case_id)
    referrals = await connection.fetch(
        "SELECT referral_id, agency_id, topic_code, status, sent_at, answer_due_on, detail, updated_at "
        "FROM referrals WHERE case_id = $1 ORDER BY sent_at, referral_id",
        case_id,
    )
    history = await connection.fetch(
        "SELECT event_id, event_type, occurred_at, data FROM case_history WHERE case_id = $1 ORDER BY id", case_id
    )
    return {
        "case": case,
        "service_lines": [
            {
                **dict(row),
                "case_id": str(row["case_id"]),
                "opened_at": _iso(row["opened_at"]),
                "current": row["case_id"] == case_id,
            }
            for row in lines
        ],
        "consultations": [
            {
                **dict(row),
                "consultation_id": str(row["consultation_id"]),
                "held_on": _iso(row["held_on"]),
                "recorded_at": _iso(row["recorded_at"]),
            }
            for row in consultations
        ],
        "plan": [_goal_dict(row) for row in goals],
        "referrals": [
            {
                **dict(row),
                "referral_id": str(row["referral_id"]),
                "sent_at": _iso(row["sent_at"]),
                "answer_due_on": _iso(row["answer_due_on"]),
                "updated_at": _iso(row["updated_at"]),
            }
            for row in referrals
        ],
        "history": [
            {
                "event_id": str(row["event_id"]),
                # The short name ("CaseOpened") reads better on a screen than the CloudEvents type.
                "event": row["event_type"].split(".")[-2],
                "event_type": row["event_type"],
                "occurred_at": _iso(row["occurred_at"]),
                "data": row["data"],
            }
            for row in history
        ],
    }
