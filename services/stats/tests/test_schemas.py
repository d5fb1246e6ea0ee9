"""The response models of the stats API: they keep the JSON as it was, and document every field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
from fastapi import FastAPI, Request, Response

from knotenpunkt.db import Database
from knotenpunkt.http import install_error_handlers
from knotenpunkt.uow import Actor
from stats import measures
from stats.api import build_router
from stats.reports import Report, Table, load_definitions
from stats.schemas import FiguresQueryResult, ReportAnswer
from stats.suppression import TOTAL


def app(actor: Actor | None = None) -> FastAPI:
    """The routes without a database: enough for the OpenAPI document and the routes that read no
    table. The actor stands in for the authentication middleware (the integration tests use
    Keycloak's tokens)."""
    application = FastAPI()
    install_error_handlers(application)
    application.include_router(build_router(cast(Database, None), load_definitions(), 4))

    @application.middleware("http")
    async def signed_in(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.actor = actor or Actor.staff("coordinator", "coordinator")
        return await call_next(request)

    return application


def test_query_rows_keep_their_keys_types_and_order() -> None:
    rows: list[dict[str, Any]] = [
        {
            "period": "2025-Q1",
            "office": "rsc-hamborn",
            "cases_new": None,
            "hours": 12.0,
            "cases_new_growth_pct": None,
            "suppressed": ["cases_new", "cases_new_growth_pct"],
        },
        {
            "period": "2025-Q2",
            "office": None,
            "cases_new": 0,
            "hours": 0.5,
            "cases_new_growth_pct": -12.5,
            "suppressed": [],
        },
    ]
    answer = {
        "measures": ["cases_new", "hours"],
        "keys": ["period", "office"],
        "rows": rows,
        "suppression": {"threshold": 4, "rule": "counts from 1 to 4"},
    }
    dumped = FiguresQueryResult.model_validate(answer).model_dump(mode="json")
    assert dumped == answer
    assert [list(row) for row in dumped["rows"]] == [list(row) for row in rows]
    assert [type(v) for row in dumped["rows"] for v in row.values()] == [type(v) for row in rows for v in row.values()]


def test_a_report_answer_is_the_report_as_json() -> None:
    table = Table(
        id="by_office",
        title="Nach Beratungsstelle",
        keys=("office",),
        columns=("cases_new", "cases_new_growth_pct"),
        rows=[
            {"office": "rsc-hamborn", "cases_new": 10, "cases_new_growth_pct": 25.0},
            {"office": "rsc-hochfeld", "cases_new": 3, "cases_new_growth_pct": None},
        ],
        total={"cases_new": 13, "cases_new_growth_pct": 8.3},
        hidden={(1, "cases_new"), (1, "cases_new_growth_pct"), (TOTAL, "cases_new")},
    )
    report = Report(load_definitions()["mbe-annual"], 2025, "de", 4, [table])
    as_json = report.as_json()
    assert ReportAnswer.model_validate(as_json).model_dump(mode="json") == as_json
    assert as_json["tables"][0]["rows"][1]["suppressed"] == ["cases_new", "cases_new_growth_pct"]


async def test_catalogue_and_report_list_answer_as_before() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://stats") as client:
        catalogue = (await client.get("/figures/catalogue")).json()
        listed = (await client.get("/reports", headers={"Accept-Language": "en"})).json()
    assert catalogue == {
        "measures": {
            name: {"description": m.description, "dimensions": measures.allowed_dimensions((name,))}
            for name, m in measures.MEASURES.items()
        },
        "dimensions": measures.DIMENSIONS,
        "periods": list(measures.PERIODS),
    }
    mbe = next(entry for entry in listed if entry["name"] == "mbe-annual")
    definition = load_definitions()["mbe-annual"]
    assert mbe == {
        "name": "mbe-annual",
        "version": definition.version,
        "title": definition.title.en,
        "description": definition.description.en,
        "tables": [t.id for t in definition.tables],
    }


def _described(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> list[str]:
    """Fields without a description, in this schema and the models it refers to."""
    missing = []
    for field, spec in schema.get("properties", {}).items():
        if not spec.get("description"):
            missing.append(f"{schema.get('title')}.{field}")
    text = repr(schema)
    for name, component in components.items():
        if f"#/components/schemas/{name}'" in text and name not in seen:
            seen.add(name)
            missing += _described(component, components, seen)
    return missing


def test_every_json_answer_is_a_documented_model() -> None:
    document = app().openapi()
    components = document["components"]["schemas"]
    expected = {
        "/figures": "Figures",
        "/figures/catalogue": "Catalogue",
        "/figures/query": "FiguresQueryResult",
        "/reports": "ReportSummary",
        "/reports/{name}": "ReportAnswer",
    }
    for path, model in expected.items():
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert model in repr(content["application/json"]["schema"]), path
        assert _described(components[model], components, set()) == [], path
    report_content = document["paths"]["/reports/{name}"]["get"]["responses"]["200"]["content"]
    assert {"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} <= set(report_content)
