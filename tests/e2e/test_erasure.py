"""A person's rights, end to end, each step by the person whose job it is (signed in through
Keycloak): the agency sees exactly the consented data in its inbox; the data protection officer
sees who read the person's data and gets everything stored about them (Art. 15); after the
erasure (Art. 17) no personal value of the person, or of the duplicate merged into them, is
left in any database, any topic (but the agency's, listed in the answer) or any service log,
and the figures do not move."""

from __future__ import annotations

import contextlib
import uuid
from datetime import date

import asyncpg
import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import InvalidEvent, decode
from knotenpunkt.events import ClientErased
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import read_topic
from knotenpunkt.testing.search import personal_values_found, values_in_records
from tests.e2e.support import settled
from tools.stack import Stack

pytestmark = pytest.mark.e2e

# An agency answering through the web inbox: nobody answers in this test, the referral stays open.
INBOX_AGENCY = "sozialamt-duisburg"


async def everything_found(stack: Stack, values: list[str]) -> dict[str, dict[str, int]]:
    found = {}
    for service, dsn in stack.dsns.items():
        connection = await asyncpg.connect(dsn)
        try:
            found[service] = await personal_values_found(connection, values)
        finally:
            await connection.close()
    return {service: tables for service, tables in found.items() if tables}


async def test_access_export_and_erasure_leave_nothing_behind(stack: Stack, identity) -> None:
    intake, cases, referrals, stats = (stack.url(name) for name in ("intake", "cases", "referrals", "stats"))
    marker = uuid.uuid4().hex[:6]
    family_name, duplicate_name = f"Vasilescu{marker}", f"Wasilesku{marker}"
    phone, street, note = f"+49 203 777 {marker}", f"Kaiser-Wilhelm-Str. {marker}", f"Schulden {marker} beim Vermieter"
    personal = [family_name, duplicate_name, phone, street, note, "1984-07-09"]

    def signed_in(user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=15, auth=identity.auth(user))

    async with (
        signed_in("intake-hochfeld") as reception,
        signed_in("lead-hochfeld") as lead,
        signed_in(f"agency-{INBOX_AGENCY}") as agency,
        signed_in("dpo") as dpo,
        signed_in("coordinator") as coordinator,
    ):
        # Registered twice by mistake (a spelling variant, another phone), then merged.
        register = {"given_name": "Ioana", "birth_date": "1984-07-09", "office_id": "rsc-hochfeld", "confirm_new": True}
        first = await reception.post(
            f"{intake}/clients",
            json={**register, "family_name": family_name, "phone": phone, "street": street},
            headers={"Idempotency-Key": f"erasure-{marker}-1"},
        )
        assert first.status_code == 201, first.text
        client_id = first.json()["client_id"]
        second = await reception.post(
            f"{intake}/clients",
            json={**register, "family_name": duplicate_name, "phone": f"{phone}9"},
            headers={"Idempotency-Key": f"erasure-{marker}-2"},
        )
        duplicate_id = second.json()["client_id"]
        merged = await reception.post(
            f"{intake}/clients/{client_id}/merge",
            json={"duplicate_client_id": duplicate_id},
            headers={"Idempotency-Key": f"erasure-{marker}-3"},
        )
        assert merged.status_code == 200, merged.text

        async def case_of_client() -> list:
            return (await lead.get(f"{cases}/cases", params={"client_id": client_id})).json()

        # Each registration opened a case; after the merge both are hers. The work goes into one.
        case = (await eventually(case_of_client))[0]
        consultation = await lead.post(
            f"{cases}/cases/{case['case_id']}/consultations",
            json={"held_on": date.today().isoformat(), "duration_minutes": 30, "topics": ["debts"], "note": note},
        )
        assert consultation.status_code == 201, consultation.text
        consent = await lead.post(
            f"{intake}/clients/{client_id}/consents",
            json={"purpose": "sharing", "agency_kind": "sozialamt", "data_categories": ["name", "topic"],
                  "text_version": "2026-01", "given_on": date.today().isoformat()},
        )  # fmt: skip
        assert consent.status_code == 201, consent.text

        async def referred() -> dict | None:
            answer = await lead.post(
                f"{referrals}/referrals",
                json={"case_id": case["case_id"], "agency_id": INBOX_AGENCY, "topic_code": "debts"},
            )
            return answer.json() if answer.status_code == 201 else None

        referral = await eventually(referred)

        # The agency's inbox: the referral with exactly the consented data (the name; no phone).
        seen = await agency.get(f"{referrals}/inbox/{INBOX_AGENCY}/referrals/{referral['referral_id']}")
        assert seen.status_code == 200, seen.text
        shared = seen.json()["person"]
        assert shared["family_name"] == family_name and shared.get("phone") is None
        other_agency = await agency.get(f"{referrals}/inbox/jugendamt-duisburg/referrals")
        assert (other_agency.status_code, other_agency.json()["code"]) == (403, "forbidden_agency")

        # The data protection officer: who saw or changed her data, across all services, in one request.
        trail = (await dpo.get(f"{intake}/audit/trail", params={"client_id": client_id})).json()
        assert trail["unavailable"] == []
        who = {(entry["service"], entry["actor_id"]) for entry in trail["entries"]}
        assert {
            ("intake", "intake-hochfeld"),
            ("cases", "lead-hochfeld"),
            ("referrals", "lead-hochfeld"),
            ("referrals", f"agency-{INBOX_AGENCY}"),
        } <= who
        assert not values_in_records([str(trail).encode()], personal), "the audit trail holds no personal data"

        # ... and everything stored about her (Art. 15), as data and as a page to hand over.
        export = await dpo.get(f"{intake}/clients/{client_id}/export")
        assert export.status_code == 200, export.text
        assert export.json()["incomplete"] == []
        assert set(values_in_records([export.content], personal)) >= {family_name, duplicate_name, note, phone}
        page = await dpo.get(f"{intake}/clients/{client_id}/export", params={"format": "html"})
        assert page.headers["content-type"].startswith("text/html") and family_name in page.text
        refused = await lead.get(f"{intake}/clients/{client_id}/export")
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")

        await eventually(lambda: settled(stack))
        before = (await coordinator.get(f"{stats}/figures")).json()
        assert await everything_found(stack, personal), "the search must find her before the erasure"

        # The erasure: the lead may not, the data protection officer may.
        assert (await lead.post(f"{intake}/clients/{client_id}/erase")).status_code == 403
        erased = await dpo.post(f"{intake}/clients/{client_id}/erase")
        assert erased.status_code == 200, erased.text
        assert set(erased.json()["erased_client_ids"]) == {client_id, duplicate_id}
        [agency_topics] = [r for r in erased.json()["remains_elsewhere"] if r["where"] == "agency_topics"]
        assert agency_topics["retention_days"] == 30 and "kind:sozialamt" in agency_topics["agencies"]
        assert (await dpo.post(f"{intake}/clients/{client_id}/erase")).status_code == 200  # asking twice is fine

        gone = await lead.get(f"{intake}/clients/{client_id}", headers={"Accept-Language": "en"})
        assert gone.status_code == 410 and "erased" in gone.json()["message"]

        # cases: the note is gone, the anonymous facts stay; referrals: the open referral withdrawn.
        async def notes_gone() -> dict | None:
            whole = (await lead.get(f"{cases}/cases/{case['case_id']}/overview")).json()
            return whole if whole["history"][-1]["event"] == "ClientErased" else None

        whole = await eventually(notes_gone)
        assert [c["note"] for c in whole["consultations"]] == [None]
        assert [c["topics"] for c in whole["consultations"]] == [["debts"]]
        assert whole["person"] is None

        async def withdrawn() -> dict | None:
            found = (await lead.get(f"{referrals}/referrals/{referral['referral_id']}")).json()
            return found if found["status"] == "withdrawn" else None

        assert (await eventually(withdrawn))["withdraw_reason"] == "client_erased"

        # stats: the same figures; they never identified anyone.
        await eventually(lambda: settled(stack))
        after = (await coordinator.get(f"{stats}/figures")).json()
        for key in ("persons_registered", "consultations", "open_cases_total"):
            assert after[key] == before[key], key

    # Nothing of her in any database, on any topic but the agency's (listed above), in any log.
    assert await everything_found(stack, personal) == {}
    for topic in (topics.CLIENTS, topics.CASES, topics.REFERRALS, topics.DEAD_LETTER):
        records = await read_topic(stack.kafka_bootstrap, topic)
        assert values_in_records([r.value for r in records], personal) == [], topic
    logs = [path.read_bytes() for path in stack.logs.glob("*.log")]
    assert values_in_records(logs, personal) == []
    erasures = []
    for record in await read_topic(stack.kafka_bootstrap, topics.CLIENTS):
        with contextlib.suppress(InvalidEvent):  # another test's poison record
            if isinstance((envelope := decode(record.headers, record.value)).event, ClientErased):
                erasures.append(envelope)
    assert {str(e.event.client_id) for e in erasures} >= {client_id, duplicate_id}
