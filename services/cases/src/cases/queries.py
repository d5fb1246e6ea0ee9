"""Cases' queries: reads on a connection from `units.read()`, answering with response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from cases.domain import CaseStatus
from cases.intake import IntakeDirectory
from cases.repository import CASE_COLUMNS, case_of, find_case, resolve_client
from cases.schemas import (
    Case,
    CaseOverview,
    ConsultationEntry,
    HistoryEntry,
    PersonUnavailable,
    PlanGoal,
    ReasonCode,
    ReasonCodes,
    ReferralEntry,
    ServiceLineOfPerson,
    Topic,
)
from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.events import ServiceLine
from knotenpunkt.i18n import message
from knotenpunkt.pagination import Cursor, Page
from knotenpunkt.uow import UnitsOfWork


async def get_case(connection: asyncpg.Connection, case_id: UUID) -> Case:
    case = await find_case(connection, case_id)
    if case is None:
        raise NotFound("Der Fall", "The case")
    return case


async def cases_of_client(connection: asyncpg.Connection, client_id: UUID) -> list[Case]:
    """Every case of the person (a retired id of a merged record means the surviving one)."""
    client_id = await resolve_client(connection, client_id)
    rows = await connection.fetch(f"{CASE_COLUMNS} WHERE c.client_id = $1 ORDER BY c.opened_at, c.case_id", client_id)
    return [case_of(row) for row in rows]


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
) -> Page[Case]:
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
            raise Invalid("cursor", "invalid_cursor")
        where("(c.opened_at, c.case_id) < ({}::timestamptz, {}::uuid)", cursor.sort_key, cursor.id_as_uuid())
    args.append(limit + 1)
    sql = (
        f"{CASE_COLUMNS} {'WHERE ' + ' AND '.join(conditions) if conditions else ''} "
        f"ORDER BY c.opened_at DESC, c.case_id DESC LIMIT ${len(args)}"
    )
    rows = await connection.fetch(sql, *args)
    page = Page.of(rows, limit, key=lambda row: (row["opened_at"], row["case_id"]))
    return Page([case_of(row) for row in page.items], page.next_cursor)


async def case_overview(connection: asyncpg.Connection, case_id: UUID) -> CaseOverview:
    """Everything cases knows about one case (without the person: see `overview_with_person`)."""
    case = await get_case(connection, case_id)
    lines = await connection.fetch(
        "SELECT case_id, service_line, office_id, status, case_manager_id, opened_at FROM cases "
        "WHERE client_id = $1 ORDER BY opened_at, case_id",
        case.client_id,
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
    return CaseOverview(
        case=case,
        service_lines=[
            ServiceLineOfPerson.model_validate({**dict(row), "current": row["case_id"] == case_id}) for row in lines
        ],
        consultations=[ConsultationEntry.model_validate(dict(row)) for row in consultations],
        plan=[PlanGoal.model_validate(dict(row)) for row in goals],
        referrals=[ReferralEntry.model_validate(dict(row)) for row in referrals],
        history=[
            HistoryEntry(
                event_id=row["event_id"],
                # The short name ("CaseOpened") reads better on a screen than the CloudEvents type.
                event=row["event_type"].split(".")[-2],
                event_type=row["event_type"],
                occurred_at=row["occurred_at"],
                data=row["data"],
            )
            for row in history
        ],
    )


async def overview_with_person(
    units: UnitsOfWork, intake: IntakeDirectory, case_id: UUID, language: str
) -> CaseOverview:
    """The whole case, with the person summary fetched live from intake.

    One snapshot of everything cases knows, then the person from intake outside the
    transaction: a slow intake must not hold a database connection.
    """
    async with units.read() as connection, connection.transaction(isolation="repeatable_read"):
        whole = await case_overview(connection, case_id)
    lookup = await intake.person_summary(whole.case.client_id)
    unavailable = (
        None
        if lookup.unavailable is None
        else PersonUnavailable(code=lookup.unavailable, message=message(lookup.unavailable, language))
    )
    return whole.model_copy(update={"person": lookup.person, "person_unavailable": unavailable})


async def list_topics(connection: asyncpg.Connection) -> list[Topic]:
    rows = await connection.fetch("SELECT code, label_de, label_en, built_in FROM topics ORDER BY code")
    return [Topic.model_validate(dict(row)) for row in rows]


async def list_reasons(connection: asyncpg.Connection) -> ReasonCodes:
    rows = await connection.fetch("SELECT kind, code, label_de, label_en FROM reason_codes ORDER BY kind, code")
    reasons: dict[str, list[ReasonCode]] = {"close": [], "transfer": []}
    for row in rows:
        reasons[row["kind"]].append(ReasonCode(code=row["code"], label_de=row["label_de"], label_en=row["label_en"]))
    return ReasonCodes(close=reasons["close"], transfer=reasons["transfer"])
