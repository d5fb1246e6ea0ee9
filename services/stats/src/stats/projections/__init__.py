"""The stats projection: every event that matters for the figures, applied in batches.

Each event family has a module with one set-based statement per event type (INSERT ... SELECT
FROM unnest(...) ON CONFLICT ...). Each event fills only its own columns and guards by its own
timestamp, so the order of arrival does not matter (a consultation may come before its case's
opening, an answer before its referral), and re-applying an event changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ClientRegistered,
    ClientsMerged,
    ClientUpdated,
    ConsultationRecorded,
    Event,
    PlanGoalSet,
    PlanGoalStatusChanged,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ReferralWithdrawn,
    ServiceLineHandoverDue,
    UnmetNeedRecorded,
)
from stats.projections import cases, persons, referrals

BatchHandler = Callable[[asyncpg.Connection, list[Any]], Awaitable[None]]

HANDLERS: dict[type[Event], BatchHandler] = {
    ClientRegistered: persons.client_registered,
    ClientUpdated: persons.client_updated,
    ClientsMerged: persons.clients_merged,
    ServiceLineHandoverDue: persons.handover_due,
    CaseOpened: cases.case_opened,
    CaseAssigned: cases.case_assigned,
    CaseTransferred: cases.case_transferred,
    CaseClosed: cases.case_closed,
    CaseReopened: cases.case_reopened,
    ConsultationRecorded: cases.consultation_recorded,
    PlanGoalSet: cases.plan_goal_set,
    PlanGoalStatusChanged: cases.plan_goal_status_changed,
    ReferralSent: referrals.referral_sent,
    ReferralAccepted: referrals.referral_accepted,
    ReferralDeclined: referrals.referral_declined,
    ReferralCompleted: referrals.referral_completed,
    ReferralWithdrawn: referrals.referral_withdrawn,
    ReferralExpired: referrals.referral_expired,
    UnmetNeedRecorded: referrals.unmet_need_recorded,
}


class StatsProjection:
    """Feeds the read models of one schema (the live one, or a rebuild's)."""

    name = "stats"

    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def prepare(self, connection: asyncpg.Connection) -> None:
        # The read models and their offsets commit together, so a crash that loses the last
        # few commits (asynchronous commit) loses both: the projection re-applies those batches
        # from the stored offsets. The commit does not wait for the WAL flush.
        await connection.execute(f"SET LOCAL search_path TO {self.schema}, public; SET LOCAL synchronous_commit TO off")

    async def apply(self, connection: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        by_type: dict[type[Event], list[Event]] = {}
        for envelope in envelopes:
            if type(envelope.event) in HANDLERS:
                by_type.setdefault(type(envelope.event), []).append(envelope.event)
        for event_type, events in by_type.items():
            await HANDLERS[event_type](connection, events)
