"""Who may do what in cases, on plain values: the permission each route names, and the rules the
use cases apply to one case (`policy.require` with the case's office and case manager)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from fastapi.routing import APIRoute

from cases.api import build_router
from cases.repository import CASE_SCOPE, case_record
from knotenpunkt.identity import route_action
from knotenpunkt.policy import Action, decide, scope
from knotenpunkt.uow import Actor

HAMBORN, HOCHFELD = "rsc-hamborn", "rsc-hochfeld"
MANAGER = Actor.staff("staff-hamborn-1", "case_manager", offices=(HAMBORN,))
COLLEAGUE = Actor.staff("staff-hamborn-2", "case_manager", offices=(HAMBORN,))
LEAD = Actor.staff("lead-hamborn", "office_lead", offices=(HAMBORN,))
OTHER_LEAD = Actor.staff("lead-hochfeld", "office_lead", offices=(HOCHFELD,))
INTAKE = Actor.staff("intake-hamborn", "intake_staff", offices=(HAMBORN,))
COORDINATOR = Actor.staff("coordinator", "coordinator")
DPO = Actor.staff("dpo", "data_protection_officer")
ADMIN = Actor.staff("admin", "admin")

ROUTES = {
    ("GET", "/cases"): Action.CASE_READ,
    ("POST", "/cases"): Action.CASE_CHANGE,
    ("GET", "/cases/{case_id}"): Action.CASE_READ,
    ("GET", "/cases/{case_id}/overview"): Action.CASE_READ,
    ("POST", "/cases/{case_id}/assign"): Action.CASE_ASSIGN,
    ("POST", "/cases/{case_id}/transfer"): Action.CASE_ASSIGN,
    ("POST", "/cases/{case_id}/close"): Action.CASE_CHANGE,
    ("POST", "/cases/{case_id}/reopen"): Action.CASE_CHANGE,
    ("POST", "/cases/{case_id}/consultations"): Action.CASE_NOTE,
    ("PATCH", "/cases/{case_id}/consultations/{consultation_id}"): Action.CASE_NOTE,
    ("POST", "/cases/{case_id}/handover"): Action.CASE_CHANGE,
    ("PATCH", "/cases/{case_id}/plan/goals/{goal_id}"): Action.CASE_CHANGE,
    ("POST", "/cases/{case_id}/plan/goals"): Action.CASE_CHANGE,
    ("POST", "/cases/{case_id}/plan/goals/{goal_id}/status"): Action.CASE_CHANGE,
    ("GET", "/topics"): Action.REFERENCE_READ,
    ("POST", "/topics"): Action.REFERENCE_WRITE,
    ("GET", "/reasons"): Action.REFERENCE_READ,
    ("GET", "/clients/{client_id}/export"): Action.CLIENT_EXPORT,
}


def test_every_route_names_its_permission() -> None:
    router = build_router(cast(Any, None), cast(Any, None))
    named = {
        (method, route.path): route_action(route)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert named == ROUTES


def unassigned() -> Any:
    return case_record(HAMBORN, None)


@pytest.mark.parametrize(
    ("actor", "action", "record", "reason"),
    [
        # Reading: the office's cases, whoever they are assigned to.
        (MANAGER, Action.CASE_READ, case_record(HAMBORN, "staff-hamborn-2"), None),
        (MANAGER, Action.CASE_READ, case_record(HOCHFELD, None), "forbidden_office"),
        (INTAKE, Action.CASE_READ, unassigned(), "forbidden_role"),
        (COORDINATOR, Action.CASE_READ, unassigned(), "forbidden_role"),
        (DPO, Action.CASE_READ, unassigned(), "forbidden_role"),
        # Changing (close, reopen, plan, opening by hand): one's own or unassigned cases of the office.
        (MANAGER, Action.CASE_CHANGE, case_record(HAMBORN, "staff-hamborn-1"), None),
        (MANAGER, Action.CASE_CHANGE, unassigned(), None),
        (MANAGER, Action.CASE_CHANGE, case_record(HAMBORN, "staff-hamborn-2"), "forbidden_not_assigned"),
        (MANAGER, Action.CASE_CHANGE, case_record(HOCHFELD, None), "forbidden_office"),
        (LEAD, Action.CASE_CHANGE, case_record(HAMBORN, "staff-hamborn-2"), None),
        (OTHER_LEAD, Action.CASE_CHANGE, unassigned(), "forbidden_office"),
        # Consultations (notes): only one's own; the lead the office's.
        (MANAGER, Action.CASE_NOTE, case_record(HAMBORN, "staff-hamborn-1"), None),
        (MANAGER, Action.CASE_NOTE, unassigned(), "forbidden_not_own"),
        (COLLEAGUE, Action.CASE_NOTE, case_record(HAMBORN, "staff-hamborn-1"), "forbidden_not_own"),
        (LEAD, Action.CASE_NOTE, unassigned(), None),
        # Assigning and transferring: the lead of the case's current office.
        (LEAD, Action.CASE_ASSIGN, unassigned(), None),
        (OTHER_LEAD, Action.CASE_ASSIGN, unassigned(), "forbidden_office"),
        (MANAGER, Action.CASE_ASSIGN, unassigned(), "forbidden_role"),
        # The person's own data: the data protection officer only.
        (DPO, Action.CLIENT_EXPORT, unassigned(), None),
        (LEAD, Action.CLIENT_EXPORT, unassigned(), "forbidden_role"),
        # Code lists: everyone reads, the admin writes.
        (COORDINATOR, Action.REFERENCE_READ, unassigned(), None),
        (ADMIN, Action.REFERENCE_WRITE, unassigned(), None),
        (LEAD, Action.REFERENCE_WRITE, unassigned(), "forbidden_role"),
    ],
)
def test_who_may_do_what_to_a_case(actor: Actor, action: Action, record: Any, reason: str | None) -> None:
    assert decide(actor, action, record) == reason


def test_a_case_managers_list_is_their_office_in_the_query() -> None:
    where, params = scope(MANAGER, Action.CASE_READ, CASE_SCOPE, first_param=3)
    assert (where, params) == ("(c.office_id = ANY($3::text[]))", [[HAMBORN]])


def test_a_coordinators_list_is_empty_by_the_query() -> None:
    assert scope(COORDINATOR, Action.CASE_READ, CASE_SCOPE) == ("FALSE", [])
