"""Thin HTTP routes: each runs one use case (a command in one unit of work, or a query).

Every route names its permission (`allow(Action.X)`, knotenpunkt.policy): who may call it at
all. Which records the actor may touch is checked in the use case (`referrals.access`), and reads
name the persons they showed for the audit trail (`audit.concerns`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from knotenpunkt import audit
from knotenpunkt.events import AgencyKind
from knotenpunkt.http import run_command
from knotenpunkt.identity import allow
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor, UnitsOfWork
from referrals import access, commands, directory, queries
from referrals.consent_gate import ConsentGate
from referrals.deadlines import run_deadlines
from referrals.domain import Clock, Status
from referrals.schemas import (
    Agency,
    AgencyEntry,
    AgencyId,
    AgencyInput,
    ChangedReferral,
    ClientReferrals,
    CompleteInput,
    DeadlineRun,
    DeclineInput,
    DismissedReferral,
    GapRow,
    InboxReferral,
    RecordedNeed,
    Referral,
    ReferralInput,
    SentReferral,
    UnmetNeedInput,
    WithdrawInput,
)

Sender = Annotated[Actor, Depends(allow(Action.REFERRAL_SEND))]
Reader = Annotated[Actor, Depends(allow(Action.REFERRAL_READ))]
InboxReader = Annotated[Actor, Depends(allow(Action.AGENCY_INBOX))]
Answerer = Annotated[Actor, Depends(allow(Action.AGENCY_ANSWER))]
DirectoryKeeper = Annotated[Actor, Depends(allow(Action.REFERENCE_WRITE))]
AgencyInPath = Annotated[AgencyId, Path(description="The agency's id (also part of its Kafka topic names).")]


async def _no_topics(agency_id: str) -> None:
    """Without a broker (tests of the routes alone) there is nothing to create."""


def build_router(
    units: UnitsOfWork,
    clock: Clock,
    gate: ConsentGate,
    gap_threshold: int = 0,
    create_agency_topics: Callable[[str], Awaitable[None]] = _no_topics,
) -> APIRouter:
    """`create_agency_topics(agency_id)`: creates an agency's Kafka topics if missing (called after
    a directory change has committed)."""
    router = APIRouter()

    # --- case managers ------------------------------------------------------------------------

    @router.post(
        "/referrals",
        status_code=201,
        response_model=SentReferral,
        summary="Refer a person to a partner agency",
        tags=["referrals"],
    )
    async def send(referral: ReferralInput, request: Request, _actor: Sender) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.send_referral(uow, referral, clock, gate),
            scope="POST /referrals",
            payload=referral,
            status_code=201,
        )

    @router.get(
        "/referrals",
        summary="Referrals by case manager, case, office and status (of the offices the person may see)",
        tags=["referrals"],
    )
    async def list_referrals(
        request: Request,
        actor: Reader,
        case_manager_id: str | None = None,
        case_id: UUID | None = None,
        office_id: str | None = None,
        status: Annotated[list[Status] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Referral]:
        async with units.read() as connection:
            found = await queries.list_referrals(
                connection,
                actor,
                clock.now(),
                case_manager_id=case_manager_id,
                case_id=case_id,
                office_id=office_id,
                statuses=status,
                limit=limit,
            )
        audit.concerns(request, client_ids=[r.client_id for r in found], record_ids=[str(r.referral_id) for r in found])
        return found

    @router.get(
        "/referrals/action-needed",
        summary="Referrals to look at: no answer after half the promised time, declined, expired",
        tags=["referrals"],
    )
    async def action_needed(
        request: Request,
        actor: Reader,
        case_manager_id: str | None = None,
        office_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[Referral]:
        async with units.read() as connection:
            found = await queries.list_referrals(
                connection,
                actor,
                clock.now(),
                case_manager_id=case_manager_id,
                office_id=office_id,
                action_needed=True,
                limit=limit,
            )
        audit.concerns(request, client_ids=[r.client_id for r in found], record_ids=[str(r.referral_id) for r in found])
        return found

    @router.get("/referrals/{referral_id}", summary="One referral and its status", tags=["referrals"])
    async def get(referral_id: UUID, request: Request, actor: Reader) -> Referral:
        async with units.read() as connection:
            referral = await queries.get_referral(connection, actor, referral_id, clock.now())
        audit.concerns(request, client_ids=[referral.client_id])
        return referral

    @router.post(
        "/referrals/{referral_id}/withdraw",
        response_model=ChangedReferral,
        summary="The case manager takes a referral back",
        tags=["referrals"],
    )
    async def withdraw(
        referral_id: UUID,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.REFERRAL_WITHDRAW))],
        body: WithdrawInput | None = None,
    ) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.withdraw_referral(uow, referral_id, clock),
            scope=f"POST /referrals/{referral_id}/withdraw",
            payload={},
        )

    @router.post(
        "/referrals/{referral_id}/dismiss",
        response_model=DismissedReferral,
        summary="A declined or expired referral has been followed up: off the action-needed list",
        tags=["referrals"],
    )
    async def dismiss(
        referral_id: UUID,
        request: Request,
        _actor: Annotated[Actor, Depends(allow(Action.REFERRAL_WITHDRAW))],
    ) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.dismiss_referral(uow, referral_id, clock),
            scope=f"POST /referrals/{referral_id}/dismiss",
            payload={},
        )

    @router.post(
        "/unmet-needs",
        status_code=201,
        response_model=RecordedNeed,
        summary="Record a need no partner can take, without a referral (the gap register)",
        tags=["gaps"],
    )
    async def record_unmet_need(need: UnmetNeedInput, request: Request, _actor: Sender) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: commands.record_unmet_need(uow, need, clock),
            scope="POST /unmet-needs",
            payload=need,
            status_code=201,
        )

    # --- the network ----------------------------------------------------------------------------

    @router.get(
        "/agencies",
        summary="The partner directory",
        tags=["directory"],
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def agencies(
        topic_code: str | None = None,
        kind: AgencyKind | None = None,
        include_inactive: Annotated[
            bool, Query(description="Also the deactivated agencies (which take no new referrals).")
        ] = False,
    ) -> list[Agency]:
        async with units.read() as connection:
            return await queries.agencies(connection, topic_code, kind, include_inactive)

    # The admin keeps the directory. The agency's Keycloak client and users and its Kafka ACLs
    # are part of agency onboarding in the Kafka-security issue, not of these routes.

    @router.put(
        "/agencies/{agency_id}",
        response_model=AgencyEntry,
        summary="Add a partner agency to the directory or replace its entry (creates its Kafka topics)",
        tags=["directory"],
    )
    async def put_agency(
        agency_id: AgencyInPath, entry: AgencyInput, request: Request, _actor: DirectoryKeeper
    ) -> JSONResponse:
        response = await run_command(
            units,
            request,
            lambda uow: directory.put_agency(uow, agency_id, entry),
            scope=f"PUT /agencies/{agency_id}",
            payload=entry,
        )
        # After the commit, also on a replayed answer: creating existing topics changes nothing,
        # and a PUT repeated after a broker outage creates what the first one could not.
        await create_agency_topics(agency_id)
        return response

    @router.post(
        "/agencies/{agency_id}/deactivate",
        response_model=AgencyEntry,
        summary="Deactivate an agency: no new referrals to it; its open referrals stay and are followed up",
        tags=["directory"],
    )
    async def deactivate_agency(agency_id: AgencyInPath, request: Request, _actor: DirectoryKeeper) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: directory.set_active(uow, agency_id, active=False),
            scope=f"POST /agencies/{agency_id}/deactivate",
            payload={},
        )

    @router.post(
        "/agencies/{agency_id}/activate",
        response_model=AgencyEntry,
        summary="Activate a deactivated agency again: it takes new referrals",
        tags=["directory"],
    )
    async def activate_agency(agency_id: AgencyInPath, request: Request, _actor: DirectoryKeeper) -> JSONResponse:
        return await run_command(
            units,
            request,
            lambda uow: directory.set_active(uow, agency_id, active=True),
            scope=f"POST /agencies/{agency_id}/activate",
            payload={},
        )

    @router.get(
        "/gaps",
        summary="The gap register: needs nobody could meet, counted (no person, no referral)",
        tags=["gaps"],
        dependencies=[Depends(allow(Action.GAPS_READ))],
    )
    async def gaps(
        topic_code: str | None = None,
        agency_kind: AgencyKind | None = None,
        office_id: str | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> list[GapRow]:
        async with units.read() as connection:
            return await queries.gaps(
                connection, topic_code, agency_kind, office_id, from_date, to_date, threshold=gap_threshold
            )

    # --- the web inbox of agencies without their own software -----------------------------------
    # Signed in through Keycloak: the agency's staff (agency_staff) or its own software with its
    # client credentials (agency_system); the token's agency_id must be the agency in the path.

    inbox = APIRouter(prefix="/inbox/{agency_id}/referrals", tags=["inbox"])

    @inbox.get("", summary="An agency's open referrals, each with the data its person consented to share")
    async def open_referrals(agency_id: str, request: Request, actor: InboxReader) -> list[InboxReferral]:
        access.require_own_agency(actor, Action.AGENCY_INBOX, agency_id)
        async with units.read() as connection:
            found = await queries.inbox(connection, actor, agency_id, gate)
        audit.concerns(request, client_ids=[r.client_id for r in found], record_ids=[str(r.referral_id) for r in found])
        return found

    @inbox.get("/{referral_id}", summary="One referral addressed to the agency")
    async def one_referral(agency_id: str, referral_id: UUID, request: Request, actor: InboxReader) -> InboxReferral:
        access.require_own_agency(actor, Action.AGENCY_INBOX, agency_id)
        async with units.read() as connection:
            referral = await queries.inbox_referral(connection, actor, referral_id, gate)
        audit.concerns(request, client_ids=[referral.client_id])
        return referral

    async def answer(
        request: Request,
        actor: Actor,
        agency_id: str,
        referral_id: UUID,
        kind: str,
        details: DeclineInput | CompleteInput | None,
    ) -> JSONResponse:
        access.require_own_agency(actor, Action.AGENCY_ANSWER, agency_id)
        return await run_command(
            units,
            request,
            lambda uow: commands.answer_from_inbox(uow, clock, agency_id, referral_id, details),
            scope=f"POST /inbox/{agency_id}/referrals/{referral_id}/{kind}",
            payload=details or {},
        )

    @inbox.post("/{referral_id}/accept", response_model=ChangedReferral, summary="Accept a referral")
    async def accept(agency_id: str, referral_id: UUID, request: Request, actor: Answerer) -> JSONResponse:
        return await answer(request, actor, agency_id, referral_id, "accept", None)

    @inbox.post("/{referral_id}/decline", response_model=ChangedReferral, summary="Decline a referral")
    async def decline(
        agency_id: str, referral_id: UUID, body: DeclineInput, request: Request, actor: Answerer
    ) -> JSONResponse:
        return await answer(request, actor, agency_id, referral_id, "decline", body)

    @inbox.post(
        "/{referral_id}/complete", response_model=ChangedReferral, summary="Report the outcome of an accepted referral"
    )
    async def complete(
        agency_id: str, referral_id: UUID, body: CompleteInput, request: Request, actor: Answerer
    ) -> JSONResponse:
        return await answer(request, actor, agency_id, referral_id, "complete", body)

    router.include_router(inbox)

    # --- the person's own data (DSGVO Art. 15) --------------------------------------------------

    @router.get(
        "/clients/{client_id}/export",
        summary="Everything referrals stores about a person: referrals, their history, what each agency received",
        tags=["data protection"],
        dependencies=[Depends(allow(Action.CLIENT_EXPORT))],
    )
    async def export(client_id: UUID, request: Request) -> ClientReferrals:
        async with units.read() as connection:
            found = await queries.client_export(connection, client_id)
        # The path's person is recorded by the audit itself; the ids merged into theirs too.
        audit.concerns(
            request, client_ids=found.merged_client_ids, record_ids=[str(r.referral_id) for r in found.referrals]
        )
        return found

    # --- operations -----------------------------------------------------------------------------

    @router.post(
        "/admin/deadlines/run",
        response_model=DeadlineRun,
        summary="Send due reminders and expire overdue referrals now (the service also does it periodically)",
        tags=["operations"],
        # An operations tool (the admin's), like /metrics: it changes nothing a deadline would not.
        dependencies=[Depends(allow(Action.OPERATIONS_READ))],
    )
    async def deadlines_now(request: Request) -> JSONResponse:
        return await run_command(
            units, request, lambda uow: run_deadlines(uow, clock), scope="POST /admin/deadlines/run"
        )

    return router
