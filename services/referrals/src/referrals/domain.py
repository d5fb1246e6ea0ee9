"""The referral lifecycle as a table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.SENT: frozenset({Status.ACCEPTED, Status.DECLINED}),
    Status.ACCEPTED: frozenset(),
    Status.DECLINED: frozenset(),
}


def can_move(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]
