"""Routing rules (the seeded ones, as data), ages from incomplete birth data, the handover at 27."""

from datetime import date

import pytest

from intake.domain import (
    BirthData,
    NotEligible,
    RoutingRule,
    age_band,
    age_on,
    primary_service_line,
    route,
    turns_27_between,
)
from knotenpunkt.events import AgeBand, ServiceLine

# The same rules as the seed in migrations/002: JMD 12-<27, MBE 27+, refugee counselling for
# unsecured status at any age, KIM switched off.
SEEDED = [
    RoutingRule("jmd", ServiceLine.JMD, min_age=12, max_age=27),
    RoutingRule("kim", ServiceLine.KIM, min_age=12, active=False),
    RoutingRule("mbe", ServiceLine.MBE, min_age=27),
    RoutingRule("refugee", ServiceLine.REFUGEE, unsecured_only=True),
]


@pytest.mark.parametrize(
    ("age", "line"),
    [(12, ServiceLine.JMD), (18, ServiceLine.JMD), (26, ServiceLine.JMD), (27, ServiceLine.MBE), (80, ServiceLine.MBE)],
)
def test_jmd_from_12_to_under_27_and_mbe_from_27(age: int, line: ServiceLine) -> None:
    assert route(age, "settlement_permit", True, SEEDED) == [line]


@pytest.mark.parametrize("age", [0, 11])
def test_children_under_12_are_not_routed(age: int) -> None:
    with pytest.raises(NotEligible):
        route(age, "toleration", False, SEEDED)


def test_unsecured_residence_status_adds_refugee_counselling_at_any_age() -> None:
    assert route(19, "toleration", False, SEEDED) == [ServiceLine.JMD, ServiceLine.REFUGEE]
    assert route(45, "asylum_procedure", False, SEEDED) == [ServiceLine.MBE, ServiceLine.REFUGEE]


def test_unknown_age_routes_by_status_only() -> None:
    assert route(None, "asylum_procedure", False, SEEDED) == [ServiceLine.REFUGEE]
    assert route(None, "settlement_permit", True, SEEDED) == []


def test_a_switched_on_kim_rule_adds_kim_across_the_lines() -> None:
    rules = [
        RoutingRule(r.rule_id, r.service_line, r.min_age, r.max_age, r.residence_statuses, r.unsecured_only, True)
        for r in SEEDED
    ]
    assert route(30, "residence_permit", True, rules) == [ServiceLine.KIM, ServiceLine.MBE]
    assert primary_service_line([ServiceLine.KIM, ServiceLine.MBE]) is ServiceLine.MBE


def test_a_rule_limited_to_statuses() -> None:
    rule = RoutingRule("eu", ServiceLine.KIM, residence_statuses=frozenset({"eu_free_movement"}))
    assert rule.applies(40, "eu_free_movement", True)
    assert not rule.applies(40, "toleration", False)


def test_age_counts_completed_years_and_the_birthday_itself() -> None:
    assert age_on(date(1999, 11, 21), date(2026, 11, 20)) == 26
    assert age_on(date(1999, 11, 21), date(2026, 11, 21)) == 27
    assert age_on(date(2000, 2, 29), date(2027, 2, 28)) == 26
    assert age_on(date(2000, 2, 29), date(2027, 3, 1)) == 27


def test_only_a_birth_year_counts_from_1_january() -> None:
    assert BirthData(birth_year=2000).age_on(date(2026, 12, 31)) == 26
    assert BirthData(birth_year=2000).age_on(date(2027, 1, 1)) == 27
    assert BirthData().age_on(date(2026, 1, 1)) is None


def test_turning_27_moves_the_routing_from_jmd_to_mbe_and_raises_the_handover_once() -> None:
    born = BirthData(birth_date=date(1999, 11, 21))
    assert route(born.age_on(date(2026, 11, 20)), "residence_permit", True, SEEDED) == [ServiceLine.JMD]
    assert route(born.age_on(date(2026, 11, 21)), "residence_permit", True, SEEDED) == [ServiceLine.MBE]
    assert turns_27_between(born, date(2026, 11, 20), date(2026, 11, 21)) == date(2026, 11, 21)
    assert turns_27_between(born, date(2026, 11, 21), date(2026, 11, 22)) is None
    assert turns_27_between(BirthData(birth_date=date(2000, 2, 29)), date(2027, 2, 27), date(2027, 3, 1)) == date(
        2027, 3, 1
    )


@pytest.mark.parametrize(
    ("age", "band"),
    [(12, AgeBand.AGE_12_17), (17, AgeBand.AGE_12_17), (18, AgeBand.AGE_18_26), (26, AgeBand.AGE_18_26),
     (27, AgeBand.AGE_27_44), (45, AgeBand.AGE_45_64), (65, AgeBand.AGE_65_PLUS), (None, AgeBand.UNKNOWN)],
)  # fmt: skip
def test_age_bands(age: int | None, band: AgeBand) -> None:
    assert age_band(age) is band
