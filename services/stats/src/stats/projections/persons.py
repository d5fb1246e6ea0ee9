"""Persons: the non-identifying attributes of registered people (the breakdown dimensions).

Stats keeps no more precision than a figure needs (data minimisation): the registration as its
day, a handover as its month. Intake's events carry no more than that either (issue 9; their
validators coarsen older events too when they are read); stats coarsens on its own as well, so
its read model does not rest on that.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg

from knotenpunkt.events import ClientRegistered, ClientsMerged, ClientUpdated, ServiceLineHandoverDue
from stats.projections._batch import SEPARATOR, SPLIT, columns, joined, rounds, transposed


def registration_day(at: datetime) -> datetime:
    """Midnight UTC of the registration's day, as ClientRegistered carries it since issue 9 (an
    older event re-read by a rebuild gets the same). Never later than the registration, so a
    correction of the same day still counts as newer (attributes_as_of)."""
    moment = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)  # events speak UTC
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def handover_month(due_on: date) -> date:
    """The first day of the month the handover is due in (the exact day is the 27th birthday)."""
    return due_on.replace(day=1)


# Attributes a correction (ClientUpdated) may change; each is a column of `persons`.
CORRECTABLE = (
    "age_band",
    "gender",
    "district",
    "nationalities",
    "languages",
    "counselling_language",
    "residence_status",
    "arrival_year",
    "household_size",
)
_LISTS = {"nationalities", "languages"}

# A registration arriving after a newer correction (a re-sent copy) keeps what the correction set
# and only fills what is still empty.
_KEEP_NEWER = ",\n".join(
    f"{name} = CASE WHEN p.attributes_as_of > EXCLUDED.attributes_as_of "
    f"THEN coalesce(p.{name}, EXCLUDED.{name}) ELSE EXCLUDED.{name} END"
    for name in CORRECTABLE
)

REGISTERED_SQL = f"""
INSERT INTO persons AS p (client_id, registered_at, service_line, service_lines, office_id, age_band, gender,
    district, nationalities, languages, counselling_language, residence_status, arrival_year, household_size,
    access_route, attributes_as_of)
SELECT u.client_id, u.registered_at, u.service_line, {SPLIT.format("u.service_lines")}, u.office_id, u.age_band,
    u.gender, u.district, {SPLIT.format("u.nationalities")}, {SPLIT.format("u.languages")}, u.counselling_language,
    u.residence_status, u.arrival_year, u.household_size, u.access_route, u.registered_at
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::int[], $15::text[])
    AS u(client_id, registered_at, service_line, service_lines, office_id, age_band, gender, district,
         nationalities, languages, counselling_language, residence_status, arrival_year, household_size, access_route)
ON CONFLICT (client_id) DO UPDATE SET
registered_at = EXCLUDED.registered_at,
service_line = EXCLUDED.service_line,
service_lines = EXCLUDED.service_lines,
office_id = EXCLUDED.office_id,
access_route = EXCLUDED.access_route,
{_KEEP_NEWER},
attributes_as_of = greatest(p.attributes_as_of, EXCLUDED.attributes_as_of)
"""


async def client_registered(connection: asyncpg.Connection, events: list[ClientRegistered]) -> None:
    for batch in rounds(events, lambda e: e.client_id):
        rows = [
            (
                e.client_id,
                registration_day(e.registered_at),
                e.service_line.value,
                # Events from before `service_lines` existed: the one service line applies.
                SEPARATOR.join(line.value for line in (e.service_lines or (e.service_line,))),
                e.office_id,
                e.age_band.value,
                e.gender.value,
                e.district,
                SEPARATOR.join(e.nationalities),
                SEPARATOR.join(e.languages),
                e.counselling_language,
                e.residence_status,
                e.arrival_year,
                e.household_size,
                e.access_route.value if e.access_route else None,
            )
            for e in batch
        ]
        await connection.execute(REGISTERED_SQL, *transposed(rows, 15))


_UPDATE_SET = ",\n".join(
    f"{name} = CASE WHEN '{name}' = ANY(u.changed) AND (p.attributes_as_of IS NULL OR p.attributes_as_of <= u.at) "
    f"THEN {SPLIT.format('u.' + name) if name in _LISTS else 'u.' + name} ELSE p.{name} END"
    for name in CORRECTABLE
)

UPDATED_SQL = f"""
UPDATE persons AS p SET
{_UPDATE_SET},
attributes_as_of = greatest(p.attributes_as_of, u.at)
FROM (SELECT u.*, {SPLIT.format("u.changed_joined")} AS changed
      FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                  $8::text[], $9::text[], $10::text[], $11::int[], $12::int[])
      AS u(client_id, at, changed_joined, age_band, gender, district, nationalities, languages,
           counselling_language, residence_status, arrival_year, household_size)) AS u
WHERE p.client_id = u.client_id
"""


async def client_updated(connection: asyncpg.Connection, events: list[ClientUpdated]) -> None:
    # A correction may come before the registration's copy reaches us: the row exists either way.
    await connection.execute(
        "INSERT INTO persons (client_id) SELECT DISTINCT unnest($1::uuid[]) ON CONFLICT DO NOTHING",
        [e.client_id for e in events],
    )
    for batch in rounds(events, lambda e: e.client_id):
        await connection.execute(
            UPDATED_SQL,
            *columns(
                batch,
                lambda e: e.client_id,
                lambda e: e.updated_at,
                lambda e: joined(e.changed),
                lambda e: e.age_band.value if e.age_band else None,
                lambda e: e.gender.value if e.gender else None,
                lambda e: e.district,
                lambda e: joined(e.nationalities),
                lambda e: joined(e.languages),
                lambda e: e.counselling_language,
                lambda e: e.residence_status,
                lambda e: e.arrival_year,
                lambda e: e.household_size,
            ),
        )


async def clients_merged(connection: asyncpg.Connection, events: list[ClientsMerged]) -> None:
    # In log order, resolving chains on write (see merge_clients in readmodel.sql).
    await connection.execute(
        "SELECT merge_clients($1::uuid[], $2::uuid[], $3::timestamptz[])",
        *columns(events, lambda e: e.merged_client_id, lambda e: e.client_id, lambda e: e.merged_at),
    )


async def handover_due(connection: asyncpg.Connection, events: list[ServiceLineHandoverDue]) -> None:
    await connection.execute(
        "INSERT INTO handovers (client_id, due_on, from_service_line, to_service_line) "
        "SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
        *columns(
            events,
            lambda e: e.client_id,
            lambda e: handover_month(e.due_on),
            lambda e: e.from_service_line.value,
            lambda e: e.to_service_line.value,
        ),
    )
