"""The shared helpers cases builds on: cursor pagination and optimistic concurrency."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from knotenpunkt.concurrency import check_version, etag, parse_if_match
from knotenpunkt.errors import DomainError
from knotenpunkt.http import ApiError
from knotenpunkt.pagination import Cursor, Page, decode_cursor

# --- cursors ---------------------------------------------------------------------------------


def test_a_cursor_round_trips_a_datetime_key_and_an_id() -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    item = uuid.uuid4()
    cursor = Cursor.decode(Cursor(moment, str(item)).encode())
    assert cursor.sort_key == moment
    assert cursor.id_as_uuid() == item


def test_a_cursor_round_trips_a_plain_key() -> None:
    assert Cursor.decode(Cursor("work", "x").encode()) == Cursor("work", "x")


@pytest.mark.parametrize(
    "garbage",
    ["not base64 at all!", base64.urlsafe_b64encode(b"{}").decode(), base64.urlsafe_b64encode(b"[1]").decode(), "e30"],
)
def test_an_unreadable_cursor_is_a_422_on_the_cursor_field(garbage: str) -> None:
    with pytest.raises(ApiError) as raised:
        Cursor.decode(garbage)
    assert raised.value.status_code == 422
    assert raised.value.fields == [("cursor", "invalid_cursor", {})]


def test_no_cursor_means_the_first_page() -> None:
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


def test_a_page_has_a_next_cursor_only_when_more_rows_were_found() -> None:
    rows = [(3, "c"), (2, "b"), (1, "a")]
    full = Page.of(rows, 2, key=lambda row: row)
    assert full.items == [(3, "c"), (2, "b")]
    assert Cursor.decode(full.next_cursor) == Cursor(2, "b")
    last = Page.of(rows[:2], 2, key=lambda row: row)
    assert last.next_cursor is None


# --- versions --------------------------------------------------------------------------------


def test_an_etag_is_the_quoted_version_and_if_match_reads_it_back() -> None:
    assert etag(7) == '"7"'
    assert parse_if_match(etag(7)).matches(7)


@pytest.mark.parametrize("header", ['"4"', 'W/"4"', "4", '"1", "4"', "*"])
def test_if_match_accepts_the_usual_spellings(header: str) -> None:
    check_version(header, 4, required=True)


def test_a_stale_version_is_a_409_that_names_both_versions() -> None:
    with pytest.raises(DomainError) as raised:
        check_version('"3"', 4, required=True, what={"de": "Der Fall", "en": "The case"})
    assert raised.value.status_code == 409
    assert raised.value.code == "version_conflict"
    assert (raised.value.params["current"], raised.value.params["given"]) == (4, "3")


def test_a_missing_if_match_is_428_when_required_and_fine_when_not() -> None:
    with pytest.raises(DomainError) as raised:
        check_version(None, 4, required=True)
    assert raised.value.status_code == 428
    check_version(None, 4, required=False)


def test_an_unreadable_if_match_is_a_422_on_the_header() -> None:
    with pytest.raises(DomainError) as raised:
        check_version('"four"', 4, required=False)
    assert raised.value.status_code == 422
    assert raised.value.fields[0][:2] == ("If-Match", "if_match_invalid")
