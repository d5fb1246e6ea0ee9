"""The referral lifecycle, its deadlines, the consent gate and the checks on agencies' answers:
plain rules, no I/O. Refusals are domain errors (`knotenpunkt.errors`), mapped to HTTP once in
shared and dead-lettered with their reason by the consumer.

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
from uuid import UUID

from knotenpunkt.errors import Conflict, NotFound
from knotenpunkt.events import (
    DataCategory,
    DeclineReason,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    SharedPersonData,
)


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


class TransitionRefused(Conflict):
    """An impossible transition (409); `reason` is its message code, filled with both statuses."""

    def __init__(self, reason: str, current: Status, target: Status) -> None:
        super().__init__(reason, current=current.value, target=target.value)
        self.reason = reason
        self.current = current
        self.target = target

    @property
    def detail(self) -> str:
        """For a dead letter: what the referral is and what the answer wanted."""
        return f"referral is {self.current.value}; cannot become {self.target.value}"


def can_move(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


# What the case manager may dismiss from the action-needed list: answers that end the referral
# and ask them to follow up (an unanswered one is dealt with by withdrawing or waiting).
DISMISSABLE = frozenset({Status.DECLINED, Status.EXPIRED})


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


def needs_action(status: Status, remind_at: datetime, now: datetime, dismissed: bool = False) -> str | None:
    """Why the case manager should look at this referral now, or None (also once they dismissed
    a declined or expired one: they have dealt with it)."""
    if dismissed:
        return None
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


class ConsentMissing(Conflict):
    """No valid sharing consent (409); `reason` is intake's explanation, for the log."""

    def __init__(self, reason: str | None) -> None:
        super().__init__("no_sharing_consent")
        self.reason = reason


def require_consent(check: ConsentCheck) -> ConsentCheck:
    """The gate: no valid sharing consent for this agency (or its kind), no referral."""
    if not check.granted:
        raise ConsentMissing(check.reason)
    return check


def with_topic(shared: SharedPersonData, consented: tuple[str, ...]) -> SharedPersonData:
    """Intake knows nothing of the referral's topic; the topic travels as `topic_code`, and the
    categories say whether the person agreed to that too."""
    if "topic" in consented and "topic" not in shared.categories:
        return shared.model_copy(update={"categories": (*shared.categories, "topic")})
    return shared


# --- answers from agencies ------------------------------------------------------------------

Answer = ReferralAccepted | ReferralDeclined | ReferralCompleted

ANSWERED: dict[type[Answer], Status] = {
    ReferralAccepted: Status.ACCEPTED,
    ReferralDeclined: Status.DECLINED,
    ReferralCompleted: Status.COMPLETED,
}


class NotTheirs(NotFound):
    """An answer about a referral that is not the answering agency's: unknown, sent to another
    agency, or naming another person. 404, so that an agency cannot probe for other agencies'
    referrals; `detail` says which, for the dead letter of an answer read from Kafka."""

    def __init__(self, detail: str) -> None:
        super().__init__("Die Vermittlung", "The referral")
        self.detail = detail


@dataclass(frozen=True)
class AnsweredReferral:
    """What an answer is checked against: the referral as it is now."""

    referral_id: UUID
    client_id: UUID
    agency_id: str
    status: Status


def judge_answer(
    answering_agency: str, answer: Answer, referral: AnsweredReferral | None, answer_client_id: UUID
) -> Status | None:
    """The status an agency's answer moves the referral to, or None when it repeats itself.

    `answering_agency` is who really answers (the owner of the answers topic, or the inbox's
    token), not what the answer claims; `answer_client_id` is the person the answer names, under
    their current id (an agency may quote an id retired by a merge). Raises NotTheirs or
    TransitionRefused; either way the answer changes nothing.
    """
    if answer.agency_id != answering_agency:
        raise NotTheirs(f"answer from {answering_agency} names agency {answer.agency_id}")
    if referral is None:
        raise NotTheirs(f"unknown referral {answer.referral_id}")
    if referral.agency_id != answering_agency:
        raise NotTheirs(f"referral {answer.referral_id} was not sent to {answering_agency}")
    if referral.client_id != answer_client_id:
        raise NotTheirs(f"answer for referral {answer.referral_id} names another client")
    target = ANSWERED[type(answer)]
    if is_repeat(referral.status, target):
        return None
    check_move(referral.status, target)
    return target
