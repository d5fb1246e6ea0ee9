"""Who may do what in intake: the permission each route asks for, and the per-record rule (the
person's office) for each role, table-tested without infrastructure; what an erasure leaves
elsewhere; the export page escapes what it shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from intake.api import build_router
from intake.disclosure import AuditTrail, PersonExport
from intake.domain import remaining_elsewhere
from intake.export_page import render
from intake.repository import person_record
from knotenpunkt.identity import route_action
from knotenpunkt.openapi import iter_routes
from knotenpunkt.policy import Action, Record, decide, scope
from knotenpunkt.policy import Columns as PolicyColumns
from knotenpunkt.uow import Actor

HAMBORN = "rsc-hamborn"
HOCHFELD = "rsc-hochfeld"

INTAKE_HAMBORN = Actor.staff("intake-hamborn", "intake_staff", offices=(HAMBORN,))
CASE_MANAGER_HAMBORN = Actor.staff("staff-hamborn-1", "case_manager", offices=(HAMBORN,))
LEAD_HAMBORN = Actor.staff("lead-hamborn", "office_lead", offices=(HAMBORN,))
COORDINATOR = Actor.staff("coordinator", "coordinator")
DPO = Actor.staff("dpo", "data_protection_officer")
ADMIN = Actor.staff("admin", "admin")
AGENCY = Actor.staff("agency-jobcenter-duisburg", "agency_staff", agency_id="jobcenter-duisburg")


def via(actor: Actor, service: str) -> Actor:
    return Actor(actor.kind, actor.subject, actor.roles, actor.offices, actor.agency_id, via=service)


ROUTES = {
    ("POST", "/clients"): Action.CLIENT_REGISTER,
    ("POST", "/clients/duplicate-check"): Action.CLIENT_SEARCH,
    ("POST", "/clients/search"): Action.CLIENT_SEARCH,
    ("POST", "/clients/names"): Action.CLIENT_READ,
    ("GET", "/clients/{client_id}"): Action.CLIENT_READ,
    ("PATCH", "/clients/{client_id}"): Action.CLIENT_CORRECT,
    ("POST", "/clients/{client_id}/merge"): Action.CLIENT_MERGE,
    ("POST", "/clients/{client_id}/erase"): Action.CLIENT_ERASE,
    ("GET", "/clients/{client_id}/export"): Action.CLIENT_EXPORT,
    ("POST", "/clients/{client_id}/consents"): Action.CONSENT_RECORD,
    ("GET", "/clients/{client_id}/consents"): Action.CONSENT_READ,
    ("POST", "/clients/{client_id}/consents/{consent_id}/withdraw"): Action.CONSENT_WITHDRAW,
    ("GET", "/clients/{client_id}/consent-check"): Action.CONSENT_READ,
    ("GET", "/clients/{client_id}/shared-data"): Action.SHARED_DATA_READ,
    ("GET", "/audit/trail"): Action.AUDIT_READ,
    ("GET", "/offices"): Action.REFERENCE_READ,
    ("GET", "/residence-statuses"): Action.REFERENCE_READ,
    ("GET", "/routing-rules"): Action.REFERENCE_READ,
    ("GET", "/staff"): Action.REFERENCE_READ,
    ("PUT", "/offices/{office_id}"): Action.REFERENCE_WRITE,
    ("PUT", "/staff/{staff_id}"): Action.REFERENCE_WRITE,
    ("PUT", "/routing-rules/{rule_id}"): Action.REFERENCE_WRITE,
}


def test_every_route_asks_for_its_permission() -> None:
    app = FastAPI()
    app.include_router(build_router(units=None, peers={}))  # type: ignore[arg-type]
    found = {}
    for context in iter_routes(app):
        route = getattr(context, "route", context)
        if isinstance(route, APIRoute):
            for method in route.methods:
                found[(method, route.path)] = route_action(route)
    assert found == ROUTES


@pytest.mark.parametrize(
    ("actor", "action", "office", "reason"),
    [
        # registering, searching, reading, correcting: staff of the person's office
        (INTAKE_HAMBORN, Action.CLIENT_REGISTER, HAMBORN, None),
        (INTAKE_HAMBORN, Action.CLIENT_REGISTER, HOCHFELD, "forbidden_office"),
        (CASE_MANAGER_HAMBORN, Action.CLIENT_READ, HAMBORN, None),
        (CASE_MANAGER_HAMBORN, Action.CLIENT_READ, HOCHFELD, "forbidden_office"),
        (via(CASE_MANAGER_HAMBORN, "cases"), Action.CLIENT_READ, HAMBORN, None),
        (via(CASE_MANAGER_HAMBORN, "cases"), Action.CLIENT_READ, HOCHFELD, "forbidden_office"),
        (LEAD_HAMBORN, Action.CLIENT_CORRECT, HAMBORN, None),
        (LEAD_HAMBORN, Action.CLIENT_CORRECT, HOCHFELD, "forbidden_office"),
        (COORDINATOR, Action.CLIENT_READ, HAMBORN, "forbidden_role"),
        (ADMIN, Action.CLIENT_READ, HAMBORN, "forbidden_role"),
        (AGENCY, Action.CLIENT_READ, HAMBORN, "forbidden_role"),
        (DPO, Action.CLIENT_READ, HAMBORN, "forbidden_role"),
        # merging: counter staff and leads, both records at their office
        (INTAKE_HAMBORN, Action.CLIENT_MERGE, HAMBORN, None),
        (LEAD_HAMBORN, Action.CLIENT_MERGE, HOCHFELD, "forbidden_office"),
        (CASE_MANAGER_HAMBORN, Action.CLIENT_MERGE, HAMBORN, "forbidden_role"),
        # erasure and the export: the data protection officer only, for everyone
        (DPO, Action.CLIENT_ERASE, HOCHFELD, None),
        (DPO, Action.CLIENT_EXPORT, HOCHFELD, None),
        (LEAD_HAMBORN, Action.CLIENT_ERASE, HAMBORN, "forbidden_role"),
        (INTAKE_HAMBORN, Action.CLIENT_EXPORT, HAMBORN, "forbidden_role"),
        # consents: staff of the person's office
        (CASE_MANAGER_HAMBORN, Action.CONSENT_RECORD, HAMBORN, None),
        (CASE_MANAGER_HAMBORN, Action.CONSENT_WITHDRAW, HOCHFELD, "forbidden_office"),
        (via(CASE_MANAGER_HAMBORN, "referrals"), Action.CONSENT_READ, HAMBORN, None),
        (COORDINATOR, Action.CONSENT_READ, HAMBORN, "forbidden_role"),
        # what an agency may receive: only when referrals asks, for a case manager or lead
        (via(CASE_MANAGER_HAMBORN, "referrals"), Action.SHARED_DATA_READ, HAMBORN, None),
        (via(CASE_MANAGER_HAMBORN, "referrals"), Action.SHARED_DATA_READ, HOCHFELD, "forbidden_office"),
        (CASE_MANAGER_HAMBORN, Action.SHARED_DATA_READ, HAMBORN, "forbidden_not_relayed"),
        (via(CASE_MANAGER_HAMBORN, "cases"), Action.SHARED_DATA_READ, HAMBORN, "forbidden_not_relayed"),
        # a role without the grant is refused for its role, relayed or not
        (via(INTAKE_HAMBORN, "referrals"), Action.SHARED_DATA_READ, HAMBORN, "forbidden_role"),
        # the audit trail
        (DPO, Action.AUDIT_READ, HAMBORN, None),
        (LEAD_HAMBORN, Action.AUDIT_READ, HAMBORN, "forbidden_role"),
    ],
)
def test_who_may_do_what_to_a_person_of_an_office(
    actor: Actor, action: Action, office: str, reason: str | None
) -> None:
    assert decide(actor, action, person_record({"office_id": office})) == reason


def test_the_offices_running_a_case_of_the_person_may_work_with_the_record_too() -> None:
    moved = {"office_id": HOCHFELD, "case_offices": [HAMBORN]}
    assert decide(CASE_MANAGER_HAMBORN, Action.CONSENT_RECORD, person_record(moved)) is None
    assert decide(via(CASE_MANAGER_HAMBORN, "cases"), Action.CLIENT_READ, person_record(moved)) is None
    assert decide(LEAD_HAMBORN, Action.CLIENT_MERGE, person_record({"office_id": HOCHFELD})) == "forbidden_office"


def test_an_agency_receives_through_referrals_only_what_was_consented_for_itself() -> None:
    agency = via(AGENCY, "referrals")
    assert decide(agency, Action.SHARED_DATA_READ, person_record({"office_id": HAMBORN}, AGENCY.agency_id)) is None
    other = person_record({"office_id": HAMBORN}, "some-other-agency")
    assert decide(agency, Action.SHARED_DATA_READ, other) == "forbidden_agency"
    assert decide(AGENCY, Action.SHARED_DATA_READ, person_record({"office_id": HAMBORN}, AGENCY.agency_id)) == (
        "forbidden_not_relayed"
    )


def test_the_duplicate_search_is_limited_to_ones_offices_in_sql() -> None:
    columns = PolicyColumns(office="office_id")
    assert scope(INTAKE_HAMBORN, Action.CLIENT_SEARCH, columns, first_param=3) == (
        "(office_id = ANY($3::text[]))",
        [[HAMBORN]],
    )
    assert scope(COORDINATOR, Action.CLIENT_SEARCH, columns, first_param=3) == ("FALSE", [])


@pytest.mark.parametrize(
    ("actor", "reason"),
    [
        (ADMIN, None),
        (LEAD_HAMBORN, "forbidden_role"),
        (CASE_MANAGER_HAMBORN, "forbidden_role"),
        (INTAKE_HAMBORN, "forbidden_role"),
        (COORDINATOR, "forbidden_role"),
        (DPO, "forbidden_role"),
        (AGENCY, "forbidden_role"),
    ],
)
def test_only_the_admin_writes_reference_data_and_everyone_signed_in_reads_it(actor: Actor, reason: str | None) -> None:
    # Reference data belongs to no office: the record is empty, the role alone decides.
    assert decide(actor, Action.REFERENCE_WRITE, Record()) == reason
    assert decide(actor, Action.REFERENCE_READ, Record()) is None


def test_the_duplicate_search_elsewhere_is_the_complement_of_ones_reach() -> None:
    # Where the named search looks, the count elsewhere does not, and the other way round: the
    # repository negates this very condition (IS NOT TRUE), and skips TRUE (nothing outside) and
    # FALSE (no search at all, so nothing to count either).
    columns = PolicyColumns(office="office_id", also_offices="case_offices")
    assert scope(INTAKE_HAMBORN, Action.CLIENT_SEARCH, columns, first_param=3) == (
        "((office_id = ANY($3::text[]) OR case_offices && $3::text[]))",
        [[HAMBORN]],
    )
    assert scope(ADMIN, Action.CLIENT_SEARCH, columns, first_param=3) == ("FALSE", [])


def test_an_erasure_names_the_agency_topics_retention_and_where_to_learn_who_received_data() -> None:
    agency_topics, other_services = remaining_elsewhere(["jobcenter-duisburg", "kind:sozialamt"])
    assert (agency_topics.where, agency_topics.agencies, agency_topics.retention_days) == (
        "agency_topics",
        ("jobcenter-duisburg", "kind:sozialamt"),
        30,
    )
    assert "referrals" in agency_topics.en and "30 Tagen" in agency_topics.de
    assert other_services.where == "other_services" and other_services.retention_days is None


def test_the_export_page_is_german_escaped_and_says_what_is_missing() -> None:
    client_id = uuid.uuid4()
    answer = PersonExport(
        client_id=client_id,
        exported_at=datetime(2026, 1, 2, tzinfo=UTC),
        intake={
            "records": [{"client_id": str(client_id), "family_name": "<img src=x onerror=alert(1)>"}],
            "consents": [],
        },
        cases={"notes": ["Termin & Beratung"]},
        referrals=None,
        audit=AuditTrail(entries=[], services=["intake"], unavailable=["stats"]),
        incomplete=["referrals", "audit:stats"],
    )
    page = render(answer)
    assert page.startswith("<!DOCTYPE html>") and 'lang="de"' in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Familienname" in page and "Termin &amp; Beratung" in page
    assert "Unvollständig:</strong> referrals, audit:stats" in page
    assert "<script" not in page and "http" not in page
