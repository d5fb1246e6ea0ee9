"""CSV and XLSX renderings of a report: suppressed cells as '*', a sheet per table."""

from __future__ import annotations

import csv
import io
import zipfile
from xml.etree import ElementTree

from stats.export import to_csv, to_xlsx
from stats.reports import Report, Table, load_definitions
from stats.suppression import TOTAL

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def report() -> Report:
    table = Table(
        id="by_office",
        title="Nach Beratungsstelle",
        keys=("office",),
        columns=("cases_new",),
        rows=[{"office": "rsc-hamborn & co", "cases_new": 10}, {"office": "rsc-hochfeld", "cases_new": 3}],
        total={"cases_new": 13},
        hidden={(1, "cases_new"), (TOTAL, "cases_new")},
    )
    overview = Table("overview", "Überblick", (), ("consultations",), [], {"consultations": 120})
    return Report(load_definitions()["mbe-annual"], 2025, "de", 4, [overview, table])


def test_csv_is_long_format_with_stars_for_suppressed_values() -> None:
    lines = list(csv.DictReader(io.StringIO(to_csv(report()))))
    assert lines[0] == {
        "report": "mbe-annual",
        "version": "1",
        "year": "2025",
        "table": "overview",
        "row": "total",
        "office": "",
        "measure": "consultations",
        "value": "120",
    }
    values = {(line["office"], line["row"]): line["value"] for line in lines if line["table"] == "by_office"}
    assert values == {("rsc-hamborn & co", "cell"): "10", ("rsc-hochfeld", "cell"): "*", ("", "total"): "*"}


def test_xlsx_is_a_workbook_with_a_sheet_per_table() -> None:
    with zipfile.ZipFile(io.BytesIO(to_xlsx(report()))) as workbook:
        names = [
            sheet.get("name") for sheet in ElementTree.fromstring(workbook.read("xl/workbook.xml")).iter(f"{MAIN}sheet")
        ]
        assert names == ["overview", "by_office"]
        sheet = ElementTree.fromstring(workbook.read("xl/worksheets/sheet2.xml"))
        assert "xl/_rels/workbook.xml.rels" in workbook.namelist() and "[Content_Types].xml" in workbook.namelist()
    cells = {cell.get("r"): (cell.findtext(f"{MAIN}v") or "".join(cell.itertext())) for cell in sheet.iter(f"{MAIN}c")}
    assert cells == {
        "A1": "office",
        "B1": "cases_new",
        "A2": "rsc-hamborn & co",
        "B2": "10",
        "A3": "rsc-hochfeld",
        "B3": "*",
        "A4": "Insgesamt",
        "B4": "*",
    }
