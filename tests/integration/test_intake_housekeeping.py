"""Consents expire and handovers at 27 are raised once, from the real database, via the outbox."""

from __future__ import annotations

from datetime import date

import pytest

from intake import commands, jobs
from intake.app import MIGRATIONS
from intake.schemas import ConsentInput, Registration
from knotenpunkt.events import AgencyKind, ConsentPurpose, DataCategory
from knotenpunkt.uow import Actor, UnitsOfWork

pytestmark = pytest.mark.integration

HOUSEKEEPING = Actor.service("intake")
COUNTER = Actor.staff("intake-hamborn", "intake_staff", offices=("rsc-hamborn",))


async def outbox_types(database) -> list[str]:
    async with database.connection() as connection:
        return [
            row["event_type"].split(".")[-2]
            for row in await connection.fetch("SELECT event_type FROM outbox ORDER BY id")
        ]


async def test_a_consent_past_its_validity_expires_once(make_database) -> None:
    database = await make_database("intake", MIGRATIONS)
    units = UnitsOfWork(database, "knotenpunkt/intake")
    async with units.begin(actor=COUNTER) as uow:
        client = await commands.register_client(
            uow,
            Registration(family_name="Nowak", given_name="Ewa", birth_date=date(1980, 1, 1), office_id="rsc-hamborn"),
        )
        await commands.give_consent(
            uow,
            client.client_id,
            ConsentInput(
                purpose=ConsentPurpose.SHARING, agency_kind=AgencyKind.SOZIALAMT, data_categories=[DataCategory.NAME],
                text_version="1", given_on=date(2025, 1, 1), valid_until=date(2025, 12, 31),
            ),
        )  # fmt: skip
    async with units.begin(actor=HOUSEKEEPING) as uow:
        assert await jobs.expire_consents(uow, date(2025, 12, 31)) == 0
        assert await jobs.expire_consents(uow, date(2026, 1, 1)) == 1
        assert await jobs.expire_consents(uow, date(2026, 1, 2)) == 0
    assert await outbox_types(database) == ["ClientRegistered", "ConsentGiven", "ConsentExpired"]


async def test_turning_27_raises_the_handover_once(make_database) -> None:
    database = await make_database("intake", MIGRATIONS)
    units = UnitsOfWork(database, "knotenpunkt/intake")
    today = date.today()
    birthday_27 = date(today.year - 27, today.month, min(today.day, 28))
    async with units.begin(actor=COUNTER) as uow:
        await commands.register_client(
            uow,
            Registration(family_name="Kaya", given_name="Deniz", birth_date=birthday_27, office_id="rsc-hamborn"),
            today=date(today.year - 1, 1, 1),  # registered a year ago, at 26: JMD
        )
    async with units.begin(actor=HOUSEKEEPING) as uow:
        assert await jobs.raise_handovers(uow, today) == 1
        assert await jobs.raise_handovers(uow, today) == 0
    assert await outbox_types(database) == ["ClientRegistered", "ServiceLineHandoverDue"]
