"""Referrals' use cases, each in the caller's single transaction; events go out via the outbox.

The same code serves both channels an agency answers through: its own service over Kafka
(`on_agency_answer`) and the web inbox (`answer_from_inbox`) both call `apply_answer`.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from knotenpunkt import topics
from knotenpunkt.consumer import Rejected
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    AgencyKind,
    CaseAssigned,
    CaseOpened,
    CaseTransferred,
    ClientErased,
    ClientsMerged,
    ConsentPurpose,
    ConsentWithdrawn,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
    SharedPersonData,
    UnmetNeedRecorded,
)
from knotenpunkt.http import ApiError, not_found
from knotenpunkt.logging import get_logger
from knotenpunkt.outbox import add_to_outbox
from referrals.domain import (
    OPEN,
    REFERRAL_CATEGORIES,
    Clock,
    ConsentMissing,
    Status,
    TransitionRefused,
    check_move,
    deadlines,
    gap_cause_of_decline,
    is_repeat,
    needs_action,
    require_consent,
)
from referrals.intake import IntakePort, IntakeUnavailable, NoSharingConsent, UnknownClient
from referrals.schemas import ReferralInput

SOURCE = "knotenpunkt/referrals"
log = get_logger("referrals")

Answer = ReferralAccepted | ReferralDeclined | ReferralCompleted

_REFERRAL_COLUMNS = (
    "r.referral_id, r.case_id, r.client_id, r.agency_id, r.topic_code, r.office_id, r.status, r.sent_at, "
    "r.remind_at, r.due_at, r.answered_at, r.decline_reason, r.completed_at, r.outcome, r.closed_at, "
    "r.withdraw_reason"
)


class AnswerRefused(Exception):
    """An agency's answer that must change nothing.

    `not_theirs`: unknown referral, or one sent to another agency (the inbox answers 404 so that
    an agency cannot probe for other agencies' referrals); otherwise a refused transition (409).
    """

    def __init__(self, reason: str, not_theirs: bool = False, refused: TransitionRefused | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_theirs = not_theirs
        self.refused = refused


@dataclass(frozen=True)
class ReferralNetwork:
    """The use cases with their collaborators: the clock and the port to intake."""

    clock: Clock
    intake: IntakePort
    consent_gate_enabled: bool = True

    # --- cases, as told by the cases service ------------------------------------------------

    async def on_case_opened(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        opened = envelope.event
        assert isinstance(opened, CaseOpened)
        await connection.execute(
            "INSERT INTO known_cases (case_id, client_id, service_line, office_id, case_manager_id) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO NOTHING",
            opened.case_id,
            opened.client_id,
            opened.service_line.value,
            opened.office_id,
            opened.case_manager_id,
        )

    async def on_clients_merged(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        """Two records were one person: everything of the retired id now belongs to the survivor."""
        merged = envelope.event
        assert isinstance(merged, ClientsMerged)
        await connection.execute(
            "INSERT INTO merged_clients (merged_client_id, client_id) VALUES ($1, $2) "
            "ON CONFLICT (merged_client_id) DO UPDATE SET client_id = EXCLUDED.client_id",
            merged.merged_client_id,
            merged.client_id,
        )
        # Earlier merges into the retired id now point at the survivor too.
        await connection.execute(
            "UPDATE merged_clients SET client_id = $2 WHERE client_id = $1", merged.merged_client_id, merged.client_id
        )
        for table in ("referrals", "known_cases"):
            await connection.execute(
                f"UPDATE {table} SET client_id = $2 WHERE client_id = $1",
                merged.merged_client_id,
                merged.client_id,
            )

    async def _current_client_id(self, connection: asyncpg.Connection, client_id: UUID) -> UUID:
        current = await connection.fetchval(
            "SELECT client_id FROM merged_clients WHERE merged_client_id = $1", client_id
        )
        return current or client_id

    async def on_case_assigned(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        assigned = envelope.event
        assert isinstance(assigned, CaseAssigned)
        await connection.execute(
            "UPDATE known_cases SET case_manager_id = $2 WHERE case_id = $1",
            assigned.case_id,
            assigned.case_manager_id,
        )

    async def on_case_transferred(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        moved = envelope.event
        assert isinstance(moved, CaseTransferred)
        # Open referrals follow the case to its new case manager; each keeps the office that sent it.
        await connection.execute(
            "UPDATE known_cases SET case_manager_id = $2, office_id = $3 WHERE case_id = $1",
            moved.case_id,
            moved.to_case_manager_id,
            moved.to_office_id,
        )

    # --- sending ----------------------------------------------------------------------------

    async def send(
        self, connection: asyncpg.Connection, referral: ReferralInput, correlation_id: str
    ) -> dict[str, Any]:
        case = await connection.fetchrow(
            "SELECT case_id, client_id, office_id FROM known_cases WHERE case_id = $1", referral.case_id
        )
        if case is None:
            raise not_found("Der Fall", "The case")
        agency = await connection.fetchrow(
            "SELECT agency_id, kind, response_days, channel FROM agencies WHERE agency_id = $1", referral.agency_id
        )
        if agency is None:
            raise ApiError(422, "validation_failed", fields=[("agency_id", "unknown_agency", {})])
        consent_id, shared = await self._consented_data(case["client_id"], agency)

        referral_id = uuid.uuid4()
        sent_at = self.clock.now()
        due = deadlines(sent_at, agency["response_days"], self.clock)
        await connection.execute(
            "INSERT INTO referrals (referral_id, case_id, client_id, agency_id, topic_code, office_id, status, "
            "sent_at, remind_at, due_at, consent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
            consent_id,
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
        lifecycle = Envelope(event=sent, source=SOURCE, correlation_id=correlation_id)
        await add_to_outbox(connection, lifecycle)
        # The same fact (same ce_id) for the agency, with the consented personal data: only on the
        # agency's own topic, never on the lifecycle topic every service reads.
        to_agency = dataclasses.replace(lifecycle, event=sent.model_copy(update={"shared_data": shared}))
        await add_to_outbox(connection, to_agency, topic=topics.agency_referrals(referral.agency_id))
        log.info("referral sent", referral_id=str(referral_id), agency_id=referral.agency_id)
        return {"referral_id": str(referral_id), "status": Status.SENT.value, "answer_due_on": sent.answer_due_on}

    async def with_people(
        self, connection: asyncpg.Connection, agency_id: str, referrals: list[dict[str, Any]]
    ) -> None:
        """Add to each inbox referral the personal data its person consented to share with this
        agency, asked from intake now (so a withdrawn or expired consent shows nothing)."""
        kind = AgencyKind(await connection.fetchval("SELECT kind FROM agencies WHERE agency_id = $1", agency_id))
        for referral in referrals:
            if not self.consent_gate_enabled:
                referral["person_unavailable"] = "no_consent"
                continue
            try:
                referral["person"] = await self.intake.shared_data(UUID(referral["client_id"]), agency_id, kind)
            except NoSharingConsent:
                referral["person_unavailable"] = "no_consent"
            except UnknownClient:
                referral["person_unavailable"] = "unknown_client"
            except IntakeUnavailable:
                referral["person_unavailable"] = "intake_unavailable"

    async def _consented_data(
        self, client_id: UUID, agency: asyncpg.Record
    ) -> tuple[str | None, SharedPersonData | None]:
        """The consent gate: the consent relied on, and exactly the data it lets the agency see."""
        if not self.consent_gate_enabled:
            return None, None  # no consent was checked, so nothing personal is shared
        kind = AgencyKind(agency["kind"])
        try:
            check = require_consent(
                await self.intake.consent_check(client_id, agency["agency_id"], kind, REFERRAL_CATEGORIES)
            )
            if agency["channel"] != "kafka":
                # Inbox agencies see the data live in the inbox (so a withdrawn consent stops it at
                # once); nothing personal is parked on a topic nobody reads.
                return check.consent_id, None
            shared = await self.intake.shared_data(client_id, agency["agency_id"], kind)
        except ConsentMissing as missing:
            log.info("referral refused: no sharing consent", agency_id=agency["agency_id"], reason=missing.reason)
            raise ApiError(409, "no_sharing_consent") from None
        except NoSharingConsent:
            raise ApiError(409, "no_sharing_consent") from None
        except UnknownClient:
            raise ApiError(409, "unknown_client") from None
        except IntakeUnavailable as error:
            log.warning("intake unavailable for the consent check", error=str(error))
            raise ApiError(503, "intake_unavailable") from None
        return check.consent_id, with_topic(shared, check.categories)

    # --- answers from agencies --------------------------------------------------------------

    async def on_agency_answer(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        """An answer read from an agency's answers topic. The answering agency is the owner of
        that topic (only that agency may write to it), not what the answer claims."""
        answering_agency = topics.agency_of_topic(envelope.origin_topic or "")
        if answering_agency is None:
            raise Rejected(f"answer read from {envelope.origin_topic}, not from an agency's answers topic")
        answer = envelope.event
        assert isinstance(answer, Answer)
        try:
            await self.apply_answer(connection, answering_agency, answer, envelope)
        except AnswerRefused as refused:
            raise Rejected(refused.reason) from None

    async def answer_from_inbox(
        self,
        connection: asyncpg.Connection,
        agency_id: str,
        referral_id: UUID,
        answer: str,
        correlation_id: str,
        **details: Any,
    ) -> dict[str, Any]:
        """An answer given in the web inbox: built into the same event an agency's service sends."""
        row = await connection.fetchrow(
            "SELECT client_id, agency_id FROM referrals WHERE referral_id = $1", referral_id
        )
        if row is None or row["agency_id"] != agency_id:
            raise not_found("Die Vermittlung", "The referral")
        now = self.clock.now()
        common = {"client_id": row["client_id"], "referral_id": referral_id, "agency_id": agency_id}
        event: Answer
        if answer == "accept":
            event = ReferralAccepted(**common, accepted_at=now)
        elif answer == "decline":
            event = ReferralDeclined(**common, declined_at=now, reason=details["reason"])
        else:
            event = ReferralCompleted(**common, completed_at=now, outcome=details["outcome"])
        cause = Envelope(event=event, source=f"knotenpunkt/inbox/{agency_id}", correlation_id=correlation_id)
        try:
            status = await self.apply_answer(connection, agency_id, event, cause)
        except AnswerRefused as refused:
            if refused.refused is None:
                raise not_found("Die Vermittlung", "The referral") from None
            raise transition_error(refused.refused) from None
        return {"referral_id": str(referral_id), "status": status.value}

    async def apply_answer(
        self, connection: asyncpg.Connection, answering_agency: str, answer: Answer, cause: Envelope
    ) -> Status:
        """Check an answer (right agency, known referral, same person, allowed transition) and apply it."""
        if answer.agency_id != answering_agency:
            raise AnswerRefused(f"answer from {answering_agency} names agency {answer.agency_id}", not_theirs=True)
        referral = await connection.fetchrow(
            "SELECT r.referral_id, r.client_id, r.agency_id, r.status, r.topic_code, r.office_id, a.kind "
            "FROM referrals r JOIN agencies a USING (agency_id) WHERE r.referral_id = $1 FOR UPDATE OF r",
            answer.referral_id,
        )
        if referral is None:
            raise AnswerRefused(f"unknown referral {answer.referral_id}", not_theirs=True)
        if referral["agency_id"] != answering_agency:
            raise AnswerRefused(f"referral {answer.referral_id} was not sent to {answering_agency}", not_theirs=True)
        if referral["client_id"] != await self._current_client_id(connection, answer.client_id):
            raise AnswerRefused(f"answer for referral {answer.referral_id} names another client", not_theirs=True)
        # The network's fact names the person's current id, also when the agency quoted a retired one.
        answer = answer.model_copy(update={"client_id": referral["client_id"]})
        target = {
            ReferralAccepted: Status.ACCEPTED,
            ReferralDeclined: Status.DECLINED,
            ReferralCompleted: Status.COMPLETED,
        }[type(answer)]
        current = Status(referral["status"])
        if is_repeat(current, target):
            return current  # the agency repeated itself
        try:
            check_move(current, target)
        except TransitionRefused as refused:
            raise AnswerRefused(
                f"referral {answer.referral_id} is {current.value}; cannot become {target.value}", refused=refused
            ) from None
        if isinstance(answer, ReferralAccepted):
            await connection.execute(
                "UPDATE referrals SET status = $2, answered_at = $3 WHERE referral_id = $1",
                answer.referral_id,
                target.value,
                answer.accepted_at,
            )
        elif isinstance(answer, ReferralDeclined):
            await connection.execute(
                "UPDATE referrals SET status = $2, answered_at = $3, decline_reason = $4 WHERE referral_id = $1",
                answer.referral_id,
                target.value,
                answer.declined_at,
                answer.reason.value,
            )
        else:
            await connection.execute(
                "UPDATE referrals SET status = $2, completed_at = $3, outcome = $4 WHERE referral_id = $1",
                answer.referral_id,
                target.value,
                answer.completed_at,
                answer.outcome.value,
            )
        # Re-published on the lifecycle topic as the network's confirmed fact.
        confirmed = cause.caused(answer, SOURCE)
        await add_to_outbox(connection, confirmed)
        if isinstance(answer, ReferralDeclined) and (gap := gap_cause_of_decline(answer.reason)):
            await self._record_gap(connection, referral, gap, confirmed)
        log.info("referral answered", referral_id=str(answer.referral_id), status=target.value)
        return target

    # --- the case manager -------------------------------------------------------------------

    async def withdraw(self, connection: asyncpg.Connection, referral_id: UUID, correlation_id: str) -> dict[str, Any]:
        row = await connection.fetchrow(
            "SELECT referral_id, client_id, agency_id, status FROM referrals WHERE referral_id = $1 FOR UPDATE",
            referral_id,
        )
        if row is None:
            raise not_found("Die Vermittlung", "The referral")
        try:
            check_move(Status(row["status"]), Status.WITHDRAWN)
        except TransitionRefused as refused:
            raise transition_error(refused) from None
        await self._withdraw(connection, row, "by_case_manager", correlation_id, causation_id=None)
        return {"referral_id": str(referral_id), "status": Status.WITHDRAWN.value}

    async def on_consent_withdrawn(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        """Sharing consent withdrawn: every open referral relying on it, or addressed to that agency
        (or agency kind), is withdrawn and the agency told. When in doubt the sharing stops; the
        case manager can send again if another consent still covers it."""
        withdrawn = envelope.event
        assert isinstance(withdrawn, ConsentWithdrawn)
        if withdrawn.purpose != ConsentPurpose.SHARING:
            return
        rows = await connection.fetch(
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
            await self._withdraw(connection, row, "consent_withdrawn", envelope.correlation_id, str(envelope.id))

    async def on_client_erased(self, connection: asyncpg.Connection, envelope: Envelope) -> None:
        """Erasure on request: open referrals are withdrawn and the agencies told, so nobody keeps
        working with data the person asked to have erased."""
        erased = envelope.event
        assert isinstance(erased, ClientErased)
        client_id = await self._current_client_id(connection, erased.client_id)
        rows = await connection.fetch(
            "SELECT referral_id, client_id, agency_id, status FROM referrals "
            "WHERE client_id = $1 AND status = ANY($2::text[]) ORDER BY sent_at FOR UPDATE",
            client_id,
            [status.value for status in OPEN],
        )
        for row in rows:
            await self._withdraw(connection, row, "client_erased", envelope.correlation_id, str(envelope.id))

    async def _withdraw(
        self,
        connection: asyncpg.Connection,
        row: asyncpg.Record,
        reason: str,
        correlation_id: str,
        causation_id: str | None,
    ) -> None:
        now = self.clock.now()
        await connection.execute(
            "UPDATE referrals SET status = 'withdrawn', closed_at = $2, withdraw_reason = $3 WHERE referral_id = $1",
            row["referral_id"],
            now,
            reason,
        )
        event = ReferralWithdrawn(
            client_id=row["client_id"],
            referral_id=row["referral_id"],
            agency_id=row["agency_id"],
            withdrawn_at=now,
            reason=reason,
        )
        envelope = Envelope(event=event, source=SOURCE, correlation_id=correlation_id, causation_id=causation_id)
        await self._tell_network_and_agency(connection, envelope, row["agency_id"])
        log.info("referral withdrawn", referral_id=str(row["referral_id"]), reason=reason)

    # --- deadlines --------------------------------------------------------------------------

    async def run_deadlines(self, connection: asyncpg.Connection) -> dict[str, int]:
        """Remind agencies whose answer is due soon, expire referrals nobody answered in time.

        SKIP LOCKED: replicas running this at the same time share the work instead of doubling it.
        """
        now = self.clock.now()
        reminded = await connection.fetch(
            "SELECT referral_id, client_id, agency_id, due_at FROM referrals "
            "WHERE status = 'sent' AND reminded_at IS NULL AND remind_at <= $1 AND due_at > $1 "
            "ORDER BY remind_at LIMIT 500 FOR UPDATE SKIP LOCKED",
            now,
        )
        for row in reminded:
            await connection.execute(
                "UPDATE referrals SET reminded_at = $2 WHERE referral_id = $1", row["referral_id"], now
            )
            event = ReferralReminderSent(
                client_id=row["client_id"],
                referral_id=row["referral_id"],
                agency_id=row["agency_id"],
                answer_due_on=row["due_at"].date(),
                reminded_at=now,
            )
            await self._tell_network_and_agency(connection, Envelope(event=event, source=SOURCE), row["agency_id"])
        expired = await connection.fetch(
            "SELECT r.referral_id, r.client_id, r.agency_id, r.topic_code, r.office_id, a.kind "
            "FROM referrals r JOIN agencies a USING (agency_id) WHERE r.status = 'sent' AND r.due_at <= $1 "
            "ORDER BY r.due_at LIMIT 500 FOR UPDATE OF r SKIP LOCKED",
            now,
        )
        for row in expired:
            await connection.execute(
                "UPDATE referrals SET status = 'expired', closed_at = $2 WHERE referral_id = $1",
                row["referral_id"],
                now,
            )
            event = ReferralExpired(
                client_id=row["client_id"], referral_id=row["referral_id"], agency_id=row["agency_id"], expired_at=now
            )
            envelope = Envelope(event=event, source=SOURCE)
            await self._tell_network_and_agency(connection, envelope, row["agency_id"])
            await self._record_gap(connection, row, "expired", envelope)
        if reminded or expired:
            log.info("referral deadlines", reminded=len(reminded), expired=len(expired))
        return {"reminded": len(reminded), "expired": len(expired)}

    # --- shared steps -----------------------------------------------------------------------

    async def _tell_network_and_agency(
        self, connection: asyncpg.Connection, envelope: Envelope, agency_id: str
    ) -> None:
        # One fact (one ce_id) on the lifecycle topic and on the agency's own topic.
        await add_to_outbox(connection, envelope)
        await add_to_outbox(connection, envelope, topic=topics.agency_referrals(agency_id))

    async def _record_gap(
        self, connection: asyncpg.Connection, referral: asyncpg.Record, cause: str, by: Envelope
    ) -> None:
        now = self.clock.now()
        inserted = await connection.fetchval(
            "INSERT INTO unmet_needs (referral_id, topic_code, agency_kind, agency_id, office_id, cause, recorded_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (referral_id) DO NOTHING RETURNING true",
            referral["referral_id"],
            referral["topic_code"],
            referral["kind"],
            referral["agency_id"],
            referral["office_id"],
            cause,
            now,
        )
        if inserted:
            need = UnmetNeedRecorded(
                client_id=referral["client_id"],
                referral_id=referral["referral_id"],
                topic_code=referral["topic_code"],
                agency_kind=referral["kind"],
                office_id=referral["office_id"],
                cause=cause,
                recorded_at=now,
            )
            await add_to_outbox(connection, by.caused(need, SOURCE))


def with_topic(shared: SharedPersonData, consented: tuple[str, ...]) -> SharedPersonData:
    """Intake knows nothing of the referral's topic; the topic travels as `topic_code`, and the
    categories say whether the person agreed to that too."""
    if "topic" in consented and "topic" not in shared.categories:
        return shared.model_copy(update={"categories": (*shared.categories, "topic")})
    return shared


def transition_error(refused: TransitionRefused) -> ApiError:
    return ApiError(409, refused.reason, current=refused.current.value, target=refused.target.value)


# --- queries ---------------------------------------------------------------------------------


def referral_row(row: asyncpg.Record, now: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        data[key] = value
    if now is not None:
        data["action_needed"] = needs_action(Status(row["status"]), row["remind_at"], now)
    return data


async def get_referral(connection: asyncpg.Connection, referral_id: UUID, now: datetime) -> dict[str, Any]:
    row = await connection.fetchrow(
        f"SELECT {_REFERRAL_COLUMNS}, c.case_manager_id FROM referrals r "
        "JOIN known_cases c USING (case_id) WHERE r.referral_id = $1",
        referral_id,
    )
    if row is None:
        raise not_found("Die Vermittlung", "The referral")
    return referral_row(row, now)


async def list_referrals(
    connection: asyncpg.Connection,
    now: datetime,
    *,
    case_manager_id: str | None = None,
    case_id: UUID | None = None,
    office_id: str | None = None,
    statuses: list[Status] | None = None,
    action_needed: bool = False,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """A case manager's referrals; `action_needed`: unanswered after half the promised time,
    declined, or expired."""
    conditions = ["($1::text IS NULL OR c.case_manager_id = $1)", "($2::uuid IS NULL OR r.case_id = $2)"]
    conditions.append("($3::text IS NULL OR r.office_id = $3)")
    conditions.append("($4::text[] IS NULL OR r.status = ANY($4::text[]))")
    if action_needed:
        conditions.append("((r.status = 'sent' AND r.remind_at <= $5) OR r.status IN ('declined', 'expired'))")
    else:
        conditions.append("$5::timestamptz IS NOT NULL")
    rows = await connection.fetch(
        f"SELECT {_REFERRAL_COLUMNS}, c.case_manager_id FROM referrals r JOIN known_cases c USING (case_id) "
        f"WHERE {' AND '.join(conditions)} ORDER BY r.sent_at DESC LIMIT $6",
        case_manager_id,
        case_id,
        office_id,
        [status.value for status in statuses] if statuses else None,
        now,
        limit,
    )
    return [referral_row(row, now) for row in rows]


async def agency_exists(connection: asyncpg.Connection, agency_id: str) -> bool:
    return bool(await connection.fetchval("SELECT true FROM agencies WHERE agency_id = $1", agency_id))


async def inbox(connection: asyncpg.Connection, agency_id: str) -> list[dict[str, Any]]:
    """An agency's open referrals: those it still has to answer or to complete."""
    if not await agency_exists(connection, agency_id):
        raise not_found("Die Partnerstelle", "The partner agency")
    rows = await connection.fetch(
        "SELECT referral_id, client_id, topic_code, office_id, status, sent_at, due_at FROM referrals "
        "WHERE agency_id = $1 AND status = ANY($2::text[]) ORDER BY sent_at",
        agency_id,
        [status.value for status in OPEN],
    )
    return [
        {
            "referral_id": str(row["referral_id"]),
            "client_id": str(row["client_id"]),
            "topic_code": row["topic_code"],
            "office_id": row["office_id"],
            "status": row["status"],
            "sent_at": row["sent_at"].isoformat(),
            "answer_due_on": row["due_at"].date(),
        }
        for row in rows
    ]


async def agencies(connection: asyncpg.Connection, topic_code: str | None, kind: str | None) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT agency_id, name, kind, topics, languages, contact, response_days, channel FROM agencies "
        "WHERE ($1::text IS NULL OR $1 = ANY(topics)) AND ($2::text IS NULL OR kind = $2) ORDER BY agency_id",
        topic_code,
        kind,
    )
    return [dict(row) for row in rows]


async def gaps(
    connection: asyncpg.Connection,
    topic_code: str | None,
    agency_kind: str | None,
    office_id: str | None,
    from_date: date | None,
    to_date: date | None,
) -> list[dict[str, Any]]:
    """The gap register, counted per topic, agency kind, office, month and cause."""
    rows = await connection.fetch(
        "SELECT topic_code, agency_kind, office_id, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM') AS period, "
        "cause, count(*)::int AS count FROM unmet_needs "
        "WHERE ($1::text IS NULL OR topic_code = $1) AND ($2::text IS NULL OR agency_kind = $2) "
        "AND ($3::text IS NULL OR office_id = $3) "
        "AND ($4::date IS NULL OR recorded_at >= $4::date) AND ($5::date IS NULL OR recorded_at < $5::date + 1) "
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY period, topic_code, agency_kind, office_id, cause",
        topic_code,
        agency_kind,
        office_id,
        from_date,
        to_date,
    )
    return [dict(row) for row in rows]
