"""Reports from versioned definitions, as JSON, CSV and XLSX, with small-count suppression that
cannot be undone from the totals."""

from __future__ import annotations

import csv
import io
import re
import uuid
import zipfile
from datetime import UTC, date, datetime

import pytest

from knotenpunkt.envelope import Envelope
from knotenpunkt.events import CaseOpened, ClientRegistered, ConsultationRecorded
from knotenpunkt.events.common import AgeBand, ServiceLine
from tests.integration.test_stats_projection import stats_service

pytestmark = pytest.mark.integration

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def counselled(office: str, year: int, family: int = 0) -> list[Envelope]:
    """One MBE person registered, with a case and one consultation at the office in that year."""
    client, case = uuid.uuid4(), uuid.uuid4()
    at = datetime(year, 5, 4, 10, 0, tzinfo=UTC)
    events = [
        ClientRegistered(
            client_id=client,
            registered_at=at,
            age_band=AgeBand.AGE_27_44,
            service_line=ServiceLine.MBE,
            office_id=office,
        ),
        CaseOpened(client_id=client, case_id=case, service_line=ServiceLine.MBE, office_id=office, opened_at=at),
        ConsultationRecorded(
            client_id=client,
            consultation_id=uuid.uuid4(),
            case_id=case,
            service_line=ServiceLine.MBE,
            office_id=office,
            held_on=date(year, 5, 5),
            duration_minutes=60,
            topics=("work",),
            family_members_counselled=family,
        ),
    ]
    return [Envelope(event=event, source="test") for event in events]


def by_office(report: dict) -> dict:
    [table] = [t for t in report["tables"] if t["id"] == "by_office"]
    return table


async def test_reports_suppress_small_counts_and_what_would_reveal_them(infra, make_database) -> None:
    async with stats_service(infra, make_database) as stats:
        envelopes: list[Envelope] = []
        for office, persons in (("rsc-hamborn", 10), ("rsc-hochfeld", 3), ("rsc-rheinhausen", 7)):
            for _ in range(persons):
                envelopes += counselled(office, 2025)
        for _ in range(8):
            envelopes += counselled("rsc-hamborn", 2024, family=1)
        await stats.publish(envelopes)
        await stats.settled()

        answer = await stats.http.get("/reports/mbe-annual", params={"year": 2025})
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert (report["report"], report["version"], report["year"]) == ("mbe-annual", 1, 2025)
        assert report["suppression"]["threshold"] == 4

        table = by_office(report)
        rows = {row["office"]: row for row in table["rows"]}
        # 3 in Hochfeld is small: not published. Rheinhausen's 7 is hidden too, or 20 - 10 - 7 = 3.
        assert rows["rsc-hamborn"]["persons_counselled"] == 10
        assert rows["rsc-hochfeld"]["persons_counselled"] is None
        assert rows["rsc-rheinhausen"]["persons_counselled"] is None
        assert {"persons_counselled", "persons_reached"} <= set(rows["rsc-hochfeld"]["suppressed"])
        assert table["total"]["persons_counselled"] == 20
        # Growth against 2024 (8 persons in Hamborn), hidden where the count is.
        assert rows["rsc-hamborn"]["persons_counselled_growth_pct"] == 25.0
        assert rows["rsc-hochfeld"]["persons_counselled_growth_pct"] is None
        # No published cell of a line can be recomputed: every line hides none or at least two.
        for measure in ("persons_counselled", "consultations", "persons_reached"):
            hidden = [row for row in table["rows"] if measure in row["suppressed"]]
            assert len(hidden) != 1, measure

        # The same report as CSV (long format, '*' for suppressed) and as XLSX.
        as_csv = await stats.http.get("/reports/mbe-annual", params={"year": 2025, "format": "csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert 'filename="mbe-annual-2025-v1.csv"' in as_csv.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(as_csv.text)))
        cell = {
            (line["table"], line["office"], line["measure"]): line["value"] for line in lines if line["row"] == "cell"
        }
        assert cell[("by_office", "rsc-hochfeld", "persons_counselled")] == "*"
        assert cell[("by_office", "rsc-hamborn", "persons_counselled")] == "10"
        assert any(line["row"] == "total" and line["value"] == "20" for line in lines if line["table"] == "by_office")

        as_xlsx = await stats.http.get("/reports/mbe-annual", params={"year": 2025}, headers={"Accept": XLSX})
        assert as_xlsx.headers["content-type"] == XLSX
        with zipfile.ZipFile(io.BytesIO(as_xlsx.content)) as workbook:
            sheets = re.findall(r'<sheet name="([^"]+)"', workbook.read("xl/workbook.xml").decode())
            assert "by_office" in sheets and "overview" in sheets
            sheet = workbook.read(f"xl/worksheets/sheet{sheets.index('by_office') + 1}.xml").decode()
        assert "rsc-hochfeld" in sheet and '<t xml:space="preserve">*</t>' in sheet and "<v>10</v>" in sheet

        # Accept: text/csv chooses CSV too.
        negotiated = await stats.http.get("/reports/kim-council", params={"year": 2025}, headers={"Accept": "text/csv"})
        assert negotiated.headers["content-type"].startswith("text/csv")

        # The threshold is configuration: 0 publishes everything.
        async with stats.client(threshold=0) as unsuppressed:
            open_table = by_office((await unsuppressed.get("/reports/mbe-annual", params={"year": 2025})).json())
        assert {row["office"]: row["persons_counselled"] for row in open_table["rows"]} == {
            "rsc-hamborn": 10,
            "rsc-hochfeld": 3,
            "rsc-rheinhausen": 7,
        }


async def test_report_requests_that_cannot_be_answered(infra, make_database) -> None:
    async with stats_service(infra, make_database) as stats:
        listing = (await stats.http.get("/reports")).json()
        assert {r["name"] for r in listing} == {"mbe-annual", "jmd-annual", "kim-council"}

        unknown = await stats.http.get("/reports/bamf-secret", params={"year": 2025})
        assert unknown.status_code == 404
        assert "mbe-annual" in unknown.json()["message"]

        no_year = await stats.http.get("/reports/mbe-annual")
        bad_year = await stats.http.get(
            "/reports/mbe-annual", params={"year": "letztes"}, headers={"Accept-Language": "en"}
        )
        bad_format = await stats.http.get("/reports/mbe-annual", params={"year": 2025, "format": "pdf"})
        assert no_year.status_code == bad_year.status_code == bad_format.status_code == 422
        assert no_year.json()["errors"][0] == {
            "field": "year",
            "code": "missing",
            "message": "Dieses Feld ist erforderlich.",
        }
        assert bad_year.json()["errors"][0]["message"] == "Please give a whole number."
        [error] = bad_format.json()["errors"]
        assert error["field"] == "format" and "json, csv, xlsx" in error["message"]
