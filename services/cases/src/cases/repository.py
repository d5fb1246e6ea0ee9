"""Cases' tables, shared by the commands, the consumers and the queries.

Every event of a case also goes into `case_history` in the same transaction, so the overview's
history is exactly what was published. Every change of a case raises its `version` (optimistic
concurrency, knotenpunkt.concurrency).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from cases.domain import ensure_known_codes
from cases.schemas import Case
from knotenpunkt.envelope import Envelope
from knotenpunkt.errors import NotFound
from knotenpunkt.events import CaseOpened, Event, ServiceLine
from knotenpunkt.logging import get_logger
from knotenpunkt.policy import Columns, Record
from knotenpunkt.uow import UnitOfWork

# The case named in messages ("Der Fall wurde inzwischen ... geändert").
CASE = {"de": "Der Fall", "en": "The case"}

CASE_COLUMNS = (
    "SELECT c.case_id, c.client_id, c.service_line, c.office_id, c.status, c.opened_at, c.case_manager_id, "
    "c.opened_by_hand, c.closed_at, c.close_reason, c.version, c.handover_due_on, "
    "(SELECT count(*) FROM consultations k WHERE k.case_id = c.case_id) AS consultations FROM cases c"
)

# Where a case belongs, for `policy.scope` (the queries alias the cases table as `c`).
CASE_SCOPE = Columns(office="c.office_id", assigned="c.case_manager_id")

log = get_logger("cases")


def case_record(office_id: str, case_manager_id: str | None) -> Record:
    """What the policy needs to know of a case: its office and its case manager."""
    return Record(office_id=office_id, assigned_to=case_manager_id)


def acting_staff(uow: UnitOfWork) -> str | None:
    """The staff id of the person acting (from their token); None for a service applying an event."""
    return uow.actor.subject if uow.actor.kind == "staff" else None


def now() -> datetime:
    return datetime.now(UTC)


def case_of(row: asyncpg.Record) -> Case:
    return Case.model_validate(dict(row))


async def find_case(connection: asyncpg.Connection, case_id: UUID) -> Case | None:
    row = await connection.fetchrow(f"{CASE_COLUMNS} WHERE c.case_id = $1", case_id)
    return None if row is None else case_of(row)


async def case_for_update(connection: asyncpg.Connection, case_id: UUID) -> asyncpg.Record:
    """The case's row, locked until the unit of work ends; NotFound when there is none."""
    case = await connection.fetchrow("SELECT * FROM cases WHERE case_id = $1 FOR UPDATE", case_id)
    if case is None:
        raise NotFound("Der Fall", "The case")
    return case


async def changed(connection: asyncpg.Connection, case_id: UUID) -> Case:
    """Raise the case's version after a change; returns the case as the API shows it."""
    await connection.execute("UPDATE cases SET version = version + 1, updated_at = now() WHERE case_id = $1", case_id)
    case = await find_case(connection, case_id)
    assert case is not None  # locked by the caller's unit of work
    return case


async def record(uow: UnitOfWork, case_id: UUID, event: Event) -> Envelope:
    """Publish a case's event (outbox) and keep it in the case's history, in the unit of work."""
    envelope = await uow.publish(event)
    await remember(uow.connection, case_id, envelope, acted_by=acting_staff(uow))
    return envelope


async def remember(
    connection: asyncpg.Connection, case_id: UUID, envelope: Envelope, acted_by: str | None = None
) -> None:
    """Keep an event in the case's history (also one another service published about the case),
    with the staff id of who did it when a person did it here."""
    await remember_all(connection, [(case_id, envelope)], acted_by)


async def remember_all(
    connection: asyncpg.Connection, entries: Sequence[tuple[UUID, Envelope]], acted_by: str | None = None
) -> None:
    """Keep events in their cases' histories, in one round trip."""
    if not entries:
        return
    await connection.executemany(
        "INSERT INTO case_history (case_id, event_id, event_type, occurred_at, data, acted_by) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (case_id, envelope.id, envelope.type, envelope.time, envelope.event.model_dump(mode="json"), acted_by)
            for case_id, envelope in entries
        ],
    )


async def note_in_history(uow: UnitOfWork, case_id: UUID, what: str, data: dict[str, object]) -> None:
    """A change of the case that no event of the shared contract describes (a corrected
    consultation, a goal's new description): kept in the case's history with who did it, but not
    published (an event type its readers do not know would only end in their dead letters)."""
    await uow.connection.execute(
        "INSERT INTO case_history (case_id, event_id, event_type, occurred_at, data, acted_by) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        case_id,
        uuid.uuid4(),
        f"knotenpunkt.cases.{what}.local",
        now(),
        data,
        acting_staff(uow),
    )


async def resolve_client(connection: asyncpg.Connection, client_id: UUID) -> UUID:
    """The surviving id of a person whose records may have been merged (possibly more than once)."""
    return (await resolve_clients(connection, [client_id]))[client_id]


async def resolve_clients(connection: asyncpg.Connection, client_ids: Sequence[UUID]) -> dict[UUID, UUID]:
    """The surviving id of each person (merged records followed, possibly more than once): one
    query for all, and one more per round of merges still to follow."""
    survivors = {client_id: client_id for client_id in client_ids}
    seen = {client_id: {client_id} for client_id in client_ids}
    pending = set(client_ids)
    while pending:
        rows = await connection.fetch(
            "SELECT client_id, merged_into FROM persons WHERE client_id = ANY($1::uuid[]) AND merged_into IS NOT NULL",
            list({survivors[client_id] for client_id in pending}),
        )
        merged_into = {row["client_id"]: row["merged_into"] for row in rows}
        still = set()
        for client_id in pending:
            target = merged_into.get(survivors[client_id])
            if target is not None and target not in seen[client_id]:
                seen[client_id].add(target)
                survivors[client_id] = target
                still.add(client_id)
        pending = still
    return survivors


async def open_case_in_line(connection: asyncpg.Connection, client_id: UUID, service_line: ServiceLine) -> UUID | None:
    """The person's open case in that service line, if any."""
    return await connection.fetchval(
        "SELECT case_id FROM cases WHERE client_id = $1 AND service_line = $2 AND status = 'open'",
        client_id,
        service_line.value,
    )


@dataclass(frozen=True)
class Opening:
    """A case to open: for a person in a service line at an office."""

    client_id: UUID
    service_line: ServiceLine
    office_id: str
    case_manager_id: str | None = None
    opened_by_hand: bool = False
    # The consumed event the opening follows from (its CaseOpened names it as causation).
    cause: Envelope | None = None


async def open_case(
    uow: UnitOfWork,
    client_id: UUID,
    service_line: ServiceLine,
    office_id: str,
    case_manager_id: str | None = None,
    opened_by_hand: bool = False,
) -> UUID | None:
    """Open a case (and publish CaseOpened) unless the person has an open one in that line;
    None when they have."""
    [case_id] = await open_cases(uow, [Opening(client_id, service_line, office_id, case_manager_id, opened_by_hand)])
    return case_id


async def open_cases(uow: UnitOfWork, openings: Sequence[Opening]) -> list[UUID | None]:
    """Open the cases (one statement) and publish their CaseOpened; for each opening its case
    id, or None where the person already has an open case in that line."""
    if not openings:
        return []
    case_ids = [uuid.uuid4() for _ in openings]
    opened_at = now()
    rows = await uow.connection.fetch(
        "INSERT INTO cases (case_id, client_id, service_line, office_id, opened_at, case_manager_id, opened_by_hand) "
        "SELECT case_id, client_id, service_line, office_id, $5, case_manager_id, opened_by_hand "
        "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $6::text[], $7::boolean[]) "
        "AS o (case_id, client_id, service_line, office_id, case_manager_id, opened_by_hand) "
        "ON CONFLICT (client_id, service_line) WHERE status = 'open' DO NOTHING RETURNING case_id",
        case_ids,
        [opening.client_id for opening in openings],
        [opening.service_line.value for opening in openings],
        [opening.office_id for opening in openings],
        opened_at,
        [opening.case_manager_id for opening in openings],
        [opening.opened_by_hand for opening in openings],
    )
    inserted = {row["case_id"] for row in rows}
    opened = [(case_id, opening) for case_id, opening in zip(case_ids, openings, strict=True) if case_id in inserted]
    envelopes = await uow.publish_all(
        [
            (
                CaseOpened(
                    client_id=opening.client_id,
                    case_id=case_id,
                    service_line=opening.service_line,
                    office_id=opening.office_id,
                    opened_at=opened_at,
                    case_manager_id=opening.case_manager_id,
                    opened_by_hand=opening.opened_by_hand,
                ),
                opening.cause,
            )
            for case_id, opening in opened
        ]
    )
    history = [(case_id, envelope) for (case_id, _), envelope in zip(opened, envelopes, strict=True)]
    await remember_all(uow.connection, history, acting_staff(uow))
    if len(opened) == 1:
        case_id, opening = opened[0]
        line = opening.service_line.value
        log.info("case opened", case_id=str(case_id), client_id=str(opening.client_id), service_line=line)
    elif opened:
        log.info("cases opened", cases=len(opened))
    return [case_id if case_id in inserted else None for case_id in case_ids]


async def check_topics(connection: asyncpg.Connection, codes: list[str], field: str) -> None:
    """Counselling topics must be in the taxonomy (GET /topics)."""
    known = await connection.fetch("SELECT code FROM topics WHERE code = ANY($1::text[])", codes)
    ensure_known_codes(field, codes, [row[0] for row in known], "unknown_topic", listed=field == "topics")


async def check_reason(connection: asyncpg.Connection, kind: str, reason: str) -> None:
    """A close or transfer reason must be in its code list (GET /reasons)."""
    known = await connection.fetch(
        "SELECT code FROM reason_codes WHERE kind = $1 AND code = ANY($2::text[])", kind, [reason]
    )
    ensure_known_codes("reason", [reason], [row[0] for row in known], f"unknown_{kind}_reason", listed=False)
