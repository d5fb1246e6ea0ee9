"""The case manager's work end to end, with every service and the partner as real processes:
registration opens the case, the overview fetches the person from intake, a consultation with
topics, a plan goal, an assignment and a transfer, two colleagues racing (409), closing, a
refused second close, reopening; asserted on the HTTP answers and on the events on Kafka."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import decode
from knotenpunkt.events import (
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ConsultationRecorded,
    PlanGoalSet,
    PlanGoalStatusChanged,
)
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import read_topic
from tools.stack import PARTNER_AGENCY, Stack

pytestmark = pytest.mark.e2e


def invented_name() -> str:
    """A name nobody else in the run has, so intake's duplicate check finds nothing similar."""
    rng = random.Random(uuid.uuid4().int)
    return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(4)).capitalize()


async def test_a_case_managers_work_end_to_end(stack: Stack, identity) -> None:
    cases_url = stack.url("cases")
    family_name = invented_name()
    note = f"private remark {uuid.uuid4()}"
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        # 1. A 30-year-old registers at intake; cases opens the MBE case on the event.
        birth = date(date.today().year - 31, 1, 15).isoformat()
        registered = await http.post(
            f"{stack.url('intake')}/clients",
            json={"family_name": family_name, "given_name": "Mariam", "birth_date": birth, "office_id": "rsc-hochfeld"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]

        async def mbe_case() -> dict | None:
            listed = (await http.get(f"{cases_url}/cases", params={"client_id": client_id})).json()
            return next((case for case in listed if case["service_line"] == "MBE"), None)

        case = await eventually(mbe_case)
        case_id = case["case_id"]
        url = f"{cases_url}/cases/{case_id}"

        # 2. The overview: the person summary comes from intake, over HTTP.
        overview = (await http.get(f"{url}/overview")).json()
        assert overview["person"]["family_name"] == family_name
        assert overview["person_unavailable"] is None

        # 3. A consultation with topics, held by video with an interpreter.
        consultation = await http.post(
            f"{url}/consultations",
            json={
                "held_on": date.today().isoformat(),
                "duration_minutes": 60,
                "topics": ["residence_law", "family_reunification"],
                "mode": "video",
                "language": "ar",
                "interpreter_used": True,
                "family_members_counselled": 2,
                "note": note,
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert consultation.status_code == 201, consultation.text

        # 4. A goal in the integration support plan.
        goal = await http.post(
            f"{url}/plan/goals",
            json={"topic_code": "language_integration_course", "target_date": str(date.today() + timedelta(days=120))},
        )
        assert goal.status_code == 201, goal.text

        # 5. Two colleagues load the case; one assigns it, the other's change is refused.
        loaded = (await http.get(url)).headers["ETag"]
        assigned = await http.post(f"{url}/assign", json={"case_manager_id": "cm-e2e-1"}, headers={"If-Match": loaded})
        assert assigned.status_code == 200, assigned.text
        late = await http.post(
            f"{url}/close", json={"reason": "goals_reached"}, headers={"If-Match": loaded, "Accept-Language": "en"}
        )
        assert late.status_code == 409 and late.json()["code"] == "version_conflict"
        assert "changed by someone else" in late.json()["message"]

        # 6. The goal is reached; the case is transferred to another office and case manager.
        reached = await http.post(
            f"{url}/plan/goals/{goal.json()['goal_id']}/status",
            json={"status": "reached"},
            headers={"If-Match": assigned.headers["ETag"]},
        )
        assert reached.status_code == 200, reached.text
        transferred = await http.post(
            f"{url}/transfer",
            json={"to_office_id": "rsc-rheinhausen", "to_case_manager_id": "cm-e2e-2", "reason": "moved_within_city"},
            headers={"If-Match": reached.headers["ETag"]},
        )
        assert transferred.status_code == 200, transferred.text
        assert (transferred.json()["office_id"], transferred.json()["case_manager_id"]) == (
            "rsc-rheinhausen",
            "cm-e2e-2",
        )

        # 7. Closing; closing again and a consultation on the closed case are refused with the reason.
        closed = await http.post(
            f"{url}/close", json={"reason": "goals_reached"}, headers={"If-Match": transferred.headers["ETag"]}
        )
        assert closed.status_code == 200, closed.text
        twice = await http.post(
            f"{url}/close", json={"reason": "goals_reached"}, headers={"If-Match": closed.headers["ETag"]}
        )
        assert (twice.status_code, twice.json()["code"]) == (409, "case_already_closed")
        assert twice.json()["message"] == "Der Fall ist bereits geschlossen."
        on_closed = await http.post(
            f"{url}/consultations",
            json={"held_on": date.today().isoformat(), "duration_minutes": 10, "topics": ["work"]},
        )
        assert (on_closed.status_code, on_closed.json()["code"]) == (409, "case_closed")

        # 8. Reopened: work goes on, e.g. a referral to the Jobcenter (accepted by its own service),
        # once she has consented to sharing with it.
        reopened = await http.post(f"{url}/reopen", headers={"If-Match": closed.headers["ETag"]})
        assert (reopened.status_code, reopened.json()["status"]) == (200, "open")
        consent = await http.post(
            f"{stack.url('intake')}/clients/{client_id}/consents",
            json={"purpose": "sharing", "agency_kind": "jobcenter", "data_categories": ["topic"],
                  "text_version": "2026-01", "given_on": date.today().isoformat(), "recorded_by": "staff-hochfeld-1"},
        )  # fmt: skip
        assert consent.status_code == 201, consent.text

        async def referred() -> httpx.Response | None:
            response = await http.post(
                f"{stack.url('referrals')}/referrals",
                json={"case_id": case_id, "agency_id": PARTNER_AGENCY, "topic_code": "work"},
                headers={"Idempotency-Key": f"cm-referral-{case_id}"},
            )
            return response if response.status_code == 201 else None

        await eventually(referred)

        # 9. The whole case in one answer, the referral's answer included.
        async def with_accepted_referral() -> dict | None:
            whole = (await http.get(f"{url}/overview")).json()
            return whole if [r["status"] for r in whole["referrals"]] == ["accepted"] else None

        whole = await eventually(with_accepted_referral)
        assert whole["case"]["status"] == "open" and whole["case"]["office_id"] == "rsc-rheinhausen"
        assert [c["note"] for c in whole["consultations"]] == [note]
        assert [(g["topic_code"], g["status"]) for g in whole["plan"]] == [("language_integration_course", "reached")]
        assert [entry["event"] for entry in whole["history"]] == [
            "CaseOpened",
            "ConsultationRecorded",
            "PlanGoalSet",
            "CaseAssigned",
            "PlanGoalStatusChanged",
            "CaseTransferred",
            "CaseClosed",
            "CaseReopened",
        ]

        # 10. The daily lists: my cases, and the office's open cases with this topic.
        mine = (await http.get(f"{cases_url}/cases", params={"case_manager_id": "cm-e2e-2"})).json()
        assert case_id in [c["case_id"] for c in mine["items"]]
        topical = (
            await http.get(
                f"{cases_url}/cases",
                params={"office_id": "rsc-rheinhausen", "status": "open", "topic": "family_reunification"},
            )
        ).json()
        assert case_id in [c["case_id"] for c in topical["items"]]

    # On Kafka: each of the case's events once, in order, and neither the note nor the name.
    records = [r for r in await read_topic(stack.kafka_bootstrap, topics.CASES) if r.key == client_id.encode()]
    of_case = [
        e for e in (decode(r.headers, r.value, topics.CASES) for r in records) if str(e.event.case_id) == case_id
    ]
    assert [type(e.event) for e in of_case] == [
        CaseOpened,
        ConsultationRecorded,
        PlanGoalSet,
        CaseAssigned,
        PlanGoalStatusChanged,
        CaseTransferred,
        CaseClosed,
        CaseReopened,
    ]
    for record in records:
        assert note.encode() not in record.value and family_name.encode() not in record.value
