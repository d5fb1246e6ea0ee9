from datetime import date

import pytest

from intake.domain import NotEligible, age_band, age_on, route
from knotenpunkt.events import AgeBand, ServiceLine


@pytest.mark.parametrize(
    ("age", "line"),
    [(12, ServiceLine.JMD), (18, ServiceLine.JMD), (26, ServiceLine.JMD), (27, ServiceLine.MBE), (80, ServiceLine.MBE)],
)
def test_jmd_from_12_to_under_27_and_mbe_from_27(age: int, line: ServiceLine) -> None:
    assert route(age) is line


@pytest.mark.parametrize("age", [0, 11])
def test_children_under_12_are_not_routed(age: int) -> None:
    with pytest.raises(NotEligible):
        route(age)


def test_age_counts_completed_years_and_the_birthday_itself() -> None:
    assert age_on(date(1999, 11, 21), date(2026, 11, 20)) == 26
    assert age_on(date(1999, 11, 21), date(2026, 11, 21)) == 27
    assert age_on(date(2000, 2, 29), date(2027, 2, 28)) == 26
    assert age_on(date(2000, 2, 29), date(2027, 3, 1)) == 27


def test_turning_27_moves_the_routing_from_jmd_to_mbe() -> None:
    born = date(1999, 11, 21)
    assert route(age_on(born, date(2026, 11, 20))) is ServiceLine.JMD
    assert route(age_on(born, date(2026, 11, 21))) is ServiceLine.MBE


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (12, AgeBand.AGE_12_17),
        (17, AgeBand.AGE_12_17),
        (18, AgeBand.AGE_18_26),
        (26, AgeBand.AGE_18_26),
        (27, AgeBand.AGE_27_44),
        (45, AgeBand.AGE_45_64),
        (65, AgeBand.AGE_65_PLUS),
    ],
)
def test_age_bands(age: int, band: AgeBand) -> None:
    assert age_band(age) is band
