"""The deadline watch: reminders for agencies whose answer is due soon, expiry of referrals
nobody answered in time. Run periodically by the service (`runtime.every`) and on demand by
operations (POST /admin/deadlines/run), each round in one unit of work."""

from __future__ import annotations

from knotenpunkt.events import ReferralExpired, ReferralReminderSent
from knotenpunkt.logging import get_logger
from knotenpunkt.uow import UnitOfWork
from referrals import lifecycle
from referrals.domain import Clock, Status
from referrals.schemas import DeadlineRun

log = get_logger("referrals")

# At most this many reminders and this many expiries per round; the next round takes the rest.
ROUND_SIZE = 500


async def run_deadlines(uow: UnitOfWork, clock: Clock) -> DeadlineRun:
    """Remind agencies whose answer is due soon, expire referrals nobody answered in time.

    SKIP LOCKED: replicas running this at the same time share the work instead of doubling it.
    """
    connection = uow.connection
    now = clock.now()
    reminded = await connection.fetch(
        "SELECT referral_id, client_id, agency_id, due_at FROM referrals "
        "WHERE status = 'sent' AND reminded_at IS NULL AND remind_at <= $1 AND due_at > $1 "
        "ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        ROUND_SIZE,
    )
    for row in reminded:
        await connection.execute(
            "UPDATE referrals SET reminded_at = $2 WHERE referral_id = $1", row["referral_id"], now
        )
        await lifecycle.tell_network_and_agency(
            uow,
            ReferralReminderSent(
                client_id=row["client_id"],
                referral_id=row["referral_id"],
                agency_id=row["agency_id"],
                answer_due_on=row["due_at"].date(),
                reminded_at=now,
            ),
        )
    expired = await connection.fetch(
        "SELECT r.referral_id, r.client_id, r.agency_id, r.topic_code, r.office_id, a.kind "
        "FROM referrals r JOIN agencies a USING (agency_id) WHERE r.status = 'sent' AND r.due_at <= $1 "
        "ORDER BY r.due_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
        now,
        ROUND_SIZE,
    )
    for row in expired:
        await connection.execute(
            "UPDATE referrals SET status = $2, closed_at = $3, closed_by = 'deadline_watch' WHERE referral_id = $1",
            row["referral_id"],
            Status.EXPIRED.value,
            now,
        )
        await lifecycle.tell_network_and_agency(
            uow,
            ReferralExpired(
                client_id=row["client_id"], referral_id=row["referral_id"], agency_id=row["agency_id"], expired_at=now
            ),
        )
        await lifecycle.record_gap(uow, clock, row, "expired")
    if reminded or expired:
        log.info("referral deadlines", reminded=len(reminded), expired=len(expired))
    return DeadlineRun(reminded=len(reminded), expired=len(expired))
