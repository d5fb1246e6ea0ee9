"""Helpers for set-based statements over a batch of events."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

E = TypeVar("E")

# Arrays of arrays cannot be unnested row by row in PostgreSQL; code lists travel joined with
# the ASCII unit separator (never part of a code) and are split again in SQL.
SEPARATOR = "\x1f"
SPLIT = "string_to_array({}, E'\\x1f')"


def joined(values: Iterable[str] | None) -> str | None:
    return None if values is None else SEPARATOR.join(values)


def rounds(events: Sequence[E], key: Callable[[E], Hashable]) -> Iterator[list[E]]:
    """Split a batch so that no key occurs twice in one statement (ON CONFLICT DO UPDATE
    cannot touch a row twice); the k-th event of a key goes into round k, keeping log order."""
    pending: list[list[E]] = []
    seen: dict[Hashable, int] = {}
    for event in events:
        k = key(event)
        index = seen.get(k, 0)
        seen[k] = index + 1
        if index == len(pending):
            pending.append([])
        pending[index].append(event)
    yield from pending


def columns(events: Sequence[E], *getters: Callable[[E], Any]) -> list[list[Any]]:
    """Column arrays for unnest(), one list per getter."""
    return [[getter(event) for event in events] for getter in getters]


def transposed(rows: Iterable[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """Rows (one tuple per event) as column arrays for unnest(); cheaper than a getter per column."""
    cols = list(zip(*rows, strict=True))
    return cols or [() for _ in range(width)]
