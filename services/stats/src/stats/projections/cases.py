"""Cases, consultations and plan goals. Lifecycle events guard by their own timestamps: the
latest assignment or transfer wins, whatever order they arrive in."""

from __future__ import annotations

import asyncpg

from knotenpunkt.events import (
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ConsultationRecorded,
    PlanGoalSet,
    PlanGoalStatusChanged,
)
from stats.projections._batch import SEPARATOR, SPLIT, columns, rounds, transposed

# The office and the case manager: whoever set them last (by event time) wins.
_LATEST_OFFICE = (
    "office_id = CASE WHEN EXCLUDED.office_id IS NOT NULL AND (c.office_as_of IS NULL "
    "OR c.office_as_of <= EXCLUDED.office_as_of) THEN EXCLUDED.office_id ELSE c.office_id END, "
    "office_as_of = CASE WHEN EXCLUDED.office_id IS NOT NULL THEN greatest(c.office_as_of, EXCLUDED.office_as_of) "
    "ELSE c.office_as_of END"
)
_LATEST_MANAGER = (
    "case_manager_id = CASE WHEN EXCLUDED.case_manager_id IS NOT NULL AND (c.manager_as_of IS NULL "
    "OR c.manager_as_of <= EXCLUDED.manager_as_of) THEN EXCLUDED.case_manager_id ELSE c.case_manager_id END, "
    "manager_as_of = CASE WHEN EXCLUDED.case_manager_id IS NOT NULL "
    "THEN greatest(c.manager_as_of, EXCLUDED.manager_as_of) ELSE c.manager_as_of END"
)

OPENED_SQL = f"""
INSERT INTO cases AS c (case_id, client_id, service_line, office_id, office_as_of, case_manager_id, manager_as_of,
    opened_at)
SELECT u.case_id, u.client_id, u.service_line, u.office_id, u.opened_at, u.case_manager_id, u.opened_at, u.opened_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
    AS u(case_id, client_id, service_line, office_id, case_manager_id, opened_at)
ON CONFLICT (case_id) DO UPDATE SET
client_id = EXCLUDED.client_id,
service_line = EXCLUDED.service_line,
opened_at = EXCLUDED.opened_at,
{_LATEST_OFFICE},
{_LATEST_MANAGER}
"""


async def case_opened(connection: asyncpg.Connection, events: list[CaseOpened]) -> None:
    for batch in rounds(events, lambda e: e.case_id):
        rows = [
            (e.case_id, e.client_id, e.service_line.value, e.office_id, e.case_manager_id, e.opened_at) for e in batch
        ]
        await connection.execute(OPENED_SQL, *transposed(rows, 6))


ASSIGNED_SQL = f"""
INSERT INTO cases AS c (case_id, client_id, case_manager_id, manager_as_of)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[])
ON CONFLICT (case_id) DO UPDATE SET {_LATEST_MANAGER}
"""


async def case_assigned(connection: asyncpg.Connection, events: list[CaseAssigned]) -> None:
    for batch in rounds(events, lambda e: e.case_id):
        await connection.execute(
            ASSIGNED_SQL,
            *columns(
                batch, lambda e: e.case_id, lambda e: e.client_id, lambda e: e.case_manager_id, lambda e: e.assigned_at
            ),
        )


TRANSFERRED_SQL = f"""
INSERT INTO cases AS c (case_id, client_id, office_id, office_as_of, case_manager_id, manager_as_of)
SELECT u.case_id, u.client_id, u.office_id, u.at, u.case_manager_id, u.at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
    AS u(case_id, client_id, office_id, case_manager_id, at)
ON CONFLICT (case_id) DO UPDATE SET {_LATEST_OFFICE}, {_LATEST_MANAGER}
"""


async def case_transferred(connection: asyncpg.Connection, events: list[CaseTransferred]) -> None:
    for batch in rounds(events, lambda e: e.case_id):
        await connection.execute(
            TRANSFERRED_SQL,
            *columns(
                batch,
                lambda e: e.case_id,
                lambda e: e.client_id,
                lambda e: e.to_office_id,
                lambda e: e.to_case_manager_id,
                lambda e: e.transferred_at,
            ),
        )


CLOSED_SQL = """
INSERT INTO cases AS c (case_id, client_id, service_line, office_id, closed_at, close_reason)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
ON CONFLICT (case_id) DO UPDATE SET
service_line = coalesce(c.service_line, EXCLUDED.service_line),
office_id = coalesce(c.office_id, EXCLUDED.office_id),
close_reason = CASE WHEN c.closed_at IS NULL OR c.closed_at <= EXCLUDED.closed_at
    THEN EXCLUDED.close_reason ELSE c.close_reason END,
closed_at = greatest(c.closed_at, EXCLUDED.closed_at)
"""


async def case_closed(connection: asyncpg.Connection, events: list[CaseClosed]) -> None:
    for batch in rounds(events, lambda e: e.case_id):
        await connection.execute(
            CLOSED_SQL,
            *columns(
                batch,
                lambda e: e.case_id,
                lambda e: e.client_id,
                lambda e: e.service_line.value,
                lambda e: e.office_id,
                lambda e: e.closed_at,
                lambda e: e.reason,
            ),
        )


async def case_reopened(connection: asyncpg.Connection, events: list[CaseReopened]) -> None:
    for batch in rounds(events, lambda e: e.case_id):
        await connection.execute(
            "INSERT INTO cases AS c (case_id, client_id, reopened_at) "
            "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) "
            "ON CONFLICT (case_id) DO UPDATE SET reopened_at = greatest(c.reopened_at, EXCLUDED.reopened_at)",
            *columns(batch, lambda e: e.case_id, lambda e: e.client_id, lambda e: e.reopened_at),
        )


CONSULTATION_SQL = f"""
INSERT INTO consultations (consultation_id, case_id, client_id, service_line, office_id, held_on, duration_minutes,
    topics, family_members_counselled, mode, language, interpreter_used, case_manager_id)
SELECT u.consultation_id, u.case_id, u.client_id, u.service_line, u.office_id, u.held_on, u.duration_minutes,
    {SPLIT.format("u.topics")}, u.family, u.mode, u.language, u.interpreter_used, u.case_manager_id
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::date[], $7::int[], $8::text[],
    $9::int[], $10::text[], $11::text[], $12::bool[], $13::text[])
    AS u(consultation_id, case_id, client_id, service_line, office_id, held_on, duration_minutes, topics, family,
         mode, language, interpreter_used, case_manager_id)
ON CONFLICT (consultation_id) DO NOTHING
"""


async def consultation_recorded(connection: asyncpg.Connection, events: list[ConsultationRecorded]) -> None:
    # A consultation is a fact of its own: it needs no case row, so it may come first.
    # The busiest event: one tuple per event, transposed (cheaper than a getter per column).
    rows = [
        (
            e.consultation_id,
            e.case_id,
            e.client_id,
            e.service_line.value,
            e.office_id,
            e.held_on,
            e.duration_minutes,
            SEPARATOR.join(e.topics),
            e.family_members_counselled,
            e.mode.value,
            e.language,
            e.interpreter_used,
            e.case_manager_id,
        )
        for e in events
    ]
    await connection.execute(CONSULTATION_SQL, *transposed(rows, 13))


GOAL_SET_SQL = """
INSERT INTO plan_goals AS g (goal_id, case_id, client_id, topic_code, set_at, status, status_at)
SELECT u.goal_id, u.case_id, u.client_id, u.topic_code, u.set_at, 'open', u.set_at
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[])
    AS u(goal_id, case_id, client_id, topic_code, set_at)
ON CONFLICT (goal_id) DO UPDATE SET
topic_code = EXCLUDED.topic_code,
set_at = EXCLUDED.set_at,
status = CASE WHEN g.status_at IS NULL OR g.status_at <= EXCLUDED.set_at THEN 'open' ELSE g.status END,
status_at = greatest(g.status_at, EXCLUDED.status_at)
"""


async def plan_goal_set(connection: asyncpg.Connection, events: list[PlanGoalSet]) -> None:
    for batch in rounds(events, lambda e: e.goal_id):
        await connection.execute(
            GOAL_SET_SQL,
            *columns(
                batch,
                lambda e: e.goal_id,
                lambda e: e.case_id,
                lambda e: e.client_id,
                lambda e: e.topic_code,
                lambda e: e.set_at,
            ),
        )


GOAL_STATUS_SQL = """
INSERT INTO plan_goals AS g (goal_id, case_id, client_id, status, status_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[])
ON CONFLICT (goal_id) DO UPDATE SET
status = CASE WHEN g.status_at IS NULL OR g.status_at <= EXCLUDED.status_at THEN EXCLUDED.status ELSE g.status END,
status_at = greatest(g.status_at, EXCLUDED.status_at)
"""


async def plan_goal_status_changed(connection: asyncpg.Connection, events: list[PlanGoalStatusChanged]) -> None:
    for batch in rounds(events, lambda e: e.goal_id):
        await connection.execute(
            GOAL_STATUS_SQL,
            *columns(
                batch,
                lambda e: e.goal_id,
                lambda e: e.case_id,
                lambda e: e.client_id,
                lambda e: e.status.value,
                lambda e: e.changed_at,
            ),
        )
