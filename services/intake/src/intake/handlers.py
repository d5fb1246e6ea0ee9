"""Intake's use cases: one transaction each, outgoing events through the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from intake.domain import (
    BirthData,
    Consent,
    ConsentDecision,
    DuplicateCandidate,
    NotEligible,
    RoutingRule,
    age_band,
    check_consent,
    likely_duplicates,
    phonetic_codes,
    primary_service_line,
    route,
    turns_27_between,
)
from intake.schemas import ConsentInput, Correction, Registration
from knotenpunkt.concurrency import check_version
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    AgencyKind,
    ClientErased,
    ClientRegistered,
    ClientsMerged,
    ClientUpdated,
    ConsentExpired,
    ConsentGiven,
    ConsentPurpose,
    ConsentWithdrawn,
    DataCategory,
    ServiceLine,
    ServiceLineHandoverDue,
    SharedPersonData,
)
from knotenpunkt.http import ApiError, not_found
from knotenpunkt.logging import get_logger
from knotenpunkt.outbox import add_to_outbox

SOURCE = "knotenpunkt/intake"
PERSON = {"de": "Die Person", "en": "The person"}
log = get_logger("intake")

# Attributes that may travel in events (non-identifying); everything else stays in intake.
_SHAREABLE = ("gender", "district", "nationalities", "languages", "counselling_language", "residence_status")


def _field_error(field: str, code: str, status: int = 422) -> ApiError:
    return ApiError(status, "validation_failed", fields=[(field, code, {})])


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


async def _check_references(
    connection: asyncpg.Connection, office_id: str | None, residence_status: str | None
) -> bool:
    """Validates office and status codes against the data; returns whether the status is secure."""
    if office_id is not None and not await connection.fetchval("SELECT 1 FROM offices WHERE office_id = $1", office_id):
        raise _field_error("office_id", "unknown_office")
    if residence_status is None:
        return True
    secure = await connection.fetchval("SELECT secure FROM residence_statuses WHERE code = $1", residence_status)
    if secure is None:
        raise _field_error("residence_status", "unknown_residence_status")
    return bool(secure)


async def find_duplicates(
    connection: asyncpg.Connection, names: list[str], birth: BirthData, exclude: UUID | None = None
) -> list[dict[str, Any]]:
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
        {
            "client_id": match.client_id,
            "family_name": by_id[match.client_id]["family_name"],
            "given_name": by_id[match.client_id]["given_name"],
            "birth_date": by_id[match.client_id]["birth_date"],
            "birth_year": by_id[match.client_id]["birth_year"],
            "office_id": by_id[match.client_id]["office_id"],
        }
        for match in matches
    ]


async def register_client(
    connection: asyncpg.Connection, registration: Registration, correlation_id: str, today: date | None = None
) -> dict[str, Any]:
    today = today or date.today()
    secure = await _check_references(connection, registration.office_id, registration.residence_status)
    birth = registration.birth_data
    names = [registration.family_name, registration.given_name, *registration.name_variants]
    if not registration.confirm_new:
        candidates = await find_duplicates(connection, names, birth)
        if candidates:
            raise ApiError(409, "possible_duplicates", details={"candidates": candidates})
    age = birth.age_on(today)
    try:
        lines = registration.service_lines or route(
            age, registration.residence_status, secure, await routing_rules(connection)
        )
    except NotEligible:
        raise _field_error("birth_date", "too_young") from None
    if not lines:
        raise _field_error("birth_date", "cannot_route")
    service_line = primary_service_line(lines)
    client_id = uuid.uuid4()
    registered_at = datetime.now(UTC)
    household_size = 1 + sum(member.count for member in registration.household_members)
    await connection.execute(
        """INSERT INTO clients (client_id, family_name, given_name, birth_date, birth_year, phone, email, office_id,
               service_line, service_lines, registered_at, name_variants, phonetic_names, gender, nationalities,
               languages, counselling_language, street, postcode, city, district, household_members,
               residence_status, arrival_date, access_route)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
                   $22, $23, $24, $25)""",
        client_id,
        registration.family_name,
        registration.given_name,
        registration.birth_date,
        birth.birth_year,
        registration.phone,
        registration.email,
        registration.office_id,
        service_line.value,
        [line.value for line in lines],
        registered_at,
        registration.name_variants,
        phonetic_codes(*names),
        registration.gender.value,
        registration.nationalities,
        registration.languages,
        registration.counselling_language,
        registration.street,
        registration.postcode,
        registration.city,
        registration.district,
        [member.model_dump() for member in registration.household_members],
        registration.residence_status,
        registration.arrival_date,
        registration.access_route.value if registration.access_route else None,
    )
    event = ClientRegistered(
        client_id=client_id,
        registered_at=registered_at,
        age_band=age_band(age),
        service_line=service_line,
        service_lines=tuple(lines),
        office_id=registration.office_id,
        gender=registration.gender,
        district=registration.district,
        nationalities=tuple(registration.nationalities),
        languages=tuple(registration.languages),
        counselling_language=registration.counselling_language,
        residence_status=registration.residence_status,
        arrival_year=registration.arrival_date.year if registration.arrival_date else None,
        household_size=household_size,
        access_route=registration.access_route,
    )
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    log.info("client registered", client_id=str(client_id), service_lines=[line.value for line in lines])
    return {
        "client_id": str(client_id),
        "service_line": service_line.value,
        "service_lines": [line.value for line in lines],
        "office_id": registration.office_id,
        "registered_at": registered_at.isoformat(),
        "version": 1,
    }


async def _client_for_update(connection: asyncpg.Connection, client_id: UUID) -> asyncpg.Record:
    row = await connection.fetchrow("SELECT * FROM clients WHERE client_id = $1 FOR UPDATE", client_id)
    if row is None:
        raise not_found("Die Person", "The person")
    if row["merged_into"] is not None:
        raise ApiError(409, "already_merged", details={"merged_into": str(row["merged_into"])})
    if row["erased_at"] is not None:
        raise ApiError(410, "client_erased")
    return row


async def correct_client(
    connection: asyncpg.Connection,
    client_id: UUID,
    correction: Correction,
    if_match: str | None,
    correlation_id: str,
) -> dict[str, Any]:
    row = await _client_for_update(connection, client_id)
    # A correction names the version it is based on: a second clerk's stale form gets a 409.
    check_version(if_match, row["version"], required=True, what=PERSON)
    await _check_references(
        connection, None, correction.residence_status if "residence_status" in correction.model_fields_set else None
    )
    sent = correction.model_dump(include=correction.model_fields_set)
    changes = {field: value for field, value in sent.items() if _stored(row, field) != value}
    if not changes:
        return {"client_id": str(client_id), "version": row["version"], "changed": []}
    assignments = [f"{field} = ${index}" for index, field in enumerate(changes, start=2)]
    values = list(changes.values())
    if {"family_name", "given_name", "name_variants"} & set(changes):
        names = [
            changes.get("family_name", row["family_name"]),
            changes.get("given_name", row["given_name"]),
            *changes.get("name_variants", row["name_variants"]),
        ]
        assignments.append(f"phonetic_names = ${len(values) + 2}")
        values.append(phonetic_codes(*names))
    version = row["version"] + 1
    await connection.execute(
        f"UPDATE clients SET {', '.join(assignments)}, version = {version} WHERE client_id = $1",
        client_id,
        *values,
    )
    shared = {field: changes[field] for field in _SHAREABLE if field in changes}
    if "household_members" in changes:
        shared["household_size"] = 1 + sum(member["count"] for member in changes["household_members"])
    if "arrival_date" in changes:
        shared["arrival_year"] = changes["arrival_date"].year if changes["arrival_date"] else None
    if shared:
        # Only the non-identifying attributes that changed leave intake.
        event = ClientUpdated(
            client_id=client_id,
            updated_at=datetime.now(UTC),
            changed=tuple(shared),
            **{key: tuple(value) if isinstance(value, list) else value for key, value in shared.items()},
        )
        await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    return {"client_id": str(client_id), "version": version, "changed": sorted(changes)}


def _stored(row: asyncpg.Record, field: str) -> Any:
    value = row[field]
    if field == "arrival_date" or value is None:
        return value
    if isinstance(value, list):
        return list(value)
    return value


async def merge_clients(
    connection: asyncpg.Connection, surviving_id: UUID, duplicate_id: UUID, correlation_id: str
) -> dict[str, Any]:
    if surviving_id == duplicate_id:
        raise _field_error("duplicate_client_id", "merge_same", 409)
    # Lock both in a fixed order so two opposite merges cannot deadlock.
    for client_id in sorted((surviving_id, duplicate_id)):
        await _client_for_update(connection, client_id)
    await connection.execute(
        "UPDATE clients SET merged_into = $1, version = version + 1 WHERE client_id = $2", surviving_id, duplicate_id
    )
    await connection.execute("UPDATE consents SET client_id = $1 WHERE client_id = $2", surviving_id, duplicate_id)
    event = ClientsMerged(client_id=surviving_id, merged_client_id=duplicate_id, merged_at=datetime.now(UTC))
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    return {"client_id": str(surviving_id), "merged_client_id": str(duplicate_id)}


async def erase_client(connection: asyncpg.Connection, client_id: UUID, correlation_id: str) -> dict[str, Any]:
    """Erasure on request (GDPR art. 17): empty every personal field, keep the pseudonymous id,
    tell the other services. Consent records stay: they prove what was lawful until now."""
    row = await connection.fetchrow(
        "SELECT client_id, erased_at FROM clients WHERE client_id = $1 FOR UPDATE", client_id
    )
    if row is None:
        raise not_found("Die Person", "The person")
    if row["erased_at"] is not None:
        return {"client_id": str(client_id), "erased_at": row["erased_at"].isoformat()}
    erased_at = datetime.now(UTC)
    await connection.execute(
        """UPDATE clients SET family_name = '', given_name = '', name_variants = '{}', phonetic_names = '{}',
               birth_date = NULL, birth_year = NULL, phone = NULL, email = NULL, street = NULL, postcode = NULL,
               city = NULL, household_members = '[]', erased_at = $2, version = version + 1
           WHERE client_id = $1""",
        client_id,
        erased_at,
    )
    event = ClientErased(client_id=client_id, erased_at=erased_at)
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    log.info("client erased", client_id=str(client_id))
    return {"client_id": str(client_id), "erased_at": erased_at.isoformat()}


# --- consent ----------------------------------------------------------------------------------


def _consent(row: asyncpg.Record) -> Consent:
    return Consent(
        consent_id=str(row["consent_id"]),
        purpose=ConsentPurpose(row["purpose"]),
        data_categories=frozenset(DataCategory(c) for c in row["data_categories"]),
        given_on=row["given_on"],
        agency_id=row["agency_id"],
        agency_kind=AgencyKind(row["agency_kind"]) if row["agency_kind"] else None,
        valid_until=row["valid_until"],
        withdrawn_on=row["withdrawn_on"],
    )


def consent_view(row: asyncpg.Record, today: date) -> dict[str, Any]:
    consent = _consent(row)
    return {
        **{
            key: row[key]
            for key in (
                "purpose",
                "agency_id",
                "agency_kind",
                "data_categories",
                "text_version",
                "given_on",
                "valid_until",
                "withdrawn_on",
                "expired_on",
                "recorded_by",
            )
        },
        "consent_id": str(row["consent_id"]),
        "valid_today": consent.valid_on(today),
    }


async def _existing_client(connection: asyncpg.Connection, client_id: UUID) -> asyncpg.Record:
    row = await connection.fetchrow("SELECT * FROM clients WHERE client_id = $1", client_id)
    if row is None:
        raise not_found("Die Person", "The person")
    if row["erased_at"] is not None:
        raise ApiError(410, "client_erased")
    if row["merged_into"] is not None:
        return await _existing_client(connection, row["merged_into"])
    return row


def _consent_fields(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "client_id": row["client_id"],
        "consent_id": row["consent_id"],
        "purpose": ConsentPurpose(row["purpose"]),
        "agency_id": row["agency_id"],
        "agency_kind": AgencyKind(row["agency_kind"]) if row["agency_kind"] else None,
        "data_categories": tuple(DataCategory(c) for c in row["data_categories"]),
    }


async def give_consent(
    connection: asyncpg.Connection, client_id: UUID, consent: ConsentInput, correlation_id: str
) -> dict[str, Any]:
    client = await _existing_client(connection, client_id)
    consent_id = uuid.uuid4()
    row = await connection.fetchrow(
        "INSERT INTO consents (consent_id, client_id, purpose, agency_id, agency_kind, data_categories, text_version, "
        "given_on, valid_until, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
        consent_id,
        client["client_id"],
        consent.purpose.value,
        consent.agency_id,
        consent.agency_kind.value if consent.agency_kind else None,
        [category.value for category in consent.data_categories],
        consent.text_version,
        consent.given_on,
        consent.valid_until,
        consent.recorded_by,
    )
    event = ConsentGiven(
        **_consent_fields(row),
        text_version=consent.text_version,
        given_on=consent.given_on,
        valid_until=consent.valid_until,
    )
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    return consent_view(row, date.today())


async def withdraw_consent(
    connection: asyncpg.Connection, client_id: UUID, consent_id: UUID, withdrawn_on: date | None, correlation_id: str
) -> dict[str, Any]:
    client = await _existing_client(connection, client_id)
    row = await connection.fetchrow(
        "SELECT * FROM consents WHERE consent_id = $1 AND client_id = $2 FOR UPDATE", consent_id, client["client_id"]
    )
    if row is None:
        raise not_found("Die Einwilligung", "The consent")
    if row["withdrawn_on"] is not None or row["expired_on"] is not None:
        raise ApiError(409, "consent_not_active")
    withdrawn_on = withdrawn_on or date.today()
    row = await connection.fetchrow(
        "UPDATE consents SET withdrawn_on = $2 WHERE consent_id = $1 RETURNING *", consent_id, withdrawn_on
    )
    event = ConsentWithdrawn(**_consent_fields(row), withdrawn_on=withdrawn_on)
    await add_to_outbox(connection, Envelope(event=event, source=SOURCE, correlation_id=correlation_id))
    return consent_view(row, date.today())


async def decide_consent(
    connection: asyncpg.Connection,
    client_id: UUID,
    purpose: ConsentPurpose,
    categories: list[DataCategory],
    agency_id: str | None,
    agency_kind: AgencyKind | None,
    day: date,
) -> tuple[asyncpg.Record, ConsentDecision]:
    client = await _existing_client(connection, client_id)
    rows = await connection.fetch("SELECT * FROM consents WHERE client_id = $1", client["client_id"])
    decision = check_consent([_consent(row) for row in rows], purpose, day, categories, agency_id, agency_kind)
    return client, decision


async def shared_data(
    connection: asyncpg.Connection, client_id: UUID, agency_id: str | None, agency_kind: AgencyKind | None, day: date
) -> SharedPersonData:
    """Exactly the personal data the person consented to share with this agency, nothing more."""
    client, decision = await decide_consent(
        connection, client_id, ConsentPurpose.SHARING, [], agency_id, agency_kind, day
    )
    if not decision.granted:
        raise ApiError(409, "no_valid_consent", details={"reason": decision.reason})
    categories = decision.categories
    data: dict[str, Any] = {"categories": tuple(sorted(category.value for category in categories))}
    if DataCategory.NAME in categories:
        data.update(family_name=client["family_name"], given_name=client["given_name"])
    if DataCategory.CONTACT in categories:
        data.update(phone=client["phone"], email=client["email"])
    if DataCategory.BIRTH_DATE in categories:
        data.update(birth_date=client["birth_date"])
    if DataCategory.RESIDENCE_STATUS in categories:
        data.update(residence_status=client["residence_status"])
    return SharedPersonData(**data)


# --- daily housekeeping -----------------------------------------------------------------------


async def expire_consents(connection: asyncpg.Connection, today: date) -> int:
    """Consents past their last valid day become ConsentExpired, once each."""
    rows = await connection.fetch(
        "UPDATE consents SET expired_on = valid_until + 1 WHERE valid_until < $1 AND withdrawn_on IS NULL "
        "AND expired_on IS NULL RETURNING *",
        today,
    )
    for row in rows:
        event = ConsentExpired(**_consent_fields(row), expired_on=row["expired_on"])
        await add_to_outbox(connection, Envelope(event=event, source=SOURCE))
    return len(rows)


async def raise_handovers(connection: asyncpg.Connection, today: date) -> int:
    """Young people in JMD who have turned 27 raise ServiceLineHandoverDue, once per person."""
    rows = await connection.fetch(
        "SELECT client_id, birth_date, birth_year FROM clients "
        "WHERE merged_into IS NULL AND erased_at IS NULL AND handover_raised_on IS NULL AND 'JMD' = ANY(service_lines) "
        "AND (birth_date IS NOT NULL OR birth_year IS NOT NULL) FOR UPDATE SKIP LOCKED"
    )
    raised = 0
    for row in rows:
        due = turns_27_between(BirthData(row["birth_date"], row["birth_year"]), date.min, today)
        if due is None:
            continue
        await connection.execute(
            "UPDATE clients SET handover_raised_on = $2 WHERE client_id = $1", row["client_id"], today
        )
        event = ServiceLineHandoverDue(
            client_id=row["client_id"], from_service_line=ServiceLine.JMD, to_service_line=ServiceLine.MBE, due_on=due
        )
        await add_to_outbox(connection, Envelope(event=event, source=SOURCE))
        raised += 1
    return raised
