"""Small-count suppression for published tables (pure functions, no database).

Primary: a count from 1 to `threshold` (4 by default) is not published, a zero is.
Secondary: a suppressed cell must not be computable from what is published. Every line of a
table (the cells that differ in one dimension only, which add up to a marginal total that this
or another table may publish) and the table as a whole (which adds up to the published total)
holds either no suppressed cell or at least two; where only one would be, the smallest other
positive cell of that line is suppressed as well. If there is none, the total is suppressed.
Sums follow their parts: persons reached (= persons counselled + family members) is suppressed
when a part is, and a suppressed sum hides one of its parts. Non-additive figures (medians,
ratios) are suppressed with the count they are computed from.

Cells are addressed as (row index, measure); the total row has index TOTAL.

Every figure the API answers goes through here, reports and the free query (`/figures/query`)
alike, and the headline figures (`/figures`) too: a count of one person is a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stats.measures import MEASURES

TOTAL = -1
Cell = tuple[int, str]

RULE = (
    "counts from 1 to the threshold, and the cells that would let them be computed back, "
    "are published as null and listed in `suppressed`"
)


def small(value: Any, threshold: int) -> bool:
    """A count that is not published on its own (primary suppression)."""
    return isinstance(value, int | float) and 0 < value <= threshold


def suppress(
    rows: Sequence[Mapping[str, Any]],
    total: Mapping[str, Any],
    keys: Sequence[str],
    measures: Sequence[str],
    threshold: int,
) -> set[Cell]:
    """The cells not to publish."""
    if threshold <= 0:
        return set()
    additive = [name for name in _with_bases(measures) if MEASURES[name].additive]

    def value(index: int, name: str) -> Any:
        return (total if index == TOTAL else rows[index]).get(name)

    hidden: set[Cell] = set()
    indices = [*range(len(rows)), TOTAL]
    for name in additive:
        for index in indices:
            v = value(index, name)
            if isinstance(v, int | float) and 0 < v <= threshold:
                hidden.add((index, name))

    groups = _groups(rows, keys)
    changed = True
    while changed:
        changed = False
        for name in additive:
            measure = MEASURES[name]
            for index in indices:
                if measure.components:
                    parts = [(index, part) for part in measure.components]
                    if any(part in hidden for part in parts) and (index, name) not in hidden:
                        hidden.add((index, name))
                        changed = True
                    if (index, name) in hidden and not any(part in hidden for part in parts):
                        positive = [part for part in parts if (value(*part) or 0) > 0] or parts
                        hidden.add(min(positive, key=lambda part: value(*part) or 0))
                        changed = True
            for group, is_whole_table in groups:
                members = [index for index in group if (index, name) in hidden]
                if len(members) != 1 or (is_whole_table and (TOTAL, name) in hidden):
                    continue
                candidates = [i for i in group if (i, name) not in hidden and (value(i, name) or 0) > 0]
                if candidates:
                    hidden.add((min(candidates, key=lambda i: value(i, name)), name))
                    changed = True
                elif is_whole_table and (TOTAL, name) not in hidden and rows:
                    # Only zeros beside it: the total would give the cell away.
                    hidden.add((TOTAL, name))
                    changed = True
    for name in measures:
        measure = MEASURES[name]
        if measure.additive or measure.base is None:
            continue
        for index in indices:
            base = value(index, measure.base)
            if (index, measure.base) in hidden or (isinstance(base, int | float) and 0 < base <= threshold):
                hidden.add((index, name))
    return hidden


def hide_growth(
    rows: Sequence[Mapping[str, Any]],
    hidden: set[Cell],
    previous: Sequence[tuple[int, Mapping[str, Any], set[Cell]] | None],
    measures: Sequence[str],
) -> None:
    """Hide `<measure>_growth_pct` where the cell or the cell it is compared with is hidden:
    a growth rate and one value give the other back. `previous[i]` is the previous period's
    cell of row i as (its index, its row, the hidden cells of the answer it belongs to), or None.
    Adds to `hidden` in place."""
    for index, row in enumerate(rows):
        before = previous[index]
        for name in measures:
            column = f"{name}_growth_pct"
            if column not in row:
                continue
            if (index, name) in hidden or (before is not None and (before[0], name) in before[2]):
                hidden.add((index, column))


def published_row(
    source: Mapping[str, Any], index: int, keys: Sequence[str], columns: Sequence[str], hidden: set[Cell]
) -> dict[str, Any]:
    """A row as published: its keys, its columns (None where hidden) and `suppressed`, the list
    of the columns published as None."""
    row: dict[str, Any] = {key: source.get(key) for key in keys}
    row.update({column: None if (index, column) in hidden else source.get(column) for column in columns})
    row["suppressed"] = [column for column in columns if (index, column) in hidden]
    return row


def _with_bases(measures: Sequence[str]) -> list[str]:
    names = list(measures)
    for name in measures:
        measure = MEASURES[name]
        for extra in (*measure.components, *(measure.ratio or ()), *((measure.base,) if measure.base else ())):
            if extra not in names:
                names.append(extra)
    return names


def _groups(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[tuple[list[int], bool]]:
    """Lines of the table (cells sharing all keys but one) and the whole table."""
    groups: list[tuple[list[int], bool]] = []
    if not rows:
        return groups
    groups.append((list(range(len(rows))), True))
    if len(keys) >= 2:
        for free in keys:
            lines: dict[tuple[Any, ...], list[int]] = {}
            for index, row in enumerate(rows):
                lines.setdefault(tuple(row.get(k) for k in keys if k != free), []).append(index)
            groups.extend((members, False) for members in lines.values() if len(members) > 1)
    return groups
