"""The referral lifecycle, its deadlines and the consent gate: plain rules, no I/O.

sent ──▶ accepted ──▶ completed
  │         └──────▶ withdrawn
  ├──▶ declined
  ├──▶ withdrawn
  └──▶ expired  (no answer within the agency's promised time)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from knotenpunkt.events import DataCategory, DeclineReason


class Status(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.SENT: frozenset({Status.ACCEPTED, Status.DECLINED, Status.WITHDRAWN, Status.EXPIRED}),
    Status.ACCEPTED: frozenset({Status.COMPLETED, Status.WITHDRAWN}),
    Status.DECLINED: frozenset(),
    Status.COMPLETED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    Status.EXPIRED: frozenset(),
}

# Referrals the agency still works on (or should): the ones a withdrawn consent stops.
OPEN: frozenset[Status] = frozenset({Status.SENT, Status.ACCEPTED})


class TransitionRefused(Exception):
    """An impossible transition; `reason` is a message code, `params` fill its text."""

    def __init__(self, reason: str, current: Status, target: Status) -> None:
        super().__init__(f"referral is {current.value}; cannot become {target.value}")
        self.reason = reason
        self.current = current
        self.target = target


def can_move(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


def check_move(current: Status, target: Status) -> None:
    """Raise TransitionRefused with the most helpful reason when `current -> target` is impossible."""
    if can_move(current, target):
        return
    if target == Status.COMPLETED and current == Status.SENT:
        reason = "referral_not_accepted_yet"
    elif current in OPEN:
        reason = "referral_transition_impossible"
    else:
        reason = "referral_closed"
    raise TransitionRefused(reason, current, target)


def is_repeat(current: Status, target: Status) -> bool:
    """The same answer twice (an agency retrying) is harmless and changes nothing."""
    return current == target and target in {Status.ACCEPTED, Status.DECLINED, Status.COMPLETED}


# --- time -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Now, and how long an agency 'day' is.

    Production: a day is 86,400 s. Tests scale it down (KP_REFERRAL_DAY_SECONDS) so that an
    agency's promised response time of days passes in seconds; `now` is injectable for unit tests.
    """

    day_seconds: float = 86_400.0
    now_function: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.now_function()

    def days(self, count: float) -> timedelta:
        return timedelta(seconds=count * self.day_seconds)


@dataclass(frozen=True)
class Deadlines:
    """When an unanswered referral is flagged and the agency reminded, and when it expires."""

    remind_at: datetime
    due_at: datetime


def deadlines(sent_at: datetime, response_days: int, clock: Clock) -> Deadlines:
    # Half the promised time: the case manager sees "no answer yet" in the action-needed list and
    # the agency gets its reminder at the same moment, early enough to still answer in time.
    return Deadlines(remind_at=sent_at + clock.days(response_days / 2), due_at=sent_at + clock.days(response_days))


def needs_action(status: Status, remind_at: datetime, now: datetime) -> str | None:
    """Why the case manager should look at this referral now, or None."""
    if status == Status.SENT and now >= remind_at:
        return "no_answer_yet"
    if status == Status.DECLINED:
        return "declined"
    if status == Status.EXPIRED:
        return "expired"
    return None


# --- the gap register -----------------------------------------------------------------------


def gap_cause_of_decline(reason: DeclineReason) -> str | None:
    """A decline for lack of capacity is unmet need; 'not responsible' is a misdirected referral."""
    return "no_capacity" if reason == DeclineReason.NO_CAPACITY else None


# --- the consent gate -----------------------------------------------------------------------

# What every referral discloses to the agency, so the consent must cover it: that this person needs
# help with this topic. Everything else (name, contact, ...) is shared only as far as the consent
# goes; intake decides that when it hands out the shared data.
REFERRAL_CATEGORIES: tuple[DataCategory, ...] = (DataCategory.TOPIC,)


@dataclass(frozen=True)
class ConsentCheck:
    """Intake's answer to "may this person's data be shared with this agency?"."""

    granted: bool
    consent_id: str | None = None
    categories: tuple[str, ...] = ()
    reason: str | None = None


class ConsentMissing(Exception):
    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "no valid consent")
        self.reason = reason


def require_consent(check: ConsentCheck) -> ConsentCheck:
    """The gate: no valid sharing consent for this agency (or its kind), no referral."""
    if not check.granted:
        raise ConsentMissing(check.reason)
    return check
