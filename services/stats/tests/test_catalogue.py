"""The catalogue of measures, dimensions and periods, and the report definitions built on it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from stats.measures import (
    Query,
    allowed_dimensions,
    fact_sql,
    growth_pct,
    period_before,
    period_label,
    previous_label,
    query_problems,
)
from stats.projections._batch import rounds
from stats.reports import ReportDefinition, load_definitions


def test_the_shipped_report_definitions_are_valid_and_versioned() -> None:
    definitions = load_definitions()
    assert set(definitions) == {"mbe-annual", "jmd-annual", "kim-council"}
    assert all(d.version >= 1 for d in definitions.values())
    assert definitions["mbe-annual"].filters == {"service_line": ("MBE",)}


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"measures": ["cases_new"], "by": ["shoe_size"]}, "not allowed"),
        ({"measures": ["heartbeats"]}, "unknown measures"),
        ({"measures": ["staff_fte"], "by": ["topic"], "snapshot": True}, "not allowed"),
        ({"measures": ["open_cases_now"]}, "snapshot must be true"),
        ({"measures": ["cases_new"], "period": "fortnight"}, "unknown period"),
    ],
)
def test_a_definition_naming_what_the_catalogue_does_not_know_is_refused(table: dict, problem: str) -> None:
    definition = {
        "name": "broken",
        "version": 1,
        "title": {"de": "x", "en": "x"},
        "description": {"de": "x", "en": "x"},
        "tables": [{"id": "t", "title": {"de": "x", "en": "x"}, **table}],
    }
    with pytest.raises(ValueError, match=problem):
        ReportDefinition.model_validate(definition)


def test_a_definition_file_must_be_named_after_its_report(tmp_path: Path) -> None:
    source = json.loads((Path(__file__).parents[1] / "src/stats/reports/kim-council.json").read_text())
    (tmp_path / "other-name.json").write_text(json.dumps(source))
    with pytest.raises(ValueError, match="file name must match"):
        load_definitions(tmp_path)


def test_query_problems_name_the_allowed_values() -> None:
    problems = query_problems(Query(measures=("consultations",), by=("shoe_size",), period="fortnight"))
    by_field = {field: (code, params) for field, code, params in problems}
    assert by_field["by"][0] == "unknown_dimension" and "age_band" in by_field["by"][1]["allowed"]
    assert by_field["period"] == ("unknown_period", {"value": "fortnight", "allowed": "day, month, quarter, year"})
    assert query_problems(Query(measures=("consultations",), by=("topic", "office"), period="month")) == []


def test_a_breakdown_must_fit_every_measure_asked_for() -> None:
    assert "topic" in allowed_dimensions(("consultations",))
    assert "topic" not in allowed_dimensions(("consultations", "cases_new"))
    assert allowed_dimensions(("caseload_per_fte",)) == ["service_line", "office", "case_manager"]


def test_periods_their_labels_and_the_period_before() -> None:
    assert period_label("quarter", date(2025, 5, 4)) == "2025-Q2"
    assert [
        previous_label(p, label) for p, label in [("year", "2025"), ("quarter", "2025-Q1"), ("month", "2025-01")]
    ] == [
        "2024",
        "2024-Q4",
        "2024-12",
    ]
    assert previous_label("day", "2025-03-01") == "2025-02-28"
    assert period_before("quarter", date(2025, 2, 10)) == date(2024, 10, 1)
    assert period_before("month", date(2025, 3, 31)) == date(2025, 2, 1)


def test_growth_in_percent() -> None:
    assert growth_pct(112, 100) == 12.0
    assert growth_pct(50, 0) is None
    assert growth_pct(None, 10) is None


def test_filters_are_parameters_never_part_of_the_sql_text() -> None:
    sql, args = fact_sql(
        "consultations",
        ["consultations"],
        Query(measures=("consultations",), filters={"office": ("x'; DROP TABLE y; --",)}),
    )
    assert "DROP" not in sql and args == [["x'; DROP TABLE y; --"]]


def test_rounds_keep_log_order_and_never_repeat_a_key() -> None:
    events = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2)]
    assert list(rounds(events, lambda e: e[0])) == [[("a", 1), ("b", 1)], [("a", 2), ("b", 2)], [("a", 3)]]
