"""The stats projection on the real broker and database, asked through its HTTP API: events in
any order, duplicates, corrections, merges, and a generated stream against independent counts.

The API is the service's own (authentication, audit, permissions), asked as the coordinator with
a token from the session's Keycloak. These tests check what is counted, so they turn small-count
suppression off (threshold 0, a setting); test_stats_access.py checks what is published."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from knotenpunkt import topics
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ClientRegistered,
    ClientsMerged,
    ClientUpdated,
    ConsultationRecorded,
    ReferralAccepted,
    ReferralSent,
    ServiceLineHandoverDue,
)
from knotenpunkt.events.common import AgeBand, Gender, ServiceLine
from knotenpunkt.kafka import DeadLetterPublisher, Producer
from knotenpunkt.projection import ProjectionConsumer
from knotenpunkt.testing.apps import check_guarded, secured_api
from knotenpunkt.testing.fixtures import count_rows, eventually, unique
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.kafka import create_topic
from stats import readmodel, staff
from stats.api import build_router
from stats.app import MIGRATIONS, projection_consumer
from stats.reports import load_definitions
from stats.settings import StatsSettings
from tests.bench.stats_stream import count, publish_stream, stream

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class SignedIn(httpx.Auth):
    """A demo user's token on every request, fetched again when it runs out (long tests)."""

    def __init__(self, identity: Identity, username: str) -> None:
        self.identity = identity
        self.username = username

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self.identity.token(self.username)}"
        yield request


@dataclass
class Stats:
    database: Database
    settings: StatsSettings
    names: dict[str, str]
    http: httpx.AsyncClient
    identity: Identity
    published: int = 0

    def client(self, username: str | None = "coordinator", threshold: int = 4) -> httpx.AsyncClient:
        """Another client of the same read models: signed in as someone else (None: no token),
        or with another suppression threshold."""
        auth = SignedIn(self.identity, username) if username else None
        transport = httpx.ASGITransport(app=api(self.database, threshold))
        return httpx.AsyncClient(transport=transport, base_url="http://stats", auth=auth)

    async def publish(self, envelopes: list[Envelope]) -> None:
        await publish_stream(self.settings.kafka_bootstrap, envelopes, self.names)
        self.published += len(envelopes)

    async def settled(self) -> None:
        """Every published record is stored as applied in the live read model."""

        async def done() -> bool:
            applied = await count_rows(
                self.database, "SELECT coalesce(sum(next_offset), 0) FROM readmodel.projection_offsets"
            )
            return applied == self.published

        await eventually(done, timeout_s=60)

    async def figures(self) -> dict:
        return (await self.http.get("/figures")).json()

    async def query(self, **params: str) -> list[dict]:
        """The rows of /figures/query, without their `suppressed` lists (empty without suppression)."""
        answer = await self.http.get("/figures/query", params=params)
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"]
        if answer.json()["suppression"]["threshold"] == 0:
            assert all(row["suppressed"] == [] for row in rows)
        return [{key: value for key, value in row.items() if key != "suppressed"} for row in rows]


def api(database: Database, threshold: int = 4) -> FastAPI:
    """Stats' routes behind the service's own authentication, audit and permission checks."""
    app = secured_api("stats", database)
    app.include_router(build_router(database, load_definitions(), threshold))
    return check_guarded(app)


@contextlib.asynccontextmanager
async def live_consumer(
    settings: StatsSettings, database: Database, names: dict[str, str]
) -> AsyncIterator[ProjectionConsumer]:
    producer = Producer(settings.kafka_bootstrap, "test-dlq")
    await producer.start()
    consumer = projection_consumer(
        settings,
        database,
        DeadLetterPublisher(producer, "knotenpunkt.stats", unique("dlq")),
        group_id=unique("stats"),
        topic_names=tuple(names.values()),
    )
    await consumer.start()
    consumer.start_background()
    try:
        yield consumer
    finally:
        await consumer.stop()
        await producer.stop()


@contextlib.asynccontextmanager
async def stats_service(infra, make_database, threshold: int = 4) -> AsyncIterator[Stats]:
    """A live stats projection on fresh topics and database, and its API asked as the coordinator."""
    database = await make_database("stats", MIGRATIONS)
    await readmodel.ensure_live(database)
    await staff.load_staff(database, staff.read_seed())
    names = {
        name: await create_topic(infra.kafka_bootstrap, unique(name.split(".")[1]))
        for name in (topics.CLIENTS, topics.CASES, topics.REFERRALS)
    }
    settings = StatsSettings(
        database_url=database.dsn, kafka_bootstrap=infra.kafka_bootstrap, projection_batch_size=500
    )
    identity = Identity(infra.keycloak_url)
    async with (
        live_consumer(settings, database, names),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api(database, threshold)),
            base_url="http://stats",
            auth=SignedIn(identity, "coordinator"),
        ) as http,
    ):
        yield Stats(database, settings, names, http, identity)


@pytest.fixture
async def stats(infra, make_database) -> AsyncIterator[Stats]:
    # What is counted, exactly: suppression off (see the module's docstring).
    async with stats_service(infra, make_database, threshold=0) as running:
        yield running


def envelope(event) -> Envelope:
    return Envelope(event=event, source="test")


def registration(client_id: uuid.UUID, **changes) -> ClientRegistered:
    fields = {
        "client_id": client_id,
        "registered_at": T0,
        "age_band": AgeBand.AGE_18_26,
        "service_line": ServiceLine.JMD,
        "office_id": "rsc-hamborn",
        "gender": Gender.FEMALE,
        "district": "marxloh",
        "nationalities": ("TR",),
        "counselling_language": "tr",
        "residence_status": "temporary",
        "arrival_year": 2021,
    }
    fields.update(changes)
    return ClientRegistered(**fields)


async def test_a_story_arriving_out_of_order_and_twice_is_counted_once(stats: Stats) -> None:
    client, case, referral = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    consultation = envelope(
        ConsultationRecorded(
            client_id=client,
            consultation_id=uuid.uuid4(),
            case_id=case,
            service_line=ServiceLine.JMD,
            office_id="rsc-hamborn",
            held_on=date(2025, 3, 5),
            duration_minutes=45,
            topics=("work", "housing"),
            family_members_counselled=2,
        )
    )
    opened = envelope(
        CaseOpened(client_id=client, case_id=case, service_line=ServiceLine.JMD, office_id="rsc-hamborn", opened_at=T0)
    )
    sent = envelope(
        ReferralSent(
            client_id=client,
            referral_id=referral,
            case_id=case,
            agency_id="jobcenter-duisburg",
            topic_code="work",
            office_id="rsc-hamborn",
            sent_at=T0 + timedelta(days=1),
        )
    )
    accepted = envelope(
        ReferralAccepted(
            client_id=client, referral_id=referral, agency_id="jobcenter-duisburg", accepted_at=T0 + timedelta(days=3)
        )
    )
    # The consultation before its case's opening, the answer before the referral, the
    # registration last; then the same events again (a relay that re-sent them).
    story = [consultation, accepted, sent, opened, envelope(registration(client))]
    await stats.publish(story)
    await stats.publish([consultation, opened, accepted, story[-1]])
    await stats.settled()

    figures = await stats.figures()
    assert figures["persons_registered"] == 1
    assert figures["open_cases"] == [{"service_line": "JMD", "office_id": "rsc-hamborn", "cases": 1}]
    assert (figures["consultations"], figures["family_members_counselled"]) == (1, 2)
    assert (figures["referrals"]["sent"], figures["referrals"]["accepted"]) == (1, 1)

    # The person's attributes reach the consultation that came before them.
    by_age = await stats.query(measures="persons_reached", by="age_band")
    assert by_age == [{"age_band": "18-26", "persons_reached": 3}]
    answer = await stats.query(measures="answer_hours_median,referrals_sent", by="agency")
    assert answer == [{"agency": "jobcenter-duisburg", "answer_hours_median": 48.0, "referrals_sent": 1}]


async def test_corrections_transfers_merges_and_closings(stats: Stats) -> None:
    first, duplicate, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    case_a, case_b, case_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def consultation(client: uuid.UUID, case: uuid.UUID, office: str) -> Envelope:
        return envelope(
            ConsultationRecorded(
                client_id=client,
                consultation_id=uuid.uuid4(),
                case_id=case,
                service_line=ServiceLine.MBE,
                office_id=office,
                held_on=date(2025, 4, 1),
                duration_minutes=30,
                topics=("residence",),
                family_members_counselled=0,
            )
        )

    def opened(client: uuid.UUID, case: uuid.UUID, office: str) -> Envelope:
        return envelope(
            CaseOpened(client_id=client, case_id=case, service_line=ServiceLine.MBE, office_id=office, opened_at=T0)
        )

    await stats.publish(
        [
            envelope(registration(first, age_band=AgeBand.AGE_27_44, service_line=ServiceLine.MBE)),
            envelope(registration(duplicate, age_band=AgeBand.AGE_27_44, service_line=ServiceLine.MBE)),
            envelope(registration(other, age_band=AgeBand.AGE_45_64, service_line=ServiceLine.MBE)),
            envelope(
                ClientUpdated(
                    client_id=first, updated_at=T0 + timedelta(hours=1), changed=("district",), district="homberg"
                )
            ),
            opened(first, case_a, "rsc-hamborn"),
            opened(duplicate, case_b, "rsc-hochfeld"),
            opened(other, case_c, "rsc-hamborn"),
            consultation(first, case_a, "rsc-hamborn"),
            consultation(duplicate, case_b, "rsc-hochfeld"),
            consultation(other, case_c, "rsc-hamborn"),
            # The transfer is older than nothing else: the case moves to Rheinhausen.
            envelope(
                CaseTransferred(
                    client_id=other,
                    case_id=case_c,
                    from_office_id="rsc-hamborn",
                    to_office_id="rsc-rheinhausen",
                    to_case_manager_id="cm-rheinhausen-1",
                    reason="moved",
                    transferred_at=T0 + timedelta(days=2),
                )
            ),
            envelope(
                CaseClosed(
                    client_id=first,
                    case_id=case_a,
                    service_line=ServiceLine.MBE,
                    office_id="rsc-hamborn",
                    reason="goals_reached",
                    closed_at=T0 + timedelta(days=10),
                )
            ),
            envelope(
                CaseClosed(
                    client_id=duplicate,
                    case_id=case_b,
                    service_line=ServiceLine.MBE,
                    office_id="rsc-hochfeld",
                    reason="duplicate",
                    closed_at=T0 + timedelta(days=4),
                )
            ),
            envelope(CaseReopened(client_id=first, case_id=case_a, reopened_at=T0 + timedelta(days=20))),
            # The duplicate record turns out to be the first person.
            envelope(ClientsMerged(client_id=first, merged_client_id=duplicate, merged_at=T0 + timedelta(days=5))),
        ]
    )
    await stats.settled()

    query = stats.query

    assert await query(measures="unique_persons,persons_counselled") == [
        {"unique_persons": 2, "persons_counselled": 3}  # the merged person counselled in two offices
    ]
    assert await query(measures="consultations", by="district") == [
        {"district": "homberg", "consultations": 1},
        {"district": "marxloh", "consultations": 2},
    ]
    # Case A was reopened, case B closed after 4 days, case C moved to Rheinhausen with its manager.
    assert await query(measures="open_cases_now", by="office,case_manager") == [
        {"office": "rsc-hamborn", "case_manager": "unassigned", "open_cases_now": 1},
        {"office": "rsc-rheinhausen", "case_manager": "cm-rheinhausen-1", "open_cases_now": 1},
    ]
    assert await query(
        measures="cases_closed,case_duration_median_days", **{"from": "2025-01-01", "to": "2025-12-31"}
    ) == [{"cases_closed": 1, "case_duration_median_days": 4.0}]
    # The demo seed gives Rheinhausen 2.0 full-time posts.
    assert await query(measures="caseload_per_fte", by="office", office="rsc-rheinhausen") == [
        {"office": "rsc-rheinhausen", "caseload_per_fte": 0.5}
    ]


async def test_registrations_to_the_day_and_handovers_to_the_month_count_right(stats: Stats) -> None:
    """ClientRegistered carries only the day (midnight UTC), ServiceLineHandoverDue only the month:
    a correction later that day still wins, and handovers fall into their month and quarter."""
    person, case = uuid.uuid4(), uuid.uuid4()
    late_evening = datetime(2025, 3, 31, 23, 30, tzinfo=UTC)  # already 1 April in Duisburg
    registered = envelope(registration(person, registered_at=late_evening, district="marxloh"))
    corrected = envelope(
        ClientUpdated(
            client_id=person, updated_at=late_evening + timedelta(minutes=10), changed=("district",), district="homberg"
        )
    )
    handover = envelope(
        ServiceLineHandoverDue(
            client_id=person,
            from_service_line=ServiceLine.JMD,
            to_service_line=ServiceLine.MBE,
            due_on=date(2025, 3, 20),
        )
    )
    opened = envelope(
        CaseOpened(client_id=person, case_id=case, service_line=ServiceLine.JMD, office_id="rsc-hamborn", opened_at=T0)
    )
    consultation = envelope(
        ConsultationRecorded(
            client_id=person,
            consultation_id=uuid.uuid4(),
            case_id=case,
            service_line=ServiceLine.JMD,
            office_id="rsc-hamborn",
            held_on=date(2025, 4, 2),
            duration_minutes=30,
            topics=("work",),
            family_members_counselled=0,
        )
    )
    # The registration, the correction, and the registration again (a relay re-sending it).
    await stats.publish([registered, corrected, handover, opened, consultation])
    await stats.publish([registered, handover])
    await stats.settled()

    async with stats.database.connection() as connection:
        kept = await connection.fetchrow(
            "SELECT p.registered_at, p.district, h.due_on FROM readmodel.persons p "
            "JOIN readmodel.handovers h USING (client_id) WHERE client_id = $1",
            person,
        )
    # Nothing more precise than the day and the month is kept.
    assert kept["registered_at"] == datetime(2025, 3, 31, tzinfo=UTC)
    assert kept["due_on"] == date(2025, 3, 1)
    # The correction, ten minutes after the registration, is newer than its day.
    assert kept["district"] == "homberg"
    assert await stats.query(measures="consultations", by="district") == [{"district": "homberg", "consultations": 1}]
    assert (await stats.figures())["persons_registered"] == 1

    assert await stats.query(measures="handovers_due", period="month") == [{"period": "2025-03", "handovers_due": 1}]
    assert await stats.query(measures="handovers_due", period="quarter", by="service_line") == [
        {"period": "2025-Q1", "service_line": "JMD", "handovers_due": 1}
    ]
    # A month's handovers are in a range that holds the month's first day.
    march = {"from": "2025-03-01", "to": "2025-03-31"}
    assert await stats.query(measures="handovers_due", **march) == [{"handovers_due": 1}]
    assert await stats.query(measures="handovers_due", **{"from": "2025-04-01"}) == [{"handovers_due": 0}]


async def test_a_generated_stream_matches_counts_made_while_generating(stats: Stats) -> None:
    envelopes = list(stream(3000, seed=11))
    expected = count(envelopes)
    await stats.publish(envelopes)
    await stats.settled()

    figures = await stats.figures()
    assert figures["persons_registered"] == expected.persons
    assert figures["consultations"] == expected.consultations
    assert figures["family_members_counselled"] == expected.family_members
    assert figures["cases_opened"] == expected.cases_opened
    assert figures["cases_closed"] == expected.cases_closed
    assert figures["referrals"]["sent"] == expected.referrals_sent
    assert figures["referrals"]["accepted"] == expected.referrals_accepted
    assert figures["referrals"]["declined"] == expected.referrals_declined
    assert figures["unmet_needs"] == expected.unmet_needs
    assert figures["handovers_due"] == expected.handovers
    by_year = await stats.query(measures="consultations", period="year")
    assert {int(row["period"]): row["consultations"] for row in by_year} == expected.consultations_by_year


async def test_unknown_dimensions_periods_and_parameters_are_422_with_the_allowed_values(stats: Stats) -> None:
    cases = [
        ({"measures": "consultations", "by": "shoe_size"}, "by", "unknown_dimension", "age_band"),
        ({"measures": "consultations", "period": "fortnight"}, "period", "unknown_period", "quarter"),
        ({"measures": "heartbeats"}, "measures", "unknown_measure", "persons_reached"),
        ({"measures": "open_cases_now", "period": "month"}, "period", "no_period", "month"),
        ({"measures": "staff_fte", "by": "topic"}, "by", "unknown_dimension", "case_manager"),
        ({"measures": "consultations", "colour": "red"}, "colour", "unknown_parameter", "service_line"),
        ({"measures": "consultations", "from": "31.12.2025"}, "from", "date_from_datetime_parsing", "JJJJ"),
    ]
    for params, field, code, mentioned in cases:
        german = await stats.http.get("/figures/query", params=params)
        english = await stats.http.get("/figures/query", params=params, headers={"Accept-Language": "en"})
        assert german.status_code == english.status_code == 422, german.text
        [error] = [e for e in german.json()["errors"] if e["field"] == field]
        assert error["code"] == code
        assert mentioned in error["message"], error["message"]
        [english_error] = [e for e in english.json()["errors"] if e["field"] == field]
        assert english_error["message"] != error["message"]
