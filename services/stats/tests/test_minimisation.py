"""Stats keeps the registration's day and the handover's month, whatever precision an event has."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from stats.projections.persons import handover_month, registration_day

MIDNIGHT = datetime(2025, 3, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "at",
    [
        MIDNIGHT,  # as ClientRegistered carries it now
        datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC),  # an older event, to the microsecond
        datetime(2025, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),  # the same instant in Duisburg
        datetime(2025, 3, 31, 8, 0),  # naive: UTC
    ],
)
def test_a_registration_is_kept_as_midnight_utc_of_its_day(at: datetime) -> None:
    assert registration_day(at) == MIDNIGHT
    assert registration_day(registration_day(at)) == MIDNIGHT
    assert registration_day(at) <= (at if at.tzinfo else at.replace(tzinfo=UTC))


@pytest.mark.parametrize("due_on", [date(2025, 3, 1), date(2025, 3, 20), date(2025, 3, 31)])
def test_a_handover_is_kept_as_its_month(due_on: date) -> None:
    assert handover_month(due_on) == date(2025, 3, 1)
