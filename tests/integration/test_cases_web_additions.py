"""What the web app needs of cases beyond the first API (issue 10): correcting a consultation,
editing a plan goal, the JMD-to-MBE handover in one step. The whole service runs in-process on
the real broker and database (the fixture of test_cases_service); every request carries a real
token, and each rule is shown from its allowed and its denied side.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from knotenpunkt import topics
from knotenpunkt.events import CaseAssigned, CaseClosed, CaseOpened, PlanGoalSet, ServiceLine
from knotenpunkt.testing.kafka import publish
from tests.integration.test_cases_service import (
    Running,
    assign_to,
    cases_of,
    consultation,
    field_errors,
    published,
    registration,
    version_of,
)
from tests.integration.test_cases_service import (
    cases as running_cases,  # noqa: F401 - a fixture (the module's running service), used by `running`
)

pytestmark = pytest.mark.integration


@pytest.fixture
def running(running_cases: Running) -> Running:  # noqa: F811 - the imported fixture, by name
    return running_cases


async def case_at(running: Running, office_id: str = "rsc-hochfeld", line: ServiceLine = ServiceLine.MBE) -> dict:
    """A person registered at the office (through the real topic) and their case in that line."""
    envelope = registration(service_line=line, office_id=office_id)
    await publish(running.bootstrap, topics.CLIENTS, [envelope])
    lead = {"rsc-hamborn": "lead-hamborn", "rsc-hochfeld": "lead-hochfeld"}[office_id]
    [case] = await cases_of(running, envelope.event.client_id, user=lead)
    return case


async def history_of(running: Running, case_id: str, user: str) -> list[dict]:
    answer = await running.as_(user).get(f"/cases/{case_id}/overview")
    assert answer.status_code == 200, answer.text
    return answer.json()["history"]


# --- correcting a consultation ---------------------------------------------------------------


async def test_the_assigned_case_manager_corrects_a_consultation_and_the_history_says_who(
    running: Running,
) -> None:
    case = await case_at(running)
    await assign_to(running, case, "staff-hochfeld-1", user="lead-hochfeld")
    me = running.as_("staff-hochfeld-1")
    url = f"/cases/{case['case_id']}/consultations"
    recorded = await me.post(url, json=consultation(note="Erstgespräch"))
    assert recorded.status_code == 201, recorded.text
    consultation_url = f"{url}/{recorded.json()['consultation_id']}"

    without = await me.patch(consultation_url, json={"duration_minutes": 60})
    assert without.status_code == 428
    stale = await me.patch(consultation_url, json={"duration_minutes": 60}, headers={"If-Match": '"1"'})
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")
    etag = recorded.headers["ETag"]
    bad = await me.patch(
        consultation_url, json={"topics": ["astrology"], "duration_minutes": None}, headers={"If-Match": etag}
    )
    assert bad.status_code == 422
    assert field_errors(bad) == {"duration_minutes": "field_required"}
    unknown_topic = await me.patch(consultation_url, json={"topics": ["astrology"]}, headers={"If-Match": etag})
    assert field_errors(unknown_topic) == {"topics.0": "unknown_topic"}
    same = await me.patch(consultation_url, json={"duration_minutes": 45}, headers={"If-Match": etag})
    assert field_errors(same) == {"duration_minutes": "nothing_to_change"}

    corrected = await me.patch(
        consultation_url,
        json={"duration_minutes": 60, "topics": ["work", "benefits"], "note": "Erstgespräch, korrigiert"},
        headers={"If-Match": etag},
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["changed"] == ["duration_minutes", "note", "topics"]
    assert corrected.headers["ETag"] == f'"{corrected.json()["version"]}"' != etag

    overview = (await me.get(f"/cases/{case['case_id']}/overview")).json()
    [entry] = overview["consultations"]
    assert (entry["duration_minutes"], entry["topics"], entry["note"]) == (
        60,
        ["work", "benefits"],
        "Erstgespräch, korrigiert",
    )
    assert entry["case_manager_id"] == "staff-hochfeld-1"  # who held it stays
    correction = overview["history"][-1]
    assert (correction["event"], correction["acted_by"]) == ("ConsultationCorrected", "staff-hochfeld-1")
    # Which fields changed, never their values (the note stays in its table).
    assert correction["data"]["changed"] == ["duration_minutes", "note", "topics"]
    assert "korrigiert" not in str(correction["data"])


async def test_only_the_assigned_case_manager_or_the_lead_corrects_a_consultation(running: Running) -> None:
    case = await case_at(running)
    await assign_to(running, case, "staff-hochfeld-1", user="lead-hochfeld")
    recorded = await running.as_("staff-hochfeld-1").post(
        f"/cases/{case['case_id']}/consultations", json=consultation()
    )
    consultation_url = f"/cases/{case['case_id']}/consultations/{recorded.json()['consultation_id']}"
    etag = recorded.headers["ETag"]
    for user, code in (
        ("staff-hochfeld-2", "forbidden_not_own"),
        ("staff-hamborn-1", "forbidden_office"),
        ("lead-hamborn", "forbidden_office"),
        ("intake-hochfeld", "forbidden_role"),
        ("coordinator", "forbidden_role"),
    ):
        denied = await running.as_(user).patch(
            consultation_url, json={"duration_minutes": 30}, headers={"If-Match": etag}
        )
        assert (user, denied.status_code, denied.json()["code"]) == (user, 403, code)
    allowed = await running.as_("lead-hochfeld").patch(
        consultation_url, json={"duration_minutes": 30}, headers={"If-Match": etag}
    )
    assert allowed.status_code == 200, allowed.text
    assert (await history_of(running, case["case_id"], "lead-hochfeld"))[-1]["acted_by"] == "lead-hochfeld"
    unknown = await running.as_("lead-hochfeld").patch(
        f"/cases/{case['case_id']}/consultations/{uuid.uuid4()}",
        json={"duration_minutes": 30},
        headers={"If-Match": allowed.headers["ETag"]},
    )
    assert unknown.status_code == 404


# --- editing a plan goal ---------------------------------------------------------------------


async def test_a_goal_gets_another_topic_and_target_date_and_its_readers_learn_it(running: Running) -> None:
    case = await case_at(running)
    await assign_to(running, case, "staff-hochfeld-1", user="lead-hochfeld")
    me = running.as_("staff-hochfeld-1")
    goals = f"/cases/{case['case_id']}/plan/goals"
    goal = await me.post(goals, json={"topic_code": "work", "description": "Arbeit finden"})
    assert goal.status_code == 201, goal.text
    goal_url = f"{goals}/{goal.json()['goal_id']}"
    target = (date.today() + timedelta(days=60)).isoformat()

    without = await me.patch(goal_url, json={"target_date": target})
    assert without.status_code == 428
    past = await me.patch(goal_url, json={"target_date": "2001-01-01"}, headers={"If-Match": goal.headers["ETag"]})
    assert field_errors(past) == {"target_date": "target_date_in_past"}
    unknown = await me.patch(goal_url, json={"topic_code": "astrology"}, headers={"If-Match": goal.headers["ETag"]})
    assert field_errors(unknown) == {"topic_code": "unknown_topic"}

    edited = await me.patch(
        goal_url,
        json={"topic_code": "vocational_training", "target_date": target},
        headers={"If-Match": goal.headers["ETag"]},
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["topic_code"], edited.json()["target_date"], edited.json()["status"]) == (
        "vocational_training",
        target,
        "open",
    )
    described = await me.patch(
        goal_url, json={"description": "Ausbildung beginnen"}, headers={"If-Match": edited.headers["ETag"]}
    )
    assert (described.status_code, described.json()["description"]) == (200, "Ausbildung beginnen")
    stale = await me.patch(goal_url, json={"target_date": None}, headers={"If-Match": edited.headers["ETag"]})
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")

    # The goal as it now stands goes out again as PlanGoalSet (same id, same set_at).
    [*_, first, again] = await published(running, case["case_id"], CaseOpened, CaseAssigned, PlanGoalSet, PlanGoalSet)
    assert first.event.goal_id == again.event.goal_id and first.event.set_at == again.event.set_at
    assert (again.event.topic_code, again.event.target_date.isoformat()) == ("vocational_training", target)
    history = await history_of(running, case["case_id"], "staff-hochfeld-1")
    assert [(h["event"], h["acted_by"]) for h in history[-2:]] == [
        ("PlanGoalSet", "staff-hochfeld-1"),
        ("PlanGoalDescribed", "staff-hochfeld-1"),
    ]


async def test_a_colleagues_goal_is_edited_only_by_them_or_the_lead(running: Running) -> None:
    case = await case_at(running)
    await assign_to(running, case, "staff-hochfeld-1", user="lead-hochfeld")
    goal = await running.as_("staff-hochfeld-1").post(
        f"/cases/{case['case_id']}/plan/goals", json={"topic_code": "work"}
    )
    goal_url = f"/cases/{case['case_id']}/plan/goals/{goal.json()['goal_id']}"
    etag = goal.headers["ETag"]
    for user, code in (
        ("staff-hochfeld-2", "forbidden_not_assigned"),
        ("staff-hamborn-1", "forbidden_office"),
        ("dpo", "forbidden_role"),
    ):
        denied = await running.as_(user).patch(goal_url, json={"topic_code": "housing"}, headers={"If-Match": etag})
        assert (user, denied.status_code, denied.json()["code"]) == (user, 403, code)
    allowed = await running.as_("lead-hochfeld").patch(
        goal_url, json={"topic_code": "housing"}, headers={"If-Match": etag}
    )
    assert (allowed.status_code, allowed.json()["topic_code"]) == (200, "housing")


# --- the JMD-to-MBE handover -----------------------------------------------------------------


async def test_the_handover_closes_the_jmd_case_and_opens_the_mbe_case_in_one_step(running: Running) -> None:
    jmd = await case_at(running, line=ServiceLine.JMD)
    await assign_to(running, jmd, "staff-hochfeld-1", user="lead-hochfeld")
    me = running.as_("staff-hochfeld-1")
    url = f"/cases/{jmd['case_id']}/handover"
    etag = await version_of(running, jmd["case_id"], "staff-hochfeld-1")

    without = await me.post(url, json={"office_id": "rsc-hamborn"})
    assert without.status_code == 428
    bad_reason = await me.post(url, json={"office_id": "rsc-hamborn", "reason": "bored"}, headers={"If-Match": etag})
    assert field_errors(bad_reason) == {"reason": "unknown_close_reason"}
    # A case manager names only themselves, and only at their office, as the new case manager.
    elsewhere = await me.post(
        url, json={"office_id": "rsc-hamborn", "case_manager_id": "staff-hochfeld-1"}, headers={"If-Match": etag}
    )
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_office")

    handed = await me.post(url, json={"office_id": "rsc-hamborn"}, headers={"If-Match": etag})
    assert handed.status_code == 200, handed.text
    closed, opened = handed.json()["closed"], handed.json()["opened"]
    assert (closed["status"], closed["close_reason"], closed["service_line"]) == ("closed", "handed_over", "JMD")
    assert (opened["status"], opened["service_line"], opened["office_id"]) == ("open", "MBE", "rsc-hamborn")
    assert opened["client_id"] == jmd["client_id"] and opened["case_manager_id"] is None
    assert handed.headers["ETag"] == f'"{closed["version"]}"'

    [*_, closed_event] = await published(running, jmd["case_id"], CaseOpened, CaseAssigned, CaseClosed)
    assert closed_event.event.reason == "handed_over"
    [opened_event] = await published(running, opened["case_id"], CaseOpened)
    assert (opened_event.event.service_line, opened_event.event.office_id) == (ServiceLine.MBE, "rsc-hamborn")
    history = await history_of(running, jmd["case_id"], "staff-hochfeld-1")
    assert (history[-1]["event"], history[-1]["acted_by"]) == ("CaseClosed", "staff-hochfeld-1")
    new_history = await history_of(running, opened["case_id"], "lead-hamborn")
    assert [(h["event"], h["acted_by"], h["data"]["opened_by_hand"]) for h in new_history] == [
        ("CaseOpened", "staff-hochfeld-1", True)
    ]
    again = await me.post(url, json={"office_id": "rsc-hamborn"}, headers={"If-Match": handed.headers["ETag"]})
    assert (again.status_code, again.json()["code"]) == (409, "case_already_closed")


async def test_a_handover_is_refused_whole_when_an_mbe_case_is_open_or_the_case_is_no_jmd_case(
    running: Running,
) -> None:
    jmd = await case_at(running, line=ServiceLine.JMD)
    lead = running.as_("lead-hochfeld")
    mbe = await lead.post(
        "/cases", json={"client_id": jmd["client_id"], "service_line": "MBE", "office_id": "rsc-hochfeld"}
    )
    assert mbe.status_code == 201, mbe.text
    etag = await version_of(running, jmd["case_id"], "lead-hochfeld")
    refused = await lead.post(
        f"/cases/{jmd['case_id']}/handover", json={"office_id": "rsc-hochfeld"}, headers={"If-Match": etag}
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "open_case_exists")
    # Nothing happened: the JMD case is still open at its version.
    still = await lead.get(f"/cases/{jmd['case_id']}")
    assert (still.json()["status"], still.headers["ETag"]) == ("open", etag)

    not_jmd = await lead.post(
        f"/cases/{mbe.json()['case_id']}/handover",
        json={"office_id": "rsc-hochfeld"},
        headers={"If-Match": mbe.headers["ETag"]},
    )
    assert (not_jmd.status_code, not_jmd.json()["code"]) == (409, "handover_only_jmd")


async def test_only_the_lead_or_the_assigned_case_manager_hands_a_case_over(running: Running) -> None:
    jmd = await case_at(running, line=ServiceLine.JMD)
    await assign_to(running, jmd, "staff-hochfeld-1", user="lead-hochfeld")
    etag = await version_of(running, jmd["case_id"], "lead-hochfeld")
    url = f"/cases/{jmd['case_id']}/handover"
    for user, code in (
        ("staff-hochfeld-2", "forbidden_not_assigned"),
        ("lead-hamborn", "forbidden_office"),
        ("intake-hochfeld", "forbidden_role"),
    ):
        denied = await running.as_(user).post(url, json={"office_id": "rsc-hochfeld"}, headers={"If-Match": etag})
        assert (user, denied.status_code, denied.json()["code"]) == (user, 403, code)
    allowed = await running.as_("lead-hochfeld").post(
        url, json={"office_id": "rsc-hochfeld", "case_manager_id": "staff-hochfeld-2"}, headers={"If-Match": etag}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["opened"]["case_manager_id"] == "staff-hochfeld-2"
