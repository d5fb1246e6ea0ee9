"""Intake's queries: reads on a connection from `units.read()`, answering response models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

import asyncpg

from intake import repository
from intake.domain import BirthData, Consent, check_consent, consented_data
from intake.schemas import (
    ClientRecord,
    ConsentCheckResult,
    ConsentRecord,
    DuplicateCheckResult,
    DuplicateSearch,
    OfficeRecord,
    PersonMatch,
    PersonName,
    PersonSearch,
    PersonSearchResult,
    ResidenceStatusRecord,
    RoutingRuleRecord,
    StaffRecord,
)
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory, SharedPersonData
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor


async def client_record(connection: asyncpg.Connection, client_id: UUID, actor: Actor) -> ClientRecord:
    """A person's record (the surviving one after a merge; 410 once erased)."""
    row = await repository.client(connection, client_id, actor, Action.CLIENT_READ)
    return ClientRecord.model_validate({field: row[field] for field in ClientRecord.model_fields})


async def duplicates(connection: asyncpg.Connection, search: DuplicateSearch, actor: Actor) -> DuplicateCheckResult:
    """Likely duplicates: named among the persons the actor may search (filtered in the query),
    counted per office among the others."""
    birth = BirthData(search.birth_date, search.birth_year or (search.birth_date.year if search.birth_date else None))
    names = [search.family_name, search.given_name]
    return DuplicateCheckResult(
        candidates=await repository.find_duplicates(connection, names, birth, actor),
        elsewhere=await repository.duplicates_elsewhere(connection, names, birth, actor),
    )


async def search(connection: asyncpg.Connection, search: PersonSearch, actor: Actor) -> PersonSearchResult:
    """Persons by (part of) a name and birth data, among those the actor may search."""
    rows, more = await repository.search_persons(
        connection, actor, search.name, search.birth_date, search.birth_year, search.limit, search.offset
    )
    return PersonSearchResult(persons=[PersonMatch.model_validate(dict(row)) for row in rows], more=more)


async def names(connection: asyncpg.Connection, client_ids: list[UUID], actor: Actor) -> list[PersonName]:
    """Names for a page of cases: of the persons the actor may read, the others left out."""
    rows = await repository.names_of(connection, list(dict.fromkeys(client_ids)), actor)
    return [PersonName.model_validate(dict(row)) for row in rows]


async def consents(connection: asyncpg.Connection, client_id: UUID, actor: Actor, today: date) -> list[ConsentRecord]:
    person = await repository.client(connection, client_id, actor, Action.CONSENT_READ)
    rows = await repository.consents_of(connection, person["client_id"])
    return [repository.consent_record(row, today) for row in rows]


async def consent_check(
    connection: asyncpg.Connection,
    client_id: UUID,
    actor: Actor,
    purpose: ConsentPurpose,
    categories: Sequence[DataCategory],
    agency_id: str | None,
    agency_kind: AgencyKind | None,
    day: date,
) -> ConsentCheckResult:
    """Is there valid consent for this purpose, agency and data categories on `day`?"""
    _person, given = await _person_and_consents(connection, client_id, actor, Action.CONSENT_READ)
    decision = check_consent(given, purpose, day, categories, agency_id, agency_kind)
    return ConsentCheckResult(
        granted=decision.granted,
        consent_id=decision.consent_id,
        categories=sorted(decision.categories),
        reason=decision.reason,
    )


async def shared_data(
    connection: asyncpg.Connection,
    client_id: UUID,
    actor: Actor,
    agency_id: str | None,
    agency_kind: AgencyKind | None,
    day: date,
) -> SharedPersonData:
    """Exactly the personal data the person consented to share with this agency, nothing more."""
    # An agency (through referrals' inbox) gets only what was consented for itself.
    person, given = await _person_and_consents(connection, client_id, actor, Action.SHARED_DATA_READ, agency_id)
    decision = check_consent(given, ConsentPurpose.SHARING, day, (), agency_id, agency_kind)
    return consented_data(decision, person)


async def _person_and_consents(
    connection: asyncpg.Connection, client_id: UUID, actor: Actor, action: Action, agency_id: str | None = None
) -> tuple[asyncpg.Record, list[Consent]]:
    person = await repository.client(connection, client_id, actor, action, agency_id)
    rows = await repository.consents_of(connection, person["client_id"])
    return person, [repository.consent(row) for row in rows]


async def offices(connection: asyncpg.Connection, office_id: str | None = None) -> list[OfficeRecord]:
    """Offices (or the one office) with the staff working there now."""
    offices = await connection.fetch(
        "SELECT * FROM offices WHERE $1::text IS NULL OR office_id = $1 ORDER BY office_id", office_id
    )
    staff = await connection.fetch(
        "SELECT * FROM staff WHERE active AND ($1::text IS NULL OR office_id = $1) ORDER BY staff_id", office_id
    )
    return [
        OfficeRecord.model_validate(
            {**dict(office), "staff": [dict(member) for member in staff if member["office_id"] == office["office_id"]]}
        )
        for office in offices
    ]


async def staff(connection: asyncpg.Connection) -> list[StaffRecord]:
    """Every staff member, network-wide ones and those who left (active: false) included."""
    rows = await connection.fetch("SELECT * FROM staff ORDER BY staff_id")
    return [StaffRecord.model_validate(dict(row)) for row in rows]


async def residence_statuses(connection: asyncpg.Connection) -> list[ResidenceStatusRecord]:
    rows = await connection.fetch("SELECT * FROM residence_statuses ORDER BY code")
    return [ResidenceStatusRecord.model_validate(dict(row)) for row in rows]


async def routing_rules(connection: asyncpg.Connection) -> list[RoutingRuleRecord]:
    rows = await connection.fetch("SELECT * FROM routing_rules ORDER BY rule_id")
    return [RoutingRuleRecord.model_validate(dict(row)) for row in rows]
