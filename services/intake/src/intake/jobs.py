"""Intake's periodic jobs, each in one unit of work from `runtime.units.begin()` (app.py).

Safe with several replicas: each row changes once (a condition on the column the job sets, and
SKIP LOCKED), so an event is raised once however often or wherever the job runs.
"""

from __future__ import annotations

from datetime import date

from intake import repository
from intake.domain import BirthData, turns_27_between
from knotenpunkt.events import ConsentExpired, ServiceLine, ServiceLineHandoverDue
from knotenpunkt.uow import UnitOfWork


async def expire_consents(uow: UnitOfWork, today: date) -> int:
    """Consents past their last valid day become ConsentExpired, once each."""
    rows = await uow.connection.fetch(
        "UPDATE consents SET expired_on = valid_until + 1 WHERE valid_until < $1 AND withdrawn_on IS NULL "
        "AND expired_on IS NULL RETURNING *",
        today,
    )
    for row in rows:
        await uow.publish(ConsentExpired(**repository.consent_event_fields(row), expired_on=row["expired_on"]))
    return len(rows)


async def raise_handovers(uow: UnitOfWork, today: date) -> int:
    """Young people in JMD who have turned 27 raise ServiceLineHandoverDue, once per person."""
    rows = await uow.connection.fetch(
        "SELECT client_id, birth_date, birth_year FROM clients "
        "WHERE merged_into IS NULL AND erased_at IS NULL AND handover_raised_on IS NULL AND 'JMD' = ANY(service_lines) "
        "AND (birth_date IS NOT NULL OR birth_year IS NOT NULL) FOR UPDATE SKIP LOCKED"
    )
    raised = 0
    for row in rows:
        due = turns_27_between(BirthData(row["birth_date"], row["birth_year"]), date.min, today)
        if due is None:
            continue
        await uow.connection.execute(
            "UPDATE clients SET handover_raised_on = $2 WHERE client_id = $1", row["client_id"], today
        )
        await uow.publish(
            ServiceLineHandoverDue(
                client_id=row["client_id"],
                from_service_line=ServiceLine.JMD,
                to_service_line=ServiceLine.MBE,
                due_on=due,
            )
        )
        raised += 1
    return raised
