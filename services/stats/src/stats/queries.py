"""Counting: runs a Query against the read models (one SELECT per fact) and assembles rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg

from stats.measures import (
    MEASURES,
    Query,
    fact_sql,
    growth_pct,
    period_before,
    period_label,
    previous_label,
    sql_measures,
)
from stats.suppression import Cell, hide_growth, suppress

Row = dict[str, Any]


async def count(connection: asyncpg.Connection, query: Query) -> list[Row]:
    """Rows of key columns (period, dimensions) and every measure of the query, plus the
    measures they are computed from (components, ratio parts, suppression bases)."""
    needed = sql_measures(query.measures)
    by_fact: dict[str, list[str]] = {}
    for name in needed:
        by_fact.setdefault(MEASURES[name].fact, []).append(name)  # type: ignore[arg-type]
    keys = query.keys
    rows: dict[tuple[Any, ...], Row] = {}
    for fact, names in by_fact.items():
        sql, args = fact_sql(fact, names, query)
        for record in await connection.fetch(sql, *args):
            key = tuple(record[i] for i in range(len(keys)))
            row = rows.setdefault(key, dict(zip(keys, key, strict=True)))
            for offset, name in enumerate(names):
                row[name] = record[len(keys) + offset]
    result = [complete(row, query.measures) for _, row in sorted(rows.items(), key=lambda item: _sort_key(item[0]))]
    if not keys and not result:
        # A total over nothing is a row of zeros, not no row at all.
        result = [complete({}, query.measures)]
    return result


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if value is None else str(value) for value in key)


def complete(row: Row, measures: tuple[str, ...]) -> Row:
    """Fill in what the SQL did not count: zeros, sums of components, ratios, rounding."""
    names = list(dict.fromkeys([*sql_measures(measures), *measures]))
    for name in names:
        measure = MEASURES[name]
        if measure.sql is not None:
            value = row.get(name)
            if value is None and measure.additive:
                value = 0
            row[name] = _rounded(value, measure.decimals)
    for name in names:
        measure = MEASURES[name]
        if measure.components:
            row[name] = sum(row[part] or 0 for part in measure.components)
        elif measure.ratio:
            numerator, denominator = (row.get(part) for part in measure.ratio)
            ratio = numerator / denominator if numerator is not None and denominator else None
            row[name] = _rounded(ratio, measure.decimals)
    return row


def _rounded(value: Any, decimals: int) -> Any:
    if isinstance(value, float):
        return round(value, decimals)
    if value is not None and not isinstance(value, int):  # numeric
        return round(float(value), decimals)
    return value


async def total(connection: asyncpg.Connection, query: Query) -> Row:
    """The query's measures over all its rows (no breakdown, no period): what a query without
    `by` publishes, so what secondary suppression must keep a hidden cell from being computed from."""
    [row] = await count(
        connection, Query(measures=query.measures, start=query.start, end=query.end, filters=query.filters)
    )
    return row


async def suppressed(
    connection: asyncpg.Connection, query: Query, threshold: int, growth: bool = False
) -> tuple[list[Row], set[Cell]]:
    """The rows of `count` and the cells not to publish (small-count suppression against the
    query's total). With `growth`, every row also gets `<measure>_growth_pct` against the
    previous period (the period before the first one is counted too, then left out); a growth
    rate is hidden with its cell and with the cell it is compared with, as that period's own
    answer would hide it."""
    if not growth:
        rows = await count(connection, query)
        return rows, suppress(rows, await total(connection, query), query.keys, query.measures, threshold)
    if query.period is None or query.start is None:
        raise ValueError("growth needs a period and a start")
    earlier_start = period_before(query.period, query.start)
    counted = await count(connection, replace(query, start=earlier_start))
    first = period_label(query.period, query.start)
    # The first period's row is recounted from the earlier start (as before): it is the one published.
    rows = [row for row in counted if row["period"] >= first]
    earlier = [row for row in counted if row["period"] < first]
    hidden = suppress(rows, await total(connection, query), query.keys, query.measures, threshold)
    earlier_query = replace(query, start=earlier_start, end=query.start - timedelta(days=1))
    earlier_hidden = suppress(earlier, await total(connection, earlier_query), query.keys, query.measures, threshold)
    index: dict[tuple[Any, ...], tuple[int, Row, set[Cell]]] = {}
    for position, row in enumerate(earlier):
        index[tuple(row[key] for key in query.keys)] = (position, row, earlier_hidden)
    for position, row in enumerate(rows):
        index[tuple(row[key] for key in query.keys)] = (position, row, hidden)
    previous: list[tuple[int, Row, set[Cell]] | None] = []
    for row in rows:
        before = index.get((previous_label(query.period, row["period"]), *(row[key] for key in query.by)))
        previous.append(before)
        for name in query.measures:
            row[f"{name}_growth_pct"] = growth_pct(row.get(name), before[1].get(name, 0) if before else 0)
    hide_growth(rows, hidden, previous, query.measures)
    return rows, hidden
