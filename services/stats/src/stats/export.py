"""Reports as CSV and XLSX. The XLSX writer is the few XML parts of an Office Open XML workbook
(no third-party dependency for one sheet type): inline strings and numbers, a sheet per table."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any
from xml.sax.saxutils import escape

from stats.reports import Report, Table
from stats.suppression import TOTAL

SUPPRESSED = "*"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _display(value: Any, hidden: bool) -> Any:
    if hidden:
        return SUPPRESSED
    return "" if value is None else value


def to_csv(report: Report) -> str:
    """Long format, one line per published value: table, row (cell or total), the keys of every
    table of the report, measure, value. Suppressed values are '*'."""
    keys: list[str] = []
    for table in report.tables:
        keys.extend(key for key in table.keys if key not in keys)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["report", "version", "year", "table", "row", *keys, "measure", "value"])
    for table in report.tables:
        for index in [*range(len(table.rows)), TOTAL]:
            source = table.total if index == TOTAL else table.rows[index]
            key_values = ["" if index == TOTAL else source.get(key, "") if key in table.keys else "" for key in keys]
            for column in table.columns:
                writer.writerow(
                    [
                        report.definition.name,
                        report.definition.version,
                        report.year,
                        table.id,
                        "total" if index == TOTAL else "cell",
                        *key_values,
                        column,
                        _display(source.get(column), (index, column) in table.hidden),
                    ]
                )
    return out.getvalue()


def _column_name(number: int) -> str:
    name = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        name = chr(65 + remainder) + name
    return name


def _cell(reference: str, value: Any) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    if isinstance(value, int | float):
        return f'<c r="{reference}"><v>{value}</v></c>'
    text = escape(str(value))
    return f'<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet(table: Table, total_label: str) -> str:
    header = [*table.keys, *table.columns]
    lines = [header]
    for index in [*range(len(table.rows)), TOTAL]:
        source = table.total if index == TOTAL else table.rows[index]
        keys = (
            [total_label if position == 0 else "" for position in range(len(table.keys))]
            if index == TOTAL
            else [source.get(key) for key in table.keys]
        )
        if index == TOTAL and not table.keys:
            keys = []
        values = [_display(source.get(column), (index, column) in table.hidden) for column in table.columns]
        lines.append([*keys, *values])
    rows_xml = []
    for number, line in enumerate(lines, start=1):
        cells = "".join(
            _cell(f"{_column_name(col)}{number}", value)
            for col, value in enumerate(line, start=1)
            if value is not None and value != ""
        )
        rows_xml.append(f'<row r="{number}">{cells}</row>')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{''.join(rows_xml)}</sheetData></worksheet>"
    )


def _sheet_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "sheet"
    candidate, number = base, 2
    while candidate in used:
        suffix = f"_{number}"
        candidate, number = base[: 31 - len(suffix)] + suffix, number + 1
    used.add(candidate)
    return candidate


def to_xlsx(report: Report) -> bytes:
    """One worksheet per table: keys and measures as columns, the total as the last row."""
    total_label = "Total" if report.language == "en" else "Insgesamt"
    used: set[str] = set()
    names = [_sheet_name(table.id, used) for table in report.tables]
    sheets = "".join(
        f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(names, start=1)
    )
    relations = "".join(
        f'<Relationship Id="rId{i}" Target="worksheets/sheet{i}.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        for i in range(1, len(names) + 1)
    )
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(names) + 1)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f"{overrides}</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<sheets>{sheets}</sheets></workbook>",
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{relations}</Relationships>",
        )
        for i, table in enumerate(report.tables, start=1):
            archive.writestr(f"xl/worksheets/sheet{i}.xml", _sheet(table, total_label))
    return buffer.getvalue()
