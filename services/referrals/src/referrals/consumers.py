"""What referrals does with other services' events and with the agencies' answers.

The cases service's facts are projected into `known_cases` (a referral must come from a real
case) by plain handlers; the handlers that change referrals need the clock and are methods of
`ReferralReactions`, made once in the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass

from knotenpunkt import topics
from knotenpunkt.consumer import Batch, Rejected
from knotenpunkt.events import (
    CaseAssigned,
    CaseOpened,
    CaseTransferred,
    ClientErased,
    ClientsMerged,
    ConsentExpired,
    ConsentWithdrawn,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
)
from knotenpunkt.uow import UnitOfWork
from referrals import commands
from referrals.domain import Clock, NotTheirs, TransitionRefused

# --- cases, as told by the cases service ----------------------------------------------------


async def on_case_opened(batch: Batch[CaseOpened], uow: UnitOfWork) -> None:
    """Every new case becomes known; a run of them (a backlog, a replay) in one round trip."""
    await uow.connection.executemany(
        "INSERT INTO known_cases (case_id, client_id, service_line, office_id, case_manager_id) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO NOTHING",
        [
            (event.case_id, event.client_id, event.service_line.value, event.office_id, event.case_manager_id)
            for event in batch.events
        ],
    )


async def on_case_assigned(event: CaseAssigned, uow: UnitOfWork) -> None:
    await uow.connection.execute(
        "UPDATE known_cases SET case_manager_id = $2 WHERE case_id = $1", event.case_id, event.case_manager_id
    )


async def on_case_transferred(event: CaseTransferred, uow: UnitOfWork) -> None:
    # Open referrals follow the case to its new case manager; each keeps the office that sent it.
    await uow.connection.execute(
        "UPDATE known_cases SET case_manager_id = $2, office_id = $3 WHERE case_id = $1",
        event.case_id,
        event.to_case_manager_id,
        event.to_office_id,
    )


# --- people, as told by intake --------------------------------------------------------------


async def on_clients_merged(event: ClientsMerged, uow: UnitOfWork) -> None:
    """Two records were one person: everything of the retired id now belongs to the survivor."""
    connection = uow.connection
    await connection.execute(
        "INSERT INTO merged_clients (merged_client_id, client_id) VALUES ($1, $2) "
        "ON CONFLICT (merged_client_id) DO UPDATE SET client_id = EXCLUDED.client_id",
        event.merged_client_id,
        event.client_id,
    )
    # Earlier merges into the retired id now point at the survivor too.
    await connection.execute(
        "UPDATE merged_clients SET client_id = $2 WHERE client_id = $1", event.merged_client_id, event.client_id
    )
    for table in ("referrals", "known_cases"):
        await connection.execute(
            f"UPDATE {table} SET client_id = $2 WHERE client_id = $1", event.merged_client_id, event.client_id
        )


@dataclass(frozen=True)
class ReferralReactions:
    """Handlers whose events change referrals; they stamp the changes with the clock."""

    clock: Clock

    async def on_consent_withdrawn(self, event: ConsentWithdrawn, uow: UnitOfWork) -> None:
        await commands.withdraw_for_consent(uow, self.clock, event)

    async def on_consent_expired(self, event: ConsentExpired, uow: UnitOfWork) -> None:
        """A consent that ran out stops what relied on it exactly as a withdrawn one does."""
        await commands.withdraw_for_consent(uow, self.clock, event)

    async def on_client_erased(self, event: ClientErased, uow: UnitOfWork) -> None:
        await commands.withdraw_for_erasure(uow, self.clock, event)

    async def on_agency_answer(
        self, event: ReferralAccepted | ReferralDeclined | ReferralCompleted, uow: UnitOfWork
    ) -> None:
        """An answer read from an agency's answers topic. The answering agency is the owner of
        that topic (only that agency may write to it), not what the answer claims."""
        consumed = uow.cause.consumed
        origin = consumed.origin_topic if consumed is not None else None
        answering_agency = topics.agency_of_topic(origin or "")
        if answering_agency is None:
            raise Rejected(f"answer read from {origin}, not from an agency's answers topic")
        try:
            await commands.apply_answer(
                uow, self.clock, answering_agency, event, answered_by=f"{answering_agency} (answers topic)"
            )
        # Dead-lettered with which referral and why, not only the error's message code.
        except NotTheirs as refused:
            raise Rejected(refused.detail) from None
        except TransitionRefused as refused:
            raise Rejected(f"referral {event.referral_id}: {refused.detail}") from None
