"""Cases' queries: reads on a connection from `units.read()`, answering with response models.

Lists are filtered in PostgreSQL by what the asking person may read (`policy.scope`: their
office), never after; one case is checked against the policy once loaded (`policy.require`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from cases.domain import CaseStatus
from cases.intake import IntakeDirectory
from cases.repository import CASE_COLUMNS, CASE_SCOPE, case_of, case_record, find_case, resolve_client
from cases.schemas import (
    Case,
    CaseOverview,
    ClientExport,
    ConsultationEntry,
    ExportedCase,
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
from knotenpunkt.policy import Action, require, scope
from knotenpunkt.uow import Actor, UnitsOfWork

# The history events that hand a case over: to another case manager or office, or from JMD to MBE.
HANDOVER_EVENTS = ("CaseTransferred", "ServiceLineHandoverDue")


async def get_case(connection: asyncpg.Connection, case_id: UUID) -> Case:
    case = await find_case(connection, case_id)
    if case is None:
        raise NotFound("Der Fall", "The case")
    return case


async def cases_of_client(connection: asyncpg.Connection, client_id: UUID, actor: Actor) -> list[Case]:
    """Every case of the person the actor may read (a retired id of a merged record means the
    surviving one)."""
    client_id = await resolve_client(connection, client_id)
    allowed, params = scope(actor, Action.CASE_READ, CASE_SCOPE, first_param=2)
    rows = await connection.fetch(
        f"{CASE_COLUMNS} WHERE c.client_id = $1 AND {allowed} ORDER BY c.opened_at, c.case_id", client_id, *params
    )
    return [case_of(row) for row in rows]


async def list_cases(
    connection: asyncpg.Connection,
    *,
    actor: Actor,
    case_manager_id: str | None,
    office_id: str | None,
    service_line: ServiceLine | None,
    status: CaseStatus | None,
    topic: str | None,
    limit: int,
    cursor: Cursor | None,
    handover_due: bool | None = None,
) -> Page[Case]:
    """The newest cases the actor may read first, filtered, one page at a time (keyset
    pagination: the scope is a condition of the query, so every page is full and the cursor
    continues after the last case the actor saw)."""
    allowed, args = scope(actor, Action.CASE_READ, CASE_SCOPE, first_param=1)
    conditions: list[str] = [allowed]

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
        f"{CASE_COLUMNS} WHERE {' AND '.join(conditions)} ORDER BY c.opened_at DESC, c.case_id DESC LIMIT ${len(args)}"
    )
    rows = await connection.fetch(sql, *args)
    page = Page.of(rows, limit, key=lambda row: (row["opened_at"], row["case_id"]))
    return Page([case_of(row) for row in page.items], page.next_cursor)


async def case_overview(
    connection: asyncpg.Connection, case_id: UUID, actor: Actor, concerning: Callable[[Case], None]
) -> CaseOverview:
    """Everything cases knows about one case the actor may read (without the person: see
    `overview_with_person`). `concerning` learns the case before the check, so a denied read
    names the person in the audit trail too."""
    case = await get_case(connection, case_id)
    concerning(case)
    require(actor, Action.CASE_READ, case_record(case.office_id, case.case_manager_id))
    # The person's other cases only as far as the actor may read them (another office's stay hidden).
    allowed, params = scope(actor, Action.CASE_READ, CASE_SCOPE, first_param=2)
    lines = await connection.fetch(
        "SELECT c.case_id, c.service_line, c.office_id, c.status, c.case_manager_id, c.opened_at FROM cases c "
        f"WHERE c.client_id = $1 AND {allowed} ORDER BY c.opened_at, c.case_id",
        case.client_id,
        *params,
    )
    consultations, goals, referrals, history = await _case_contents(connection, case_id)
    return CaseOverview(
        case=case,
        service_lines=[
            ServiceLineOfPerson.model_validate({**dict(row), "current": row["case_id"] == case_id}) for row in lines
        ],
        consultations=consultations,
        plan=goals,
        referrals=referrals,
        history=history,
    )


async def _case_contents(
    connection: asyncpg.Connection, case_id: UUID
) -> tuple[list[ConsultationEntry], list[PlanGoal], list[ReferralEntry], list[HistoryEntry]]:
    """A case's consultations (notes included), plan, referrals and history."""
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
        "SELECT event_id, event_type, occurred_at, acted_by, data FROM case_history WHERE case_id = $1 ORDER BY id",
        case_id,
    )
    return (
        [ConsultationEntry.model_validate(dict(row)) for row in consultations],
        [PlanGoal.model_validate(dict(row)) for row in goals],
        [ReferralEntry.model_validate(dict(row)) for row in referrals],
        [
            HistoryEntry(
                event_id=row["event_id"],
                # The short name ("CaseOpened") reads better on a screen than the CloudEvents type.
                event=row["event_type"].split(".")[-2],
                event_type=row["event_type"],
                occurred_at=row["occurred_at"],
                acted_by=row["acted_by"],
                data=row["data"],
            )
            for row in history
        ],
    )


async def overview_with_person(
    units: UnitsOfWork,
    intake: IntakeDirectory,
    case_id: UUID,
    language: str,
    actor: Actor,
    concerning: Callable[[Case], None],
) -> CaseOverview:
    """The whole case, with the person summary fetched live from intake.

    One snapshot of everything cases knows, then the person from intake outside the
    transaction: a slow intake must not hold a database connection. intake is asked on the
    person's behalf (their token travels along) and checks their office itself.
    """
    async with units.read() as connection, connection.transaction(isolation="repeatable_read"):
        whole = await case_overview(connection, case_id, actor, concerning)
    lookup = await intake.person_summary(whole.case.client_id)
    unavailable = (
        None
        if lookup.unavailable is None
        else PersonUnavailable(code=lookup.unavailable, message=message(lookup.unavailable, language))
    )
    return whole.model_copy(update={"person": lookup.person, "person_unavailable": unavailable})


async def client_export(connection: asyncpg.Connection, client_id: UUID) -> ClientExport:
    """Everything cases keeps about the person (DSGVO Art. 15): every case with its
    consultations and notes, plan, referrals, handovers and history with who did what, when.
    The permission (the data protection officer's) is the route's; one snapshot for all."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        survivor = await resolve_client(connection, client_id)
        person = await connection.fetchrow(
            "SELECT registered_at, office_id, service_line FROM persons WHERE client_id = $1", survivor
        )
        merged = await connection.fetch(
            "WITH RECURSIVE retired AS (SELECT client_id FROM persons WHERE merged_into = $1 "
            "UNION SELECT p.client_id FROM persons p JOIN retired r ON p.merged_into = r.client_id) "
            "SELECT client_id FROM retired ORDER BY client_id",
            survivor,
        )
        rows = await connection.fetch(
            f"{CASE_COLUMNS} WHERE c.client_id = $1 ORDER BY c.opened_at, c.case_id", survivor
        )
        exported = []
        for row in rows:
            consultations, goals, referrals, history = await _case_contents(connection, row["case_id"])
            exported.append(
                ExportedCase(
                    case=case_of(row),
                    consultations=consultations,
                    plan=goals,
                    referrals=referrals,
                    handovers=[entry for entry in history if entry.event in HANDOVER_EVENTS],
                    history=history,
                )
            )
    return ClientExport(
        client_id=survivor,
        merged_client_ids=[row["client_id"] for row in merged if row["client_id"] != survivor],
        known_since=person["registered_at"] if person else None,
        office_id=person["office_id"] if person else None,
        service_line=person["service_line"] if person else None,
        cases=exported,
        exported_at=datetime.now(UTC),
    )


async def list_topics(connection: asyncpg.Connection) -> list[Topic]:
    rows = await connection.fetch("SELECT code, label_de, label_en, built_in FROM topics ORDER BY code")
    return [Topic.model_validate(dict(row)) for row in rows]


async def list_reasons(connection: asyncpg.Connection) -> ReasonCodes:
    rows = await connection.fetch("SELECT kind, code, label_de, label_en FROM reason_codes ORDER BY kind, code")
    reasons: dict[str, list[ReasonCode]] = {"close": [], "transfer": []}
    for row in rows:
        reasons[row["kind"]].append(ReasonCode(code=row["code"], label_de=row["label_de"], label_en=row["label_en"]))
    return ReasonCodes(close=reasons["close"], transfer=reasons["transfer"])
