"""Who may ask stats, and what they get: signed in through the session's Keycloak, the
coordinator and an office lead get figures in which no count from 1 to the threshold appears
anywhere (headline figures, the free query, reports), a case manager is refused (403), and
nobody without a token gets anything (401); the refusals are in the audit trail."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from knotenpunkt.envelope import Envelope
from knotenpunkt.testing.fixtures import count_rows
from stats.measures import MEASURES
from tests.integration.test_stats_projection import stats_service
from tests.integration.test_stats_reports import counselled

pytestmark = pytest.mark.integration

THRESHOLD = 4
ROUTES = (
    ("/figures", {}),
    ("/figures/catalogue", {}),
    ("/figures/query", {"measures": "consultations"}),
    ("/reports", {}),
    ("/reports/mbe-annual", {"year": "2025"}),
)
# Numbers in an answer that are not counts of anything: a report's version and year, the
# threshold itself, growth rates, and figures that are not counts (medians, ratios; those are
# hidden with the count they are computed from).
NOT_COUNTS = {"version", "year", "threshold"} | {name for name, m in MEASURES.items() if not m.additive}


def small_counts(value: Any, path: str = "") -> list[str]:
    """Where in a JSON answer a count from 1 to the threshold is published."""
    if isinstance(value, dict):
        return [
            found
            for key, inner in value.items()
            if key not in NOT_COUNTS and not key.endswith("_growth_pct")
            for found in small_counts(inner, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [found for index, inner in enumerate(value) for found in small_counts(inner, f"{path}[{index}]")]
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= THRESHOLD:
        return [f"{path}={value}"]
    return []


def network() -> list[Envelope]:
    """Offices with many and with few persons, in two years: 10, 3 and 7 persons counselled in
    Hamborn, Hochfeld and Rheinhausen in 2025; 2 (with a family member each) and 8 in Hamborn and
    Rheinhausen in 2024."""
    envelopes: list[Envelope] = []
    for office, persons, year, family in (
        ("rsc-hamborn", 10, 2025, 0),
        ("rsc-hochfeld", 3, 2025, 0),
        ("rsc-rheinhausen", 7, 2025, 0),
        ("rsc-hamborn", 2, 2024, 1),
        ("rsc-rheinhausen", 8, 2024, 0),
    ):
        for _ in range(persons):
            envelopes += counselled(office, year, family=family)
    return envelopes


QUERIES: list[dict[str, str]] = [
    {"measures": "persons_counselled,consultations,persons_reached,family_members", "by": "office"},
    {"measures": "persons_counselled,consultations", "by": "office,age_band", "period": "year"},
    {"measures": "cases_new,cases_open", "by": "office", "period": "month", "from": "2024-01-01"},
    {"measures": "persons_counselled", "by": "office", "period": "year", "from": "2025-01-01", "growth": "true"},
    {"measures": "open_cases_now,caseload_per_fte", "by": "office,service_line"},
    {"measures": "consultations,family_members", "by": "office", "office": "rsc-hochfeld"},
    {"measures": "consultations_per_case,persons_reached"},
]


async def test_the_coordinator_gets_figures_without_a_small_count_anywhere(infra, make_database) -> None:
    async with stats_service(infra, make_database, threshold=THRESHOLD) as stats:
        await stats.publish(network())
        await stats.settled()

        figures = await stats.http.get("/figures")
        assert figures.status_code == 200, figures.text
        assert small_counts(figures.json()) == []
        assert figures.json()["persons_registered"] == 30
        assert figures.json()["family_members_counselled"] is None  # 2
        # The 3 open cases in Hochfeld are not published, nor what would give them back.
        open_cases = {row["office_id"]: row["cases"] for row in figures.json()["open_cases"]}
        assert open_cases["rsc-hochfeld"] is None
        assert [office for office, cases in open_cases.items() if cases is None] != ["rsc-hochfeld"]
        assert "open_cases[MBE/rsc-hochfeld]" in figures.json()["suppressed"]

        for params in QUERIES:
            answer = await stats.http.get("/figures/query", params=params)
            assert answer.status_code == 200, (params, answer.text)
            assert small_counts(answer.json()) == [], params
            assert answer.json()["suppression"]["threshold"] == THRESHOLD
            # Within one answer, no hidden cell is alone in its line (it could be computed back).
            rows = answer.json()["rows"]
            for measure in answer.json()["measures"]:
                hidden = [row for row in rows if measure in row["suppressed"]]
                if "by" in params and "," not in params["by"] and "period" not in params and len(rows) > 1:
                    if len(hidden) == 1:
                        # Only zeros beside it: then the total (the same query without `by`) is hidden.
                        assert all(row[measure] == 0 for row in rows if row not in hidden), (params, measure)
                        total_params = {k: v for k, v in params.items() if k != "by"}
                        [total] = (await stats.http.get("/figures/query", params=total_params)).json()["rows"]
                        assert total[measure] is None, (params, measure)

        by_office = await stats.query(measures="persons_counselled", by="office")
        assert {row["office"]: row["persons_counselled"] for row in by_office} == {
            "rsc-hamborn": None,  # 12, or 30 - 15 - 12 = 3
            "rsc-hochfeld": None,  # 3
            "rsc-rheinhausen": 15,
        }
        # Hamborn had 2 persons in 2024: its 10 in 2025 are published, its growth (+400 %) is not.
        growth = await stats.query(
            measures="persons_counselled", by="office", period="year", **{"from": "2025-01-01", "growth": "true"}
        )
        hamborn = next(row for row in growth if row["office"] == "rsc-hamborn")
        assert (hamborn["persons_counselled"], hamborn["persons_counselled_growth_pct"]) == (10, None)

        report = await stats.http.get("/reports/mbe-annual", params={"year": 2025})
        assert report.status_code == 200, report.text
        assert small_counts(report.json()) == []
        as_csv = await stats.http.get("/reports/mbe-annual", params={"year": 2025, "format": "csv"})
        published = [
            float(line["value"])
            for line in csv.DictReader(io.StringIO(as_csv.text))
            if line["value"] not in ("", "*")
            and not line["measure"].endswith("_growth_pct")
            and line["measure"] not in NOT_COUNTS
        ]
        assert published and not [value for value in published if 0 < value <= THRESHOLD]

        # An office lead may read the figures too (of all offices: they are anonymous).
        async with stats.client("lead-hochfeld", threshold=THRESHOLD) as lead:
            answer = await lead.get("/figures/query", params=QUERIES[0])
            assert answer.status_code == 200, answer.text
            assert small_counts(answer.json()) == []


async def test_a_case_manager_is_refused_and_nobody_without_a_token_gets_anything(infra, make_database) -> None:
    async with stats_service(infra, make_database) as stats:
        await stats.publish(network())
        await stats.settled()
        async with stats.client("staff-hamborn-1") as case_manager, stats.client(None) as anonymous:
            for path, params in ROUTES:
                refused = await case_manager.get(path, params=params, headers={"Accept-Language": "en"})
                assert refused.status_code == 403, (path, refused.text)
                assert refused.json()["code"] == "forbidden_role"
                assert "figures.read" in refused.json()["message"]
                german = await case_manager.get(path, params=params)
                assert "Ihre Rolle erlaubt das nicht" in german.json()["message"]

                unsigned = await anonymous.get(path, params=params)
                assert unsigned.status_code == 401, (path, unsigned.text)
                assert unsigned.json()["code"] == "token_missing"
                forged = await anonymous.get(path, params=params, headers={"Authorization": "Bearer not.a.token"})
                assert forged.status_code == 401, (path, forged.text)

            # The coordinator is answered on every route.
            for path, params in ROUTES:
                allowed = await stats.http.get(path, params=params)
                assert allowed.status_code == 200, (path, allowed.text)

        denied = await count_rows(
            stats.database,
            "SELECT count(*) FROM audit_log WHERE actor_id = 'staff-hamborn-1' AND outcome = 'denied' AND status = 403",
        )
        assert denied == 2 * len(ROUTES)
        allowed = await count_rows(
            stats.database,
            "SELECT count(*) FROM audit_log WHERE actor_id = 'coordinator' AND outcome = 'allowed' "
            "AND action = 'figures.read'",
        )
        assert allowed >= len(ROUTES)
