"""The gap register answers no count small enough to point at a person (issue 9, item 8)."""

from __future__ import annotations

from typing import Any

from referrals.queries import gaps


class Rows:
    """A connection that answers the gap query with fixed rows."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def fetch(self, *_args: Any) -> list[dict[str, Any]]:
        return self.rows


def row(count: int, topic: str) -> dict[str, Any]:
    return {
        "topic_code": topic,
        "agency_kind": "jugendamt",
        "office_id": "rsc-hamborn",
        "period": "2026-11",
        "cause": "no_capacity",
        "count": count,
    }


async def test_counts_up_to_the_threshold_are_suppressed_larger_ones_answered() -> None:
    answered = await gaps(
        Rows([row(1, "family"), row(4, "school"), row(5, "housing")]), None, None, None, None, None, 4
    )  # type: ignore[arg-type]
    assert [(g.topic_code, g.count, g.suppressed) for g in answered] == [
        ("family", None, True),
        ("school", None, True),
        ("housing", 5, False),
    ]


async def test_threshold_zero_answers_every_count() -> None:
    answered = await gaps(Rows([row(1, "family")]), None, None, None, None, None, 0)  # type: ignore[arg-type]
    assert [(g.count, g.suppressed) for g in answered] == [(1, False)]
