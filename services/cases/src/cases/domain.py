"""The rules of a case, on plain values (no database): which changes are allowed and what they do.

A rule that is broken raises `knotenpunkt.errors.Conflict` (the case's state does not allow
it: 409) or `Invalid` (the request itself makes no sense: 422 on a field). Both carry a message
code from the catalogue in schemas.py; the HTTP layer in shared maps them, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from knotenpunkt.errors import Conflict, Invalid
from knotenpunkt.events import (
    GoalStatus,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralWithdrawn,
    ServiceLine,
)

# Closing a case because its person turned out to be a duplicate record (ClientsMerged). Seeded
# in the close-reason code list, but also used by code, hence named here.
DUPLICATE_RECORD = "duplicate_record"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def service_lines_to_open(service_line: ServiceLine, service_lines: Sequence[ServiceLine]) -> tuple[ServiceLine, ...]:
    """One case per service line the routing chose. Older events only know `service_line`."""
    chosen = service_lines or (service_line,)
    return tuple(dict.fromkeys(chosen))


def ensure_open(status: CaseStatus) -> None:
    """Work on a case (consultations, plan, assignment, transfer) needs an open case."""
    if status is CaseStatus.CLOSED:
        raise Conflict("case_closed")


def ensure_can_close(status: CaseStatus) -> None:
    if status is CaseStatus.CLOSED:
        raise Conflict("case_already_closed")


def ensure_can_hand_over(status: CaseStatus, service_line: ServiceLine) -> None:
    """The one-step handover closes an open JMD case and opens an MBE case."""
    ensure_can_close(status)
    if service_line is not ServiceLine.JMD:
        raise Conflict("handover_only_jmd")


def ensure_can_reopen(status: CaseStatus) -> None:
    if status is CaseStatus.OPEN:
        raise Conflict("case_already_open")


def ensure_no_other_open_case(open_case_id: UUID | None) -> None:
    """A person has at most one open case per service line; the message names the open one."""
    if open_case_id is not None:
        raise Conflict("open_case_exists", case_id=str(open_case_id))


def ensure_can_assign(status: CaseStatus, current_manager: str | None) -> None:
    """The first assignment; changing the case manager is a transfer, which needs a reason."""
    ensure_open(status)
    if current_manager is not None:
        raise Conflict("case_already_assigned", case_manager_id=current_manager)


@dataclass(frozen=True)
class Transfer:
    from_office_id: str
    to_office_id: str
    from_case_manager_id: str | None
    to_case_manager_id: str | None


def plan_transfer(
    status: CaseStatus,
    office_id: str,
    case_manager_id: str | None,
    to_office_id: str | None,
    to_case_manager_id: str | None,
) -> Transfer:
    """Where the case goes. Moving to another office without naming a case manager leaves the
    case unassigned: the old case manager works at the old office, the new office assigns."""
    ensure_open(status)
    if to_office_id is None and to_case_manager_id is None:
        raise Invalid("to_case_manager_id", "transfer_needs_target")
    new_office = to_office_id or office_id
    if to_case_manager_id is not None:
        new_manager: str | None = to_case_manager_id
    elif new_office != office_id:
        new_manager = None
    else:
        new_manager = case_manager_id
    if new_office == office_id and new_manager == case_manager_id:
        raise Invalid("to_case_manager_id" if to_case_manager_id else "to_office_id", "transfer_changes_nothing")
    return Transfer(office_id, new_office, case_manager_id, new_manager)


# A plan goal's status: reached or dropped goals can be opened again; nothing else moves.
GOAL_TRANSITIONS: dict[GoalStatus, frozenset[GoalStatus]] = {
    GoalStatus.OPEN: frozenset({GoalStatus.REACHED, GoalStatus.DROPPED}),
    GoalStatus.REACHED: frozenset({GoalStatus.OPEN}),
    GoalStatus.DROPPED: frozenset({GoalStatus.OPEN}),
}


def ensure_goal_transition(case_status: CaseStatus, current: GoalStatus, target: GoalStatus) -> None:
    ensure_open(case_status)
    if current == target:
        raise Conflict("goal_status_unchanged", status=current.value)
    if target not in GOAL_TRANSITIONS[current]:
        raise Conflict("goal_transition_not_allowed", current=current.value, target=target.value)


def unknown_codes(given: Iterable[str], known: Iterable[str]) -> list[int]:
    """Positions of the codes that are not in the code list (for a 422 per list element)."""
    known_set = set(known)
    return [index for index, code in enumerate(given) if code not in known_set]


def ensure_known_codes(field: str, given: Sequence[str], known: Iterable[str], code: str, *, listed: bool) -> None:
    """Codes must come from their code list (topics, reasons): one 422 message per unknown code,
    at `field.<position>` for a list field, at `field` for a single code."""
    unknown = unknown_codes(given, known)
    if unknown:
        raise Invalid.at([(f"{field}.{index}" if listed else field, code, {}) for index in unknown])


@dataclass(frozen=True)
class CaseAtMerge:
    case_id: UUID
    service_line: str
    status: CaseStatus


def duplicates_at_merge(merged_cases: Iterable[CaseAtMerge], survivor_open_lines: Iterable[str]) -> list[UUID]:
    """Cases of the retired record that must be closed when its cases move to the surviving one.

    All of them move, but a person has at most one open case per service line: where the
    survivor already has an open case in that line, the retired record's open case is the
    duplicate and is closed (reason `duplicate_record`); its consultations stay with it.
    """
    taken = set(survivor_open_lines)
    duplicates = []
    for case in merged_cases:
        if case.status is not CaseStatus.OPEN:
            continue
        if case.service_line in taken:
            duplicates.append(case.case_id)
        else:
            taken.add(case.service_line)
    return duplicates


# --- referrals as cases sees them ------------------------------------------------------------

ReferralAnswer = ReferralAccepted | ReferralDeclined | ReferralCompleted | ReferralWithdrawn | ReferralExpired


@dataclass(frozen=True)
class ReferralOutcome:
    """What an answer (or a withdrawal, an expiry) makes of a referral in the case overview."""

    status: str
    at: datetime
    # The answer's reason or outcome code, worth showing beside the status.
    detail: str | None = None


def referral_outcome(answer: ReferralAnswer) -> ReferralOutcome:
    match answer:
        case ReferralAccepted():
            return ReferralOutcome("accepted", answer.accepted_at)
        case ReferralDeclined():
            return ReferralOutcome("declined", answer.declined_at, str(answer.reason))
        case ReferralCompleted():
            return ReferralOutcome("completed", answer.completed_at, str(answer.outcome))
        case ReferralWithdrawn():
            return ReferralOutcome("withdrawn", answer.withdrawn_at, answer.reason)
        case ReferralExpired():
            return ReferralOutcome("expired", answer.expired_at)


def referral_answer_refusal(answer: ReferralAnswer, sent_to_agency: str | None) -> str | None:
    """Why an answer cannot apply to the referral as cases knows it, or None when it can.

    `sent_to_agency` is the agency of the ReferralSent cases saw, None when it saw none. An
    answer never creates a referral; it must name the agency the referral was sent to. The
    reason names only ids (it goes to the dead-letter topic).
    """
    if sent_to_agency is None:
        return f"{answer.event_type}: referral {answer.referral_id} was never sent (no ReferralSent seen)"
    if answer.agency_id != sent_to_agency:
        return f"{answer.event_type}: referral {answer.referral_id} was not sent to agency {answer.agency_id}"
    return None
