"""Rebuilding the stats read models from offset 0 into fresh tables, swapped in while the live
consumer keeps running: the rebuilt figures equal the live ones, and nothing is lost."""

from __future__ import annotations

import asyncio
import io

import pytest

from knotenpunkt.testing.fixtures import eventually
from stats.rebuild import rebuild
from tests.bench.stats_stream import count, stream
from tests.integration.test_stats_projection import Stats, stats_service

pytestmark = pytest.mark.integration


async def snapshot(stats: Stats) -> dict:
    """Everything a reader can see: headline figures, every report for two years, breakdowns."""
    seen = {"figures": await stats.figures()}
    for name in ("mbe-annual", "jmd-annual", "kim-council"):
        for year in (2024, 2025):
            answer = await stats.http.get(f"/reports/{name}", params={"year": year})
            assert answer.status_code == 200, answer.text
            seen[f"{name}/{year}"] = answer.json()
    query = {"measures": "cases_open,consultations,persons_reached,unique_persons", "by": "office", "period": "quarter"}
    seen["query"] = (await stats.http.get("/figures/query", params=query)).json()
    return seen


async def created_at(stats: Stats) -> object:
    async with stats.database.connection() as connection:
        return await connection.fetchval("SELECT created_at FROM readmodel.read_model_info")


async def test_rebuilt_figures_equal_the_live_ones(infra, make_database) -> None:
    async with stats_service(infra, make_database) as stats:
        await stats.publish(list(stream(2500, seed=21)))
        await stats.settled()
        live = await snapshot(stats)
        live_tables_from = await created_at(stats)

        progress = io.StringIO()
        result = await rebuild(stats.settings, topic_names=tuple(stats.names.values()), progress_out=progress)

        assert result.events == stats.published
        assert "100.0%" in progress.getvalue()
        # Fresh tables are live now, and they say the same as the ones they replaced.
        assert await created_at(stats) != live_tables_from
        assert await snapshot(stats) == live


async def test_events_arriving_during_a_rebuild_are_neither_lost_nor_doubled(infra, make_database) -> None:
    envelopes = list(stream(4000, seed=22))
    first, later = envelopes[:2500], envelopes[2500:]
    async with stats_service(infra, make_database) as stats:
        await stats.publish(first)
        await stats.settled()

        # The live consumer keeps consuming what arrives while the rebuild runs and swaps.
        publishing = asyncio.create_task(stats.publish(later))
        await rebuild(stats.settings, topic_names=tuple(stats.names.values()), progress_out=None)
        await publishing
        await stats.settled()

        expected = count(envelopes)

        async def complete() -> dict | None:
            figures = await stats.figures()
            return figures if figures["consultations"] == expected.consultations else None

        figures = await eventually(complete)
        assert figures["persons_registered"] == expected.persons
        assert figures["cases_opened"] == expected.cases_opened
        assert figures["family_members_counselled"] == expected.family_members
        assert figures["referrals"]["sent"] == expected.referrals_sent
        assert figures["unmet_needs"] == expected.unmet_needs
