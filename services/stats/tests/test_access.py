"""Who may ask stats, and that no answer holds a small count: the permission of every route
(table-tested per role) and the suppression of the headline figures and of growth rates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

from knotenpunkt.db import Database
from knotenpunkt.http import install_error_handlers
from knotenpunkt.identity import route_action
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor
from stats.api import build_router, headline
from stats.reports import load_definitions
from stats.suppression import hide_growth

THRESHOLD = 4


def app(actor: Actor) -> FastAPI:
    """The routes without a database, the actor standing in for the authentication middleware
    (tests/integration/test_stats_access.py signs in through Keycloak)."""
    application = FastAPI()
    install_error_handlers(application)
    application.include_router(build_router(cast(Database, None), load_definitions(), THRESHOLD))

    @application.middleware("http")
    async def signed_in(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.actor = actor
        return await call_next(request)

    return application


def test_every_route_needs_the_figures_permission() -> None:
    router = build_router(cast(Database, None), load_definitions(), THRESHOLD)
    routes = [route for route in router.routes if isinstance(route, APIRoute)]
    assert {route.path for route in routes} == {
        "/figures",
        "/figures/catalogue",
        "/figures/query",
        "/reports",
        "/reports/{name}",
    }
    assert {route.path: route_action(route) for route in routes} == {
        route.path: Action.FIGURES_READ for route in routes
    }


ROLES: list[tuple[Actor, int]] = [
    (Actor.staff("coordinator", "coordinator"), 200),
    (Actor.staff("lead-hamborn", "office_lead", offices=("rsc-hamborn",)), 200),
    (Actor.staff("staff-hamborn-1", "case_manager", offices=("rsc-hamborn",)), 403),
    (Actor.staff("intake-hamborn", "intake_staff", offices=("rsc-hamborn",)), 403),
    (Actor.staff("dpo", "data_protection_officer"), 403),
    (Actor.staff("admin", "admin"), 403),
    (Actor.staff("agency-jobcenter-duisburg", "agency_staff", agency_id="jobcenter-duisburg"), 403),
    (Actor.service("cases"), 403),
]


@pytest.mark.parametrize(("actor", "status"), ROLES, ids=[sorted(a.roles)[0] for a, _ in ROLES])
async def test_only_coordinators_and_office_leads_see_figures(actor: Actor, status: int) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app(actor)), base_url="http://stats") as client:
        for path in ("/figures/catalogue", "/reports"):
            answer = await client.get(path, headers={"Accept-Language": "en"})
            assert answer.status_code == status, (path, answer.text)
            if status == 403:
                assert answer.json()["code"] == "forbidden_role"
                assert "figures.read" in answer.json()["message"]


def figures(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "persons_registered": 120,
        "open_cases": [
            {"service_line": "JMD", "office_id": "rsc-hamborn", "cases": 30},
            {"service_line": "JMD", "office_id": "rsc-hochfeld", "cases": 2},
            {"service_line": "MBE", "office_id": "rsc-hamborn", "cases": 25},
            {"service_line": "MBE", "office_id": "rsc-hochfeld", "cases": 40},
        ],
        "cases": {"opened": 150, "closed": 53},
        "consultations": {"consultations": 400, "family_members": 3, "unique_persons": 90},
        "referrals": {"sent": 50, "accepted": 30, "declined": 1, "completed": 20, "expired": 0, "withdrawn": 9},
        "unmet_needs": 4,
        "handovers_due": 5,
    }
    values.update(changes)
    return values


def numbers(value: Any) -> list[float]:
    """Every number anywhere in a JSON value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for key, v in value.items() if key != "suppression" for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


def test_headline_figures_hide_small_counts_and_what_gives_them_back() -> None:
    published = headline(**figures(), threshold=THRESHOLD).model_dump(mode="json")
    assert not [n for n in numbers(published) if 0 < n <= THRESHOLD], published
    assert published["suppression"]["threshold"] == THRESHOLD
    # Small on their own; zero is published.
    assert published["family_members_counselled"] is None
    assert published["referrals"]["declined"] is None and published["referrals"]["expired"] == 0
    assert published["unmet_needs"] is None and published["handovers_due"] == 5
    # The 2 open JMD cases in Hochfeld, and in both of its lines (JMD, Hochfeld) a second cell.
    by_key = {(row["service_line"], row["office_id"]): row["cases"] for row in published["open_cases"]}
    assert by_key[("JMD", "rsc-hochfeld")] is None
    assert by_key[("JMD", "rsc-hamborn")] is None and by_key[("MBE", "rsc-hochfeld")] is None
    assert published["open_cases_total"] == 97
    assert published["cases_opened"] == 150 and published["cases_closed"] == 53
    assert "open_cases[JMD/rsc-hochfeld]" in published["suppressed"]
    assert {"family_members_counselled", "referrals.declined", "unmet_needs"} <= set(published["suppressed"])


def test_a_hidden_part_of_the_cases_hides_the_cases_opened() -> None:
    # Opened 100 = open 97 + closed 3: the 3 would be 100 - 97.
    published = headline(**figures(cases={"opened": 100, "closed": 3}), threshold=THRESHOLD)
    assert (published.cases_closed, published.cases_opened) == (None, None)
    assert published.open_cases_total == 97
    few_open = [{"service_line": "JMD", "office_id": "rsc-hamborn", "cases": 2}]
    published = headline(**figures(open_cases=few_open, cases={"opened": 40, "closed": 38}), threshold=THRESHOLD)
    assert (published.open_cases_total, published.cases_opened, published.cases_closed) == (None, None, 38)


def test_threshold_zero_publishes_everything() -> None:
    published = headline(**figures(), threshold=0)
    assert published.suppressed == [] and published.referrals.declined == 1


def test_a_growth_rate_is_hidden_with_its_cell_or_the_cell_it_is_compared_with() -> None:
    rows = [
        {"period": "2025", "office": "a", "cases_new": 10, "cases_new_growth_pct": 900.0},
        {"period": "2025", "office": "b", "cases_new": 3, "cases_new_growth_pct": -70.0},
        {"period": "2025", "office": "c", "cases_new": 20, "cases_new_growth_pct": 100.0},
    ]
    hidden = {(1, "cases_new")}
    earlier_hidden = {(0, "cases_new")}  # office a had 1 the year before
    previous = [(0, {"cases_new": 1}, earlier_hidden), (1, {"cases_new": 10}, set()), (2, {"cases_new": 10}, set())]
    hide_growth(rows, hidden, previous, ["cases_new"])
    assert (0, "cases_new_growth_pct") in hidden  # 10 and 900 % give the 1 back
    assert (1, "cases_new_growth_pct") in hidden  # -70 % and 10 give the 3 back
    assert (2, "cases_new_growth_pct") not in hidden
