"""The referral lifecycle and its deadlines, as plain rules."""

from datetime import UTC, datetime, timedelta

import pytest

from knotenpunkt.events import DeclineReason
from referrals.domain import (
    ALLOWED,
    Clock,
    Status,
    TransitionRefused,
    can_move,
    check_move,
    deadlines,
    gap_cause_of_decline,
    is_repeat,
    needs_action,
)

SENT_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_sent_referral_can_be_accepted_declined_withdrawn_or_expire() -> None:
    for target in (Status.ACCEPTED, Status.DECLINED, Status.WITHDRAWN, Status.EXPIRED):
        assert can_move(Status.SENT, target)
    assert not can_move(Status.SENT, Status.COMPLETED)


def test_an_accepted_referral_can_only_be_completed_or_withdrawn() -> None:
    assert {t for t in Status if can_move(Status.ACCEPTED, t)} == {Status.COMPLETED, Status.WITHDRAWN}


@pytest.mark.parametrize("closed", [Status.DECLINED, Status.COMPLETED, Status.WITHDRAWN, Status.EXPIRED])
def test_a_closed_referral_cannot_change_any_more(closed: Status) -> None:
    assert ALLOWED[closed] == frozenset()
    with pytest.raises(TransitionRefused) as refused:
        check_move(closed, Status.ACCEPTED)
    assert refused.value.reason == "referral_closed"


def test_an_answered_referral_cannot_change_its_answer() -> None:
    with pytest.raises(TransitionRefused) as refused:
        check_move(Status.ACCEPTED, Status.DECLINED)
    assert (refused.value.reason, refused.value.current, refused.value.target) == (
        "referral_transition_impossible",
        Status.ACCEPTED,
        Status.DECLINED,
    )


def test_completing_an_unaccepted_referral_says_it_is_not_accepted_yet() -> None:
    with pytest.raises(TransitionRefused) as refused:
        check_move(Status.SENT, Status.COMPLETED)
    assert refused.value.reason == "referral_not_accepted_yet"


def test_the_same_answer_twice_is_a_repeat_but_a_different_one_is_not() -> None:
    assert is_repeat(Status.ACCEPTED, Status.ACCEPTED)
    assert is_repeat(Status.COMPLETED, Status.COMPLETED)
    assert not is_repeat(Status.SENT, Status.ACCEPTED)
    assert not is_repeat(Status.WITHDRAWN, Status.WITHDRAWN)


def test_reminder_at_half_the_promised_time_and_expiry_at_its_end() -> None:
    due = deadlines(SENT_AT, 10, Clock())
    assert due.remind_at == SENT_AT + timedelta(days=5)
    assert due.due_at == SENT_AT + timedelta(days=10)


def test_a_scaled_clock_turns_days_into_seconds() -> None:
    due = deadlines(SENT_AT, 10, Clock(day_seconds=2))
    assert (due.remind_at, due.due_at) == (SENT_AT + timedelta(seconds=10), SENT_AT + timedelta(seconds=20))


def test_the_clock_tells_the_injected_time() -> None:
    assert Clock(now_function=lambda: SENT_AT).now() == SENT_AT


def test_action_needed_after_half_the_time_without_answer_and_for_declined_or_expired() -> None:
    remind_at = SENT_AT + timedelta(days=5)
    assert needs_action(Status.SENT, remind_at, remind_at - timedelta(seconds=1)) is None
    assert needs_action(Status.SENT, remind_at, remind_at) == "no_answer_yet"
    assert needs_action(Status.DECLINED, remind_at, SENT_AT) == "declined"
    assert needs_action(Status.EXPIRED, remind_at, SENT_AT) == "expired"
    assert needs_action(Status.ACCEPTED, remind_at, remind_at + timedelta(days=30)) is None


def test_only_a_decline_for_lack_of_capacity_is_a_gap() -> None:
    assert gap_cause_of_decline(DeclineReason.NO_CAPACITY) == "no_capacity"
    for reason in (DeclineReason.NOT_RESPONSIBLE, DeclineReason.PERSON_UNREACHABLE, DeclineReason.OTHER):
        assert gap_cause_of_decline(reason) is None
