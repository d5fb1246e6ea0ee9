from referrals.domain import Status, can_move


def test_a_sent_referral_can_be_accepted_or_declined() -> None:
    assert can_move(Status.SENT, Status.ACCEPTED)
    assert can_move(Status.SENT, Status.DECLINED)


def test_an_answered_referral_cannot_change_its_answer() -> None:
    assert not can_move(Status.ACCEPTED, Status.DECLINED)
    assert not can_move(Status.DECLINED, Status.ACCEPTED)
    assert not can_move(Status.ACCEPTED, Status.SENT)
