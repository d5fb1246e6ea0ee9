"""The case manager's work end to end, with every service and the partner as real processes:
registration opens the case, the overview fetches the person from intake, a consultation with
topics, a plan goal, an assignment and a transfer, two colleagues racing (409), closing, a
refused second close, reopening; each step by the person whose job it is, signed in through
Keycloak (reception, office lead, case managers of two offices), with the refusals of those whose
job it is not; asserted on the HTTP answers, the case history (who did what) and the events on
Kafka."""

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

    def signed_in(user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=10, auth=identity.auth(user))

    async with (
        signed_in("intake-hochfeld") as reception,
        signed_in("lead-hochfeld") as lead,
        signed_in("staff-hochfeld-1") as mira,
        signed_in("staff-hochfeld-2") as colleague,
        signed_in("lead-hamborn") as other_lead,
        signed_in("staff-rheinhausen-1") as anna,
    ):
        # 1. A 30-year-old registers at intake; cases opens the MBE case on the event.
        birth = date(date.today().year - 31, 1, 15).isoformat()
        registered = await reception.post(
            f"{stack.url('intake')}/clients",
            json={"family_name": family_name, "given_name": "Mariam", "birth_date": birth, "office_id": "rsc-hochfeld"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]

        async def mbe_case() -> dict | None:
            listed = (await lead.get(f"{cases_url}/cases", params={"client_id": client_id})).json()
            return next((case for case in listed if case["service_line"] == "MBE"), None)

        case = await eventually(mbe_case)
        case_id = case["case_id"]
        url = f"{cases_url}/cases/{case_id}"

        # 2. The office lead assigns it to Mira; nobody else at the office may write her notes.
        assigned = await lead.post(
            f"{url}/assign",
            json={"case_manager_id": "staff-hochfeld-1"},
            headers={"If-Match": (await lead.get(url)).headers["ETag"]},
        )
        assert assigned.status_code == 200, assigned.text

        # 3. The overview: the person summary comes from intake, over HTTP, as Mira may see it.
        overview = (await mira.get(f"{url}/overview")).json()
        assert overview["person"]["family_name"] == family_name
        assert overview["person_unavailable"] is None

        # 4. A consultation with topics, held by video with an interpreter; recorded by Mira.
        consultation_body = {
            "held_on": date.today().isoformat(),
            "duration_minutes": 60,
            "topics": ["residence_law", "family_reunification"],
            "mode": "video",
            "language": "ar",
            "interpreter_used": True,
            "family_members_counselled": 2,
            "note": note,
        }
        consultation = await mira.post(
            f"{url}/consultations", json=consultation_body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert consultation.status_code == 201, consultation.text
        not_hers = await colleague.post(f"{url}/consultations", json=consultation_body)
        assert (not_hers.status_code, not_hers.json()["code"]) == (403, "forbidden_not_own")
        elsewhere = await other_lead.get(f"{url}/overview")
        assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_office")

        # 5. A goal in the integration support plan.
        goal = await mira.post(
            f"{url}/plan/goals",
            json={"topic_code": "language_integration_course", "target_date": str(date.today() + timedelta(days=120))},
        )
        assert goal.status_code == 201, goal.text

        # 6. Mira and her lead load the case; her change goes first, the lead's is refused.
        loaded = (await lead.get(url)).headers["ETag"]
        reached = await mira.post(
            f"{url}/plan/goals/{goal.json()['goal_id']}/status",
            json={"status": "reached"},
            headers={"If-Match": loaded},
        )
        assert reached.status_code == 200, reached.text
        late = await lead.post(
            f"{url}/close", json={"reason": "goals_reached"}, headers={"If-Match": loaded, "Accept-Language": "en"}
        )
        assert late.status_code == 409 and late.json()["code"] == "version_conflict"
        assert "changed by someone else" in late.json()["message"]

        # 7. She moves: the lead transfers the case to Rheinhausen, to Anna.
        transferred = await lead.post(
            f"{url}/transfer",
            json={
                "to_office_id": "rsc-rheinhausen",
                "to_case_manager_id": "staff-rheinhausen-1",
                "reason": "moved_within_city",
            },
            headers={"If-Match": reached.headers["ETag"]},
        )
        assert transferred.status_code == 200, transferred.text
        assert (transferred.json()["office_id"], transferred.json()["case_manager_id"]) == (
            "rsc-rheinhausen",
            "staff-rheinhausen-1",
        )
        gone_from_hochfeld = await mira.get(url)
        assert (gone_from_hochfeld.status_code, gone_from_hochfeld.json()["code"]) == (403, "forbidden_office")

        # 8. Anna closes; closing again and a consultation on the closed case are refused with the reason.
        closed = await anna.post(
            f"{url}/close", json={"reason": "goals_reached"}, headers={"If-Match": transferred.headers["ETag"]}
        )
        assert closed.status_code == 200, closed.text
        twice = await anna.post(
            f"{url}/close", json={"reason": "goals_reached"}, headers={"If-Match": closed.headers["ETag"]}
        )
        assert (twice.status_code, twice.json()["code"]) == (409, "case_already_closed")
        assert twice.json()["message"] == "Der Fall ist bereits geschlossen."
        on_closed = await anna.post(
            f"{url}/consultations",
            json={"held_on": date.today().isoformat(), "duration_minutes": 10, "topics": ["work"]},
        )
        assert (on_closed.status_code, on_closed.json()["code"]) == (409, "case_closed")

        # 9. Reopened: work goes on at Rheinhausen, e.g. a referral to the Jobcenter (accepted by
        # its own service), once she has consented to sharing with it: her record is now
        # Rheinhausen's to work with too.
        reopened = await anna.post(f"{url}/reopen", headers={"If-Match": closed.headers["ETag"]})
        assert (reopened.status_code, reopened.json()["status"]) == (200, "open")

        async def consent_recorded() -> httpx.Response | None:
            response = await anna.post(
                f"{stack.url('intake')}/clients/{client_id}/consents",
                json={"purpose": "sharing", "agency_kind": "jobcenter", "data_categories": ["topic"],
                      "text_version": "2026-01", "given_on": date.today().isoformat()},
                headers={"Idempotency-Key": f"cm-consent-{case_id}"},
            )  # fmt: skip
            return response if response.status_code == 201 else None

        await eventually(consent_recorded)

        async def referred() -> httpx.Response | None:
            response = await anna.post(
                f"{stack.url('referrals')}/referrals",
                json={"case_id": case_id, "agency_id": PARTNER_AGENCY, "topic_code": "work"},
                headers={"Idempotency-Key": f"cm-referral-{case_id}"},
            )
            return response if response.status_code == 201 else None

        await eventually(referred)

        # 10. The whole case in one answer, the referral's answer included, and who did what.
        async def with_accepted_referral() -> dict | None:
            whole = (await anna.get(f"{url}/overview")).json()
            return whole if [r["status"] for r in whole["referrals"]] == ["accepted"] else None

        whole = await eventually(with_accepted_referral)
        assert whole["case"]["status"] == "open" and whole["case"]["office_id"] == "rsc-rheinhausen"
        assert [c["note"] for c in whole["consultations"]] == [note]
        assert [(g["topic_code"], g["status"]) for g in whole["plan"]] == [("language_integration_course", "reached")]
        assert [(entry["event"], entry.get("acted_by")) for entry in whole["history"]] == [
            ("CaseOpened", None),
            ("CaseAssigned", "lead-hochfeld"),
            ("ConsultationRecorded", "staff-hochfeld-1"),
            ("PlanGoalSet", "staff-hochfeld-1"),
            ("PlanGoalStatusChanged", "staff-hochfeld-1"),
            ("CaseTransferred", "lead-hochfeld"),
            ("CaseClosed", "staff-rheinhausen-1"),
            ("CaseReopened", "staff-rheinhausen-1"),
        ]

        # 11. The daily lists: my cases, and the office's open cases with this topic.
        mine = (await anna.get(f"{cases_url}/cases", params={"case_manager_id": "staff-rheinhausen-1"})).json()
        assert case_id in [c["case_id"] for c in mine["items"]]
        topical = (
            await anna.get(
                f"{cases_url}/cases",
                params={"office_id": "rsc-rheinhausen", "status": "open", "topic": "family_reunification"},
            )
        ).json()
        assert case_id in [c["case_id"] for c in topical["items"]]
        hochfelds = (await mira.get(f"{cases_url}/cases", params={"office_id": "rsc-rheinhausen"})).json()
        assert hochfelds["items"] == []

    # On Kafka: each of the case's events once, in order, and neither the note nor the name.
    records = [r for r in await read_topic(stack.kafka_bootstrap, topics.CASES) if r.key == client_id.encode()]
    of_case = [
        e for e in (decode(r.headers, r.value, topics.CASES) for r in records) if str(e.event.case_id) == case_id
    ]
    assert [type(e.event) for e in of_case] == [
        CaseOpened,
        CaseAssigned,
        ConsultationRecorded,
        PlanGoalSet,
        PlanGoalStatusChanged,
        CaseTransferred,
        CaseClosed,
        CaseReopened,
    ]
    for record in records:
        assert note.encode() not in record.value and family_name.encode() not in record.value
