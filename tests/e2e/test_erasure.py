"""Erasure on request: intake forgets the person, cases drops the notes, open referrals are
withdrawn, and the statistics do not move."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import decode
from knotenpunkt.events import ClientErased
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import read_topic
from tests.e2e.support import settled
from tools.stack import Stack

pytestmark = pytest.mark.e2e

# An agency answering through the web inbox: nobody answers in this test, the referral stays open.
INBOX_AGENCY = "sozialamt-duisburg"


async def test_erasure_forgets_the_person_everywhere_but_keeps_the_figures(stack: Stack, identity) -> None:
    intake, cases, referrals, stats = (stack.url(name) for name in ("intake", "cases", "referrals", "stats"))
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        client = (
            await http.post(
                f"{intake}/clients",
                json={"family_name": "Vasilescu", "given_name": "Ioana", "birth_date": "1984-07-09",
                      "office_id": "rsc-hochfeld", "phone": "+49 203 777 0101", "confirm_new": True},
            )
        ).json()  # fmt: skip
        client_id = client["client_id"]

        async def case_of_client() -> list:
            return (await http.get(f"{cases}/cases", params={"client_id": client_id})).json()

        [case] = await eventually(case_of_client)
        note = "Frau V. berichtet von Schulden bei ihrem Vermieter."
        consultation = await http.post(
            f"{cases}/cases/{case['case_id']}/consultations",
            json={"held_on": date.today().isoformat(), "duration_minutes": 30, "topics": ["debts"], "note": note},
        )
        assert consultation.status_code == 201, consultation.text
        consent = await http.post(
            f"{intake}/clients/{client_id}/consents",
            json={"purpose": "sharing", "agency_kind": "sozialamt", "data_categories": ["name", "topic"],
                  "text_version": "2026-01", "given_on": date.today().isoformat()},
        )  # fmt: skip
        assert consent.status_code == 201

        async def referred() -> dict | None:
            answer = await http.post(
                f"{referrals}/referrals",
                json={"case_id": case["case_id"], "agency_id": INBOX_AGENCY, "topic_code": "debts"},
            )
            return answer.json() if answer.status_code == 201 else None

        referral = await eventually(referred)
        await eventually(lambda: settled(stack))
        before = (await http.get(f"{stats}/figures")).json()

        erased = await http.post(f"{intake}/clients/{client_id}/erase")
        assert erased.status_code == 200, erased.text
        assert (await http.post(f"{intake}/clients/{client_id}/erase")).status_code == 200  # asking twice is fine

        # intake: the record answers 410 Gone, and its name no longer turns up as a duplicate.
        gone = await http.get(f"{intake}/clients/{client_id}", headers={"Accept-Language": "en"})
        assert gone.status_code == 410 and "erased" in gone.json()["message"]
        search = await http.post(
            f"{intake}/clients/duplicate-check",
            json={"family_name": "Vasilescu", "given_name": "Ioana", "birth_date": "1984-07-09"},
        )
        assert client_id not in {c["client_id"] for c in search.json()}

        # cases: the note is gone, the anonymous facts stay.
        async def notes_gone() -> dict | None:
            whole = (await http.get(f"{cases}/cases/{case['case_id']}/overview")).json()
            return whole if whole["history"][-1]["event"] == "ClientErased" else None

        whole = await eventually(notes_gone)
        assert [c["note"] for c in whole["consultations"]] == [None]
        assert [c["topics"] for c in whole["consultations"]] == [["debts"]]
        assert whole["person"] is None

        # referrals: the open referral is withdrawn (and the agency told).
        async def withdrawn() -> dict | None:
            found = (await http.get(f"{referrals}/referrals/{referral['referral_id']}")).json()
            return found if found["status"] == "withdrawn" else None

        assert (await eventually(withdrawn))["withdraw_reason"] == "client_erased"

        # stats: the same figures; they never identified anyone.
        await eventually(lambda: settled(stack))
        after = (await http.get(f"{stats}/figures")).json()
        for key in ("persons_registered", "consultations", "open_cases_total"):
            assert after[key] == before[key], key
        assert after["referrals"]["sent"] == before["referrals"]["sent"]

    records = [r for r in await read_topic(stack.kafka_bootstrap, topics.CLIENTS) if r.key == client_id.encode()]
    [erasure] = [e for e in (decode(r.headers, r.value) for r in records) if isinstance(e.event, ClientErased)]
    assert b"Vasilescu" not in b"".join(r.value for r in records)
    assert str(erasure.event.client_id) == client_id
