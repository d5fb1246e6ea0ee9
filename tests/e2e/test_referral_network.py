"""The referral network end to end: the services and example partner agencies as real processes.

Partners: one accepts and completes, one declines for lack of capacity, one never answers; an
answer for another agency's referral is rejected. Consents are recorded through intake's API.

For the deadlines to pass in seconds, this module restarts referrals with one agency "day"
lasting one second (KP_REFERRAL_DAY_SECONDS) and puts it back as it was afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import Envelope, decode
from knotenpunkt.events import (
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
    UnmetNeedRecorded,
)
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import publish, read_topic
from tools.stack import Stack

pytestmark = pytest.mark.e2e

COMPLETES = "agentur-fuer-arbeit-duisburg"  # accepts, then reports the outcome
DECLINES = "awo-campus-duisburg"  # course provider without free places
IGNORES = "sozialamt-duisburg"  # never answers
NO_PARTNER = "jugendamt-duisburg"  # nobody answers for it in these tests
PARTNERS = {COMPLETES: "accept_and_complete", DECLINES: "decline", IGNORES: "ignore"}
SCALED = {"KP_REFERRAL_DAY_SECONDS": "1", "KP_DEADLINE_CHECK_INTERVAL_S": "0.3"}


def restart_referrals(stack: Stack) -> None:
    stack.stop_process("referrals")
    stack.start_service("referrals")
    stack.wait_ready("referrals")


@pytest.fixture(scope="module")
def network(stack: Stack) -> Iterator[Stack]:
    before = {name: stack.extra_env.get(name) for name in SCALED}
    stack.extra_env.update(SCALED)
    restart_referrals(stack)
    for agency, decision in PARTNERS.items():
        stack.start_partner(agency, decision)
    try:
        yield stack
    finally:
        for agency in PARTNERS:
            stack.stop_process(f"partner-{agency}")
        for name, value in before.items():
            if value is None:
                stack.extra_env.pop(name, None)
            else:
                stack.extra_env[name] = value
        restart_referrals(stack)


async def person_with_case(http: httpx.AsyncClient, stack: Stack, family_name: str) -> dict:
    registered = await http.post(
        f"{stack.url('intake')}/clients",
        json={
            "family_name": family_name,
            "given_name": "Amira",
            "birth_date": "1999-04-01",
            "office_id": "rsc-hochfeld",
        },
    )
    assert registered.status_code == 201, registered.text
    client = registered.json()

    async def case() -> list:
        return (await http.get(f"{stack.url('cases')}/cases", params={"client_id": client["client_id"]})).json()

    [opened] = await eventually(case)
    return {"client_id": client["client_id"], "case_id": opened["case_id"]}


async def give_consent(http: httpx.AsyncClient, stack: Stack, client_id: str, agency_id: str) -> str:
    given = await http.post(
        f"{stack.url('intake')}/clients/{client_id}/consents",
        json={
            "purpose": "sharing",
            "agency_id": agency_id,
            "agency_kind": None,
            "data_categories": ["name", "contact", "topic"],
            "text_version": "2026-01",
            "given_on": date.today().isoformat(),
            "valid_until": None,
        },
    )
    assert given.status_code == 201, given.text
    return given.json()["consent_id"]


async def refer(http: httpx.AsyncClient, stack: Stack, person: dict, agency_id: str, topic_code: str) -> dict:
    async def sent() -> httpx.Response | None:
        # Referrals learns the case from CaseOpened; until then it answers 404.
        response = await http.post(
            f"{stack.url('referrals')}/referrals",
            json={"case_id": person["case_id"], "agency_id": agency_id, "topic_code": topic_code},
            headers={"Idempotency-Key": f"e2e-{person['case_id']}-{agency_id}"},
        )
        return response if response.status_code != 404 else None

    response = await eventually(sent)
    assert response.status_code == 201, response.text
    return response.json()


async def referral(http: httpx.AsyncClient, stack: Stack, referral_id: str) -> dict:
    return (await http.get(f"{stack.url('referrals')}/referrals/{referral_id}")).json()


async def events_of(stack: Stack, topic: str, referral_id: str) -> list[Envelope]:
    found = [decode(r.headers, r.value, topic) for r in await read_topic(stack.kafka_bootstrap, topic)]
    return [e for e in found if str(getattr(e.event, "referral_id", "")) == referral_id]


def kinds(envelopes: list[Envelope]) -> list[type]:
    return [type(e.event) for e in envelopes]


async def test_an_agency_accepts_and_completes_and_only_its_own_topic_carries_the_persons_data(
    network: Stack,
    identity,
) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        person = await person_with_case(http, network, "Haddad")
        await give_consent(http, network, person["client_id"], COMPLETES)
        sent = await refer(http, network, person, COMPLETES, "vocational_training")

        async def completed() -> dict | None:
            found = await referral(http, network, sent["referral_id"])
            return found if found["status"] == "completed" else None

        done = await eventually(completed)
        assert done["outcome"] == "successful"

    async def lifecycle() -> list[type]:
        found = kinds(await events_of(network, topics.REFERRALS, sent["referral_id"]))
        return found if ReferralCompleted in found else []

    assert await eventually(lifecycle) == [ReferralSent, ReferralAccepted, ReferralCompleted]
    [to_agency] = [
        e
        for e in await events_of(network, topics.agency_referrals(COMPLETES), sent["referral_id"])
        if isinstance(e.event, ReferralSent)
    ]
    shared = to_agency.event.shared_data
    assert shared is not None and shared.family_name == "Haddad" and "topic" in shared.categories
    for record in await read_topic(network.kafka_bootstrap, topics.REFERRALS):
        if record.key == person["client_id"].encode():
            assert b"Haddad" not in record.value


async def test_an_agency_without_capacity_declines_and_the_gap_is_recorded(network: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        person = await person_with_case(http, network, "Petrenko")
        await give_consent(http, network, person["client_id"], DECLINES)
        sent = await refer(http, network, person, DECLINES, "language_integration_course")

        async def declined() -> dict | None:
            found = await referral(http, network, sent["referral_id"])
            return found if found["status"] == "declined" else None

        assert (await eventually(declined))["decline_reason"] == "no_capacity"
        gaps = (
            await http.get(
                f"{network.url('referrals')}/gaps",
                params={
                    "topic_code": "language_integration_course",
                    "agency_kind": "course_provider",
                    "office_id": "rsc-hochfeld",
                },
            )
        ).json()
        assert [g["cause"] for g in gaps] and all(g["cause"] == "no_capacity" and g["count"] >= 1 for g in gaps)
        assert gaps[-1]["period"] == date.today().strftime("%Y-%m")

    async def recorded() -> list[type]:
        found = kinds(await events_of(network, topics.REFERRALS, sent["referral_id"]))
        return found if UnmetNeedRecorded in found else []

    assert await eventually(recorded) == [ReferralSent, ReferralDeclined, UnmetNeedRecorded]


async def test_an_agency_that_never_answers_is_reminded_and_the_referral_expires(network: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        person = await person_with_case(http, network, "Kowalski")
        await give_consent(http, network, person["client_id"], IGNORES)
        sent = await refer(http, network, person, IGNORES, "benefits")

        async def told_the_agency() -> list[type]:
            found = kinds(await events_of(network, topics.agency_referrals(IGNORES), sent["referral_id"]))
            return found if ReferralExpired in found else []

        # sozialamt promises 10 days: the reminder comes after 5 s, the expiry after 10 s.
        assert await eventually(told_the_agency, timeout_s=60) == [ReferralSent, ReferralReminderSent, ReferralExpired]
        expired = await referral(http, network, sent["referral_id"])
        assert (expired["status"], expired["action_needed"]) == ("expired", "expired")
        gaps = (await http.get(f"{network.url('referrals')}/gaps", params={"agency_kind": "sozialamt"})).json()
        assert any(g["cause"] == "expired" and g["topic_code"] == "benefits" for g in gaps)


async def test_an_answer_for_another_agencys_referral_is_rejected_and_changes_nothing(network: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        person = await person_with_case(http, network, "Osei")
        await give_consent(http, network, person["client_id"], NO_PARTNER)
        sent = await refer(http, network, person, NO_PARTNER, "family")
        # The Jobcenter's service answers, on its own topic, a referral sent to the Jugendamt.
        intruding = Envelope(
            event=ReferralAccepted(
                client_id=uuid.UUID(person["client_id"]),
                referral_id=uuid.UUID(sent["referral_id"]),
                agency_id="jobcenter-duisburg",
                accepted_at=datetime.now(UTC),
            ),
            source="agency/jobcenter-duisburg",
        )
        await publish(network.kafka_bootstrap, topics.agency_answers("jobcenter-duisburg"), [intruding])

        async def dead_lettered() -> str | None:
            for record in await read_topic(network.kafka_bootstrap, topics.DEAD_LETTER):
                headers = dict(record.headers)
                if headers.get("ce_id") == str(intruding.id).encode():
                    if headers.get("dlq_consumer_group") == b"knotenpunkt.referrals":
                        return headers["dlq_reason"].decode()
            return None

        assert "was not sent to jobcenter-duisburg" in await eventually(dead_lettered)
        assert (await referral(http, network, sent["referral_id"]))["status"] != "accepted"
        # Nobody answers for the Jugendamt: taken back, so that no expiry (an unmet need) lands
        # in a later module's figures once the "days" are real again.
        withdrawn = await http.post(f"{network.url('referrals')}/referrals/{sent['referral_id']}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
    assert ReferralAccepted not in kinds(await events_of(network, topics.REFERRALS, sent["referral_id"]))


async def test_without_consent_no_referral_and_a_withdrawn_consent_withdraws_the_open_referral(
    network: Stack,
    identity,
) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hochfeld")) as http:
        person = await person_with_case(http, network, "Nguyen")

        async def refused() -> httpx.Response | None:
            response = await http.post(
                f"{network.url('referrals')}/referrals",
                json={"case_id": person["case_id"], "agency_id": NO_PARTNER, "topic_code": "family"},
            )
            return response if response.status_code != 404 else None

        answer = await eventually(refused)
        assert (answer.status_code, answer.json()["code"]) == (409, "no_sharing_consent")

        consent_id = await give_consent(http, network, person["client_id"], NO_PARTNER)
        sent = await refer(http, network, person, NO_PARTNER, "family")
        withdrawn = await http.post(
            f"{network.url('intake')}/clients/{person['client_id']}/consents/{consent_id}/withdraw", json={}
        )
        assert withdrawn.status_code == 200, withdrawn.text

        async def taken_back() -> dict | None:
            found = await referral(http, network, sent["referral_id"])
            return found if found["status"] == "withdrawn" else None

        assert (await eventually(taken_back))["withdraw_reason"] == "consent_withdrawn"

    async def agency_told() -> list[Envelope]:
        found = await events_of(network, topics.agency_referrals(NO_PARTNER), sent["referral_id"])
        return [e for e in found if isinstance(e.event, ReferralWithdrawn)]

    [notice] = await eventually(agency_told)
    assert notice.event.reason == "consent_withdrawn"
