"""What intake learns from the cases topic: which offices run a case of a person, so that their
staff may work with the person's record (knotenpunkt.policy: a record belongs to the office of
registration and to the offices of the person's cases)."""

from __future__ import annotations

from knotenpunkt.events import CaseOpened, CaseTransferred
from knotenpunkt.uow import UnitOfWork

_ADD_OFFICE = (
    "UPDATE clients SET case_offices = array_append(case_offices, $2) "
    "WHERE client_id = $1 AND NOT ($2 = ANY(case_offices))"
)


async def on_case_opened(event: CaseOpened, uow: UnitOfWork) -> None:
    await uow.connection.execute(_ADD_OFFICE, event.client_id, event.office_id)


async def on_case_transferred(event: CaseTransferred, uow: UnitOfWork) -> None:
    await uow.connection.execute(_ADD_OFFICE, event.client_id, event.to_office_id)
