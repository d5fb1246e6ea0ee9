"""Reports are data: versioned definitions (stats/reports/*.json) naming measures and breakdowns.

A definition is checked against the catalogue when it is loaded (a typo in a measure fails at
startup and in the tests, not in front of a funder). Building a report counts every table for
the year (and the year before, for growth), then applies small-count suppression.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stats.measures import MEASURES, PERIODS, Query, allowed_dimensions, growth_pct, periodic, query_problems
from stats.queries import Row, count
from stats.suppression import RULE, TOTAL, published_row, suppress

DEFINITIONS = Path(__file__).parent / "reports"


class Texts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    de: str
    en: str

    def pick(self, language: str) -> str:
        return self.en if language == "en" else self.de


class TableDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: Texts
    measures: tuple[str, ...] = Field(min_length=1)
    by: tuple[str, ...] = ()
    period: str | None = None
    # Growth in percent against the same cell of the previous year.
    growth: bool = False
    # A snapshot of now (caseload), not counted for the year.
    snapshot: bool = False


class ReportDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9-]+$")
    version: int = Field(ge=1)
    title: Texts
    description: Texts
    filters: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    tables: tuple[TableDefinition, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_to_the_catalogue(self) -> ReportDefinition:
        problems = []
        for table in self.tables:
            unknown = [m for m in table.measures if m not in MEASURES]
            if unknown:
                problems.append(f"{table.id}: unknown measures {unknown}")
                continue
            allowed = allowed_dimensions(table.measures)
            for name in (*table.by, *self.filters):
                # A snapshot table is not filtered by a dimension it does not have (e.g. staff).
                if name not in allowed and not (table.snapshot and name in self.filters):
                    problems.append(f"{table.id}: dimension {name!r} not allowed (allowed: {allowed})")
            if table.period is not None and table.period not in PERIODS:
                problems.append(f"{table.id}: unknown period {table.period!r}")
            if table.snapshot == periodic(table.measures):
                problems.append(f"{table.id}: snapshot must be true exactly for measures without a period")
            if table.snapshot and (table.growth or table.period):
                problems.append(f"{table.id}: a snapshot has no growth and no period")
        if len({t.id for t in self.tables}) != len(self.tables):
            problems.append("table ids must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_definitions(folder: Path = DEFINITIONS) -> dict[str, ReportDefinition]:
    definitions = {}
    for path in sorted(folder.glob("*.json")):
        definition = ReportDefinition.model_validate(json.loads(path.read_text()))
        if definition.name != path.stem:
            raise ValueError(f"{path.name} defines report {definition.name!r}; the file name must match")
        definitions[definition.name] = definition
    return definitions


@dataclass
class Table:
    id: str
    title: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    rows: list[Row]
    total: Row
    # (row index or TOTAL, column) not to publish.
    hidden: set[tuple[int, str]] = field(default_factory=set)

    def cell(self, index: int, column: str) -> Any:
        """The published value of a cell: None where suppressed."""
        if (index, column) in self.hidden:
            return None
        return (self.total if index == TOTAL else self.rows[index]).get(column)


@dataclass
class Report:
    definition: ReportDefinition
    year: int
    language: str
    threshold: int
    tables: list[Table]

    def as_json(self) -> dict[str, Any]:
        return {
            "report": self.definition.name,
            "version": self.definition.version,
            "title": self.definition.title.pick(self.language),
            "description": self.definition.description.pick(self.language),
            "year": self.year,
            "filters": {name: list(values) for name, values in self.definition.filters.items()},
            "suppression": {
                "threshold": self.threshold,
                "rule": RULE,
            },
            "tables": [
                {
                    "id": table.id,
                    "title": table.title,
                    "keys": list(table.keys),
                    "columns": list(table.columns),
                    "rows": [_published_row(table, index) for index in range(len(table.rows))],
                    "total": _published_row(table, TOTAL),
                }
                for table in self.tables
            ],
        }


def _published_row(table: Table, index: int) -> dict[str, Any]:
    source = table.total if index == TOTAL else table.rows[index]
    return published_row(source, index, table.keys, table.columns, table.hidden)


async def build(
    connection: asyncpg.Connection,
    definition: ReportDefinition,
    year: int,
    threshold: int,
    language: str = "de",
) -> Report:
    tables = [await _table(connection, definition, table, year, threshold, language) for table in definition.tables]
    return Report(definition, year, language, threshold, tables)


async def _counted(
    connection: asyncpg.Connection, definition: ReportDefinition, table: TableDefinition, year: int, threshold: int
) -> tuple[list[Row], Row, set[tuple[int, str]]]:
    filters = {} if table.snapshot else dict(definition.filters)
    start, end = (None, None) if table.snapshot else (date(year, 1, 1), date(year, 12, 31))
    query = Query(measures=table.measures, by=table.by, period=table.period, start=start, end=end, filters=filters)
    problems = query_problems(query)
    if problems:  # the definitions are checked at load time; this is a guard against drift
        raise ValueError(f"report table {table.id} cannot be counted: {problems}")
    rows = await count(connection, query)
    [total] = await count(connection, Query(measures=table.measures, start=start, end=end, filters=filters))
    hidden = suppress(rows, total, query.keys, table.measures, threshold)
    return rows, total, hidden


async def _table(
    connection: asyncpg.Connection,
    definition: ReportDefinition,
    table: TableDefinition,
    year: int,
    threshold: int,
    language: str,
) -> Table:
    rows, total, hidden = await _counted(connection, definition, table, year, threshold)
    keys = (("period",) if table.period else ()) + table.by
    columns: list[str] = list(table.measures)
    if table.growth:
        previous = await _counted(connection, definition, table, year - 1, threshold)
        previous_rows, previous_total, previous_hidden = previous
        previous_index = {tuple(row.get(k) for k in keys): i for i, row in enumerate(previous_rows)}
        for name in table.measures:
            column = f"{name}_growth_pct"
            columns.append(column)
            for index, row in [*enumerate(rows), (TOTAL, total)]:
                before = TOTAL if index == TOTAL else previous_index.get(tuple(row.get(k) for k in keys))
                before_row = previous_total if before == TOTAL else previous_rows[before] if before is not None else {}
                row[column] = growth_pct(row.get(name), before_row.get(name, 0))
                # A growth rate and one published value give the other back: hide it with either.
                if (index, name) in hidden or (before is not None and (before, name) in previous_hidden):
                    hidden.add((index, column))
    return Table(table.id, table.title.pick(language), keys, tuple(columns), rows, total, hidden)
