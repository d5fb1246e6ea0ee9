"""Intake's domain rules: age and routing. Plain functions, tested without infrastructure."""

from __future__ import annotations

from datetime import date

from knotenpunkt.events import AgeBand, ServiceLine

MINIMUM_AGE = 12
JMD_UNTIL = 27  # JMD: from 12 up to (not including) 27; MBE from 27


class NotEligible(ValueError):
    """The person cannot be routed to any service line."""


def age_on(birth_date: date, day: date) -> int:
    """Completed years of life on `day` (a birthday counts on the day itself)."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def route(age: int) -> ServiceLine:
    """JMD from 12 to under 27, MBE from 27."""
    if age < MINIMUM_AGE:
        raise NotEligible(f"counselling starts at {MINIMUM_AGE}")
    return ServiceLine.JMD if age < JMD_UNTIL else ServiceLine.MBE


def age_band(age: int) -> AgeBand:
    if age < 18:
        return AgeBand.AGE_12_17
    if age < 27:
        return AgeBand.AGE_18_26
    if age < 45:
        return AgeBand.AGE_27_44
    if age < 65:
        return AgeBand.AGE_45_64
    return AgeBand.AGE_65_PLUS
