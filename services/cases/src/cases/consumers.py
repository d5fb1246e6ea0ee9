"""What cases does with other services' events: `on_<event>(event, uow)`, registered in app.py.

Each runs in the consumer's batch transaction (and may be retried alone under a savepoint), so
all it does goes through `uow`; the consumer records the event as processed in the same
transaction. Events of a person are keyed by their client id, so one partition keeps them in
order; a merge is the exception (see `on_referral_answer`).
"""

from __future__ import annotations

from cases.domain import (
    DUPLICATE_RECORD,
    CaseAtMerge,
    CaseStatus,
    ReferralAnswer,
    duplicates_at_merge,
    referral_answer_refusal,
    referral_outcome,
    service_lines_to_open,
)
from cases.repository import Opening, changed, now, open_cases, record, remember, resolve_client, resolve_clients
from knotenpunkt.consumer import Batch, Rejected
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    CaseClosed,
    ClientErased,
    ClientRegistered,
    ClientsMerged,
    ReferralSent,
    ServiceLine,
    ServiceLineHandoverDue,
)
from knotenpunkt.logging import get_logger
from knotenpunkt.uow import UnitOfWork

log = get_logger("cases")


def _consumed(uow: UnitOfWork) -> Envelope:
    consumed = uow.cause.consumed
    assert consumed is not None, "a consumer's unit of work has the consumed event as its cause"
    return consumed


# --- the clients topic -----------------------------------------------------------------------


async def on_client_registered(batch: Batch[ClientRegistered], uow: UnitOfWork) -> None:
    """A registered person gets a case in every service line intake routed them to.

    Applied many at a time (a backlog after an outage, a replay): one statement per table for
    the whole run of registrations."""
    await uow.connection.executemany(
        "INSERT INTO persons (client_id, office_id, service_line, registered_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (client_id) DO UPDATE SET office_id = EXCLUDED.office_id, "
        "service_line = EXCLUDED.service_line, registered_at = EXCLUDED.registered_at",
        [
            (registered.client_id, registered.office_id, registered.service_line.value, registered.registered_at)
            for registered in batch.events
        ],
    )
    # A merge may have been seen first: the cases then belong to the surviving record.
    survivors = await resolve_clients(uow.connection, [registered.client_id for registered in batch.events])
    await open_cases(
        uow,
        [
            Opening(survivors[registered.client_id], service_line, registered.office_id, cause=envelope)
            for envelope, registered in zip(batch.envelopes, batch.events, strict=True)
            for service_line in service_lines_to_open(registered.service_line, registered.service_lines)
        ],
    )


async def on_clients_merged(merged: ClientsMerged, uow: UnitOfWork) -> None:
    """The retired record's cases move to the surviving one; a duplicate open case is closed."""
    connection = uow.connection
    retired = merged.merged_client_id
    survivor = await resolve_client(connection, merged.client_id)
    if survivor == retired:
        return
    await connection.execute(
        "INSERT INTO persons (client_id, merged_into) VALUES ($1, $2) "
        "ON CONFLICT (client_id) DO UPDATE SET merged_into = EXCLUDED.merged_into",
        retired,
        survivor,
    )
    await connection.execute("UPDATE persons SET merged_into = $2 WHERE merged_into = $1", retired, survivor)
    moving = await connection.fetch(
        "SELECT case_id, service_line, office_id, status FROM cases WHERE client_id = $1 ORDER BY opened_at FOR UPDATE",
        retired,
    )
    survivor_open = await connection.fetch(
        "SELECT service_line FROM cases WHERE client_id = $1 AND status = 'open'", survivor
    )
    duplicates = duplicates_at_merge(
        [CaseAtMerge(row["case_id"], row["service_line"], CaseStatus(row["status"])) for row in moving],
        {row["service_line"] for row in survivor_open},
    )
    closed_at = now()
    for row in moving:
        if row["case_id"] in duplicates:
            # Closed before it moves: the survivor may have only one open case per line.
            await connection.execute(
                "UPDATE cases SET status = 'closed', closed_at = $2, close_reason = $3 WHERE case_id = $1",
                row["case_id"],
                closed_at,
                DUPLICATE_RECORD,
            )
    await connection.execute("UPDATE cases SET client_id = $2 WHERE client_id = $1", retired, survivor)
    await connection.execute("UPDATE referrals SET client_id = $2 WHERE client_id = $1", retired, survivor)
    for row in moving:
        # The merge itself is part of each moved case's history (pseudonymous ids only).
        await remember(connection, row["case_id"], _consumed(uow))
        if row["case_id"] in duplicates:
            closed = CaseClosed(
                client_id=survivor,
                case_id=row["case_id"],
                service_line=ServiceLine(row["service_line"]),
                office_id=row["office_id"],
                reason=DUPLICATE_RECORD,
                closed_at=closed_at,
            )
            await record(uow, row["case_id"], closed)
        await changed(connection, row["case_id"])
    log.info("client records merged", moved_cases=len(moving), closed_duplicates=len(duplicates))


async def on_client_erased(erased: ClientErased, uow: UnitOfWork) -> None:
    """Erasure on request: the free texts written about the person go; the anonymous facts
    (dates, topics, durations, statuses) stay, as the statistics and the case history need them."""
    connection = uow.connection
    client_id = await resolve_client(connection, erased.client_id)
    cases = await connection.fetch("SELECT case_id FROM cases WHERE client_id = $1", client_id)
    case_ids = [row["case_id"] for row in cases]
    await connection.execute("UPDATE consultations SET note = NULL WHERE case_id = ANY($1::uuid[])", case_ids)
    await connection.execute("UPDATE plan_goals SET description = NULL WHERE case_id = ANY($1::uuid[])", case_ids)
    for case_id in case_ids:
        await remember(connection, case_id, _consumed(uow))
        await changed(connection, case_id)
    log.info("client erased: notes removed", cases=len(case_ids))


async def on_handover_due(due: ServiceLineHandoverDue, uow: UnitOfWork) -> None:
    """The person turned 27: their open JMD case is flagged for the case manager's decision."""
    connection = uow.connection
    client_id = await resolve_client(connection, due.client_id)
    rows = await connection.fetch(
        "UPDATE cases SET handover_due_on = $3 WHERE client_id = $1 AND service_line = $2 AND status = 'open' "
        "AND handover_due_on IS NULL RETURNING case_id",
        client_id,
        due.from_service_line.value,
        due.due_on,
    )
    for row in rows:
        await remember(connection, row["case_id"], _consumed(uow))
        await changed(connection, row["case_id"])


# --- the referrals lifecycle topic -----------------------------------------------------------


async def on_referral_sent(sent: ReferralSent, uow: UnitOfWork) -> None:
    # Answers no longer create rows (on_referral_answer); a row that is already there came from
    # an answer seen first by an earlier version of cases, and keeps its newer status.
    await uow.connection.execute(
        "INSERT INTO referrals (referral_id, case_id, client_id, agency_id, topic_code, status, sent_at, "
        "answer_due_on, updated_at) VALUES ($1, $2, $3, $4, $5, 'sent', $6, $7, $6) "
        "ON CONFLICT (referral_id) DO UPDATE SET case_id = EXCLUDED.case_id, client_id = EXCLUDED.client_id, "
        "agency_id = EXCLUDED.agency_id, topic_code = EXCLUDED.topic_code, sent_at = EXCLUDED.sent_at, "
        "answer_due_on = EXCLUDED.answer_due_on",
        sent.referral_id,
        sent.case_id,
        await resolve_client(uow.connection, sent.client_id),
        sent.agency_id,
        sent.topic_code,
        sent.sent_at,
        sent.answer_due_on,
    )


async def on_referral_answer(answer: ReferralAnswer, uow: UnitOfWork) -> None:
    """An agency's answer (or a withdrawal, an expiry) changes the referral's status in the case.

    An answer for a referral cases never saw sent is REJECTED (dead-lettered with the reason),
    neither applied nor silently ignored:

    - It must not create a referral: a forged or buggy answer would otherwise put a referral
      (with a status of its choosing) into cases, and would pre-empt the status of a real
      ReferralSent arriving later with that id.
    - Only referrals writes this topic, after checking that the referral exists and was sent to
      the answering agency, so an unknown id is a fault an operator must see: a dead letter is
      visible (`python -m knotenpunkt.deadletters list --group knotenpunkt.cases`), a log line
      with a skip is not.
    - It may also be a genuine answer that arrived early. Events are keyed by the client id, so a
      referral's ReferralSent and its answers share a partition and arrive in order, EXCEPT
      across a merge: referrals then names the surviving id in later events (its answers carry
      the referral's current client id), so an answer can sit on another partition than the
      ReferralSent keyed by the retired id, and partitions have no order between them (a backlog
      after downtime, a replay from offset 0, a partition held up by retries). Ignoring it would
      lose the answer for good and leave the case showing "sent"; a dead letter can be replayed
      once the ReferralSent is in (`... deadletters replay --group knotenpunkt.cases --event-id
      <id>`) and then applies, because a rejected event is not recorded as processed.

    An answer naming another agency than the one the referral was sent to is rejected the same
    way. The reason names only ids (no personal data).
    """
    sent_to_agency = await uow.connection.fetchval(
        "SELECT agency_id FROM referrals WHERE referral_id = $1 FOR UPDATE", answer.referral_id
    )
    refusal = referral_answer_refusal(answer, sent_to_agency)
    if refusal is not None:
        raise Rejected(refusal)
    outcome = referral_outcome(answer)
    await uow.connection.execute(
        "UPDATE referrals SET status = $2, detail = $3, updated_at = $4 WHERE referral_id = $1",
        answer.referral_id,
        outcome.status,
        outcome.detail,
        outcome.at,
    )
