"""Reference data as the admin sends it: refused at the field that is wrong, in German and
English, before anything is stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from intake.schemas import OFFICE_ID, RULE_ID, STAFF_ID, OfficeInput, RoutingRuleInput, StaffInput
from knotenpunkt.i18n import message

STAFF = {"office_id": "rsc-hamborn", "display_name": "Fallmanagement Hamborn 3", "fte": 0.75, "service_lines": ["MBE"]}
RULE = {"service_line": "JMD", "min_age": 12, "max_age": 27, "description": "JMD"}


def refused(model: type, body: dict[str, Any]) -> tuple[str, str]:
    """(field, message code) of the single error, as the API's 422 names them."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    [error] = caught.value.errors()
    code = str(error["ctx"]["error"]).removeprefix("code:") if error["type"] == "value_error" else error["type"]
    return ".".join(str(part) for part in error["loc"]), code


@pytest.mark.parametrize(
    ("fte", "code"),
    [(0, "fte_out_of_range"), (-0.5, "fte_out_of_range"), (1.01, "fte_out_of_range"), (0.333, "fte_two_decimals")],
)
def test_a_full_time_equivalent_is_above_0_at_most_1_with_two_decimals(fte: float, code: str) -> None:
    assert refused(StaffInput, {**STAFF, "fte": fte}) == ("fte", code)


def test_a_staff_member_names_an_office_or_null_on_purpose() -> None:
    assert StaffInput.model_validate({**STAFF, "fte": 1}).fte == Decimal(1)
    network_wide = StaffInput.model_validate({**STAFF, "office_id": None, "service_lines": []})
    assert (network_wide.office_id, network_wide.active) == (None, True)
    assert refused(StaffInput, {key: value for key, value in STAFF.items() if key != "office_id"}) == (
        "office_id",
        "missing",
    )
    assert refused(StaffInput, {**STAFF, "service_lines": ["ASTROLOGY"]}) == ("service_lines.0", "enum")
    assert refused(StaffInput, {**STAFF, "recorded_by": "admin"}) == ("recorded_by", "extra_forbidden")


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"min_age": 27, "max_age": 27}, "max_age", "min_age_not_below_max"),
        ({"min_age": 30, "max_age": 18}, "max_age", "min_age_not_below_max"),
        ({"min_age": -1}, "min_age", "greater_than_equal"),
        ({"max_age": 200}, "max_age", "less_than_equal"),
        ({"service_line": "ASTROLOGY"}, "service_line", "enum"),
        ({"residence_statuses": []}, "residence_statuses", "no_statuses"),
        ({"description": ""}, "description", "string_too_short"),
    ],
)
def test_a_routing_rule_is_refused_at_the_wrong_field(changes: dict[str, Any], field: str, code: str) -> None:
    assert refused(RoutingRuleInput, {**RULE, **changes}) == (field, code)


def test_a_routing_rule_without_bounds_or_statuses_applies_to_anyone() -> None:
    rule = RoutingRuleInput.model_validate({"service_line": "KIM", "description": "KIM for everyone"})
    assert (rule.min_age, rule.max_age, rule.residence_statuses, rule.active) == (None, None, None, True)
    only_max = RoutingRuleInput.model_validate({**RULE, "min_age": None, "residence_statuses": ["toleration"] * 2})
    assert only_max.residence_statuses == ["toleration"]


def test_an_offices_languages_are_checked_and_what_is_not_sent_stays_unset() -> None:
    office = OfficeInput.model_validate({"name": "RSC", "address": "Weg 1", "open_hours": "Mo", "languages": ["TR"]})
    assert office.languages == ["tr"] and office.model_fields_set == {"name", "address", "open_hours", "languages"}
    assert refused(OfficeInput, {"name": "RSC", "address": "Weg 1", "open_hours": "Mo", "languages": ["xx"]}) == (
        "languages",
        "unknown_language",
    )


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (OFFICE_ID, "rsc-marxloh", ["RSC-Marxloh", "rsc marxloh", "-rsc", "r", "rsc/../x"]),
        (RULE_ID, "jmd_young", ["JMD", "jmd rule", "_jmd"]),
        (STAFF_ID, "staff.hamborn-3@duisburg", ["staff hamborn", "-staff", "x" * 101]),
    ],
)
def test_reference_ids_have_a_plain_form(pattern: Any, good: str, bad: list[str]) -> None:
    assert pattern.match(good)
    assert not any(pattern.match(value) for value in bad)


@pytest.mark.parametrize(
    "code",
    ["fte_out_of_range", "fte_two_decimals", "min_age_not_below_max", "no_statuses", "invalid_reference_id",
     "invalid_rule_id", "invalid_staff_id_format", "duplicates_elsewhere"],
)  # fmt: skip
def test_every_new_message_is_there_in_german_and_english(code: str) -> None:
    german, english = message(code, "de", offices="x"), message(code, "en", offices="x")
    assert german != english and message("invalid", "en") not in (german, english)
