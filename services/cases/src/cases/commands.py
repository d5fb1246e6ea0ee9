"""Cases' commands: what a case manager changes over HTTP, one unit of work each.

Each use case loads the case (locked), checks that the acting person may do this to THIS case
(`knotenpunkt.policy`: their office, their assignment), then If-Match and the domain's rules,
changes the row, records its event (outbox + the case's history, with the acting staff id from
the token) and answers with its response model. Rules refuse with `knotenpunkt.errors`; the
HTTP layer maps them once (a refused permission is a 403, audited as denied).
"""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

from cases.domain import (
    CaseStatus,
    ensure_can_assign,
    ensure_can_close,
    ensure_can_hand_over,
    ensure_can_reopen,
    ensure_goal_transition,
    ensure_no_other_open_case,
    ensure_open,
    plan_transfer,
)
from cases.repository import (
    CASE,
    acting_staff,
    case_for_update,
    case_record,
    changed,
    check_reason,
    check_topics,
    find_case,
    note_in_history,
    now,
    open_case_in_line,
    record,
    resolve_client,
)
from cases.repository import open_case as open_case_for
from cases.schemas import (
    Assignment,
    Case,
    CaseOpening,
    ChangedPlanGoal,
    Closing,
    ConsultationCorrection,
    ConsultationInput,
    CorrectedConsultation,
    GoalChange,
    GoalInput,
    GoalStatusInput,
    Handover,
    HandoverInput,
    RecordedConsultation,
    Topic,
    TopicInput,
    TransferInput,
)
from knotenpunkt.concurrency import check_version
from knotenpunkt.errors import Conflict, Invalid, NotFound
from knotenpunkt.events import (
    CaseAssigned,
    CaseClosed,
    CaseReopened,
    CaseTransferred,
    ConsultationRecorded,
    GoalStatus,
    PlanGoalSet,
    PlanGoalStatusChanged,
    ServiceLine,
)
from knotenpunkt.policy import Action, require
from knotenpunkt.uow import UnitOfWork


def _may(uow: UnitOfWork, action: Action, case: asyncpg.Record) -> None:
    """The acting person may do `action` to this case (its office and case manager), else 403."""
    require(uow.actor, action, case_record(case["office_id"], case["case_manager_id"]))


async def open_case(uow: UnitOfWork, opening: CaseOpening) -> Case:
    """Open a case by hand for a person cases knows (from ClientRegistered), at an office the
    acting person works at; a case manager may name only themselves (or nobody) as its manager."""
    require(uow.actor, Action.CASE_CHANGE, case_record(opening.office_id, opening.case_manager_id))
    connection = uow.connection
    known = await connection.fetchrow(
        "SELECT registered_at, merged_into FROM persons WHERE client_id = $1", opening.client_id
    )
    if known is None or (known["registered_at"] is None and known["merged_into"] is None):
        raise NotFound("Die Person", "The person")
    client_id = await resolve_client(connection, opening.client_id)
    case_id = await open_case_for(
        uow,
        client_id,
        opening.service_line,
        opening.office_id,
        case_manager_id=opening.case_manager_id,
        opened_by_hand=True,
    )
    if case_id is None:
        existing = await open_case_in_line(connection, client_id, opening.service_line)
        raise Conflict("open_case_exists", case_id=str(existing))
    case = await find_case(connection, case_id)
    assert case is not None
    return case


async def assign(uow: UnitOfWork, case_id: UUID, assignment: Assignment, if_match: str | None) -> Case:
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_ASSIGN, case)
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_can_assign(CaseStatus(case["status"]), case["case_manager_id"])
    await uow.connection.execute(
        "UPDATE cases SET case_manager_id = $2 WHERE case_id = $1", case_id, assignment.case_manager_id
    )
    assigned = CaseAssigned(
        client_id=case["client_id"], case_id=case_id, case_manager_id=assignment.case_manager_id, assigned_at=now()
    )
    await record(uow, case_id, assigned)
    return await changed(uow.connection, case_id)


async def transfer(uow: UnitOfWork, case_id: UUID, request: TransferInput, if_match: str | None) -> Case:
    # The lead of the case's current office transfers it, also to another office.
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_ASSIGN, case)
    await check_reason(uow.connection, "transfer", request.reason)
    check_version(if_match, case["version"], required=True, what=CASE)
    moved = plan_transfer(
        CaseStatus(case["status"]),
        case["office_id"],
        case["case_manager_id"],
        request.to_office_id,
        request.to_case_manager_id,
    )
    await uow.connection.execute(
        "UPDATE cases SET office_id = $2, case_manager_id = $3 WHERE case_id = $1",
        case_id,
        moved.to_office_id,
        moved.to_case_manager_id,
    )
    transferred = CaseTransferred(
        client_id=case["client_id"],
        case_id=case_id,
        from_office_id=moved.from_office_id,
        to_office_id=moved.to_office_id,
        from_case_manager_id=moved.from_case_manager_id,
        to_case_manager_id=moved.to_case_manager_id,
        reason=request.reason,
        transferred_at=now(),
    )
    await record(uow, case_id, transferred)
    return await changed(uow.connection, case_id)


async def close(uow: UnitOfWork, case_id: UUID, closing: Closing, if_match: str | None) -> Case:
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_CHANGE, case)
    await check_reason(uow.connection, "close", closing.reason)
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_can_close(CaseStatus(case["status"]))
    closed_at = now()
    await uow.connection.execute(
        "UPDATE cases SET status = 'closed', closed_at = $2, close_reason = $3 WHERE case_id = $1",
        case_id,
        closed_at,
        closing.reason,
    )
    closed = CaseClosed(
        client_id=case["client_id"],
        case_id=case_id,
        service_line=ServiceLine(case["service_line"]),
        office_id=case["office_id"],
        reason=closing.reason,
        closed_at=closed_at,
    )
    await record(uow, case_id, closed)
    return await changed(uow.connection, case_id)


async def reopen(uow: UnitOfWork, case_id: UUID, if_match: str | None) -> Case:
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_CHANGE, case)
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_can_reopen(CaseStatus(case["status"]))
    service_line = ServiceLine(case["service_line"])
    ensure_no_other_open_case(await open_case_in_line(uow.connection, case["client_id"], service_line))
    await uow.connection.execute(
        "UPDATE cases SET status = 'open', closed_at = NULL, close_reason = NULL WHERE case_id = $1", case_id
    )
    await record(uow, case_id, CaseReopened(client_id=case["client_id"], case_id=case_id, reopened_at=now()))
    return await changed(uow.connection, case_id)


async def record_consultation(
    uow: UnitOfWork, case_id: UUID, consultation: ConsultationInput, if_match: str | None = None
) -> RecordedConsultation:
    case = await case_for_update(uow.connection, case_id)
    # Consultations carry counselling notes: only on one's own cases (the lead: the office's).
    _may(uow, Action.CASE_NOTE, case)
    await check_topics(uow.connection, consultation.topics, "topics")
    # Adding a consultation loses nobody's change, so If-Match is checked only when sent.
    check_version(if_match, case["version"], required=False, what=CASE)
    ensure_open(CaseStatus(case["status"]))
    consultation_id = uuid.uuid4()
    # Who held it is who records it: the staff id from the token, never a typed name.
    case_manager_id = acting_staff(uow)
    await uow.connection.execute(
        "INSERT INTO consultations (consultation_id, case_id, held_on, duration_minutes, topics, "
        "family_members_counselled, note, mode, language, interpreter_used, case_manager_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        consultation_id,
        case_id,
        consultation.held_on,
        consultation.duration_minutes,
        consultation.topics,
        consultation.family_members_counselled,
        consultation.note,
        consultation.mode.value,
        consultation.language,
        consultation.interpreter_used,
        case_manager_id,
    )
    # The note is not part of the event: it stays in this database.
    recorded = ConsultationRecorded(
        client_id=case["client_id"],
        consultation_id=consultation_id,
        case_id=case_id,
        service_line=case["service_line"],
        office_id=case["office_id"],
        held_on=consultation.held_on,
        duration_minutes=consultation.duration_minutes,
        topics=tuple(consultation.topics),
        family_members_counselled=consultation.family_members_counselled,
        mode=consultation.mode,
        language=consultation.language,
        interpreter_used=consultation.interpreter_used,
        case_manager_id=case_manager_id,
    )
    await record(uow, case_id, recorded)
    version = (await changed(uow.connection, case_id)).version
    return RecordedConsultation(consultation_id=consultation_id, case_id=case_id, version=version)


async def set_goal(uow: UnitOfWork, case_id: UUID, goal: GoalInput, if_match: str | None = None) -> ChangedPlanGoal:
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_CHANGE, case)
    await check_topics(uow.connection, [goal.topic_code], "topic_code")
    # A new goal loses nobody's change either: If-Match is checked only when sent.
    check_version(if_match, case["version"], required=False, what=CASE)
    ensure_open(CaseStatus(case["status"]))
    goal_id, set_at = uuid.uuid4(), now()
    row = await uow.connection.fetchrow(
        "INSERT INTO plan_goals (goal_id, case_id, topic_code, description, target_date, status, set_at, changed_at) "
        "VALUES ($1, $2, $3, $4, $5, 'open', $6, $6) RETURNING *",
        goal_id,
        case_id,
        goal.topic_code,
        goal.description,
        goal.target_date,
        set_at,
    )
    goal_set = PlanGoalSet(
        client_id=case["client_id"],
        goal_id=goal_id,
        case_id=case_id,
        topic_code=goal.topic_code,
        target_date=goal.target_date,
        set_at=set_at,
    )
    await record(uow, case_id, goal_set)
    version = (await changed(uow.connection, case_id)).version
    return ChangedPlanGoal.model_validate({**dict(row), "version": version})


async def change_goal_status(
    uow: UnitOfWork, case_id: UUID, goal_id: UUID, change: GoalStatusInput, if_match: str | None
) -> ChangedPlanGoal:
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_CHANGE, case)
    goal = await uow.connection.fetchrow(
        "SELECT * FROM plan_goals WHERE goal_id = $1 AND case_id = $2 FOR UPDATE", goal_id, case_id
    )
    if goal is None:
        raise NotFound("Das Ziel", "The goal")
    # Changing a goal can overwrite someone else's change of it: If-Match is required.
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_goal_transition(CaseStatus(case["status"]), GoalStatus(goal["status"]), change.status)
    changed_at = now()
    row = await uow.connection.fetchrow(
        "UPDATE plan_goals SET status = $2, changed_at = $3 WHERE goal_id = $1 RETURNING *",
        goal_id,
        change.status.value,
        changed_at,
    )
    status_changed = PlanGoalStatusChanged(
        client_id=case["client_id"], goal_id=goal_id, case_id=case_id, status=change.status, changed_at=changed_at
    )
    await record(uow, case_id, status_changed)
    version = (await changed(uow.connection, case_id)).version
    return ChangedPlanGoal.model_validate({**dict(row), "version": version})


async def correct_consultation(
    uow: UnitOfWork, case_id: UUID, consultation_id: UUID, correction: ConsultationCorrection, if_match: str | None
) -> CorrectedConsultation:
    """Correct a recorded consultation (a wrong day, duration, topic, the note): the fields sent
    change, the history keeps who corrected which fields when (not the values: notes stay out)."""
    case = await case_for_update(uow.connection, case_id)
    # As for recording: notes only on one's own cases (the lead: the office's).
    _may(uow, Action.CASE_NOTE, case)
    row = await uow.connection.fetchrow(
        "SELECT * FROM consultations WHERE consultation_id = $1 AND case_id = $2 FOR UPDATE", consultation_id, case_id
    )
    if row is None:
        raise NotFound("Die Beratung", "The consultation")
    sent = correction.model_fields_set
    emptied = [name for name in ConsultationCorrection.REQUIRED if name in sent and getattr(correction, name) is None]
    if emptied:
        raise Invalid.at([(name, "field_required", {}) for name in emptied])
    if correction.topics is not None:
        await check_topics(uow.connection, correction.topics, "topics")
    # A correction overwrites what someone else may have corrected meanwhile: If-Match is required.
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_open(CaseStatus(case["status"]))
    values = {name: getattr(correction, name) for name in sent}
    if "mode" in values:
        values["mode"] = correction.mode.value if correction.mode else None
    changed_fields = sorted(name for name, value in values.items() if row[name] != value)
    if not changed_fields:
        raise Invalid(sorted(sent)[0] if sent else "held_on", "nothing_to_change")
    assignments = ", ".join(f"{name} = ${index}" for index, name in enumerate(changed_fields, start=2))
    await uow.connection.execute(
        f"UPDATE consultations SET {assignments} WHERE consultation_id = $1",
        consultation_id,
        *(values[name] for name in changed_fields),
    )
    # No event of the shared contract says "corrected" yet (ConsultationRecorded is applied once
    # by its readers), so the correction is kept in the case's history only: which fields, by whom.
    await note_in_history(
        uow,
        case_id,
        "ConsultationCorrected",
        {"consultation_id": str(consultation_id), "case_id": str(case_id), "changed": changed_fields},
    )
    version = (await changed(uow.connection, case_id)).version
    return CorrectedConsultation(
        consultation_id=consultation_id, case_id=case_id, changed=changed_fields, version=version
    )


async def change_goal(
    uow: UnitOfWork, case_id: UUID, goal_id: UUID, change: GoalChange, if_match: str | None
) -> ChangedPlanGoal:
    """Edit a plan goal's topic, target date or description. The goal as it now stands is
    published again as PlanGoalSet (same goal id and set_at): its readers keep one goal per id
    and take the newer topic and target date, the status stays as it was."""
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_CHANGE, case)
    goal = await uow.connection.fetchrow(
        "SELECT * FROM plan_goals WHERE goal_id = $1 AND case_id = $2 FOR UPDATE", goal_id, case_id
    )
    if goal is None:
        raise NotFound("Das Ziel", "The goal")
    sent = change.model_fields_set
    if "topic_code" in sent:
        if change.topic_code is None:
            raise Invalid("topic_code", "field_required")
        await check_topics(uow.connection, [change.topic_code], "topic_code")
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_open(CaseStatus(case["status"]))
    values = {name: getattr(change, name) for name in sent}
    changed_fields = sorted(name for name, value in values.items() if goal[name] != value)
    if not changed_fields:
        raise Invalid(sorted(sent)[0] if sent else "topic_code", "nothing_to_change")
    assignments = ", ".join(f"{name} = ${index}" for index, name in enumerate(changed_fields, start=3))
    row = await uow.connection.fetchrow(
        f"UPDATE plan_goals SET {assignments}, changed_at = $2 WHERE goal_id = $1 RETURNING *",
        goal_id,
        now(),
        *(values[name] for name in changed_fields),
    )
    if {"topic_code", "target_date"} & set(changed_fields):
        await record(
            uow,
            case_id,
            PlanGoalSet(
                client_id=case["client_id"],
                goal_id=goal_id,
                case_id=case_id,
                topic_code=row["topic_code"],
                target_date=row["target_date"],
                set_at=row["set_at"],
            ),
        )
    else:
        # Only the description (free text, never in an event): the history says that it changed.
        await note_in_history(uow, case_id, "PlanGoalDescribed", {"goal_id": str(goal_id), "case_id": str(case_id)})
    version = (await changed(uow.connection, case_id)).version
    return ChangedPlanGoal.model_validate({**dict(row), "version": version})


async def hand_over(uow: UnitOfWork, case_id: UUID, handover: HandoverInput, if_match: str | None) -> Handover:
    """The young person turned 27 (or the counsellors decided so): the JMD case closes with its
    reason and an MBE case opens at the chosen office, in one unit of work, so the person is
    never without a case nor with two. Who may: whoever may close the JMD case (its office lead,
    its case manager); naming the new case manager is checked as for opening a case by hand."""
    case = await case_for_update(uow.connection, case_id)
    _may(uow, Action.CASE_CHANGE, case)
    await check_reason(uow.connection, "close", handover.reason)
    check_version(if_match, case["version"], required=True, what=CASE)
    ensure_can_hand_over(CaseStatus(case["status"]), ServiceLine(case["service_line"]))
    if handover.case_manager_id is not None:
        require(uow.actor, Action.CASE_CHANGE, case_record(handover.office_id, handover.case_manager_id))
    closed = await close(uow, case_id, Closing(reason=handover.reason), if_match)
    new_case_id = await open_case_for(
        uow,
        case["client_id"],
        ServiceLine.MBE,
        handover.office_id,
        case_manager_id=handover.case_manager_id,
        opened_by_hand=True,
    )
    if new_case_id is None:
        # The person has an open MBE case already: nothing is closed either (the unit rolls back).
        existing = await open_case_in_line(uow.connection, case["client_id"], ServiceLine.MBE)
        raise Conflict("open_case_exists", case_id=str(existing))
    opened = await find_case(uow.connection, new_case_id)
    assert opened is not None
    return Handover(closed=closed, opened=opened, version=closed.version)


async def add_topic(uow: UnitOfWork, topic: TopicInput) -> Topic:
    """A city's own counselling topic, beside the built-in taxonomy (reference data: admin)."""
    require(uow.actor, Action.REFERENCE_WRITE)
    row = await uow.connection.fetchrow(
        "INSERT INTO topics (code, label_de, label_en) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING "
        "RETURNING code, label_de, label_en, built_in",
        topic.code,
        topic.label_de,
        topic.label_en,
    )
    if row is None:
        raise Conflict("topic_exists", topic_code=topic.code)
    return Topic.model_validate(dict(row))
