"""One person's story through all four services and a partner agency, as real processes,
asserting on the HTTP answers and on the events read back from Kafka."""

from __future__ import annotations

import time
import uuid
from datetime import date

import httpx
import pytest

from knotenpunkt import topics
from knotenpunkt.envelope import decode
from knotenpunkt.events import CaseOpened, ClientRegistered, ConsultationRecorded, ReferralAccepted, ReferralSent
from knotenpunkt.testing.fixtures import eventually
from knotenpunkt.testing.kafka import publish, read_topic
from tests.e2e.support import settled
from tools.stack import PARTNER_AGENCY, Stack

pytestmark = pytest.mark.e2e


def birth_date_for_age(age: int) -> str:
    today = date.today()
    return date(today.year - age - 1, 1, 15).isoformat()


async def events_about(stack: Stack, topic: str, client_id: str) -> list:
    records = await read_topic(stack.kafka_bootstrap, topic)
    return [decode(r.headers, r.value, topic) for r in records if r.key == client_id.encode()]


async def test_one_persons_story_end_to_end(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hamborn")) as http:
        # Earlier tests' events may still be travelling; figures are compared once all is quiet.
        await eventually(lambda: settled(stack))
        before = (await http.get(f"{stack.url('stats')}/figures")).json()
        correlation_id = f"story-{uuid.uuid4()}"
        registration = {
            "family_name": "Yılmaz",
            "given_name": "Ayşe",
            "birth_date": birth_date_for_age(20),
            "office_id": "rsc-hamborn",
            "phone": "+49 203 123456",
        }
        headers = {"Idempotency-Key": str(uuid.uuid4()), "X-Correlation-ID": correlation_id}

        # 1. Intake registers the person and routes a 20-year-old to JMD.
        started = time.monotonic()
        registered = await http.post(f"{stack.url('intake')}/clients", json=registration, headers=headers)
        assert registered.status_code == 201, registered.text
        client = registered.json()
        assert (client["service_line"], client["office_id"]) == ("JMD", "rsc-hamborn")
        assert registered.headers["X-Correlation-ID"] == correlation_id

        # The same POST again (a double click): the same answer, and no second event.
        repeated = await http.post(f"{stack.url('intake')}/clients", json=registration, headers=headers)
        assert (repeated.status_code, repeated.json()) == (201, client)

        # 2. Cases opens a case in the routed service line and office.
        async def case_of_client() -> list:
            return (await http.get(f"{stack.url('cases')}/cases", params={"client_id": client["client_id"]})).json()

        [case] = await eventually(case_of_client)
        assert (case["service_line"], case["office_id"], case["status"]) == ("JMD", "rsc-hamborn", "open")

        # 3. A consultation is recorded.
        consultation = await http.post(
            f"{stack.url('cases')}/cases/{case['case_id']}/consultations",
            json={
                "held_on": date.today().isoformat(),
                "duration_minutes": 45,
                "topics": ["work", "benefits"],
                "family_members_counselled": 2,
                "note": "stays in cases",
            },
        )
        assert consultation.status_code == 201, consultation.text

        # 4. She consents to sharing her name with the Jobcenter; then the referral, which the
        # Jobcenter answers through its own service.
        consent = await http.post(
            f"{stack.url('intake')}/clients/{client['client_id']}/consents",
            json={"purpose": "sharing", "agency_kind": "jobcenter", "data_categories": ["name", "topic"],
                  "text_version": "2026-01", "given_on": date.today().isoformat()},
        )  # fmt: skip
        assert consent.status_code == 201, consent.text

        async def referrals_knows_case() -> httpx.Response | None:
            response = await http.post(
                f"{stack.url('referrals')}/referrals",
                json={"case_id": case["case_id"], "agency_id": PARTNER_AGENCY, "topic_code": "work"},
                headers={"Idempotency-Key": f"referral-{case['case_id']}"},
            )
            return response if response.status_code == 201 else None

        referral = (await eventually(referrals_knows_case)).json()

        async def accepted() -> bool:
            answer = await http.get(f"{stack.url('referrals')}/referrals/{referral['referral_id']}")
            return answer.json()["status"] == "accepted"

        await eventually(accepted)

        # 5. Stats counts the story.
        async def figures_moved() -> dict | None:
            now = (await http.get(f"{stack.url('stats')}/figures")).json()
            done = (
                now["persons_registered"] == before["persons_registered"] + 1
                and now["consultations"] == before["consultations"] + 1
                and now["referrals"]["accepted"] == before["referrals"]["accepted"] + 1
            )
            return now if done else None

        after = await eventually(figures_moved)
        story_seconds = time.monotonic() - started
        print(f"\none person's story, intake POST to accepted referral counted in stats: {story_seconds:.2f} s")
        assert after["referrals"]["sent"] == before["referrals"]["sent"] + 1
        assert after["family_members_counselled"] == before["family_members_counselled"] + 2
        assert after["open_cases_total"] == before["open_cases_total"] + 1
        assert {"service_line": "JMD", "office_id": "rsc-hamborn"} in [
            {k: row[k] for k in ("service_line", "office_id")} for row in after["open_cases"]
        ]

    # The events on Kafka: each exactly once, carrying the request's correlation id, no personal data.
    client_id = client["client_id"]
    client_events = await events_about(stack, topics.CLIENTS, client_id)
    assert [type(e.event).__name__ for e in client_events] == ["ClientRegistered", "ConsentGiven"]
    registered_event = client_events[0]
    case_events = await events_about(stack, topics.CASES, client_id)
    assert [type(e.event) for e in case_events] == [CaseOpened, ConsultationRecorded]
    assert case_events[0].correlation_id == correlation_id
    assert case_events[0].causation_id == str(registered_event.id)
    [sent_to_agency] = await events_about(stack, topics.agency_referrals(PARTNER_AGENCY), client_id)
    assert isinstance(sent_to_agency.event, ReferralSent)
    # The agency gets exactly the consented categories: her name, not her phone.
    shared = sent_to_agency.event.shared_data
    assert shared is not None and (shared.family_name, shared.given_name) == ("Yılmaz", "Ayşe")
    assert shared.phone is None and shared.birth_date is None
    [agency_answer] = await events_about(stack, topics.agency_answers(PARTNER_AGENCY), client_id)
    assert isinstance(agency_answer.event, ReferralAccepted)
    lifecycle = await events_about(stack, topics.REFERRALS, client_id)
    assert [type(e.event) for e in lifecycle] == [ReferralSent, ReferralAccepted]
    assert all(e.event.shared_data is None for e in lifecycle if isinstance(e.event, ReferralSent))
    for topic in (topics.CLIENTS, topics.CASES, topics.REFERRALS):
        for record in await read_topic(stack.kafka_bootstrap, topic):
            if record.key == client_id.encode():
                for secret in (b"Ayse", "Ayşe".encode(), "Yılmaz".encode(), b"123456", b"stays in cases"):
                    assert secret not in record.value


async def test_a_malformed_event_is_dead_lettered_and_the_services_go_on(stack: Stack, identity) -> None:
    garbage_id = str(uuid.uuid4())
    await publish(
        stack.kafka_bootstrap,
        topics.CLIENTS,
        [
            (
                b"poison",
                b"\xff not json",
                [("ce_type", ClientRegistered.event_type.encode()), ("ce_id", garbage_id.encode())],
            )
        ],
    )
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-rheinhausen")) as http:
        registered = await http.post(
            f"{stack.url('intake')}/clients",
            json={
                "family_name": "Nowak",
                "given_name": "Piotr",
                "birth_date": birth_date_for_age(40),
                "office_id": "rsc-rheinhausen",
            },
        )
        assert registered.status_code == 201
        client = registered.json()
        assert client["service_line"] == "MBE"

        async def case_opened() -> list:
            return (await http.get(f"{stack.url('cases')}/cases", params={"client_id": client["client_id"]})).json()

        await eventually(case_opened)

    async def dead_lettered_by_cases_and_stats() -> set[bytes]:
        records = await read_topic(stack.kafka_bootstrap, topics.DEAD_LETTER)
        groups = {
            dict(r.headers)["dlq_consumer_group"]
            for r in records
            if dict(r.headers).get("ce_id") == garbage_id.encode()
        }
        return groups if {b"knotenpunkt.cases", b"knotenpunkt.stats"} <= groups else set()

    await eventually(dead_lettered_by_cases_and_stats)


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"family_name": None}, "family_name", "missing"),
        ({"birth_date": "2999-01-01"}, "birth_date", "birth_date_in_future"),
        ({"birth_date": birth_date_for_age(8)}, "birth_date", "too_young"),
        ({"office_id": "rsc-atlantis"}, "office_id", "unknown_office"),
        ({"birth_date": "31.02.1990"}, "birth_date", "date_from_datetime_parsing"),
    ],
)
async def test_an_invalid_registration_gets_a_message_per_field(
    stack: Stack, changes: dict, field: str, code: str, identity
) -> None:
    registration = {
        "family_name": "Doe",
        "given_name": "Jo",
        "birth_date": birth_date_for_age(30),
        "office_id": "rsc-hochfeld",
    }
    registration.update(changes)
    registration = {key: value for key, value in registration.items() if value is not None}
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hamborn")) as http:
        german = await http.post(f"{stack.url('intake')}/clients", json=registration)
        english = await http.post(
            f"{stack.url('intake')}/clients", json=registration, headers={"Accept-Language": "en"}
        )
    assert german.status_code == english.status_code == 422
    [error] = [e for e in german.json()["errors"] if e["field"] == field]
    assert error["code"] == code and error["message"]
    [english_error] = [e for e in english.json()["errors"] if e["field"] == field]
    assert english_error["message"] != error["message"]


async def test_unknown_ids_are_404_and_never_500(stack: Stack, identity) -> None:
    missing = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hamborn")) as http:
        answers = [
            await http.get(f"{stack.url('intake')}/clients/{missing}"),
            await http.get(f"{stack.url('cases')}/cases/{missing}"),
            await http.post(
                f"{stack.url('cases')}/cases/{missing}/consultations",
                json={"held_on": date.today().isoformat(), "duration_minutes": 30, "topics": ["work"]},
            ),
            await http.post(
                f"{stack.url('referrals')}/referrals",
                json={"case_id": missing, "agency_id": PARTNER_AGENCY, "topic_code": "work"},
            ),
            await http.get(f"{stack.url('referrals')}/referrals/{missing}"),
        ]
        malformed = await http.post(
            f"{stack.url('intake')}/clients", content=b"{oops", headers={"content-type": "application/json"}
        )
    assert [answer.status_code for answer in answers] == [404] * 5
    assert all(answer.json()["code"] == "not_found" for answer in answers)
    assert malformed.status_code == 422


async def test_services_expose_prometheus_metrics_that_move(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hamborn")) as http:
        cases_metrics = (await http.get(f"{stack.url('cases')}/metrics")).text
        intake_metrics = (await http.get(f"{stack.url('intake')}/metrics")).text
    # By now (the story ran first) cases has applied registrations and intake's relay published.
    assert (
        'knotenpunkt_events_handled_total{event_type="knotenpunkt.intake.ClientRegistered.v1",group="knotenpunkt.cases",outcome="applied"}'
        in cases_metrics
    )
    assert "knotenpunkt_consumer_lag{" in cases_metrics and "knotenpunkt_handler_seconds_bucket" in cases_metrics
    published = [line for line in intake_metrics.splitlines() if line.startswith("knotenpunkt_outbox_published_total")]
    assert published and float(published[0].split()[-1]) >= 1


async def test_every_service_reports_ready(stack: Stack, identity) -> None:
    async with httpx.AsyncClient(timeout=10, auth=identity.auth("lead-hamborn")) as http:
        for service in ("intake", "cases", "referrals", "stats"):
            ready = await http.get(f"{stack.url(service)}/health/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"]["database"] == ready.json()["checks"]["kafka"] == "ok"
            assert (await http.get(f"{stack.url(service)}/health/live")).status_code == 200


async def test_event_topics_keep_history_and_agency_topics_forget_personal_data(stack: Stack, identity) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        names = [topics.CLIENTS, topics.CASES, topics.REFERRALS, topics.agency_referrals(PARTNER_AGENCY)]
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    finally:
        await admin.close()
    retention = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            retention[name] = next(int(entry[1]) for entry in entries if entry[0] == "retention.ms")
    assert retention[topics.CLIENTS] == retention[topics.CASES] == retention[topics.REFERRALS] == -1
    assert retention[topics.agency_referrals(PARTNER_AGENCY)] == topics.AGENCY_TOPIC_RETENTION_MS
