"""The rules of a case, on plain values: each test names one rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from cases.domain import (
    CaseAtMerge,
    CaseStatus,
    duplicates_at_merge,
    ensure_can_assign,
    ensure_can_close,
    ensure_can_reopen,
    ensure_goal_transition,
    ensure_known_codes,
    ensure_no_other_open_case,
    ensure_open,
    plan_transfer,
    referral_answer_refusal,
    referral_outcome,
    service_lines_to_open,
    unknown_codes,
)
from knotenpunkt.errors import Conflict, Invalid
from knotenpunkt.events import (
    CompletionOutcome,
    DeclineReason,
    GoalStatus,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralWithdrawn,
    ServiceLine,
)

OPEN, CLOSED = CaseStatus.OPEN, CaseStatus.CLOSED


def conflict_code(action) -> str:
    with pytest.raises(Conflict) as raised:
        action()
    return raised.value.code


# --- opening ---------------------------------------------------------------------------------


def test_one_case_per_service_line_the_routing_chose() -> None:
    lines = service_lines_to_open(ServiceLine.JMD, (ServiceLine.JMD, ServiceLine.REFUGEE))
    assert lines == (ServiceLine.JMD, ServiceLine.REFUGEE)


def test_an_event_without_service_lines_opens_its_single_service_line() -> None:
    assert service_lines_to_open(ServiceLine.MBE, ()) == (ServiceLine.MBE,)


def test_a_service_line_named_twice_opens_one_case() -> None:
    assert service_lines_to_open(ServiceLine.MBE, (ServiceLine.MBE, ServiceLine.MBE)) == (ServiceLine.MBE,)


# --- closing and reopening -------------------------------------------------------------------


def test_an_open_case_can_be_closed_and_a_closed_one_reopened() -> None:
    ensure_can_close(OPEN)
    ensure_can_reopen(CLOSED)


def test_closing_a_closed_case_is_a_conflict() -> None:
    assert conflict_code(lambda: ensure_can_close(CLOSED)) == "case_already_closed"


def test_reopening_an_open_case_is_a_conflict() -> None:
    assert conflict_code(lambda: ensure_can_reopen(OPEN)) == "case_already_open"


def test_work_on_a_closed_case_is_a_conflict() -> None:
    ensure_open(OPEN)
    assert conflict_code(lambda: ensure_open(CLOSED)) == "case_closed"


# --- assigning -------------------------------------------------------------------------------


def test_an_unassigned_open_case_can_be_assigned() -> None:
    ensure_can_assign(OPEN, None)


def test_changing_the_case_manager_is_a_transfer_not_an_assignment() -> None:
    with pytest.raises(Conflict) as raised:
        ensure_can_assign(OPEN, "cm-anna")
    assert raised.value.code == "case_already_assigned"
    assert raised.value.params == {"case_manager_id": "cm-anna"}


def test_a_closed_case_cannot_be_assigned() -> None:
    assert conflict_code(lambda: ensure_can_assign(CLOSED, None)) == "case_closed"


# --- transferring ----------------------------------------------------------------------------


def test_a_transfer_to_another_case_manager_keeps_the_office() -> None:
    transfer = plan_transfer(OPEN, "rsc-hamborn", "cm-anna", None, "cm-bora")
    assert (transfer.to_office_id, transfer.to_case_manager_id) == ("rsc-hamborn", "cm-bora")
    assert (transfer.from_office_id, transfer.from_case_manager_id) == ("rsc-hamborn", "cm-anna")


def test_a_transfer_to_another_office_without_a_case_manager_leaves_it_unassigned() -> None:
    transfer = plan_transfer(OPEN, "rsc-hamborn", "cm-anna", "rsc-hochfeld", None)
    assert (transfer.to_office_id, transfer.to_case_manager_id) == ("rsc-hochfeld", None)


def test_a_transfer_to_another_office_and_case_manager_sets_both() -> None:
    transfer = plan_transfer(OPEN, "rsc-hamborn", None, "rsc-hochfeld", "cm-cem")
    assert (transfer.to_office_id, transfer.to_case_manager_id) == ("rsc-hochfeld", "cm-cem")


def test_a_transfer_needs_a_target() -> None:
    with pytest.raises(Invalid) as raised:
        plan_transfer(OPEN, "rsc-hamborn", "cm-anna", None, None)
    assert raised.value.field_code == "transfer_needs_target"
    assert raised.value.fields == [("to_case_manager_id", "transfer_needs_target", {})]


def test_a_transfer_that_changes_nothing_is_refused() -> None:
    with pytest.raises(Invalid) as raised:
        plan_transfer(OPEN, "rsc-hamborn", "cm-anna", "rsc-hamborn", "cm-anna")
    assert raised.value.field_code == "transfer_changes_nothing"


def test_a_closed_case_cannot_be_transferred() -> None:
    assert conflict_code(lambda: plan_transfer(CLOSED, "rsc-hamborn", None, "rsc-hochfeld", None)) == "case_closed"


# --- plan goals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (GoalStatus.OPEN, GoalStatus.REACHED),
        (GoalStatus.OPEN, GoalStatus.DROPPED),
        (GoalStatus.REACHED, GoalStatus.OPEN),
        (GoalStatus.DROPPED, GoalStatus.OPEN),
    ],
)
def test_a_goal_can_be_reached_dropped_or_opened_again(current: GoalStatus, target: GoalStatus) -> None:
    ensure_goal_transition(OPEN, current, target)


def test_a_reached_goal_cannot_be_dropped_without_opening_it_again() -> None:
    code = conflict_code(lambda: ensure_goal_transition(OPEN, GoalStatus.REACHED, GoalStatus.DROPPED))
    assert code == "goal_transition_not_allowed"


def test_setting_a_goal_to_the_status_it_has_is_a_conflict() -> None:
    assert conflict_code(lambda: ensure_goal_transition(OPEN, GoalStatus.OPEN, GoalStatus.OPEN)) == (
        "goal_status_unchanged"
    )


def test_goals_of_a_closed_case_cannot_change() -> None:
    assert conflict_code(lambda: ensure_goal_transition(CLOSED, GoalStatus.OPEN, GoalStatus.REACHED)) == "case_closed"


# --- code lists ------------------------------------------------------------------------------


def test_unknown_codes_are_named_by_their_position() -> None:
    assert unknown_codes(["work", "astrology", "housing", "tarot"], {"work", "housing"}) == [1, 3]
    assert unknown_codes([], {"work"}) == []


def test_each_unknown_code_of_a_list_field_gets_its_own_message() -> None:
    with pytest.raises(Invalid) as raised:
        ensure_known_codes("topics", ["work", "astrology", "tarot"], {"work"}, "unknown_topic", listed=True)
    assert raised.value.fields == [("topics.1", "unknown_topic", {}), ("topics.2", "unknown_topic", {})]


def test_an_unknown_single_code_is_reported_at_its_field() -> None:
    ensure_known_codes("reason", ["other"], {"other"}, "unknown_close_reason", listed=False)
    with pytest.raises(Invalid) as raised:
        ensure_known_codes("reason", ["whim"], {"other"}, "unknown_close_reason", listed=False)
    assert raised.value.fields == [("reason", "unknown_close_reason", {})]


def test_a_second_open_case_in_a_line_is_a_conflict_naming_the_open_one() -> None:
    ensure_no_other_open_case(None)
    open_one = uuid.uuid4()
    with pytest.raises(Conflict) as raised:
        ensure_no_other_open_case(open_one)
    assert (raised.value.code, raised.value.params) == ("open_case_exists", {"case_id": str(open_one)})


# --- merging two records of one person -------------------------------------------------------


def test_at_a_merge_an_open_case_in_a_line_the_survivor_has_open_is_the_duplicate() -> None:
    jmd, refugee, closed_mbe = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    merged = [
        CaseAtMerge(jmd, "JMD", OPEN),
        CaseAtMerge(refugee, "REFUGEE", OPEN),
        CaseAtMerge(closed_mbe, "MBE", CLOSED),
    ]
    assert duplicates_at_merge(merged, survivor_open_lines={"JMD", "MBE"}) == [jmd]


def test_at_a_merge_two_open_cases_of_the_retired_record_in_one_line_keep_only_the_first() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    merged = [CaseAtMerge(first, "MBE", OPEN), CaseAtMerge(second, "MBE", OPEN)]
    assert duplicates_at_merge(merged, survivor_open_lines=set()) == [second]


# --- referrals as cases sees them ------------------------------------------------------------

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def answer_ids(agency_id: str = "jobcenter-duisburg") -> dict:
    return {"client_id": uuid.uuid4(), "referral_id": uuid.uuid4(), "agency_id": agency_id}


@pytest.mark.parametrize(
    ("answer", "status", "detail"),
    [
        (ReferralAccepted(**answer_ids(), accepted_at=AT), "accepted", None),
        (ReferralDeclined(**answer_ids(), declined_at=AT, reason=DeclineReason.NO_CAPACITY), "declined", "no_capacity"),
        (
            ReferralCompleted(**answer_ids(), completed_at=AT, outcome=CompletionOutcome.SUCCESSFUL),
            "completed",
            "successful",
        ),
        (ReferralWithdrawn(**answer_ids(), withdrawn_at=AT, reason="by_case_manager"), "withdrawn", "by_case_manager"),
        (ReferralExpired(**answer_ids(), expired_at=AT), "expired", None),
    ],
)
def test_an_answer_sets_the_referrals_status_time_and_detail(answer, status: str, detail: str | None) -> None:
    outcome = referral_outcome(answer)
    assert (outcome.status, outcome.at, outcome.detail) == (status, AT, detail)


def test_an_answer_for_a_referral_never_seen_sent_is_refused_naming_only_ids() -> None:
    answer = ReferralAccepted(**answer_ids(), accepted_at=AT)
    refusal = referral_answer_refusal(answer, sent_to_agency=None)
    assert refusal is not None and str(answer.referral_id) in refusal and "never sent" in refusal


def test_an_answer_from_another_agency_than_the_referral_was_sent_to_is_refused() -> None:
    answer = ReferralDeclined(**answer_ids("caritas"), declined_at=AT, reason=DeclineReason.OTHER)
    refusal = referral_answer_refusal(answer, sent_to_agency="jobcenter-duisburg")
    assert refusal is not None and "caritas" in refusal


def test_an_answer_from_the_agency_the_referral_was_sent_to_applies() -> None:
    answer = ReferralAccepted(**answer_ids(), accepted_at=AT)
    assert referral_answer_refusal(answer, sent_to_agency="jobcenter-duisburg") is None
