"""Counting: runs a Query against the read models (one SELECT per fact) and assembles rows."""

from __future__ import annotations

from dataclasses import replace
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


async def count_with_growth(connection: asyncpg.Connection, query: Query) -> list[Row]:
    """Like `count`, with `<measure>_growth_pct` against the previous period for every measure
    (the period before the first one is counted too, then left out)."""
    if query.period is None or query.start is None:
        raise ValueError("growth needs a period and a start")
    earlier = replace(query, start=period_before(query.period, query.start))
    rows = await count(connection, earlier)
    index = {tuple(row[key] for key in query.keys): row for row in rows}
    first = period_label(query.period, query.start)
    result = []
    for row in rows:
        if row["period"] < first:
            continue
        previous_key = (previous_label(query.period, row["period"]), *(row[key] for key in query.by))
        previous = index.get(previous_key, {})
        for name in query.measures:
            row[f"{name}_growth_pct"] = growth_pct(row.get(name), previous.get(name, 0))
        result.append(row)
    return result
