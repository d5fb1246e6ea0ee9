"""Stats as a process in the running system: reports in three formats, clear 422s, and the
rebuild command run beside the live service."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import zipfile
from datetime import date

import httpx
import pytest

from knotenpunkt.testing.fixtures import eventually
from tests.e2e.support import settled
from tools.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def register(http: httpx.AsyncClient, stack: Stack, number: int) -> str:
    response = await http.post(
        f"{stack.url('intake')}/clients",
        json={
            "family_name": f"Report{number}",
            "given_name": "Test",
            "birth_date": "1985-02-01",
            "office_id": "rsc-hochfeld",
            # Same birth date, similar names: new people on purpose, not duplicates.
            "confirm_new": True,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


async def stable_figures(http: httpx.AsyncClient, stack: Stack) -> dict:
    """The figures once every service has caught up (earlier tests' events included)."""
    await eventually(lambda: settled(stack), timeout_s=60)
    return (await http.get(f"{stack.url('stats')}/figures")).json()


async def test_reports_in_json_csv_and_xlsx_and_the_rebuild_command(stack: Stack, identity) -> None:
    year = date.today().year
    async with httpx.AsyncClient(timeout=30, auth=identity.auth("lead-hochfeld")) as http:
        await asyncio.gather(*(register(http, stack, n) for n in range(3)))
        before = await stable_figures(http, stack)

        as_json = await http.get(f"{stack.url('stats')}/reports/kim-council", params={"year": year})
        assert as_json.status_code == 200, as_json.text
        assert {t["id"] for t in as_json.json()["tables"]} >= {"by_service_line", "referral_funnel", "gap_register"}
        as_csv = await http.get(f"{stack.url('stats')}/reports/mbe-annual", params={"year": year, "format": "csv"})
        assert as_csv.status_code == 200 and as_csv.text.startswith("report,version,year,table,row")
        as_xlsx = await http.get(
            f"{stack.url('stats')}/reports/jmd-annual", params={"year": year}, headers={"Accept": XLSX}
        )
        assert as_xlsx.status_code == 200
        assert "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(as_xlsx.content)).namelist()

        unknown = await http.get(f"{stack.url('stats')}/figures/query", params={"measures": "cases_new", "by": "shoe"})
        assert unknown.status_code == 422
        assert "office" in unknown.json()["errors"][0]["message"]

        # The operator's rebuild, beside the running service: fresh tables, the same figures.
        env = {
            **os.environ,
            "KP_DATABASE_URL": stack.dsns["stats"],
            "KP_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "KP_LOG_LEVEL": "WARNING",
        }
        rebuilt = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "stats.rebuild"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "swapped in" in rebuilt.stdout and "100.0%" in rebuilt.stderr
        assert await stable_figures(http, stack) == before

        # The live consumer goes on after the swap.
        await register(http, stack, 99)

        async def counted() -> bool:
            now = (await http.get(f"{stack.url('stats')}/figures")).json()
            return now["persons_registered"] == before["persons_registered"] + 1

        await eventually(counted)
