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
    UnnamedCandidate,
    duplicates_by_office,
    ensure_changeable,
    ensure_readable,
    likely_duplicates,
    phonetic_codes,
)
from intake.schemas import ConsentRecord, DuplicateMatch, DuplicatesElsewhere
from knotenpunkt.errors import Invalid, NotFound
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory, ServiceLine
from knotenpunkt.policy import Action, Columns, Record, require, scope
from knotenpunkt.uow import Actor


def person_not_found() -> NotFound:
    return NotFound("Die Person", "The person")


def person_record(row: asyncpg.Record | dict[str, Any], agency_id: str | None = None) -> Record:
    """Where a person's record belongs for the permissions: the office of registration and the
    offices running a case of theirs; with `agency_id`, the agency asking for what it may receive."""
    offices = row["case_offices"] if "case_offices" in row.keys() else ()
    return Record(office_id=row["office_id"], also_offices=frozenset(offices or ()), agency_id=agency_id)


async def client(
    connection: asyncpg.Connection, client_id: UUID, actor: Actor, action: Action, agency_id: str | None = None
) -> asyncpg.Record:
    """The person's record to read or to add to, if the actor may do `action` to it: a merged
    record leads to the surviving one (checked too). The permission comes before "erased" or
    "merged", so a person outside one's reach reveals nothing about the record's state."""
    row = await connection.fetchrow("SELECT * FROM clients WHERE client_id = $1", client_id)
    if row is None:
        raise person_not_found()
    require(actor, action, person_record(row, agency_id))
    ensure_readable(row["erased_at"] is not None)
    if row["merged_into"] is not None:
        return await client(connection, row["merged_into"], actor, action, agency_id)
    return row


async def client_for_change(
    connection: asyncpg.Connection, client_id: UUID, actor: Actor, action: Action
) -> asyncpg.Record:
    """The person's record, locked for a change of the record itself, if the actor may."""
    row = await connection.fetchrow("SELECT * FROM clients WHERE client_id = $1 FOR UPDATE", client_id)
    if row is None:
        raise person_not_found()
    require(actor, action, person_record(row))
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
    connection: asyncpg.Connection, names: list[str], birth: BirthData, actor: Actor, exclude: UUID | None = None
) -> list[DuplicateMatch]:
    """Registered persons who are likely the same: a shared name code found by the index, then
    the domain's rule on names and birth data. Merged and erased records are never candidates.
    Only persons the actor may search (their offices) are candidates: the filter is in the
    query, so a name search never reaches records of other offices."""
    codes = phonetic_codes(*names)
    where, params = scope(
        actor, Action.CLIENT_SEARCH, Columns(office="office_id", also_offices="case_offices"), first_param=3
    )
    rows = await connection.fetch(
        "SELECT client_id, family_name, given_name, birth_date, birth_year, office_id, phonetic_names FROM clients "
        "WHERE merged_into IS NULL AND erased_at IS NULL AND phonetic_names && $1::text[] "
        f"AND ($2::uuid IS NULL OR client_id <> $2) AND {where} LIMIT 50",
        codes,
        exclude,
        *params,
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


async def duplicates_elsewhere(
    connection: asyncpg.Connection, names: list[str], birth: BirthData, actor: Actor, exclude: UUID | None = None
) -> list[DuplicatesElsewhere]:
    """Likely duplicates among the persons the actor may NOT search, counted per office. The
    query looks at every office but selects only the office and the rule's keys (name codes,
    birth data): no id, no name leaves the database, so nothing about those persons can reach
    the answer or the audit entry. An actor who may search everywhere has nothing elsewhere; one
    who may search nowhere is told nothing."""
    where, params = scope(
        actor, Action.CLIENT_SEARCH, Columns(office="office_id", also_offices="case_offices"), first_param=3
    )
    if where in ("TRUE", "FALSE"):
        return []
    codes = phonetic_codes(*names)
    # IS NOT TRUE: the complement of the actor's reach, also if a column were ever NULL.
    rows = await connection.fetch(
        "SELECT office_id, phonetic_names, birth_date, birth_year FROM clients "
        "WHERE merged_into IS NULL AND erased_at IS NULL AND phonetic_names && $1::text[] "
        f"AND ($2::uuid IS NULL OR client_id <> $2) AND ({where}) IS NOT TRUE LIMIT 200",
        codes,
        exclude,
        *params,
    )
    counts = duplicates_by_office(
        codes,
        birth,
        [
            UnnamedCandidate(
                row["office_id"], tuple(row["phonetic_names"]), BirthData(row["birth_date"], row["birth_year"])
            )
            for row in rows
        ],
    )
    return [DuplicatesElsewhere(office_id=count.office_id, count=count.count) for count in counts]


_SEARCH_WORDS = 6


def _like_pattern(word: str) -> str:
    """A part of a name, matched anywhere; LIKE's own wildcards in what was typed are plain text."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_persons(
    connection: asyncpg.Connection,
    actor: Actor,
    name: str | None,
    birth_date: date | None,
    birth_year: int | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], bool]:
    """Persons the actor may search (the filter is in the query) whose name matches every word
    typed, each by its Kölner Phonetik code (spelling variants, transliterations) or as a part of
    the family or given name or a variant; and whose birth data fits. Merged and erased records
    are never found. Returns a page and whether there are more."""
    conditions = ["merged_into IS NULL", "erased_at IS NULL"]
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    words = [word for word in (name or "").replace(",", " ").split() if word][:_SEARCH_WORDS]
    for word in words:
        codes = phonetic_codes(word)
        pattern = param(_like_pattern(word))
        phonetic = f"phonetic_names && {param(codes)}::text[] OR " if codes else ""
        conditions.append(
            f"({phonetic}family_name ILIKE {pattern} OR given_name ILIKE {pattern} "
            f"OR array_to_string(name_variants, ' ') ILIKE {pattern})"
        )
    if birth_date is not None:
        # A person known only by the year fits a date of that year.
        conditions.append(
            f"(birth_date = {param(birth_date)} OR (birth_date IS NULL AND birth_year = {param(birth_date.year)}))"
        )
    if birth_year is not None:
        conditions.append(f"birth_year = {param(birth_year)}")
    reach = Columns(office="office_id", also_offices="case_offices")
    where, scope_params = scope(actor, Action.CLIENT_SEARCH, reach, first_param=len(params) + 1)
    params.extend(scope_params)
    conditions.append(f"({where})")
    rows = await connection.fetch(
        "SELECT client_id, family_name, given_name, name_variants, birth_date, birth_year, office_id, service_lines "
        f"FROM clients WHERE {' AND '.join(conditions)} "
        f"ORDER BY lower(family_name), lower(given_name), client_id LIMIT {int(limit) + 1} OFFSET {int(offset)}",
        *params,
    )
    return list(rows[:limit]), len(rows) > limit


async def names_of(connection: asyncpg.Connection, client_ids: list[UUID], actor: Actor) -> list[asyncpg.Record]:
    """Names of those of these persons the actor may read (the filter is in the query); erased
    records have none. A record merged into another still carries the person's names."""
    where, params = scope(
        actor, Action.CLIENT_READ, Columns(office="office_id", also_offices="case_offices"), first_param=2
    )
    return await connection.fetch(
        "SELECT client_id, family_name, given_name, birth_year FROM clients "
        f"WHERE client_id = ANY($1::uuid[]) AND erased_at IS NULL AND ({where}) ORDER BY client_id",
        client_ids,
        *params,
    )


# --- reference data -----------------------------------------------------------------------------


async def office_exists(connection: asyncpg.Connection, office_id: str) -> bool:
    return bool(await connection.fetchval("SELECT 1 FROM offices WHERE office_id = $1", office_id))


async def unknown_residence_statuses(connection: asyncpg.Connection, codes: list[str]) -> list[int]:
    """The positions in `codes` of statuses not in the code list."""
    known = {
        row["code"] for row in await connection.fetch("SELECT code FROM residence_statuses WHERE code = ANY($1)", codes)
    }
    return [index for index, code in enumerate(codes) if code not in known]


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


# Every personal field of a person's record, emptied at erasure. What stays: the pseudonymous id,
# the office and service lines (where the record belonged, for permissions and references), the
# registration time, the merge link and the version. Attributes that are harmless alone
# (nationalities, district, languages) go too: together with the id they describe the person.
ERASED_FIELDS = (
    "family_name = '', given_name = '', name_variants = '{}', phonetic_names = '{}', birth_date = NULL, "
    "birth_year = NULL, phone = NULL, email = NULL, street = NULL, postcode = NULL, city = NULL, district = NULL, "
    "household_members = '[]', gender = 'not_stated', nationalities = '{}', languages = '{}', "
    "counselling_language = NULL, residence_status = 'unknown', arrival_date = NULL, access_route = NULL"
)


async def merge_family(connection: asyncpg.Connection, client_id: UUID, lock: bool = True) -> list[asyncpg.Record]:
    """The whole person a record belongs to (locked, for a change): the surviving record first, then
    every record merged into it (directly or through a chain of merges)."""
    root = await connection.fetchval(
        "WITH RECURSIVE up AS (SELECT client_id, merged_into FROM clients WHERE client_id = $1 "
        "UNION SELECT c.client_id, c.merged_into FROM clients c JOIN up ON c.client_id = up.merged_into) "
        "SELECT client_id FROM up WHERE merged_into IS NULL",
        client_id,
    )
    return await connection.fetch(
        "WITH RECURSIVE down AS (SELECT client_id FROM clients WHERE client_id = $1 "
        "UNION SELECT c.client_id FROM clients c JOIN down ON c.merged_into = down.client_id) "
        "SELECT c.client_id, c.erased_at, c.office_id FROM clients c JOIN down ON down.client_id = c.client_id "
        "ORDER BY c.client_id = $1 DESC, c.registered_at, c.client_id" + (" FOR UPDATE OF c" if lock else ""),
        root or client_id,
    )


async def forget_stored_answers(connection: asyncpg.Connection, client_ids: list[UUID]) -> int:
    """Delete the stored requests and answers of Idempotency-Keys that concern these persons (their
    id in the route or in the answer): the request hash is derived from the person's data. The
    erasure's own stored answer stays (it holds nothing but ids and times)."""
    patterns = [f"%{client_id}%" for client_id in client_ids]
    status = await connection.execute(
        "DELETE FROM idempotency_keys WHERE (scope LIKE ANY($1::text[]) OR response_body::text LIKE ANY($1::text[])) "
        "AND scope NOT LIKE 'POST /clients/%/erase'",
        patterns,
    )
    return int(status.split()[-1])


async def sharing_consented_to(connection: asyncpg.Connection, client_id: UUID) -> list[str]:
    """The partner agencies (or kinds of agency) the person ever consented to share data with."""
    rows = await connection.fetch(
        "SELECT DISTINCT coalesce(agency_id, 'kind:' || agency_kind) AS agency FROM consents "
        "WHERE client_id = $1 AND purpose = 'sharing' ORDER BY 1",
        client_id,
    )
    return [row["agency"] for row in rows]
