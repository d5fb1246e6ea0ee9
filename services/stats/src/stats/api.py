"""Figures for coordinators and funders. Counts only; no person is identifiable here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from knotenpunkt.db import Database


def build_router(database: Database) -> APIRouter:
    router = APIRouter(tags=["figures"])

    @router.get("/figures", summary="Headline figures of the network")
    async def figures() -> dict[str, Any]:
        async with database.connection() as connection:
            persons = await connection.fetchval("SELECT count(*) FROM persons WHERE registered_at IS NOT NULL")
            open_cases = await connection.fetch(
                "SELECT service_line, office_id, count(*) AS cases FROM cases "
                "WHERE opened_at IS NOT NULL AND closed_at IS NULL "
                "GROUP BY service_line, office_id ORDER BY service_line, office_id"
            )
            consultations = await connection.fetchrow(
                "SELECT count(*) AS consultations, coalesce(sum(family_members_counselled), 0) AS family_members "
                "FROM consultations"
            )
            referrals = await connection.fetchrow(
                "SELECT count(sent_at) AS sent, count(accepted_at) AS accepted, count(declined_at) AS declined "
                "FROM referrals"
            )
        return {
            "persons_registered": persons,
            "open_cases": [dict(row) for row in open_cases],
            "open_cases_total": sum(row["cases"] for row in open_cases),
            "consultations": consultations["consultations"],
            "family_members_counselled": consultations["family_members"],
            "referrals": dict(referrals),
        }

    return router
