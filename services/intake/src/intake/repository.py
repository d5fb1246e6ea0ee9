"""Intake's tables as the use cases need them: loading a person's record (for reading or for a
change), the routing rules, the reference data checks, duplicate candidates, consents.

Plain functions on the connection of a unit of work (or of `units.read()`); the rules they apply
to what they load live in `intake.domain`.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from intake.domain import (
    BirthData,
    Consent,
    DuplicateCandidate,
    RoutingRule,
    ensure_changeable,
    ensure_readable,
    likely_duplicates,
    phonetic_codes,
)
from intake.schemas import ConsentRecord, DuplicateMatch
from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory, ServiceLine


def person_not_found() -> NotFound:
    return NotFound("Die Person", "The person")


async def client(connection: asyncpg.Connection, client_id: UUID) -> asyncpg.Record:
    """The person's record to read or to add to: a merged record leads to the surviving one."""
    row = await connection.fetchrow("SELECT * FROM clients WHERE client_id = $1", client_id)
    if row is None:
        raise person_not_found()
    ensure_readable(row["erased_at"] is not None)
    if row["merged_into"] is not None:
        return await client(connection, row["merged_into"])
    return row


async def client_for_change(connection: asyncpg.Connection, client_id: UUID) -> asyncpg.Record:
    """The person's record, locked for a change of the record itself."""
    row = await connection.fetchrow("SELECT * FROM clients WHERE client_id = $1 FOR UPDATE", client_id)
    if row is None:
        raise person_not_found()
    ensure_changeable(row["merged_into"], row["erased_at"] is not None)
    return row


async def routing_rules(connection: asyncpg.Connection) -> list[RoutingRule]:
    rows = await connection.fetch("SELECT * FROM routing_rules ORDER BY rule_id")
    return [
        RoutingRule(
            rule_id=row["rule_id"],
            service_line=ServiceLine(row["service_line"]),
            min_age=row["min_age"],
            max_age=row["max_age"],
            residence_statuses=frozenset(row["residence_statuses"]) if row["residence_statuses"] else None,
            unsecured_only=row["unsecured_only"],
            active=row["active"],
        )
        for row in rows
    ]


async def check_references(connection: asyncpg.Connection, office_id: str | None, residence_status: str | None) -> bool:
    """Office and status codes must be in the reference data; returns whether the status is secure."""
    if office_id is not None and not await connection.fetchval("SELECT 1 FROM offices WHERE office_id = $1", office_id):
        raise Invalid("office_id", "unknown_office")
    if residence_status is None:
        return True
    secure = await connection.fetchval("SELECT secure FROM residence_statuses WHERE code = $1", residence_status)
    if secure is None:
        raise Invalid("residence_status", "unknown_residence_status")
    return bool(secure)


async def find_duplicates(
    connection: asyncpg.Connection, names: list[str], birth: BirthData, exclude: UUID | None = None
) -> list[DuplicateMatch]:
    """Registered persons who are likely the same: a shared name code found by the index, then
    the domain's rule on names and birth data. Merged and erased records are never candidates."""
    codes = phonetic_codes(*names)
    rows = await connection.fetch(
        "SELECT client_id, family_name, given_name, birth_date, birth_year, office_id, phonetic_names FROM clients "
        "WHERE merged_into IS NULL AND erased_at IS NULL AND phonetic_names && $1::text[] "
        "AND ($2::uuid IS NULL OR client_id <> $2) LIMIT 50",
        codes,
        exclude,
    )
    by_id = {str(row["client_id"]): row for row in rows}
    matches = likely_duplicates(
        codes,
        birth,
        [
            DuplicateCandidate(
                str(row["client_id"]), tuple(row["phonetic_names"]), BirthData(row["birth_date"], row["birth_year"])
            )
            for row in rows
        ],
    )
    return [
        DuplicateMatch.model_validate({key: by_id[match.client_id][key] for key in DuplicateMatch.model_fields})
        for match in matches
    ]


def consent(row: asyncpg.Record) -> Consent:
    return Consent(
        consent_id=str(row["consent_id"]),
        purpose=ConsentPurpose(row["purpose"]),
        data_categories=frozenset(DataCategory(c) for c in row["data_categories"]),
        given_on=row["given_on"],
        agency_id=row["agency_id"],
        agency_kind=AgencyKind(row["agency_kind"]) if row["agency_kind"] else None,
        valid_until=row["valid_until"],
        withdrawn_on=row["withdrawn_on"],
        expired_on=row["expired_on"],
    )


async def consents_of(connection: asyncpg.Connection, client_id: UUID) -> list[asyncpg.Record]:
    return await connection.fetch(
        "SELECT * FROM consents WHERE client_id = $1 ORDER BY given_on, recorded_at", client_id
    )


def consent_record(row: asyncpg.Record, today: date) -> ConsentRecord:
    """A consent as the API shows it, with whether it is in effect today."""
    fields = {key: row[key] for key in ConsentRecord.model_fields if key != "valid_today"}
    return ConsentRecord(**fields, valid_today=consent(row).valid_on(today))


def consent_event_fields(row: asyncpg.Record) -> dict[str, Any]:
    """The fields every consent event carries."""
    return {
        "client_id": row["client_id"],
        "consent_id": row["consent_id"],
        "purpose": ConsentPurpose(row["purpose"]),
        "agency_id": row["agency_id"],
        "agency_kind": AgencyKind(row["agency_kind"]) if row["agency_kind"] else None,
        "data_categories": tuple(DataCategory(c) for c in row["data_categories"]),
    }
