"""Intake's commands: the use cases that change state, each `(uow, ...)` in one unit of work,
their events written to the outbox through `uow.publish`. They raise only domain errors
(`knotenpunkt.errors`); the HTTP layer answers them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from intake import queries, repository
from intake.domain import (
    BirthData,
    age_band,
    check_correction_version,
    ensure_mergeable,
    household_size,
    phonetic_codes,
    plan_correction,
    primary_service_line,
    remaining_elsewhere,
    service_lines_for,
)
from intake.schemas import (
    ConsentInput,
    ConsentRecord,
    Correction,
    CorrectionResult,
    DuplicatesElsewhere,
    ErasureResult,
    MergeResult,
    OfficeInput,
    OfficeRecord,
    RegisteredClient,
    Registration,
    RemainingData,
    RoutingRuleInput,
    RoutingRuleRecord,
    StaffInput,
    StaffRecord,
)
from knotenpunkt.errors import Conflict, Invalid, NotFound
from knotenpunkt.events import (
    ClientErased,
    ClientRegistered,
    ClientsMerged,
    ClientUpdated,
    ConsentGiven,
    ConsentWithdrawn,
    ServiceLine,
)
from knotenpunkt.i18n import LANGUAGES, message
from knotenpunkt.logging import get_logger
from knotenpunkt.policy import Action, Record, require
from knotenpunkt.uow import UnitOfWork

log = get_logger("intake")


async def register_client(uow: UnitOfWork, registration: Registration, today: date | None = None) -> RegisteredClient:
    """Register a person: reference data checked, likely duplicates shown unless staff confirmed
    a new person, routed to service lines; ClientRegistered carries only non-identifying data."""
    today = today or date.today()
    connection = uow.connection
    secure = await repository.check_references(connection, registration.office_id, registration.residence_status)
    # After the reference check: an unknown office is a typing error (422), not a refusal.
    require(uow.actor, Action.CLIENT_REGISTER, Record(office_id=registration.office_id))
    birth = registration.birth_data
    names = [registration.family_name, registration.given_name, *registration.name_variants]
    if not registration.confirm_new:
        candidates = await repository.find_duplicates(connection, names, birth, uow.actor)
        elsewhere = await repository.duplicates_elsewhere(connection, names, birth, uow.actor)
        if candidates or elsewhere:
            raise Conflict(
                "possible_duplicates",
                details={"candidates": candidates, "elsewhere": elsewhere},
                elsewhere=_elsewhere_sentence(elsewhere),
            )
    age = birth.age_on(today)
    rules = [] if registration.service_lines else await repository.routing_rules(connection)
    lines = service_lines_for(registration.service_lines, age, registration.residence_status, secure, rules)
    service_line = primary_service_line(lines)
    client_id = uuid.uuid4()
    registered_at = datetime.now(UTC)
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
    await uow.publish(
        ClientRegistered(
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
            household_size=household_size(member.count for member in registration.household_members),
            access_route=registration.access_route,
        )
    )
    log.info("client registered", client_id=str(client_id), service_lines=[line.value for line in lines])
    return RegisteredClient(
        client_id=client_id,
        service_line=service_line,
        service_lines=list(lines),
        office_id=registration.office_id,
        registered_at=registered_at,
        version=1,
    )


def _elsewhere_sentence(elsewhere: list[DuplicatesElsewhere]) -> dict[str, str]:
    """The 409's added sentence naming the other offices (and how many there), in both languages."""
    if not elsewhere:
        return {language: "" for language in LANGUAGES}
    offices = ", ".join(f"{office.office_id}: {office.count}" for office in elsewhere)
    return {language: message("duplicates_elsewhere", language, offices=offices) for language in LANGUAGES}


async def correct_client(
    uow: UnitOfWork, client_id: UUID, correction: Correction, if_match: str | None
) -> CorrectionResult:
    """Correct the fields sent, based on the version named in If-Match; other services learn
    only the non-identifying attributes that changed."""
    connection = uow.connection
    row = await repository.client_for_change(connection, client_id, uow.actor, Action.CLIENT_CORRECT)
    check_correction_version(if_match, row["version"])
    sent = correction.model_dump(include=correction.model_fields_set)
    await repository.check_references(connection, None, sent.get("residence_status"))
    _complete_birth_data(row, sent)
    plan = plan_correction(row, sent)
    if not plan.changes:
        return CorrectionResult(client_id=client_id, version=row["version"], changed=[])
    assignments = [f"{field} = ${index}" for index, field in enumerate(plan.changes, start=2)]
    values = list(plan.changes.values())
    if plan.phonetic_names is not None:
        assignments.append(f"phonetic_names = ${len(values) + 2}")
        values.append(plan.phonetic_names)
    version = row["version"] + 1
    # Field names come from the Correction model (never from the request's keys as such).
    await connection.execute(
        f"UPDATE clients SET {', '.join(assignments)}, version = {version} WHERE client_id = $1",
        client_id,
        *values,
    )
    shared = dict(plan.shared)
    if {"birth_date", "birth_year"} & set(plan.changes):
        # Other services know the person's age band only, never the birth data: told when it moved.
        today = date.today()
        before = age_band(BirthData(row["birth_date"], row["birth_year"]).age_on(today))
        after = age_band(
            BirthData(
                plan.changes.get("birth_date", row["birth_date"]), plan.changes.get("birth_year", row["birth_year"])
            ).age_on(today)
        )
        if after is not before:
            shared["age_band"] = after
    if shared:
        await uow.publish(
            ClientUpdated(
                client_id=client_id,
                updated_at=datetime.now(UTC),
                changed=tuple(shared),
                **{key: tuple(value) if isinstance(value, list) else value for key, value in shared.items()},
            )
        )
    return CorrectionResult(client_id=client_id, version=version, changed=sorted(plan.changes))


def _complete_birth_data(row: Mapping[str, Any], sent: dict[str, Any]) -> None:
    """Keep date and year of birth in agreement, as a registration stores them: a corrected date
    brings its year; a corrected year must agree with a stored date unless the date is corrected
    too (or removed, keeping the year); a date removed without a year keeps the stored year."""
    if "birth_date" in sent:
        if sent["birth_date"] is not None:
            sent["birth_year"] = sent["birth_date"].year
        elif sent.get("birth_year") is None:
            sent["birth_year"] = row["birth_year"]
    elif "birth_year" in sent:
        stored = row["birth_date"]
        if stored is not None and sent["birth_year"] != stored.year:
            raise Invalid("birth_year", "birth_year_conflict")


async def merge_clients(uow: UnitOfWork, surviving_id: UUID, duplicate_id: UUID) -> MergeResult:
    """Retire a duplicate record into the surviving one; its consents move along. Both records
    must be within the actor's reach."""
    ensure_mergeable(surviving_id, duplicate_id)
    connection = uow.connection
    # Lock both in a fixed order so two opposite merges cannot deadlock.
    for client_id in sorted((surviving_id, duplicate_id)):
        await repository.client_for_change(connection, client_id, uow.actor, Action.CLIENT_MERGE)
    await connection.execute(
        "UPDATE clients SET merged_into = $1, version = version + 1 WHERE client_id = $2", surviving_id, duplicate_id
    )
    await connection.execute("UPDATE consents SET client_id = $1 WHERE client_id = $2", surviving_id, duplicate_id)
    await uow.publish(ClientsMerged(client_id=surviving_id, merged_client_id=duplicate_id, merged_at=datetime.now(UTC)))
    return MergeResult(client_id=surviving_id, merged_client_id=duplicate_id)


async def erase_client(uow: UnitOfWork, client_id: UUID) -> ErasureResult:
    """Erasure on request (GDPR art. 17) of the whole person: the record asked for, the record it
    was merged into and every duplicate merged into that one (a retired duplicate kept the
    person's data whole). Every personal field is emptied, the pseudonymous ids stay; stored
    answers of repeated requests that concern the person go; the other services are told. Consent
    records stay: they prove what was lawful until now and carry no personal data. Asking again
    answers the first erasure (and erases a member of the family that was not yet erased)."""
    connection = uow.connection
    row = await connection.fetchrow(
        "SELECT client_id, office_id, erased_at FROM clients WHERE client_id = $1 FOR UPDATE", client_id
    )
    if row is None:
        raise repository.person_not_found()
    require(uow.actor, Action.CLIENT_ERASE, repository.person_record(row))
    family = await repository.merge_family(connection, client_id)
    person = family[0]
    to_erase = [member["client_id"] for member in family if member["erased_at"] is None]
    erased_at = person["erased_at"] or datetime.now(UTC)
    if to_erase:
        await connection.execute(
            f"UPDATE clients SET {repository.ERASED_FIELDS}, erased_at = coalesce(erased_at, $2), "
            "version = version + 1 WHERE client_id = ANY($1::uuid[])",
            to_erase,
            erased_at,
        )
        await repository.forget_stored_answers(connection, [member["client_id"] for member in family])
        for erased_id in to_erase:
            await uow.publish(ClientErased(client_id=erased_id, erased_at=erased_at))
        log.info("client erased", client_id=str(person["client_id"]), records=len(to_erase))
    agencies = await repository.sharing_consented_to(connection, person["client_id"])
    return ErasureResult(
        client_id=person["client_id"],
        erased_at=erased_at,
        erased_client_ids=sorted(member["client_id"] for member in family),
        remains_elsewhere=[
            RemainingData.model_validate(r, from_attributes=True) for r in remaining_elsewhere(agencies)
        ],
    )


async def give_consent(uow: UnitOfWork, client_id: UUID, consent: ConsentInput) -> ConsentRecord:
    """Record a consent for the person (for the surviving record, if this one was merged)."""
    connection = uow.connection
    person = await repository.client(connection, client_id, uow.actor, Action.CONSENT_RECORD)
    row = await connection.fetchrow(
        "INSERT INTO consents (consent_id, client_id, purpose, agency_id, agency_kind, data_categories, text_version, "
        "given_on, valid_until, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
        uuid.uuid4(),
        person["client_id"],
        consent.purpose.value,
        consent.agency_id,
        consent.agency_kind.value if consent.agency_kind else None,
        [category.value for category in consent.data_categories],
        consent.text_version,
        consent.given_on,
        consent.valid_until,
        # Who recorded it is who is signed in, never what the request says.
        uow.actor.subject,
    )
    await uow.publish(
        ConsentGiven(
            **repository.consent_event_fields(row),
            text_version=consent.text_version,
            given_on=consent.given_on,
            valid_until=consent.valid_until,
        )
    )
    return repository.consent_record(row, date.today())


async def withdraw_consent(
    uow: UnitOfWork, client_id: UUID, consent_id: UUID, withdrawn_on: date | None
) -> ConsentRecord:
    """Withdraw a consent still in effect, from `withdrawn_on` (default today)."""
    connection = uow.connection
    person = await repository.client(connection, client_id, uow.actor, Action.CONSENT_WITHDRAW)
    row = await connection.fetchrow(
        "SELECT * FROM consents WHERE consent_id = $1 AND client_id = $2 FOR UPDATE", consent_id, person["client_id"]
    )
    if row is None:
        raise NotFound("Die Einwilligung", "The consent")
    repository.consent(row).ensure_in_effect()
    withdrawn_on = withdrawn_on or date.today()
    row = await connection.fetchrow(
        "UPDATE consents SET withdrawn_on = $2, withdrawn_by = $3 WHERE consent_id = $1 RETURNING *",
        consent_id,
        withdrawn_on,
        uow.actor.subject,
    )
    await uow.publish(ConsentWithdrawn(**repository.consent_event_fields(row), withdrawn_on=withdrawn_on))
    return repository.consent_record(row, date.today())


# --- reference data (admin) ---------------------------------------------------------------------

_EVERY_LINE = [line.value for line in ServiceLine]


async def put_office(uow: UnitOfWork, office_id: str, office: OfficeInput) -> OfficeRecord:
    """Create the office or change it. District, languages and service lines change only when
    sent (a new office starts without district and languages, offering every service line)."""
    district_sent = "district" in office.model_fields_set
    await uow.connection.execute(
        """INSERT INTO offices (office_id, name, address, open_hours, district, languages, service_lines)
           VALUES ($1, $2, $3, $4, $5, coalesce($6::text[], '{}'), coalesce($7::text[], $8::text[]))
           ON CONFLICT (office_id) DO UPDATE SET name = $2, address = $3, open_hours = $4,
               district = CASE WHEN $9 THEN $5 ELSE offices.district END,
               languages = coalesce($6::text[], offices.languages),
               service_lines = coalesce($7::text[], offices.service_lines)""",
        office_id,
        office.name,
        office.address,
        office.open_hours,
        office.district,
        office.languages,
        [line.value for line in office.service_lines] if office.service_lines is not None else None,
        _EVERY_LINE,
        district_sent,
    )
    [record] = await queries.offices(uow.connection, office_id)
    log.info("office saved", office_id=office_id)
    return record


async def put_staff(uow: UnitOfWork, staff_id: str, member: StaffInput) -> StaffRecord:
    """Create the staff member or change them; `active: false` when they leave (never deleted:
    the audit trail, consents and case histories keep naming the id)."""
    connection = uow.connection
    if member.office_id is not None and not await repository.office_exists(connection, member.office_id):
        raise NotFound("Die Beratungsstelle", "The office")
    row = await connection.fetchrow(
        """INSERT INTO staff (staff_id, office_id, display_name, fte, service_lines, active)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (staff_id) DO UPDATE SET office_id = $2, display_name = $3, fte = $4, service_lines = $5,
               active = $6
           RETURNING *""",
        staff_id,
        member.office_id,
        member.display_name,
        member.fte,
        [line.value for line in member.service_lines],
        member.active,
    )
    log.info("staff saved", staff_id=staff_id, active=member.active)
    return StaffRecord.model_validate(dict(row))


async def put_routing_rule(uow: UnitOfWork, rule_id: str, rule: RoutingRuleInput) -> RoutingRuleRecord:
    """Create the routing rule or replace its data; the next registration is routed by it."""
    connection = uow.connection
    if rule.residence_statuses is not None:
        unknown = await repository.unknown_residence_statuses(connection, rule.residence_statuses)
        if unknown:
            raise Invalid.at([(f"residence_statuses.{index}", "unknown_residence_status", {}) for index in unknown])
    row = await connection.fetchrow(
        """INSERT INTO routing_rules (rule_id, service_line, min_age, max_age, residence_statuses, unsecured_only,
               active, description)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (rule_id) DO UPDATE SET service_line = $2, min_age = $3, max_age = $4,
               residence_statuses = $5, unsecured_only = $6, active = $7, description = $8
           RETURNING *""",
        rule_id,
        rule.service_line.value,
        rule.min_age,
        rule.max_age,
        rule.residence_statuses,
        rule.unsecured_only,
        rule.active,
        rule.description,
    )
    log.info("routing rule saved", rule_id=rule_id, active=rule.active)
    return RoutingRuleRecord.model_validate(dict(row))
