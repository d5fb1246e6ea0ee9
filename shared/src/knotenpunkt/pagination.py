"""Cursor pagination for list endpoints, written once for every service.

A page is ordered by (sort key, id), both descending or both ascending; the cursor is the
(sort key, id) of the last item of the page, base64url-encoded JSON. It is opaque to clients:
they pass `next_cursor` back unchanged. Keyset pagination (WHERE (key, id) < (cursor)) stays
correct when rows are added while someone pages, and costs the same on page 1 and page 1000,
which an OFFSET does not.

Usage in a query (descending):

    WHERE ($1::timestamptz IS NULL OR (opened_at, case_id) < ($1, $2)) ORDER BY opened_at DESC, case_id DESC
    LIMIT limit + 1

then `Page.of(rows, limit, key=lambda row: (row["opened_at"], row["case_id"]))`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from knotenpunkt.http import ApiError
from knotenpunkt.i18n import register_messages

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

register_messages(
    {
        "invalid_cursor": {
            "de": "Der Blätter-Cursor ist ungültig; bitte die Liste von vorn laden.",
            "en": "The page cursor is invalid; please load the list from the start.",
        },
    }
)

SortKey = str | int | float | datetime
T = TypeVar("T")


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: the sort key and id of its last item."""

    sort_key: SortKey
    id: str

    def encode(self) -> str:
        if isinstance(self.sort_key, datetime):
            # The type travels along so the key comes back as a datetime, not a string.
            key: dict[str, Any] = {"t": "datetime", "v": self.sort_key.isoformat()}
        else:
            key = {"t": "plain", "v": self.sort_key}
        raw = json.dumps({"k": key, "i": self.id}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, field: str = "cursor") -> Cursor:
        """Parse a cursor from a request; anything unreadable is a 422 on `field`, never a 500."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = json.loads(raw)
            key, item_id = data["k"], data["i"]
            if not isinstance(item_id, str):
                raise TypeError("id")
            if key["t"] == "datetime":
                sort_key: SortKey = datetime.fromisoformat(key["v"])
            elif key["t"] == "plain" and isinstance(key["v"], str | int | float):
                sort_key = key["v"]
            else:
                raise TypeError("key")
        except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
            raise ApiError(422, "validation_failed", fields=[(field, "invalid_cursor", {})]) from None
        return cls(sort_key, item_id)

    def id_as_uuid(self, field: str = "cursor") -> UUID:
        try:
            return UUID(self.id)
        except ValueError:
            raise ApiError(422, "validation_failed", fields=[(field, "invalid_cursor", {})]) from None


def decode_cursor(value: str | None, field: str = "cursor") -> Cursor | None:
    return None if value is None or value == "" else Cursor.decode(value, field)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (None on the last page)."""

    items: list[T]
    next_cursor: str | None

    @classmethod
    def of(cls, rows: Sequence[T], limit: int, key: Callable[[T], tuple[SortKey, Any]]) -> Page[T]:
        """`rows` were fetched with LIMIT limit + 1: an extra row means there is a next page."""
        items = list(rows[:limit])
        if len(rows) <= limit or not items:
            return cls(items, None)
        sort_key, item_id = key(items[-1])
        return cls(items, Cursor(sort_key, str(item_id)).encode())
