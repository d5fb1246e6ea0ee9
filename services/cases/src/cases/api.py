"""The cases HTTP API: thin routes, one use case (a command in a unit of work, or a query) each.

Only HTTP concerns live here: If-Match in, ETag out, status codes, the language of messages,
and who is asking: every route names its permission (`allow(Action.X)`: the role may do this at
all); whether the person may do it to THIS case (office, assignment) is checked once the case is
loaded (`policy.require`), lists are scoped in SQL. Reads name the persons they concern for the
audit trail (`audit.concerns`); changes are audited by `run_command`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from cases import commands, queries
from cases.domain import CaseStatus
from cases.intake import IntakeDirectory
from cases.repository import case_record
from cases.schemas import (
    Assignment,
    Case,
    CaseOpening,
    CaseOverview,
    CasePage,
    ChangedPlanGoal,
    ClientExport,
    Closing,
    ConsultationCorrection,
    ConsultationInput,
    CorrectedConsultation,
    GoalChange,
    GoalInput,
    GoalStatusInput,
    Handover,
    HandoverInput,
    ReasonCodes,
    RecordedConsultation,
    Reopening,
    Topic,
    TopicInput,
    TransferInput,
)
from knotenpunkt import audit
from knotenpunkt.concurrency import etag
from knotenpunkt.events import ServiceLine
from knotenpunkt.http import UseCase, run_command
from knotenpunkt.i18n import negotiate
from knotenpunkt.identity import allow
from knotenpunkt.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor
from knotenpunkt.policy import Action, require
from knotenpunkt.uow import Actor, UnitsOfWork

# The person asking, if their role allows the action at all (else 403); see knotenpunkt.identity.
Reader = Annotated[Actor, Depends(allow(Action.CASE_READ))]

IF_MATCH = Header(
    default=None,
    alias="If-Match",
    description='The case\'s ETag from your GET (e.g. "3"); a stale one is answered 409.',
)


def _with_etag(response: JSONResponse) -> JSONResponse:
    """A changed case answers with its new ETag, also when the answer is a replay."""
    if response.status_code < 300:
        body = json.loads(response.body)
        if isinstance(body, dict) and isinstance(body.get("version"), int):
            response.headers["ETag"] = etag(body["version"])
    return response


def build_router(units: UnitsOfWork, intake: IntakeDirectory) -> APIRouter:
    router = APIRouter(tags=["cases"])

    async def change(
        request: Request, scope: str, payload: Any, use_case: UseCase, status_code: int = 200
    ) -> JSONResponse:
        response = await run_command(units, request, use_case, scope=scope, payload=payload, status_code=status_code)
        return _with_etag(response)

    @router.get(
        "/cases",
        summary="Cases for daily work: filtered, newest first, one page at a time",
        response_model=list[Case] | CasePage,
        description=(
            "With `client_id`: every case of that person as a plain list (a person has a handful; other "
            "filters do not apply). Otherwise a page `{items, next_cursor}`: pass `next_cursor` back as "
            "`cursor` for the next page; `next_cursor` is null on the last page. Only the cases of your "
            "office(s) are listed."
        ),
    )
    async def list_cases(
        actor: Reader,
        request: Request,
        client_id: UUID | None = None,
        case_manager_id: str | None = Query(default=None, description="My cases: the case manager's staff id."),
        office_id: str | None = Query(default=None, description="Cases of one office."),
        service_line: ServiceLine | None = None,
        status: CaseStatus | None = None,
        topic: str | None = Query(default=None, description="Cases with a consultation on this topic code."),
        handover_due: bool | None = Query(default=None, description="JMD cases whose person turned 27."),
        limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        cursor: str | None = Query(default=None, description="`next_cursor` of the previous page."),
    ) -> list[Case] | CasePage:
        async with units.read() as connection:
            if client_id is not None:
                listed = await queries.cases_of_client(connection, client_id, actor)
                # The person asked about is concerned even when none of their cases may be shown.
                audit.concerns(request, client_ids=[client_id, *(case.client_id for case in listed)])
                return listed
            page = await queries.list_cases(
                connection,
                actor=actor,
                case_manager_id=case_manager_id,
                office_id=office_id,
                service_line=service_line,
                status=status,
                topic=topic,
                handover_due=handover_due,
                limit=limit,
                cursor=decode_cursor(cursor),
            )
        audit.concerns(request, client_ids=[case.client_id for case in page.items])
        return CasePage(items=page.items, next_cursor=page.next_cursor)

    @router.post(
        "/cases",
        status_code=201,
        response_model=Case,
        summary="Open a case by hand in a service line (at your office)",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def open_case(opening: CaseOpening, request: Request) -> JSONResponse:
        return await change(
            request, "POST /cases", opening, lambda uow: commands.open_case(uow, opening), status_code=201
        )

    @router.get("/cases/{case_id}", summary="One case (its ETag is the version to send as If-Match)")
    async def get_case(case_id: UUID, actor: Reader, request: Request, response: Response) -> Case:
        async with units.read() as connection:
            case = await queries.get_case(connection, case_id)
        audit.concerns(request, client_ids=[case.client_id])
        require(actor, Action.CASE_READ, case_record(case.office_id, case.case_manager_id))
        response.headers["ETag"] = etag(case.version)
        return case

    @router.get("/cases/{case_id}/overview", summary="The whole case in one answer (Gesamtfall im Überblick)")
    async def overview(case_id: UUID, actor: Reader, request: Request, response: Response) -> CaseOverview:
        language = negotiate(request.headers.get("accept-language"))

        def concerning(case: Case) -> None:
            audit.concerns(request, client_ids=[case.client_id])

        whole = await queries.overview_with_person(units, intake, case_id, language, actor, concerning)
        response.headers["ETag"] = etag(whole.case.version)
        return whole

    @router.post(
        "/cases/{case_id}/assign",
        response_model=Case,
        summary="Assign a case manager (first time)",
        dependencies=[Depends(allow(Action.CASE_ASSIGN))],
    )
    async def assign(
        case_id: UUID, assignment: Assignment, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/assign",
            assignment,
            lambda uow: commands.assign(uow, case_id, assignment, if_match),
        )

    @router.post(
        "/cases/{case_id}/transfer",
        response_model=Case,
        summary="Transfer to another case manager and/or office",
        dependencies=[Depends(allow(Action.CASE_ASSIGN))],
    )
    async def transfer(
        case_id: UUID, request_body: TransferInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/transfer",
            request_body,
            lambda uow: commands.transfer(uow, case_id, request_body, if_match),
        )

    @router.post(
        "/cases/{case_id}/close",
        response_model=Case,
        summary="Close with a reason from the code list",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def close(case_id: UUID, closing: Closing, request: Request, if_match: str | None = IF_MATCH) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/close",
            closing,
            lambda uow: commands.close(uow, case_id, closing, if_match),
        )

    @router.post(
        "/cases/{case_id}/reopen",
        response_model=Case,
        summary="Reopen a closed case",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def reopen(
        case_id: UUID, request: Request, reopening: Reopening | None = None, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/reopen",
            reopening or Reopening(),
            lambda uow: commands.reopen(uow, case_id, if_match),
        )

    @router.post(
        "/cases/{case_id}/consultations",
        status_code=201,
        response_model=RecordedConsultation,
        summary="Record a consultation",
        dependencies=[Depends(allow(Action.CASE_NOTE))],
    )
    async def record_consultation(
        case_id: UUID, consultation: ConsultationInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/consultations",
            consultation,
            lambda uow: commands.record_consultation(uow, case_id, consultation, if_match),
            status_code=201,
        )

    @router.patch(
        "/cases/{case_id}/consultations/{consultation_id}",
        response_model=CorrectedConsultation,
        summary="Correct a recorded consultation (the fields sent change; If-Match required)",
        dependencies=[Depends(allow(Action.CASE_NOTE))],
    )
    async def correct_consultation(
        case_id: UUID,
        consultation_id: UUID,
        correction: ConsultationCorrection,
        request: Request,
        if_match: str | None = IF_MATCH,
    ) -> JSONResponse:
        return await change(
            request,
            f"PATCH /cases/{case_id}/consultations/{consultation_id}",
            correction.model_dump(mode="json", exclude_unset=True),
            lambda uow: commands.correct_consultation(uow, case_id, consultation_id, correction, if_match),
        )

    @router.post(
        "/cases/{case_id}/handover",
        response_model=Handover,
        summary="Hand a JMD case over to MBE in one step: close it, open the MBE case at the chosen office",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def hand_over(
        case_id: UUID, handover: HandoverInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/handover",
            handover,
            lambda uow: commands.hand_over(uow, case_id, handover, if_match),
        )

    @router.post(
        "/cases/{case_id}/plan/goals",
        status_code=201,
        response_model=ChangedPlanGoal,
        summary="Add a goal to the integration plan",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def set_goal(
        case_id: UUID, goal: GoalInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/plan/goals",
            goal,
            lambda uow: commands.set_goal(uow, case_id, goal, if_match),
            status_code=201,
        )

    @router.post(
        "/cases/{case_id}/plan/goals/{goal_id}/status",
        response_model=ChangedPlanGoal,
        summary="A goal reached, dropped or opened again",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def change_goal_status(
        case_id: UUID, goal_id: UUID, change_input: GoalStatusInput, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"POST /cases/{case_id}/plan/goals/{goal_id}/status",
            change_input,
            lambda uow: commands.change_goal_status(uow, case_id, goal_id, change_input, if_match),
        )

    @router.patch(
        "/cases/{case_id}/plan/goals/{goal_id}",
        response_model=ChangedPlanGoal,
        summary="Edit a goal's topic, target date or description (the fields sent change; If-Match required)",
        dependencies=[Depends(allow(Action.CASE_CHANGE))],
    )
    async def change_goal(
        case_id: UUID, goal_id: UUID, goal_change: GoalChange, request: Request, if_match: str | None = IF_MATCH
    ) -> JSONResponse:
        return await change(
            request,
            f"PATCH /cases/{case_id}/plan/goals/{goal_id}",
            goal_change.model_dump(mode="json", exclude_unset=True),
            lambda uow: commands.change_goal(uow, case_id, goal_id, goal_change, if_match),
        )

    @router.get(
        "/topics",
        tags=["code lists"],
        summary="The counselling topic taxonomy",
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def topics() -> list[Topic]:
        async with units.read() as connection:
            return await queries.list_topics(connection)

    @router.post(
        "/topics",
        status_code=201,
        response_model=Topic,
        tags=["code lists"],
        summary="Add a city's own counselling topic",
        dependencies=[Depends(allow(Action.REFERENCE_WRITE))],
    )
    async def add_topic(topic: TopicInput, request: Request) -> JSONResponse:
        return await change(request, "POST /topics", topic, lambda uow: commands.add_topic(uow, topic), status_code=201)

    @router.get(
        "/reasons",
        tags=["code lists"],
        summary="Reasons to close or transfer a case",
        dependencies=[Depends(allow(Action.REFERENCE_READ))],
    )
    async def reasons() -> ReasonCodes:
        async with units.read() as connection:
            return await queries.list_reasons(connection)

    @router.get(
        "/clients/{client_id}/export",
        tags=["data protection"],
        summary="Everything cases stores about a person (DSGVO Art. 15; data protection officer)",
        description=(
            "Every case of the person with its consultations (notes included), integration plan, referrals, "
            "handovers and history with who did what and when. Asked by the data protection officer, usually "
            "through intake's export, which gathers every service's part."
        ),
    )
    async def export_client(
        client_id: UUID, _actor: Annotated[Actor, Depends(allow(Action.CLIENT_EXPORT))]
    ) -> ClientExport:
        async with units.read() as connection:
            return await queries.client_export(connection, client_id)

    return router
