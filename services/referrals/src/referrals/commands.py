"""Referrals' use cases that change state, each in the caller's unit of work (one transaction;
events go out through its outbox).

The same code serves both channels an agency answers through: its own service over Kafka
(the consumer `on_agency_answer`) and the web inbox (`answer_from_inbox`) both call `apply_answer`.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from knotenpunkt.errors import Conflict, Invalid, NotFound
from knotenpunkt.events import (
    AgencyKind,
    ClientErased,
    ConsentExpired,
    ConsentPurpose,
    ConsentWithdrawn,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralSent,
    UnmetNeedRecorded,
)
from knotenpunkt.logging import get_logger
from knotenpunkt.policy import Action
from knotenpunkt.uow import UnitOfWork
from referrals import access, lifecycle
from referrals.consent_gate import ConsentGate, Recipient
from referrals.domain import (
    DISMISSABLE,
    OPEN,
    Answer,
    AnsweredReferral,
    Clock,
    Status,
    check_move,
    deadlines,
    gap_cause_of_decline,
    judge_answer,
)
from referrals.schemas import (
    ChangedReferral,
    CompleteInput,
    DeclineInput,
    DismissedReferral,
    RecordedNeed,
    ReferralInput,
    SentReferral,
    UnmetNeedInput,
)

# The agency kind of a need for which the case manager could name none.
UNSPECIFIED_KIND = "unspecified"

log = get_logger("referrals")


# --- the case manager -----------------------------------------------------------------------


async def send_referral(uow: UnitOfWork, referral: ReferralInput, clock: Clock, gate: ConsentGate) -> SentReferral:
    """Refer the person of a case to an agency, if the sender may act on the case (its office, and
    for a case manager: assigned to them or to nobody) and the person's sharing consent allows it."""
    connection = uow.connection
    case = await connection.fetchrow(
        "SELECT case_id, client_id, office_id, case_manager_id FROM known_cases WHERE case_id = $1", referral.case_id
    )
    if case is None:
        raise NotFound("Der Fall", "The case")
    # Before intake is asked anything: a person who may not refer from this case learns nothing.
    access.require_on_case(uow.actor, Action.REFERRAL_SEND, case["office_id"], case["case_manager_id"])
    agency = await connection.fetchrow(
        "SELECT agency_id, kind, response_days, channel, active FROM agencies WHERE agency_id = $1", referral.agency_id
    )
    if agency is None:
        raise Invalid("agency_id", "unknown_agency")
    if not agency["active"]:
        # Deactivated by the admin: no new referrals (its open ones are still followed up).
        raise Conflict("agency_inactive", details={"agency_id": referral.agency_id})
    recipient = Recipient(agency["agency_id"], AgencyKind(agency["kind"]), agency["channel"])
    consented = await gate.consented_data(case["client_id"], recipient)

    referral_id = uuid.uuid4()
    sent_at = clock.now()
    due = deadlines(sent_at, agency["response_days"], clock)
    await connection.execute(
        "INSERT INTO referrals (referral_id, case_id, client_id, agency_id, topic_code, office_id, status, "
        "sent_at, remind_at, due_at, consent_id, sent_by, shared_categories) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        referral_id,
        referral.case_id,
        case["client_id"],
        referral.agency_id,
        referral.topic_code,
        case["office_id"],
        Status.SENT.value,
        sent_at,
        due.remind_at,
        due.due_at,
        consented.consent_id,
        uow.actor.subject,
        list(consented.categories) if consented.checked else None,
    )
    sent = ReferralSent(
        client_id=case["client_id"],
        referral_id=referral_id,
        case_id=referral.case_id,
        agency_id=referral.agency_id,
        topic_code=referral.topic_code,
        office_id=case["office_id"],
        sent_at=sent_at,
        answer_due_on=due.due_at.date(),
    )
    await lifecycle.publish_sent(uow, sent, consented.shared)
    log.info("referral sent", referral_id=str(referral_id), agency_id=referral.agency_id)
    return SentReferral(referral_id=referral_id, status=Status.SENT, answer_due_on=due.due_at.date())


async def withdraw_referral(uow: UnitOfWork, referral_id: UUID, clock: Clock) -> ChangedReferral:
    """The case manager takes a referral back; the agency is told. Who may: as for sending, on
    the case as it is now (a transferred case's new case manager takes over its referrals)."""
    row = await uow.connection.fetchrow(
        "SELECT r.referral_id, r.client_id, r.agency_id, r.status, c.office_id, c.case_manager_id "
        "FROM referrals r JOIN known_cases c USING (case_id) WHERE r.referral_id = $1 FOR UPDATE OF r",
        referral_id,
    )
    if row is None:
        raise NotFound("Die Vermittlung", "The referral")
    access.require_on_case(uow.actor, Action.REFERRAL_WITHDRAW, row["office_id"], row["case_manager_id"])
    check_move(Status(row["status"]), Status.WITHDRAWN)
    await lifecycle.withdraw(uow, clock, row, "by_case_manager", by=uow.actor.subject)
    return ChangedReferral(referral_id=referral_id, status=Status.WITHDRAWN)


async def dismiss_referral(uow: UnitOfWork, referral_id: UUID, clock: Clock) -> DismissedReferral:
    """The case manager has followed up a declined or expired referral: it leaves the
    action-needed list (the referral itself and its status stay). Who may: as for withdrawing."""
    row = await uow.connection.fetchrow(
        "SELECT r.status, r.dismissed_at, c.office_id, c.case_manager_id "
        "FROM referrals r JOIN known_cases c USING (case_id) WHERE r.referral_id = $1 FOR UPDATE OF r",
        referral_id,
    )
    if row is None:
        raise NotFound("Die Vermittlung", "The referral")
    access.require_on_case(uow.actor, Action.REFERRAL_WITHDRAW, row["office_id"], row["case_manager_id"])
    status = Status(row["status"])
    if status not in DISMISSABLE:
        raise Conflict("referral_nothing_to_dismiss", current=status.value)
    if row["dismissed_at"] is not None:
        raise Conflict("referral_already_dismissed")
    dismissed_at = clock.now()
    await uow.connection.execute(
        "UPDATE referrals SET dismissed_at = $2, dismissed_by = $3 WHERE referral_id = $1",
        referral_id,
        dismissed_at,
        uow.actor.subject,
    )
    log.info("referral dismissed", referral_id=str(referral_id))
    return DismissedReferral(referral_id=referral_id, status=status, dismissed_at=dismissed_at)


async def record_unmet_need(uow: UnitOfWork, need: UnmetNeedInput, clock: Clock) -> RecordedNeed:
    """A need the case manager cannot refer anywhere, in the gap register without a referral.
    Who may: whoever may send a referral from the case."""
    connection = uow.connection
    case = await connection.fetchrow(
        "SELECT case_id, client_id, office_id, case_manager_id FROM known_cases WHERE case_id = $1", need.case_id
    )
    if case is None:
        raise NotFound("Der Fall", "The case")
    access.require_on_case(uow.actor, Action.REFERRAL_SEND, case["office_id"], case["case_manager_id"])
    if await connection.fetchval("SELECT code FROM topic_codes WHERE code = $1", need.topic_code) is None:
        raise Invalid("topic_code", "unknown_need_topic")
    need_id = uuid.uuid4()
    recorded_at = clock.now()
    kind = need.agency_kind.value if need.agency_kind else UNSPECIFIED_KIND
    await connection.execute(
        "INSERT INTO unmet_needs (need_id, referral_id, case_id, topic_code, agency_kind, agency_id, office_id, "
        "cause, recorded_at, recorded_by) VALUES ($1, NULL, $2, $3, $4, NULL, $5, $6, $7, $8)",
        need_id,
        need.case_id,
        need.topic_code,
        kind,
        case["office_id"],
        need.cause.value,
        recorded_at,
        uow.actor.subject,
    )
    # The shared contract knows needs only from referrals: the need's own id stands in the
    # referral_id field (unique all the same; stats keys its copy by it).
    await uow.publish(
        UnmetNeedRecorded(
            client_id=case["client_id"],
            referral_id=need_id,
            topic_code=need.topic_code,
            agency_kind=kind,
            office_id=case["office_id"],
            cause=need.cause.value,
            recorded_at=recorded_at,
        )
    )
    log.info("unmet need recorded", need_id=str(need_id), topic_code=need.topic_code)
    return RecordedNeed(
        need_id=need_id,
        case_id=need.case_id,
        topic_code=need.topic_code,
        agency_kind=kind,
        cause=need.cause,
        recorded_at=recorded_at,
    )


# --- answers from agencies ------------------------------------------------------------------


async def answer_from_inbox(
    uow: UnitOfWork,
    clock: Clock,
    agency_id: str,
    referral_id: UUID,
    details: DeclineInput | CompleteInput | None = None,
) -> ChangedReferral:
    """An answer given in the web inbox (accept without details, decline with a reason, complete
    with an outcome) by the signed-in agency, built into the same event an agency's own service
    sends and applied by the same code (`apply_answer`). The route checked that `agency_id` is
    the signed-in agency; another agency's referral is refused with 403 forbidden_agency."""
    row = await uow.connection.fetchrow(
        "SELECT client_id, agency_id FROM referrals WHERE referral_id = $1", referral_id
    )
    if row is None:
        raise NotFound("Die Vermittlung", "The referral")
    access.require_addressed_to(uow.actor, Action.AGENCY_ANSWER, row["agency_id"])
    now = clock.now()
    common = {"client_id": row["client_id"], "referral_id": referral_id, "agency_id": agency_id}
    answer: Answer
    if isinstance(details, DeclineInput):
        answer = ReferralDeclined(**common, declined_at=now, reason=details.reason)
    elif isinstance(details, CompleteInput):
        answer = ReferralCompleted(**common, completed_at=now, outcome=details.outcome)
    else:
        answer = ReferralAccepted(**common, accepted_at=now)
    status = await apply_answer(uow, clock, agency_id, answer, answered_by=uow.actor.subject)
    return ChangedReferral(referral_id=referral_id, status=status)


async def apply_answer(
    uow: UnitOfWork, clock: Clock, answering_agency: str, answer: Answer, answered_by: str
) -> Status:
    """Check an answer (right agency, known referral, same person, allowed transition), apply it
    and confirm it on the lifecycle topic. Returns the referral's status afterwards.
    `answered_by`: the inbox's signed-in agency user or client, or the agency's answers topic.

    Raises NotTheirs (404) or TransitionRefused (409); a repeated answer changes nothing.
    """
    connection = uow.connection
    row = await connection.fetchrow(
        "SELECT r.referral_id, r.client_id, r.agency_id, r.status, r.topic_code, r.office_id, a.kind "
        "FROM referrals r JOIN agencies a USING (agency_id) WHERE r.referral_id = $1 FOR UPDATE OF r",
        answer.referral_id,
    )
    referral = (
        AnsweredReferral(row["referral_id"], row["client_id"], row["agency_id"], Status(row["status"]))
        if row is not None
        else None
    )
    target = judge_answer(answering_agency, answer, referral, await lifecycle.current_client_id(uow, answer.client_id))
    if target is None:
        assert referral is not None
        return referral.status  # the agency repeated itself
    # The network's fact names the person's current id, also when the agency quoted a retired one.
    answer = answer.model_copy(update={"client_id": row["client_id"]})
    if isinstance(answer, ReferralAccepted):
        await connection.execute(
            "UPDATE referrals SET status = $2, answered_at = $3, answered_by = $4 WHERE referral_id = $1",
            answer.referral_id,
            target.value,
            answer.accepted_at,
            answered_by,
        )
    elif isinstance(answer, ReferralDeclined):
        await connection.execute(
            "UPDATE referrals SET status = $2, answered_at = $3, decline_reason = $4, answered_by = $5 "
            "WHERE referral_id = $1",
            answer.referral_id,
            target.value,
            answer.declined_at,
            answer.reason.value,
            answered_by,
        )
    else:
        await connection.execute(
            "UPDATE referrals SET status = $2, completed_at = $3, outcome = $4, completed_by = $5 "
            "WHERE referral_id = $1",
            answer.referral_id,
            target.value,
            answer.completed_at,
            answer.outcome.value,
            answered_by,
        )
    # Re-published on the lifecycle topic as the network's confirmed fact.
    await uow.publish(answer)
    if isinstance(answer, ReferralDeclined) and (gap := gap_cause_of_decline(answer.reason)):
        await lifecycle.record_gap(uow, clock, row, gap)
    log.info("referral answered", referral_id=str(answer.referral_id), status=target.value)
    return target


# --- what intake tells ----------------------------------------------------------------------


async def withdraw_for_consent(uow: UnitOfWork, clock: Clock, withdrawn: ConsentWithdrawn | ConsentExpired) -> None:
    """Sharing consent withdrawn, or run out (its last valid day passed: intake raises
    ConsentExpired): every open referral relying on it, or addressed to that agency (or agency
    kind), is withdrawn and the agency told, the same way for both. When in doubt the sharing
    stops; the case manager can send again if another consent still covers it."""
    if withdrawn.purpose != ConsentPurpose.SHARING:
        return
    reason = "consent_expired" if isinstance(withdrawn, ConsentExpired) else "consent_withdrawn"
    rows = await uow.connection.fetch(
        "SELECT r.referral_id, r.client_id, r.agency_id, r.status "
        "FROM referrals r JOIN agencies a USING (agency_id) WHERE r.client_id = $1 AND r.status = ANY($2::text[]) "
        "AND (r.consent_id = $3 OR r.agency_id = $4 OR a.kind = $5) ORDER BY r.sent_at FOR UPDATE OF r",
        withdrawn.client_id,
        [status.value for status in OPEN],
        str(withdrawn.consent_id),
        withdrawn.agency_id,
        withdrawn.agency_kind.value if withdrawn.agency_kind else None,
    )
    for row in rows:
        await lifecycle.withdraw(uow, clock, row, reason, by="intake")


async def withdraw_for_erasure(uow: UnitOfWork, clock: Clock, erased: ClientErased) -> None:
    """Erasure on request: open referrals are withdrawn and the agencies told, so nobody keeps
    working with data the person asked to have erased."""
    rows = await uow.connection.fetch(
        "SELECT referral_id, client_id, agency_id, status FROM referrals "
        "WHERE client_id = $1 AND status = ANY($2::text[]) ORDER BY sent_at FOR UPDATE",
        await lifecycle.current_client_id(uow, erased.client_id),
        [status.value for status in OPEN],
    )
    for row in rows:
        await lifecycle.withdraw(uow, clock, row, "client_erased", by="intake")
