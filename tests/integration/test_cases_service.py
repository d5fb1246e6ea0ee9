"""The cases service on the real broker and database: the whole service (migrations, consumers,
outbox relay, HTTP API) runs in-process; intake is a small HTTP stand-in answering
GET /clients/{id}, so the real HTTP adapter of the overview is exercised.

Every request carries a real token: the demo staff sign in through the session's Keycloak
(`identity`). `cases.http` is the office lead of Hamborn, who may do everything at that office;
`cases.as_(user)` is anyone else. The permission tests at the end show the allowed and the
denied side of each rule.

Every test uses its own persons and case managers, so the tests share one running service (and
see each other's data only where a filter would let them, which they avoid).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from cases.app import create_app
from cases.intake import IntakeDirectory
from cases.settings import CasesSettings
from knotenpunkt import deadletters, topics
from knotenpunkt.clients import ServiceClient
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope, decode
from knotenpunkt.events import (
    AgeBand,
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ClientRegistered,
    ClientsMerged,
    ConsultationRecorded,
    PlanGoalSet,
    PlanGoalStatusChanged,
    ReferralAccepted,
    ReferralDeclined,
    ReferralSent,
    ServiceLine,
    ServiceLineHandoverDue,
)
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.fixtures import eventually, unique
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.kafka import publish, read_topic

pytestmark = pytest.mark.integration

INTAKE_TIMEOUT_S = 1.0
TODAY = date.today().isoformat()


@dataclass
class IntakeStandIn:
    """intake's GET /clients/{id}: known persons, persons it answers slowly for, persons it fails on."""

    persons: dict[str, dict] = field(default_factory=dict)
    slow: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    # The headers of the last request for each person: who asked, on whose behalf.
    asked_with: dict[str, dict[str, str]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/clients/{client_id}")
        async def client(client_id: str, request: Request, response: Response) -> dict:
            self.asked_with[client_id] = dict(request.headers)
            if client_id in self.forbidden:
                response.status_code = 403
                return {"code": "forbidden_office"}
            if client_id in self.slow:
                await asyncio.sleep(INTAKE_TIMEOUT_S * 3)
            if client_id in self.failing:
                response.status_code = 500
                return {"code": "internal_error"}
            if client_id not in self.persons:
                response.status_code = 404
                return {"code": "not_found"}
            return self.persons[client_id]

        return app


class Bearer(httpx.Auth):
    """A demo user's token on every request (fetched again shortly before it expires)."""

    def __init__(self, identity: Identity, user: str) -> None:
        self.identity = identity
        self.user = user

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self.identity.token(self.user)}"
        yield request


@dataclass
class Running:
    transport: httpx.ASGITransport
    identity: Identity
    database: Database
    bootstrap: str
    intake: IntakeStandIn
    group: str  # the service's consumer group, as its dead letters name it
    clients: dict[str | None, httpx.AsyncClient] = field(default_factory=dict)

    def as_(self, user: str | None) -> httpx.AsyncClient:
        """The API as a demo user signed in through Keycloak (None: without a token)."""
        if user not in self.clients:
            auth = Bearer(self.identity, user) if user else None
            self.clients[user] = httpx.AsyncClient(
                transport=self.transport, base_url="http://cases", timeout=10, auth=auth
            )
        return self.clients[user]

    @property
    def http(self) -> httpx.AsyncClient:
        """The office lead of Hamborn: everything at that office (the tests' default office)."""
        return self.as_("lead-hamborn")


LEADS = {"rsc-hamborn": "lead-hamborn", "rsc-hochfeld": "lead-hochfeld"}


@pytest.fixture(scope="module")
async def cases(infra, identity: Identity) -> AsyncIterator[Running]:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("cases"))
    stand_in = IntakeStandIn()
    [intake_port] = free_ports(1)
    intake_server = uvicorn.Server(uvicorn.Config(stand_in.app(), host="127.0.0.1", port=intake_port, log_config=None))
    intake_task = asyncio.create_task(intake_server.serve())

    async def intake_started() -> bool:
        return intake_server.started

    await eventually(intake_started)
    settings = CasesSettings(
        # Its own consumer group: the test's service must not share partitions with any other.
        service_name=unique("cases"),
        database_url=dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        intake_url=f"http://127.0.0.1:{intake_port}",
        intake_timeout_s=INTAKE_TIMEOUT_S,
        outbox_poll_interval_s=0.1,
        # The service's own client in the realm (its service name here is unique to the test).
        oidc_client_id="knotenpunkt-cases",
    )
    app = create_app(settings)
    database = Database(dsn)
    async with app.router.lifespan_context(app):
        await database.connect()
        transport = httpx.ASGITransport(app=app)
        group = f"knotenpunkt.{settings.service_name}"
        running = Running(transport, identity, database, infra.kafka_bootstrap, stand_in, group)
        try:
            yield running
        finally:
            for client in running.clients.values():
                await client.aclose()
            await database.close()
    intake_server.should_exit = True
    await intake_task


# --- helpers ---------------------------------------------------------------------------------


def new_manager() -> str:
    """A case manager id of one test (a plausible staff id nobody else uses)."""
    return f"cm-{uuid.uuid4().hex[:10]}"


def registration(
    service_line: ServiceLine = ServiceLine.MBE,
    service_lines: tuple[ServiceLine, ...] = (),
    office_id: str = "rsc-hamborn",
    client_id: uuid.UUID | None = None,
) -> Envelope:
    event = ClientRegistered(
        client_id=client_id or uuid.uuid4(),
        registered_at=datetime.now(UTC),
        age_band=AgeBand.AGE_27_44,
        service_line=service_line,
        service_lines=service_lines,
        office_id=office_id,
    )
    return Envelope(event=event, source="test")


async def cases_of(
    running: Running, client_id: uuid.UUID | str, expected: int = 1, user: str = "lead-hamborn"
) -> list[dict]:
    async def found() -> list[dict] | None:
        answer = await running.as_(user).get("/cases", params={"client_id": str(client_id)})
        assert answer.status_code == 200, answer.text
        listed = answer.json()
        return listed if len(listed) >= expected else None

    return await eventually(found)


async def registered_case(running: Running, office_id: str = "rsc-hamborn") -> dict:
    """A person registered through the real topic, and the case cases opened for them."""
    envelope = registration(office_id=office_id)
    await publish(running.bootstrap, topics.CLIENTS, [envelope])
    [case] = await cases_of(running, envelope.event.client_id, user=LEADS[office_id])
    return case


async def version_of(running: Running, case_id: str, user: str = "lead-hamborn") -> str:
    answer = await running.as_(user).get(f"/cases/{case_id}")
    assert answer.status_code == 200
    return answer.headers["ETag"]


async def case_events(running: Running, case_id: str) -> list[Envelope]:
    records = await read_topic(running.bootstrap, topics.CASES)
    envelopes = [decode(r.headers, r.value, topics.CASES) for r in records]
    return [e for e in envelopes if str(getattr(e.event, "case_id", "")) == case_id]


async def published(running: Running, case_id: str, *types: type) -> list[Envelope]:
    """The case's events on the topic once all of `types` have arrived, in topic order."""

    async def arrived() -> list[Envelope] | None:
        events = await case_events(running, case_id)
        return events if [type(e.event) for e in events] == list(types) else None

    return await eventually(arrived, timeout_s=20, interval_s=0.3)


def consultation(**changes: object) -> dict:
    body = {"held_on": TODAY, "duration_minutes": 45, "topics": ["work"], "family_members_counselled": 1}
    body.update(changes)
    return body


def field_errors(answer: httpx.Response) -> dict[str, str]:
    return {error["field"]: error["code"] for error in answer.json().get("errors", [])}


# --- opening ---------------------------------------------------------------------------------


async def test_a_registration_opens_one_case_per_routed_service_line(cases: Running) -> None:
    envelope = registration(ServiceLine.JMD, (ServiceLine.JMD, ServiceLine.REFUGEE), office_id="rsc-hochfeld")
    # Delivered twice: the consumer applies it once.
    await publish(cases.bootstrap, topics.CLIENTS, [envelope, envelope])
    opened = await cases_of(cases, envelope.event.client_id, expected=2, user="lead-hochfeld")
    assert sorted(case["service_line"] for case in opened) == ["JMD", "REFUGEE"]
    assert {case["office_id"] for case in opened} == {"rsc-hochfeld"}
    assert not any(case["opened_by_hand"] for case in opened)
    [first] = await published(cases, opened[0]["case_id"], CaseOpened)
    assert first.causation_id == str(envelope.id)
    assert first.correlation_id == envelope.correlation_id
    assert len(await cases_of(cases, envelope.event.client_id, user="lead-hochfeld")) == 2


async def test_a_registration_from_before_service_lines_opens_its_one_line(cases: Running) -> None:
    envelope = registration(ServiceLine.MBE, ())
    await publish(cases.bootstrap, topics.CLIENTS, [envelope])
    [case] = await cases_of(cases, envelope.event.client_id)
    assert case["service_line"] == "MBE"


async def test_staff_open_a_case_by_hand_in_another_service_line(cases: Running) -> None:
    case = await registered_case(cases)
    body = {
        "client_id": case["client_id"],
        "service_line": "KIM",
        "office_id": "rsc-hamborn",
        "case_manager_id": "cm-1",
    }
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    opened = await cases.http.post("/cases", json=body, headers=headers)
    assert opened.status_code == 201, opened.text
    kim = opened.json()
    assert (kim["service_line"], kim["opened_by_hand"], kim["case_manager_id"]) == ("KIM", True, "cm-1")
    assert opened.headers["ETag"] == '"1"'
    # A double click with the same key: the same answer, no second case.
    again = await cases.http.post("/cases", json=body, headers=headers)
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (201, kim, "true")
    # Without the key it is a second attempt at the same line: refused, naming the open case.
    refused = await cases.http.post("/cases", json=body)
    assert refused.status_code == 409
    assert refused.json()["code"] == "open_case_exists" and kim["case_id"] in refused.json()["message"]
    assert len(await cases_of(cases, case["client_id"])) == 2
    [event] = await published(cases, kim["case_id"], CaseOpened)
    assert event.event.opened_by_hand and event.event.case_manager_id == "cm-1"
    # Who opened it comes from the token, into the case's history.
    history = (await cases.http.get(f"/cases/{kim['case_id']}/overview")).json()["history"]
    assert [(entry["event"], entry["acted_by"]) for entry in history] == [("CaseOpened", "lead-hamborn")]


async def test_opening_by_hand_needs_a_known_person_and_valid_input(cases: Running) -> None:
    unknown = await cases.http.post(
        "/cases", json={"client_id": str(uuid.uuid4()), "service_line": "MBE", "office_id": "rsc-hamborn"}
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    bad = {"client_id": "nope", "service_line": "XYZ", "office_id": "Not An Office"}
    german = await cases.http.post("/cases", json=bad)
    english = await cases.http.post("/cases", json=bad, headers={"Accept-Language": "en"})
    assert german.status_code == english.status_code == 422
    assert field_errors(german) == {
        "client_id": "uuid_parsing",
        "service_line": "enum",
        "office_id": "invalid_office_id",
    }
    assert german.json()["errors"][2]["message"] != english.json()["errors"][2]["message"]


# --- assigning, transferring, closing, reopening ---------------------------------------------


async def test_assigning_needs_the_current_version_and_happens_once(cases: Running) -> None:
    case = await registered_case(cases)
    case_id, url = case["case_id"], f"/cases/{case['case_id']}/assign"
    etag = await version_of(cases, case_id)
    missing = await cases.http.post(url, json={"case_manager_id": "cm-anna"})
    assert (missing.status_code, missing.json()["code"]) == (428, "if_match_required")
    assigned = await cases.http.post(url, json={"case_manager_id": "cm-anna"}, headers={"If-Match": etag})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["case_manager_id"] == "cm-anna"
    assert assigned.headers["ETag"] == await version_of(cases, case_id) != etag
    # A colleague who loaded the case before: 409 with a message in German, and in English on request.
    stale = await cases.http.post(url, json={"case_manager_id": "cm-bora"}, headers={"If-Match": etag})
    stale_en = await cases.http.post(
        url, json={"case_manager_id": "cm-bora"}, headers={"If-Match": etag, "Accept-Language": "en"}
    )
    assert stale.status_code == stale_en.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    assert "inzwischen" in stale.json()["message"] and "in the meantime" in stale_en.json()["message"]
    again = await cases.http.post(
        url, json={"case_manager_id": "cm-bora"}, headers={"If-Match": assigned.headers["ETag"]}
    )
    assert (again.status_code, again.json()["code"]) == (409, "case_already_assigned")
    [_, assigned_event] = await published(cases, case_id, CaseOpened, CaseAssigned)
    assert assigned_event.event.case_manager_id == "cm-anna"


async def test_a_transfer_moves_the_case_with_a_reason(cases: Running) -> None:
    case = await registered_case(cases)
    url = f"/cases/{case['case_id']}/transfer"
    etag = await version_of(cases, case["case_id"])
    unknown_reason = await cases.http.post(url, json={"to_office_id": "rsc-hochfeld", "reason": "whim"})
    assert (unknown_reason.status_code, field_errors(unknown_reason)) == (422, {"reason": "unknown_transfer_reason"})
    nothing = await cases.http.post(
        url, json={"to_office_id": case["office_id"], "reason": "caseload"}, headers={"If-Match": etag}
    )
    assert (nothing.status_code, field_errors(nothing)) == (422, {"to_office_id": "transfer_changes_nothing"})
    moved = await cases.http.post(
        url,
        json={"to_office_id": "rsc-hochfeld", "to_case_manager_id": "cm-cem", "reason": "moved_within_city"},
        headers={"If-Match": etag},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["office_id"], moved.json()["case_manager_id"]) == ("rsc-hochfeld", "cm-cem")
    [_, transferred] = await published(cases, case["case_id"], CaseOpened, CaseTransferred)
    assert (transferred.event.from_office_id, transferred.event.to_office_id) == ("rsc-hamborn", "rsc-hochfeld")
    assert (transferred.event.to_case_manager_id, transferred.event.reason) == ("cm-cem", "moved_within_city")


async def test_closing_and_reopening_and_what_a_closed_case_refuses(cases: Running) -> None:
    case = await registered_case(cases)
    case_id = case["case_id"]
    etag = await version_of(cases, case_id)
    unknown = await cases.http.post(f"/cases/{case_id}/close", json={"reason": "bored"}, headers={"If-Match": etag})
    assert (unknown.status_code, field_errors(unknown)) == (422, {"reason": "unknown_close_reason"})
    closed = await cases.http.post(f"/cases/{case_id}/close", json={"reason": "moved_away"}, headers={"If-Match": etag})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["close_reason"]) == ("closed", "moved_away")
    current = {"If-Match": closed.headers["ETag"]}
    twice = await cases.http.post(f"/cases/{case_id}/close", json={"reason": "moved_away"}, headers=current)
    assert (twice.status_code, twice.json()["code"]) == (409, "case_already_closed")
    on_closed = await cases.http.post(f"/cases/{case_id}/consultations", json=consultation())
    assert (on_closed.status_code, on_closed.json()["code"]) == (409, "case_closed")
    goal_on_closed = await cases.http.post(f"/cases/{case_id}/plan/goals", json={"topic_code": "work"})
    assert goal_on_closed.status_code == 409
    reopened = await cases.http.post(f"/cases/{case_id}/reopen", headers=current)
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["status"], reopened.json()["close_reason"]) == ("open", None)
    again = await cases.http.post(f"/cases/{case_id}/reopen", json={}, headers={"If-Match": reopened.headers["ETag"]})
    assert (again.status_code, again.json()["code"]) == (409, "case_already_open")
    events = await published(cases, case_id, CaseOpened, CaseClosed, CaseReopened)
    assert events[1].event.reason == "moved_away"


async def test_reopening_is_refused_while_another_case_in_that_line_is_open(cases: Running) -> None:
    case = await registered_case(cases)
    etag = await version_of(cases, case["case_id"])
    closed = await cases.http.post(
        f"/cases/{case['case_id']}/close", json={"reason": "no_contact"}, headers={"If-Match": etag}
    )
    newer = await cases.http.post(
        "/cases",
        json={"client_id": case["client_id"], "service_line": case["service_line"], "office_id": "rsc-hamborn"},
    )
    assert newer.status_code == 201
    refused = await cases.http.post(f"/cases/{case['case_id']}/reopen", headers={"If-Match": closed.headers["ETag"]})
    assert (refused.status_code, refused.json()["code"]) == (409, "open_case_exists")


async def test_unknown_cases_are_404_on_every_endpoint(cases: Running) -> None:
    missing = uuid.uuid4()
    answers = [
        await cases.http.get(f"/cases/{missing}"),
        await cases.http.get(f"/cases/{missing}/overview"),
        await cases.http.post(f"/cases/{missing}/assign", json={"case_manager_id": "x"}, headers={"If-Match": '"1"'}),
        await cases.http.post(f"/cases/{missing}/transfer", json={"to_office_id": "rsc-x", "reason": "other"}),
        await cases.http.post(f"/cases/{missing}/close", json={"reason": "other"}, headers={"If-Match": '"1"'}),
        await cases.http.post(f"/cases/{missing}/reopen", headers={"If-Match": '"1"'}),
        await cases.http.post(f"/cases/{missing}/consultations", json=consultation()),
        await cases.http.post(f"/cases/{missing}/plan/goals", json={"topic_code": "work"}),
    ]
    assert [answer.status_code for answer in answers] == [404] * len(answers)


# --- consultations and topics ----------------------------------------------------------------


async def test_a_consultation_records_everything_and_its_note_stays_in_cases(cases: Running) -> None:
    case = await registered_case(cases)
    await assign_to(cases, case, "staff-hamborn-1")
    staff = cases.as_("staff-hamborn-1")
    note = f"private note {uuid.uuid4()}"
    recorded = await staff.post(
        f"/cases/{case['case_id']}/consultations",
        json=consultation(
            topics=["residence_law", "housing"],
            mode="video",
            language="ar",
            interpreter_used=True,
            family_members_counselled=3,
            note=note,
        ),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.headers["ETag"] == '"3"'
    [_, _, event] = await published(cases, case["case_id"], CaseOpened, CaseAssigned, ConsultationRecorded)
    assert event.event.topics == ("residence_law", "housing")
    assert (event.event.mode, event.event.language, event.event.interpreter_used) == ("video", "ar", True)
    # Who held it is who recorded it: the staff id from the token.
    assert (event.event.family_members_counselled, event.event.case_manager_id) == (3, "staff-hamborn-1")
    for record in await read_topic(cases.bootstrap, topics.CASES):
        assert note.encode() not in record.value
    overview = (await staff.get(f"/cases/{case['case_id']}/overview")).json()
    assert overview["consultations"][0]["note"] == note
    assert overview["consultations"][0]["case_manager_id"] == "staff-hamborn-1"
    assert overview["history"][-1]["acted_by"] == "staff-hamborn-1"


async def test_who_held_a_consultation_is_not_typed_in_the_body(cases: Running) -> None:
    case = await registered_case(cases)
    typed = await cases.http.post(
        f"/cases/{case['case_id']}/consultations", json=consultation(case_manager_id="someone-else")
    )
    assert (typed.status_code, field_errors(typed)) == (422, {"case_manager_id": "extra_forbidden"})


async def test_a_consultation_with_unknown_topics_or_bad_fields_gets_a_message_per_field(cases: Running) -> None:
    case = await registered_case(cases)
    url = f"/cases/{case['case_id']}/consultations"
    unknown = await cases.http.post(url, json=consultation(topics=["work", "astrology", "tarot"]))
    assert (unknown.status_code, field_errors(unknown)) == (
        422,
        {"topics.1": "unknown_topic", "topics.2": "unknown_topic"},
    )
    bad = await cases.http.post(
        url, json=consultation(mode="telepathy", language="arabic", held_on="2999-01-01", duration_minutes=0)
    )
    assert field_errors(bad) == {
        "mode": "enum",
        "language": "invalid_language",
        "held_on": "held_in_future",
        "duration_minutes": "greater_than_equal",
    }
    stale = await cases.http.post(url, json=consultation(), headers={"If-Match": '"99"'})
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")
    # Nothing of the refused requests was written.
    overview = (await cases.http.get(f"/cases/{case['case_id']}/overview")).json()
    assert overview["consultations"] == [] and overview["case"]["version"] == 1


async def test_the_topic_taxonomy_is_data_a_city_extends(cases: Running) -> None:
    listed = (await cases.http.get("/topics")).json()
    by_code = {topic["code"]: topic for topic in listed}
    assert {"residence_law", "family_reunification", "debts", "recognition_of_qualifications"} <= set(by_code)
    assert (by_code["housing"]["label_de"], by_code["housing"]["label_en"]) == ("Wohnen", "Housing")
    code = f"city_{uuid.uuid4().hex[:8]}"
    admin = cases.as_("admin")
    added = await admin.post("/topics", json={"code": code, "label_de": "Energieschulden", "label_en": "Energy debts"})
    assert added.status_code == 201, added.text
    assert code in {topic["code"] for topic in (await cases.http.get("/topics")).json()}
    duplicate = await admin.post("/topics", json={"code": code, "label_de": "x", "label_en": "y"})
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "topic_exists")
    invalid = await admin.post("/topics", json={"code": "Bad Code", "label_de": "", "label_en": "y"})
    assert field_errors(invalid) == {"code": "invalid_code", "label_de": "string_too_short"}
    case = await registered_case(cases)
    used = await cases.http.post(f"/cases/{case['case_id']}/consultations", json=consultation(topics=[code]))
    assert used.status_code == 201


async def test_the_reason_code_lists_are_listed(cases: Running) -> None:
    reasons = (await cases.http.get("/reasons")).json()
    assert {"goals_reached", "moved_away", "no_contact", "handed_over", "other"} <= {
        r["code"] for r in reasons["close"]
    }
    assert all(r["label_de"] and r["label_en"] for r in reasons["close"] + reasons["transfer"])


# --- the integration support plan ------------------------------------------------------------


async def test_plan_goals_are_set_and_change_status_as_events(cases: Running) -> None:
    case = await registered_case(cases)
    url = f"/cases/{case['case_id']}/plan/goals"
    target = (date.today() + timedelta(days=90)).isoformat()
    unknown = await cases.http.post(url, json={"topic_code": "astrology"})
    assert field_errors(unknown) == {"topic_code": "unknown_topic"}
    past = await cases.http.post(url, json={"topic_code": "work", "target_date": "2001-01-01"})
    assert field_errors(past) == {"target_date": "target_date_in_past"}
    goal = await cases.http.post(url, json={"topic_code": "language_integration_course", "target_date": target})
    assert goal.status_code == 201, goal.text
    goal_id = goal.json()["goal_id"]
    assert goal.json()["status"] == "open"
    status_url = f"{url}/{goal_id}/status"
    without = await cases.http.post(status_url, json={"status": "reached"})
    assert without.status_code == 428
    reached = await cases.http.post(status_url, json={"status": "reached"}, headers={"If-Match": goal.headers["ETag"]})
    assert (reached.status_code, reached.json()["status"]) == (200, "reached")
    dropped = await cases.http.post(
        status_url, json={"status": "dropped"}, headers={"If-Match": reached.headers["ETag"]}
    )
    assert (dropped.status_code, dropped.json()["code"]) == (409, "goal_transition_not_allowed")
    unknown_goal = await cases.http.post(
        f"{url}/{uuid.uuid4()}/status", json={"status": "reached"}, headers={"If-Match": reached.headers["ETag"]}
    )
    assert unknown_goal.status_code == 404
    [_, goal_set, goal_changed] = await published(
        cases, case["case_id"], CaseOpened, PlanGoalSet, PlanGoalStatusChanged
    )
    assert (goal_set.event.topic_code, goal_set.event.target_date.isoformat()) == (
        "language_integration_course",
        target,
    )
    assert (str(goal_changed.event.goal_id), goal_changed.event.status) == (goal_id, "reached")


# --- lists -----------------------------------------------------------------------------------


async def assign_to(running: Running, case: dict, manager: str, user: str = "lead-hamborn") -> dict:
    """The office lead assigns the case; the assigned case as answered."""
    assigned = await running.as_(user).post(
        f"/cases/{case['case_id']}/assign",
        json={"case_manager_id": manager},
        headers={"If-Match": await version_of(running, case["case_id"], user)},
    )
    assert assigned.status_code == 200, assigned.text
    return assigned.json()


async def test_lists_filter_by_case_manager_office_line_status_and_topic(cases: Running) -> None:
    manager, other = new_manager(), new_manager()
    made = [await registered_case(cases) for _ in range(3)]
    first, second, third = made
    await assign_to(cases, first, manager)
    for case in (second, third):
        await assign_to(cases, case, other)
    await cases.http.post(f"/cases/{second['case_id']}/consultations", json=consultation(topics=["debts"]))
    await cases.http.post(
        f"/cases/{third['case_id']}/close",
        json={"reason": "other"},
        headers={"If-Match": await version_of(cases, third["case_id"])},
    )

    async def ids(**params: str) -> list[str]:
        answer = await cases.http.get("/cases", params=params)
        assert answer.status_code == 200, answer.text
        return [case["case_id"] for case in answer.json()["items"]]

    assert await ids(case_manager_id=manager) == [first["case_id"]]
    assert set(await ids(case_manager_id=other)) == {second["case_id"], third["case_id"]}
    assert set(await ids(case_manager_id=other, office_id="rsc-hamborn")) == {second["case_id"], third["case_id"]}
    assert await ids(case_manager_id=other, status="open") == [second["case_id"]]
    assert await ids(case_manager_id=other, status="closed") == [third["case_id"]]
    assert await ids(case_manager_id=other, topic="debts") == [second["case_id"]]
    assert await ids(case_manager_id=other, service_line="JMD") == []
    # Asking for another office's cases lists nothing: the scope is part of every query.
    assert await ids(case_manager_id=other, office_id="rsc-hochfeld") == []


async def test_lists_page_with_a_cursor_newest_first(cases: Running) -> None:
    manager = new_manager()
    made = [await registered_case(cases) for _ in range(5)]
    for case in made:
        await assign_to(cases, case, manager)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"case_manager_id": manager, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await cases.http.get("/cases", params=params)).json()
        seen += [case["case_id"] for case in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [case["case_id"] for case in reversed(made)]
    bad_cursor = await cases.http.get("/cases", params={"cursor": "garbage!"})
    assert (bad_cursor.status_code, field_errors(bad_cursor)) == (422, {"cursor": "invalid_cursor"})
    too_many = await cases.http.get("/cases", params={"limit": "5000"})
    assert (too_many.status_code, field_errors(too_many)) == (422, {"limit": "less_than_equal"})


# --- the whole case in one answer ------------------------------------------------------------


async def test_the_overview_shows_the_whole_case(cases: Running) -> None:
    case = await registered_case(cases)
    case_id, client_id = case["case_id"], case["client_id"]
    cases.intake.persons[client_id] = {
        "client_id": client_id,
        "family_name": "Yılmaz",
        "given_name": "Ayşe",
        "birth_date": "1990-03-01",
        "office_id": "rsc-hamborn",
        "service_line": "MBE",
        "address": "not for the overview",
    }
    kim = await cases.http.post(
        "/cases", json={"client_id": client_id, "service_line": "KIM", "office_id": "rsc-hamborn"}
    )
    await cases.http.post(f"/cases/{case_id}/consultations", json=consultation(note="stays"))
    await cases.http.post(f"/cases/{case_id}/plan/goals", json={"topic_code": "work"})
    sent = ReferralSent(
        client_id=uuid.UUID(client_id),
        referral_id=uuid.uuid4(),
        case_id=uuid.UUID(case_id),
        agency_id="jobcenter-duisburg",
        topic_code="work",
        office_id="rsc-hamborn",
        sent_at=datetime.now(UTC),
    )
    accepted = ReferralAccepted(
        client_id=sent.client_id, referral_id=sent.referral_id, agency_id=sent.agency_id, accepted_at=datetime.now(UTC)
    )
    await publish(cases.bootstrap, topics.REFERRALS, [Envelope(event=sent), Envelope(event=accepted)])

    async def referral_accepted() -> dict | None:
        answer = await cases.http.get(f"/cases/{case_id}/overview")
        referrals = answer.json()["referrals"]
        return answer if referrals and referrals[0]["status"] == "accepted" else None

    answer = await eventually(referral_accepted)
    overview = answer.json()
    # intake was asked with cases' own token on behalf of the person who asked (their token).
    asked = cases.intake.asked_with[client_id]
    assert asked["x-on-behalf-of"] == cases.identity.token("lead-hamborn")
    assert (
        asked["authorization"].startswith("Bearer ") and asked["authorization"] != f"Bearer {asked['x-on-behalf-of']}"
    )
    assert answer.headers["ETag"] == f'"{overview["case"]["version"]}"'
    assert overview["person"]["family_name"] == "Yılmaz" and "address" not in overview["person"]
    assert overview["person_unavailable"] is None
    lines = {line["service_line"]: line for line in overview["service_lines"]}
    assert set(lines) == {"MBE", "KIM"} and lines["MBE"]["current"] and not lines["KIM"]["current"]
    assert lines["KIM"]["case_id"] == kim.json()["case_id"]
    assert [c["note"] for c in overview["consultations"]] == ["stays"]
    assert [g["topic_code"] for g in overview["plan"]] == ["work"]
    assert overview["referrals"][0]["agency_id"] == "jobcenter-duisburg"
    assert [entry["event"] for entry in overview["history"]] == ["CaseOpened", "ConsultationRecorded", "PlanGoalSet"]


async def test_the_overview_comes_without_the_person_when_intake_cannot_answer(cases: Running) -> None:
    slow, failing, unknown = [await registered_case(cases) for _ in range(3)]
    cases.intake.slow.add(slow["client_id"])
    cases.intake.failing.add(failing["client_id"])
    refused = await registered_case(cases)
    cases.intake.forbidden.add(refused["client_id"])
    expected = {
        refused["case_id"]: "intake_forbidden",
        slow["case_id"]: "intake_unreachable",
        failing["case_id"]: "intake_error",
        unknown["case_id"]: "person_not_in_intake",
    }
    for case_id, reason in expected.items():
        answer = await cases.http.get(f"/cases/{case_id}/overview", headers={"Accept-Language": "en"})
        assert answer.status_code == 200
        overview = answer.json()
        assert overview["person"] is None
        assert overview["person_unavailable"]["code"] == reason and overview["person_unavailable"]["message"]
        assert overview["case"]["case_id"] == case_id and overview["history"]


async def test_the_intake_adapter_reports_an_unreachable_intake(cases: Running) -> None:
    [closed_port] = free_ports(1)
    client = ServiceClient(f"http://127.0.0.1:{closed_port}", 1.0)
    try:
        lookup = await IntakeDirectory(client).person_summary(uuid.uuid4())
    finally:
        await client.close()
    assert (lookup.person, lookup.unavailable) == (None, "intake_unreachable")


# --- referrals as cases sees them ------------------------------------------------------------


def referral_sent(case: dict, client_id: uuid.UUID | None = None) -> ReferralSent:
    return ReferralSent(
        client_id=client_id or uuid.UUID(case["client_id"]),
        referral_id=uuid.uuid4(),
        case_id=uuid.UUID(case["case_id"]),
        agency_id="jobcenter-duisburg",
        topic_code="work",
        office_id="rsc-hamborn",
        sent_at=datetime.now(UTC),
    )


async def dead_letter_of(running: Running, envelope: Envelope) -> deadletters.DeadLetter:
    """The dead letter the service's consumer wrote for the event (waits for it)."""

    async def found() -> deadletters.DeadLetter | None:
        letters = await deadletters.read_dead_letters(running.bootstrap)
        return next((d for d in letters if d.matches(running.group, topics.REFERRALS, str(envelope.id))), None)

    return await eventually(found, timeout_s=20, interval_s=0.5)


async def referral_row(running: Running, referral_id: uuid.UUID) -> dict | None:
    async with running.database.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM referrals WHERE referral_id = $1", referral_id)
    return None if row is None else dict(row)


async def test_an_answer_for_a_referral_cases_never_saw_sent_creates_no_referral(cases: Running) -> None:
    case = await registered_case(cases)
    forged = Envelope(
        event=ReferralDeclined(
            client_id=uuid.UUID(case["client_id"]),
            referral_id=uuid.uuid4(),
            agency_id="jobcenter-duisburg",
            declined_at=datetime.now(UTC),
            reason="no_capacity",
        )
    )
    await publish(cases.bootstrap, topics.REFERRALS, [forged])
    # Rejected: dead-lettered with a reason that names the referral, and nothing written.
    letter = await dead_letter_of(cases, forged)
    assert "never sent" in letter.meta["dlq_reason"] and str(forged.event.referral_id) in letter.meta["dlq_reason"]
    assert await referral_row(cases, forged.event.referral_id) is None
    overview = (await cases.http.get(f"/cases/{case['case_id']}/overview")).json()
    assert overview["referrals"] == []


async def test_an_answer_seen_before_its_referral_across_a_merge_applies_once_replayed(cases: Running) -> None:
    # The referral was sent under the retired id; after the merge, referrals answers under the
    # survivor's id: another key, maybe another partition, so cases may see the answer first.
    survivor, retired = registration(), registration()
    await publish(cases.bootstrap, topics.CLIENTS, [survivor, retired])
    [case] = await cases_of(cases, retired.event.client_id)
    sent = referral_sent(case)
    merged = ClientsMerged(
        client_id=survivor.event.client_id, merged_client_id=retired.event.client_id, merged_at=datetime.now(UTC)
    )
    await publish(cases.bootstrap, topics.CLIENTS, [Envelope(event=merged)])
    await cases_of(cases, survivor.event.client_id, expected=2)
    accepted = Envelope(
        event=ReferralAccepted(
            client_id=survivor.event.client_id,
            referral_id=sent.referral_id,
            agency_id=sent.agency_id,
            accepted_at=datetime.now(UTC),
        )
    )
    await publish(cases.bootstrap, topics.REFERRALS, [accepted])
    await dead_letter_of(cases, accepted)
    await publish(cases.bootstrap, topics.REFERRALS, [Envelope(event=sent)])

    async def status() -> str | None:
        row = await referral_row(cases, sent.referral_id)
        return None if row is None else row["status"]

    assert await eventually(status) == "sent"
    assert (await referral_row(cases, sent.referral_id))["client_id"] == survivor.event.client_id
    # The operator replays the dead letter once the ReferralSent is in: now it applies.
    assert await deadletters.replay(cases.bootstrap, cases.group, topics.REFERRALS, str(accepted.id)) == 1

    async def accepted_now() -> bool:
        return await status() == "accepted"

    await eventually(accepted_now)


# --- merged records --------------------------------------------------------------------------


async def test_a_merge_moves_the_cases_and_closes_the_duplicate_once(cases: Running) -> None:
    survivor, retired = registration(ServiceLine.MBE), registration(ServiceLine.MBE, (ServiceLine.MBE, ServiceLine.KIM))
    await publish(cases.bootstrap, topics.CLIENTS, [survivor, retired])
    [kept] = await cases_of(cases, survivor.event.client_id)
    retired_cases = await cases_of(cases, retired.event.client_id, expected=2)
    duplicate = next(c for c in retired_cases if c["service_line"] == "MBE")
    merged = Envelope(
        event=ClientsMerged(
            client_id=survivor.event.client_id, merged_client_id=retired.event.client_id, merged_at=datetime.now(UTC)
        )
    )
    # The same fact twice, once as a redelivery and once as a second event with a new id.
    again = Envelope(event=merged.event)
    await publish(cases.bootstrap, topics.CLIENTS, [merged, merged, again])
    after = await cases_of(cases, survivor.event.client_id, expected=3)
    assert {c["case_id"] for c in after} == {kept["case_id"], *(c["case_id"] for c in retired_cases)}
    by_id = {c["case_id"]: c for c in after}
    assert (by_id[duplicate["case_id"]]["status"], by_id[duplicate["case_id"]]["close_reason"]) == (
        "closed",
        "duplicate_record",
    )
    assert [c["status"] for c in after if c["service_line"] == "KIM"] == ["open"]
    # The retired id now means the survivor: its list is the survivor's.
    assert {c["case_id"] for c in await cases_of(cases, retired.event.client_id, expected=3)} == set(by_id)
    [_, closed] = await published(cases, duplicate["case_id"], CaseOpened, CaseClosed)
    assert (closed.event.client_id, closed.event.reason) == (survivor.event.client_id, "duplicate_record")
    overview = (await cases.http.get(f"/cases/{duplicate['case_id']}/overview")).json()
    # One history entry for the merge, though it arrived three times.
    assert [entry["event"] for entry in overview["history"]] == ["CaseOpened", "ClientsMerged", "CaseClosed"]


async def test_a_merge_seen_before_the_retired_registration_still_lands_on_the_survivor(cases: Running) -> None:
    survivor = registration(ServiceLine.MBE)
    retired_id = uuid.uuid4()
    merged = ClientsMerged(client_id=survivor.event.client_id, merged_client_id=retired_id, merged_at=datetime.now(UTC))
    await publish(cases.bootstrap, topics.CLIENTS, [survivor, Envelope(event=merged)])
    await cases_of(cases, survivor.event.client_id)
    late = registration(ServiceLine.JMD, client_id=retired_id)
    await publish(cases.bootstrap, topics.CLIENTS, [late])
    after = await cases_of(cases, survivor.event.client_id, expected=2)
    assert sorted(c["service_line"] for c in after) == ["JMD", "MBE"]
    assert {c["client_id"] for c in after} == {str(survivor.event.client_id)}
    # Opening by hand with the retired id opens for the survivor.
    by_hand = await cases.http.post(
        "/cases", json={"client_id": str(retired_id), "service_line": "KIM", "office_id": "rsc-hamborn"}
    )
    assert (by_hand.status_code, by_hand.json()["client_id"]) == (201, str(survivor.event.client_id))


async def test_turning_27_flags_the_open_jmd_case_for_the_case_managers_decision(cases: Running) -> None:
    young = registration(ServiceLine.JMD)
    await publish(cases.bootstrap, topics.CLIENTS, [young])
    [case] = await cases_of(cases, young.event.client_id)
    due = ServiceLineHandoverDue(
        client_id=uuid.UUID(case["client_id"]),
        from_service_line=ServiceLine.JMD,
        to_service_line=ServiceLine.MBE,
        due_on=date.today(),
    )
    before = await version_of(cases, case["case_id"])
    await publish(cases.bootstrap, topics.CLIENTS, [Envelope(event=due)])

    async def flagged() -> dict | None:
        answer = (await cases.http.get(f"/cases/{case['case_id']}")).json()
        return answer if answer.get("handover_due_on") else None

    flagged_case = await eventually(flagged)
    # The event carries the month only (the exact day would give away the birth date).
    assert flagged_case["handover_due_on"] == date.today().replace(day=1).isoformat()
    assert await version_of(cases, case["case_id"]) != before
    due_list = (await cases.http.get("/cases", params={"handover_due": "true", "limit": 200})).json()["items"]
    assert case["case_id"] in {c["case_id"] for c in due_list}
    overview = (await cases.http.get(f"/cases/{case['case_id']}/overview")).json()
    assert overview["history"][-1]["event"] == "ServiceLineHandoverDue"


# --- who may do what (real tokens from Keycloak) -----------------------------------------------


async def last_audit_entry(running: Running, actor_id: str, method: str, route: str) -> dict:
    """The newest audit row of that person's call (written before the answer left)."""
    async with running.database.connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM audit_log WHERE actor_id = $1 AND method = $2 AND route = $3 ORDER BY seq DESC LIMIT 1",
            actor_id,
            method,
            route,
        )
    assert row is not None, f"no audit entry of {actor_id} {method} {route}"
    return dict(row)


def refused(answer: httpx.Response, reason: str) -> None:
    assert (answer.status_code, answer.json()["code"]) == (403, reason), answer.text


async def test_without_a_token_nothing_is_answered(cases: Running) -> None:
    case = await registered_case(cases)
    anonymous = cases.as_(None)
    answers = [
        await anonymous.get("/cases"),
        await anonymous.get(f"/cases/{case['case_id']}"),
        await anonymous.get(f"/cases/{case['case_id']}/overview"),
        await anonymous.post(f"/cases/{case['case_id']}/consultations", json=consultation()),
        await anonymous.get("/topics"),
        await anonymous.get(f"/clients/{case['client_id']}/export"),
    ]
    assert [answer.status_code for answer in answers] == [401] * len(answers)


async def test_a_hamborn_case_manager_opens_cases_at_hamborn_only(cases: Running) -> None:
    case = await registered_case(cases)
    staff = cases.as_("staff-hamborn-1")
    body = {"client_id": case["client_id"], "service_line": "KIM", "office_id": "rsc-hochfeld"}
    german = await staff.post("/cases", json=body)
    english = await staff.post("/cases", json=body, headers={"Accept-Language": "en"})
    refused(german, "forbidden_office")
    assert "Dienststelle" in german.json()["message"] and "another office" in english.json()["message"]
    # Denied and audited as denied, with the reason, in the service's own trail.
    entry = await last_audit_entry(cases, "staff-hamborn-1", "POST", "/cases")
    assert (entry["outcome"], entry["status"], entry["reason"], entry["action"]) == (
        "denied",
        403,
        "forbidden_office",
        "case.change",
    )
    # A case manager names only themselves (or nobody) as the new case's manager ...
    for_other = await staff.post(
        "/cases", json={**body, "office_id": "rsc-hamborn", "case_manager_id": "staff-hamborn-2"}
    )
    refused(for_other, "forbidden_not_assigned")
    # ... and opens at their own office.
    opened = await staff.post("/cases", json={**body, "office_id": "rsc-hamborn", "case_manager_id": "staff-hamborn-1"})
    assert opened.status_code == 201, opened.text
    assert (opened.json()["office_id"], opened.json()["case_manager_id"]) == ("rsc-hamborn", "staff-hamborn-1")


async def test_a_case_manager_changes_only_cases_assigned_to_them_or_unassigned(cases: Running) -> None:
    theirs, unassigned = await registered_case(cases), await registered_case(cases)
    await assign_to(cases, theirs, "staff-hamborn-2")
    other, owner = cases.as_("staff-hamborn-1"), cases.as_("staff-hamborn-2")
    close = {"reason": "moved_away"}
    denied = await other.post(
        f"/cases/{theirs['case_id']}/close",
        json=close,
        headers={"If-Match": await version_of(cases, theirs["case_id"])},
    )
    refused(denied, "forbidden_not_assigned")
    goal = await other.post(f"/cases/{theirs['case_id']}/plan/goals", json={"topic_code": "work"})
    refused(goal, "forbidden_not_assigned")
    entry = await last_audit_entry(cases, "staff-hamborn-1", "POST", "/cases/{case_id}/close")
    assert (entry["outcome"], entry["reason"]) == ("denied", "forbidden_not_assigned")
    assert theirs["case_id"] in entry["record_ids"]
    # The case manager it is assigned to may; anyone at the office may change an unassigned case.
    closed = await owner.post(
        f"/cases/{theirs['case_id']}/close",
        json=close,
        headers={"If-Match": await version_of(cases, theirs["case_id"])},
    )
    assert closed.status_code == 200, closed.text
    set_goal = await other.post(f"/cases/{unassigned['case_id']}/plan/goals", json={"topic_code": "work"})
    assert set_goal.status_code == 201, set_goal.text
    # Another office's case manager may not, even an unassigned case.
    refused(
        await cases.as_("staff-hochfeld-1").post(
            f"/cases/{unassigned['case_id']}/plan/goals", json={"topic_code": "work"}
        ),
        "forbidden_office",
    )
    # Every change in the history names who made it (from the token).
    history = (await cases.http.get(f"/cases/{theirs['case_id']}/overview")).json()["history"]
    assert [(e["event"], e["acted_by"]) for e in history] == [
        ("CaseOpened", None),
        ("CaseAssigned", "lead-hamborn"),
        ("CaseClosed", "staff-hamborn-2"),
    ]
    goals = (await cases.http.get(f"/cases/{unassigned['case_id']}/overview")).json()["history"]
    assert goals[-1]["event"] == "PlanGoalSet" and goals[-1]["acted_by"] == "staff-hamborn-1"


async def test_consultations_only_on_ones_own_cases_and_the_lead_on_the_offices(cases: Running) -> None:
    case = await registered_case(cases)
    url = f"/cases/{case['case_id']}/consultations"
    # Unassigned: a case manager may change it, but notes are only for the case's own manager.
    refused(await cases.as_("staff-hamborn-1").post(url, json=consultation()), "forbidden_not_own")
    await assign_to(cases, case, "staff-hamborn-1")
    refused(await cases.as_("staff-hamborn-2").post(url, json=consultation()), "forbidden_not_own")
    refused(await cases.as_("staff-hochfeld-1").post(url, json=consultation()), "forbidden_office")
    refused(await cases.as_("lead-hochfeld").post(url, json=consultation()), "forbidden_office")
    mine = await cases.as_("staff-hamborn-1").post(url, json=consultation(note="mine"))
    assert mine.status_code == 201, mine.text
    lead = await cases.http.post(url, json=consultation(note="the lead's"))
    assert lead.status_code == 201, lead.text
    overview = (await cases.http.get(f"/cases/{case['case_id']}/overview")).json()
    assert [(c["note"], c["case_manager_id"]) for c in overview["consultations"]] == [
        ("mine", "staff-hamborn-1"),
        ("the lead's", "lead-hamborn"),
    ]


async def test_only_the_office_lead_assigns_and_transfers(cases: Running) -> None:
    case = await registered_case(cases)
    case_id = case["case_id"]
    etag = {"If-Match": await version_of(cases, case_id)}
    assign = {"case_manager_id": "staff-hamborn-1"}
    refused(
        await cases.as_("staff-hamborn-1").post(f"/cases/{case_id}/assign", json=assign, headers=etag), "forbidden_role"
    )
    refused(
        await cases.as_("lead-hochfeld").post(f"/cases/{case_id}/assign", json=assign, headers=etag), "forbidden_office"
    )
    # The target of an assignment is named in the body, but must look like a staff id.
    bogus = await cases.http.post(f"/cases/{case_id}/assign", json={"case_manager_id": "x y; drop"}, headers=etag)
    assert (bogus.status_code, field_errors(bogus)) == (422, {"case_manager_id": "invalid_staff_id"})
    assigned = await cases.http.post(f"/cases/{case_id}/assign", json=assign, headers=etag)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["case_manager_id"] == "staff-hamborn-1"
    move = {"to_office_id": "rsc-hochfeld", "reason": "moved_within_city"}
    current = {"If-Match": assigned.headers["ETag"]}
    refused(
        await cases.as_("staff-hamborn-1").post(f"/cases/{case_id}/transfer", json=move, headers=current),
        "forbidden_role",
    )
    # The lead of the office the case is at transfers it, not the lead of the office it goes to.
    refused(
        await cases.as_("lead-hochfeld").post(f"/cases/{case_id}/transfer", json=move, headers=current),
        "forbidden_office",
    )
    moved = await cases.http.post(f"/cases/{case_id}/transfer", json=move, headers=current)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["office_id"], moved.json()["case_manager_id"]) == ("rsc-hochfeld", None)
    # Now it is Hochfeld's case: Hamborn no longer reads it, Hochfeld does.
    refused(await cases.http.get(f"/cases/{case_id}"), "forbidden_office")
    refused(await cases.as_("staff-hamborn-1").get(f"/cases/{case_id}/overview"), "forbidden_office")
    assert (await cases.as_("staff-hochfeld-1").get(f"/cases/{case_id}")).status_code == 200
    history = (await cases.as_("lead-hochfeld").get(f"/cases/{case_id}/overview")).json()["history"]
    assert [(e["event"], e["acted_by"]) for e in history][1:] == [
        ("CaseAssigned", "lead-hamborn"),
        ("CaseTransferred", "lead-hamborn"),
    ]


async def test_a_coordinator_sees_no_case_but_the_code_lists(cases: Running) -> None:
    case = await registered_case(cases)
    coordinator = cases.as_("coordinator")
    refused(await coordinator.get("/cases"), "forbidden_role")
    refused(await coordinator.get("/cases", params={"client_id": case["client_id"]}), "forbidden_role")
    refused(await coordinator.get(f"/cases/{case['case_id']}/overview"), "forbidden_role")
    entry = await last_audit_entry(cases, "coordinator", "GET", "/cases")
    assert (entry["outcome"], entry["reason"], entry["action"]) == ("denied", "forbidden_role", "case.read")
    assert (await coordinator.get("/topics")).status_code == 200
    assert (await coordinator.get("/reasons")).status_code == 200
    # Code lists are written by the admin only.
    topic = {"code": f"c_{uuid.uuid4().hex[:8]}", "label_de": "x", "label_en": "y"}
    refused(await coordinator.post("/topics", json=topic), "forbidden_role")
    refused(await cases.http.post("/topics", json=topic), "forbidden_role")


async def test_a_hamborn_case_managers_list_holds_no_hochfeld_case(cases: Running) -> None:
    hochfeld = await registered_case(cases, office_id="rsc-hochfeld")
    await registered_case(cases)
    staff = cases.as_("staff-hamborn-1")
    listed: list[dict] = []
    cursor = None
    while True:
        params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        page = (await staff.get("/cases", params=params)).json()
        listed += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed and {case["office_id"] for case in listed} == {"rsc-hamborn"}
    assert hochfeld["case_id"] not in {case["case_id"] for case in listed}
    # Asking for Hochfeld or for the Hochfeld person by id lists nothing; Hochfeld's own staff see it.
    assert (await staff.get("/cases", params={"office_id": "rsc-hochfeld"})).json()["items"] == []
    assert (await staff.get("/cases", params={"client_id": hochfeld["client_id"]})).json() == []
    refused(await staff.get(f"/cases/{hochfeld['case_id']}"), "forbidden_office")
    seen = (await cases.as_("staff-hochfeld-1").get("/cases", params={"client_id": hochfeld["client_id"]})).json()
    assert [case["case_id"] for case in seen] == [hochfeld["case_id"]]


async def test_pages_are_full_because_the_office_is_filtered_in_the_query(cases: Running) -> None:
    manager = new_manager()
    made = [await registered_case(cases) for _ in range(5)]
    for case in made:
        await assign_to(cases, case, manager)
    # Two move to Hochfeld with the same case manager id: Hamborn's staff must not see them.
    for case in made[1:3]:
        moved = await cases.http.post(
            f"/cases/{case['case_id']}/transfer",
            json={"to_office_id": "rsc-hochfeld", "to_case_manager_id": manager, "reason": "moved_within_city"},
            headers={"If-Match": await version_of(cases, case["case_id"])},
        )
        assert moved.status_code == 200, moved.text
    staff = cases.as_("staff-hamborn-1")
    first = (await staff.get("/cases", params={"case_manager_id": manager, "limit": "2"})).json()
    second = (
        await staff.get("/cases", params={"case_manager_id": manager, "limit": "2", "cursor": first["next_cursor"]})
    ).json()
    kept = [made[4], made[3], made[0]]
    assert [c["case_id"] for c in first["items"]] == [c["case_id"] for c in kept[:2]]
    assert [c["case_id"] for c in second["items"]] == [kept[2]["case_id"]] and second["next_cursor"] is None


async def test_reads_name_the_person_in_the_audit_trail(cases: Running) -> None:
    case = await registered_case(cases)
    client_id = uuid.UUID(case["client_id"])
    assert (await cases.as_("staff-hamborn-2").get(f"/cases/{case['case_id']}")).status_code == 200
    read = await last_audit_entry(cases, "staff-hamborn-2", "GET", "/cases/{case_id}")
    assert (read["outcome"], read["client_ids"], read["action"]) == ("allowed", [client_id], "case.read")
    # A denied read names the person it tried to see.
    refused(await cases.as_("staff-hochfeld-2").get(f"/cases/{case['case_id']}/overview"), "forbidden_office")
    denied = await last_audit_entry(cases, "staff-hochfeld-2", "GET", "/cases/{case_id}/overview")
    assert (denied["outcome"], denied["reason"], denied["client_ids"]) == ("denied", "forbidden_office", [client_id])
    # A list names every person it listed.
    listed = (await cases.as_("staff-hamborn-2").get("/cases", params={"limit": "5"})).json()["items"]
    entry = await last_audit_entry(cases, "staff-hamborn-2", "GET", "/cases")
    assert set(entry["client_ids"]) == {uuid.UUID(c["client_id"]) for c in listed}
    # The data protection officer finds all of it with one question about the person.
    trail = await cases.as_("dpo").get("/audit/entries", params={"client_id": str(client_id)})
    assert trail.status_code == 200
    assert {(e["actor_id"], e["outcome"]) for e in trail.json()} >= {
        ("staff-hamborn-2", "allowed"),
        ("staff-hochfeld-2", "denied"),
    }


async def test_the_data_protection_officer_exports_everything_cases_keeps_about_a_person(cases: Running) -> None:
    case = await registered_case(cases)
    case_id, client_id = case["case_id"], case["client_id"]
    await assign_to(cases, case, "staff-hamborn-1")
    staff = cases.as_("staff-hamborn-1")
    note = f"export note {uuid.uuid4()}"
    assert (await staff.post(f"/cases/{case_id}/consultations", json=consultation(note=note))).status_code == 201
    goal = await staff.post(f"/cases/{case_id}/plan/goals", json={"topic_code": "work", "description": "B1"})
    assert goal.status_code == 201
    moved = await cases.http.post(
        f"/cases/{case_id}/transfer",
        json={"to_case_manager_id": "staff-hamborn-2", "reason": "caseload"},
        headers={"If-Match": await version_of(cases, case_id)},
    )
    assert moved.status_code == 200
    # Only the data protection officer (the case's own staff neither).
    for user in ("staff-hamborn-1", "lead-hamborn", "coordinator"):
        refused(await cases.as_(user).get(f"/clients/{client_id}/export"), "forbidden_role")
    answer = await cases.as_("dpo").get(f"/clients/{client_id}/export")
    assert answer.status_code == 200, answer.text
    export = answer.json()
    assert (export["service"], export["client_id"], export["office_id"]) == ("cases", client_id, "rsc-hamborn")
    [exported] = export["cases"]
    assert exported["case"]["case_id"] == case_id
    assert [(c["note"], c["case_manager_id"]) for c in exported["consultations"]] == [(note, "staff-hamborn-1")]
    assert [(g["topic_code"], g["description"]) for g in exported["plan"]] == [("work", "B1")]
    assert [(e["event"], e["acted_by"]) for e in exported["history"]] == [
        ("CaseOpened", None),
        ("CaseAssigned", "lead-hamborn"),
        ("ConsultationRecorded", "staff-hamborn-1"),
        ("PlanGoalSet", "staff-hamborn-1"),
        ("CaseTransferred", "lead-hamborn"),
    ]
    [handover] = exported["handovers"]
    assert handover["data"]["to_case_manager_id"] == "staff-hamborn-2" and handover["occurred_at"]
    entry = await last_audit_entry(cases, "dpo", "GET", "/clients/{client_id}/export")
    assert (entry["outcome"], entry["client_ids"], entry["action"]) == (
        "allowed",
        [uuid.UUID(client_id)],
        "client.export",
    )
    # A person cases never heard of: an empty export, not an error.
    nobody = (await cases.as_("dpo").get(f"/clients/{uuid.uuid4()}/export")).json()
    assert nobody["cases"] == [] and nobody["known_since"] is None
