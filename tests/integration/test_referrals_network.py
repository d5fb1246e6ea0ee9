"""The referral network on the real broker and database: the whole referrals service (migrations,
consumers, outbox relay, deadline watcher) runs in-process; intake is a small HTTP stand-in that
answers its consent contract, so the real HTTP adapter is exercised.

Every test uses its own case, person and agencies, so the tests share one running service.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Response

from knotenpunkt import migrations, topics
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope, decode
from knotenpunkt.events import (
    AgencyKind,
    CaseOpened,
    ClientsMerged,
    CompletionOutcome,
    ConsentPurpose,
    ConsentWithdrawn,
    DataCategory,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
    ServiceLine,
    UnmetNeedRecorded,
)
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.fixtures import eventually, unique
from knotenpunkt.testing.kafka import publish, read_topic
from referrals.app import MIGRATIONS, create_app
from referrals.inbox_auth import issue_token, revoke_tokens
from referrals.settings import ReferralsSettings

pytestmark = pytest.mark.integration

# One agency "day" lasts this many seconds here, so an agency that promises 2 days gets its
# reminder after 2 s and its referral expires after 4 s.
DAY_SECONDS = 2.0


@dataclass
class IntakeStandIn:
    """intake's consent contract, answered from a dict: client id -> consented categories per agency."""

    consents: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/clients/{client_id}/consent-check")
        async def consent_check(
            client_id: str, purpose: str, agency_id: str, agency_kind: str, categories: str
        ) -> dict:
            # As intake: granted only when a consent covers every category asked for.
            covered = self.consents.get((client_id, agency_id))
            if purpose != "sharing" or covered is None:
                return {"granted": False, "consent_id": None, "categories": [], "reason": "no_consent"}
            if not set(categories.split(",")) <= set(covered):
                return {
                    "granted": False,
                    "consent_id": None,
                    "categories": list(covered),
                    "reason": "categories_not_covered",
                }
            return {"granted": True, "consent_id": f"consent-{client_id}", "categories": list(covered), "reason": None}

        @app.get("/clients/{client_id}/shared-data")
        async def shared_data(client_id: str, agency_id: str, agency_kind: str, response: Response) -> dict:
            covered = self.consents.get((client_id, agency_id))
            if covered is None:
                response.status_code = 409
                return {"code": "no_valid_consent"}
            data = {"categories": list(covered)}
            if "name" in covered:
                data |= {"family_name": "Yılmaz", "given_name": "Ayşe"}
            if "contact" in covered:
                data |= {"phone": "+49 203 123456"}
            return data

        return app


@dataclass
class Running:
    http: httpx.AsyncClient
    database: Database
    bootstrap: str
    group_id: str
    intake: IntakeStandIn
    agencies: dict[tuple[int, str], list[str]]
    inbox_tokens: dict[str, str]

    def as_agency(self, agency_id: str) -> dict[str, str]:
        """The headers an inbox agency's staff send: their agency's token."""
        return {"Authorization": f"Bearer {self.inbox_tokens[agency_id]}"}


def add_agency(running: Running, response_days: int = 30, channel: str = "kafka") -> str:
    """A fresh agency of this test's own (created before the service started, so that the
    service's pattern subscription already covers its answers topic)."""
    return running.agencies[(response_days, channel)].pop()


# How many fresh agencies the tests take, by (promised response days, channel).
AGENCY_POOL = {(30, "kafka"): 15, (2, "kafka"): 2, (30, "inbox"): 6}


@pytest.fixture(scope="module")
async def service(infra) -> AsyncIterator[Running]:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("referrals"))
    stand_in = IntakeStandIn()
    [intake_port] = free_ports(1)
    intake_server = uvicorn.Server(uvicorn.Config(stand_in.app(), host="127.0.0.1", port=intake_port, log_config=None))
    intake_task = asyncio.create_task(intake_server.serve())

    async def intake_started() -> bool:
        return intake_server.started

    await eventually(intake_started)
    name = unique("referrals")
    # The service's own migrations (scoped by its name, as the service applies them), then the
    # test agencies, then the service: it creates their topics and subscribes to their answers.
    await migrations.apply(dsn, migrations.migration_sets(name, MIGRATIONS))
    agencies: dict[tuple[int, str], list[str]] = {}
    connection = await asyncpg.connect(dsn)
    try:
        for (days, channel), count in AGENCY_POOL.items():
            for _ in range(count):
                agency_id = f"it-{uuid.uuid4().hex[:10]}"
                await connection.execute(
                    "INSERT INTO agencies (agency_id, name, kind, response_days, channel, topics) "
                    "VALUES ($1, $1, 'course_provider', $2, $3, '{language_course}')",
                    agency_id,
                    days,
                    channel,
                )
                agencies.setdefault((days, channel), []).append(agency_id)
        # Every test agency may also answer through the inbox, with its own token.
        inbox_tokens = {
            agency_id: await issue_token(connection, agency_id) for ids in agencies.values() for agency_id in ids
        }
    finally:
        await connection.close()
    settings = ReferralsSettings(
        service_name=name,
        database_url=dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        intake_url=f"http://127.0.0.1:{intake_port}",
        referral_day_seconds=DAY_SECONDS,
        deadline_check_interval_s=0.2,
        outbox_poll_interval_s=0.1,
    )
    app = create_app(settings)
    database = Database(dsn)
    async with app.router.lifespan_context(app):
        await database.connect()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://referrals", timeout=10) as http:
            yield Running(
                http, database, infra.kafka_bootstrap, f"knotenpunkt.{name}", stand_in, agencies, inbox_tokens
            )
        await database.close()
    intake_server.should_exit = True
    await intake_task


async def open_case(running: Running, case_manager_id: str | None = None) -> CaseOpened:
    opened = CaseOpened(
        client_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        service_line=ServiceLine.JMD,
        office_id="rsc-hamborn",
        opened_at=datetime.now(UTC),
        case_manager_id=case_manager_id,
    )
    await publish(running.bootstrap, topics.CASES, [Envelope(event=opened, source="test")])

    async def known() -> bool:
        async with running.database.connection() as connection:
            return bool(await connection.fetchval("SELECT true FROM known_cases WHERE case_id = $1", opened.case_id))

    await eventually(known)
    return opened


async def refer(running: Running, case: CaseOpened, agency_id: str, consent: tuple[str, ...] | None) -> dict:
    if consent is not None:
        running.intake.consents[(str(case.client_id), agency_id)] = consent
    response = await running.http.post(
        "/referrals", json={"case_id": str(case.case_id), "agency_id": agency_id, "topic_code": "language_course"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def status_of(running: Running, referral_id: str) -> str:
    return (await running.http.get(f"/referrals/{referral_id}")).json()["status"]


async def events_on(running: Running, topic: str, referral_id: str) -> list[Envelope]:
    envelopes = [decode(r.headers, r.value, topic) for r in await read_topic(running.bootstrap, topic)]
    return [e for e in envelopes if str(getattr(e.event, "referral_id", "")) == referral_id]


def types(envelopes: list[Envelope]) -> list[type]:
    return [type(e.event) for e in envelopes]


async def answer_as(
    running: Running, agency_id: str, event: ReferralAccepted | ReferralDeclined | ReferralCompleted
) -> Envelope:
    envelope = Envelope(event=event, source=f"agency/{agency_id}")
    await publish(running.bootstrap, topics.agency_answers(agency_id), [envelope])
    return envelope


async def test_a_referral_with_consent_reaches_the_agency_with_exactly_the_consented_data(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "topic"))
    assert sent["status"] == "sent"

    [to_agency] = await eventually(lambda: events_on(service, topics.agency_referrals(agency), sent["referral_id"]))
    [lifecycle] = await eventually(lambda: events_on(service, topics.REFERRALS, sent["referral_id"]))
    assert isinstance(to_agency.event, ReferralSent) and isinstance(lifecycle.event, ReferralSent)
    # One fact, one ce_id, two copies: personal data only on the agency's own topic.
    assert to_agency.id == lifecycle.id
    assert lifecycle.event.shared_data is None
    shared = to_agency.event.shared_data
    assert shared is not None
    assert shared.categories == ("name", "topic")
    assert (shared.family_name, shared.given_name, shared.phone) == ("Yılmaz", "Ayşe", None)
    assert to_agency.event.answer_due_on == lifecycle.event.answer_due_on is not None


async def test_without_consent_the_referral_is_refused_in_german_and_english_and_nothing_is_sent(
    service: Running,
) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    body = {"case_id": str(case.case_id), "agency_id": agency, "topic_code": "work"}
    german = await service.http.post("/referrals", json=body)
    english = await service.http.post("/referrals", json=body, headers={"Accept-Language": "en"})
    assert german.status_code == english.status_code == 409
    assert german.json()["code"] == "no_sharing_consent"
    assert "Einwilligung" in german.json()["message"]
    assert "consent" in english.json()["message"]
    async with service.database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM referrals WHERE case_id = $1", case.case_id) == 0


async def test_a_consent_that_does_not_cover_the_topic_is_not_enough(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    service.intake.consents[(str(case.client_id), agency)] = ("name", "contact")
    body = {"case_id": str(case.case_id), "agency_id": agency, "topic_code": "work"}
    refused = await service.http.post("/referrals", json=body)
    assert (refused.status_code, refused.json()["code"]) == (409, "no_sharing_consent")


async def test_an_agency_accepts_then_completes_and_each_step_is_confirmed_on_the_lifecycle_topic(
    service: Running,
) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "topic"))
    referral_id = uuid.UUID(sent["referral_id"])
    common = {"client_id": case.client_id, "referral_id": referral_id, "agency_id": agency}

    await answer_as(service, agency, ReferralAccepted(**common, accepted_at=datetime.now(UTC)))
    await eventually(lambda: _is(service, sent["referral_id"], "accepted"))
    await answer_as(
        service,
        agency,
        ReferralCompleted(**common, completed_at=datetime.now(UTC), outcome=CompletionOutcome.SUCCESSFUL),
    )
    await eventually(lambda: _is(service, sent["referral_id"], "completed"))
    referral = (await service.http.get(f"/referrals/{sent['referral_id']}")).json()
    assert referral["outcome"] == "successful"

    async def confirmed() -> list[type]:
        found = types(await events_on(service, topics.REFERRALS, sent["referral_id"]))
        return found if len(found) == 3 else []

    assert await eventually(confirmed) == [ReferralSent, ReferralAccepted, ReferralCompleted]


async def _is(service: Running, referral_id: str, status: str) -> bool:
    return await status_of(service, referral_id) == status


async def test_an_answer_for_another_agencys_referral_is_dead_lettered_and_changes_nothing(service: Running) -> None:
    addressed, intruder = add_agency(service), add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, addressed, consent=("name", "topic"))
    # The intruder answers on its own topic, naming itself, for a referral it never got ...
    wrong = await answer_as(
        service,
        intruder,
        ReferralAccepted(
            client_id=case.client_id,
            referral_id=uuid.UUID(sent["referral_id"]),
            agency_id=intruder,
            accepted_at=datetime.now(UTC),
        ),
    )
    # ... and for a referral that does not exist at all.
    unknown = await answer_as(
        service,
        intruder,
        ReferralAccepted(
            client_id=case.client_id, referral_id=uuid.uuid4(), agency_id=intruder, accepted_at=datetime.now(UTC)
        ),
    )

    async def dead_lettered() -> dict[str, str]:
        reasons = {}
        for record in await read_topic(service.bootstrap, topics.DEAD_LETTER):
            headers = dict(record.headers)
            if headers.get("dlq_consumer_group") == service.group_id.encode():
                reasons[headers["ce_id"].decode()] = headers["dlq_reason"].decode()
        return reasons if {str(wrong.id), str(unknown.id)} <= set(reasons) else {}

    reasons = await eventually(dead_lettered)
    assert f"was not sent to {intruder}" in reasons[str(wrong.id)]
    assert "unknown referral" in reasons[str(unknown.id)]
    assert await status_of(service, sent["referral_id"]) == "sent"
    assert types(await events_on(service, topics.REFERRALS, sent["referral_id"])) == [ReferralSent]


async def test_the_inbox_lists_open_referrals_and_a_decline_for_capacity_becomes_a_gap(service: Running) -> None:
    agency = add_agency(service, channel="inbox")
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "contact", "topic"))
    [listed] = (await service.http.get(f"/inbox/{agency}/referrals", headers=service.as_agency(agency))).json()
    assert (listed["referral_id"], listed["status"], listed["topic_code"]) == (
        sent["referral_id"],
        "sent",
        "language_course",
    )
    # The inbox shows exactly the consented data, asked from intake when the agency looks.
    assert (listed["person"]["family_name"], listed["person"]["phone"]) == ("Yılmaz", "+49 203 123456")
    service.intake.consents.pop((str(case.client_id), agency))  # the consent is gone (withdrawn)
    [relisted] = (await service.http.get(f"/inbox/{agency}/referrals", headers=service.as_agency(agency))).json()
    assert (relisted["person"], relisted["person_unavailable"]) == (None, "no_consent")

    # An inbox agency's copy on its topic carries no personal data: it sees it in the inbox.
    [to_agency] = await eventually(lambda: events_on(service, topics.agency_referrals(agency), sent["referral_id"]))
    assert to_agency.event.shared_data is None

    early = await service.http.post(
        f"/inbox/{agency}/referrals/{sent['referral_id']}/complete",
        headers=service.as_agency(agency),
        json={"outcome": "successful"},
    )
    assert early.status_code == 409 and early.json()["code"] == "referral_not_accepted_yet"
    bad = await service.http.post(
        f"/inbox/{agency}/referrals/{sent['referral_id']}/decline",
        headers=service.as_agency(agency),
        json={"reason": "bored"},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"

    declined = await service.http.post(
        f"/inbox/{agency}/referrals/{sent['referral_id']}/decline",
        headers=service.as_agency(agency),
        json={"reason": "no_capacity"},
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    assert (await service.http.get(f"/inbox/{agency}/referrals", headers=service.as_agency(agency))).json() == []
    again = await service.http.post(
        f"/inbox/{agency}/referrals/{sent['referral_id']}/accept", headers=service.as_agency(agency)
    )
    assert again.status_code == 409 and again.json()["code"] == "referral_closed"

    gaps = (
        await service.http.get("/gaps", params={"agency_kind": "course_provider", "office_id": "rsc-hamborn"})
    ).json()
    assert any(g["topic_code"] == "language_course" and g["cause"] == "no_capacity" and g["count"] >= 1 for g in gaps)

    async def gap_event() -> list[type]:
        found = types(await events_on(service, topics.REFERRALS, sent["referral_id"]))
        return found if UnmetNeedRecorded in found else []

    assert await eventually(gap_event) == [ReferralSent, ReferralDeclined, UnmetNeedRecorded]


async def test_the_inbox_does_not_show_or_answer_another_agencys_referral(service: Running) -> None:
    addressed, other = add_agency(service, channel="inbox"), add_agency(service, channel="inbox")
    case = await open_case(service)
    sent = await refer(service, case, addressed, consent=("name", "topic"))
    assert (await service.http.get(f"/inbox/{other}/referrals", headers=service.as_agency(other))).json() == []
    answer = await service.http.post(
        f"/inbox/{other}/referrals/{sent['referral_id']}/accept", headers=service.as_agency(other)
    )
    assert answer.status_code == 404
    assert await status_of(service, sent["referral_id"]) == "sent"


async def test_the_inbox_acts_for_an_agency_only_with_that_agencys_token(service: Running) -> None:
    addressed, other = add_agency(service, channel="inbox"), add_agency(service, channel="inbox")
    case = await open_case(service)
    sent = await refer(service, case, addressed, consent=("name", "topic"))
    accept = f"/inbox/{addressed}/referrals/{sent['referral_id']}/accept"

    without = await service.http.post(accept, headers={"Accept-Language": "en"})
    assert without.status_code == 401 and without.json()["code"] == "inbox_token_missing"
    forged = await service.http.post(accept, headers={"Authorization": "Bearer not-a-real-token"})
    assert forged.status_code == 401 and forged.json()["code"] == "inbox_token_invalid"
    # Another agency's genuine token does not open this agency's inbox.
    borrowed = await service.http.post(accept, headers=service.as_agency(other))
    assert borrowed.status_code == 403 and borrowed.json()["code"] == "inbox_other_agency"
    assert (await service.http.get(f"/inbox/{addressed}/referrals")).status_code == 401
    assert await status_of(service, sent["referral_id"]) == "sent"

    assert (await service.http.post(accept, headers=service.as_agency(addressed))).status_code == 200
    assert await status_of(service, sent["referral_id"]) == "accepted"

    # Revoked (a staff member left): the old token opens nothing any more.
    async with service.database.connection() as connection:
        assert await revoke_tokens(connection, addressed) == 1
    revoked = await service.http.get(f"/inbox/{addressed}/referrals", headers=service.as_agency(addressed))
    assert revoked.status_code == 401


async def test_the_case_manager_withdraws_and_the_agency_is_told(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "topic"))
    withdrawn = await service.http.post(f"/referrals/{sent['referral_id']}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = await service.http.post(f"/referrals/{sent['referral_id']}/withdraw", headers={"Accept-Language": "en"})
    assert again.status_code == 409
    assert again.json()["code"] == "referral_closed" and "withdrawn" in again.json()["message"]

    async def told() -> list[Envelope]:
        found = await events_on(service, topics.agency_referrals(agency), sent["referral_id"])
        return found if len(found) == 2 else []

    to_agency = await eventually(told)
    assert types(to_agency) == [ReferralSent, ReferralWithdrawn]
    assert to_agency[1].event.reason == "by_case_manager"


async def test_an_unanswered_referral_is_reminded_then_expires_and_becomes_a_gap(service: Running) -> None:
    agency = add_agency(service, response_days=2)
    case = await open_case(service, case_manager_id=unique("cm"))
    sent = await refer(service, case, agency, consent=("name", "topic"))

    async def on_agency_topic() -> list[type]:
        found = types(await events_on(service, topics.agency_referrals(agency), sent["referral_id"]))
        return found if ReferralExpired in found else []

    assert await eventually(on_agency_topic, timeout_s=30) == [ReferralSent, ReferralReminderSent, ReferralExpired]
    assert await status_of(service, sent["referral_id"]) == "expired"
    needed = (
        await service.http.get("/referrals/action-needed", params={"case_manager_id": case.case_manager_id})
    ).json()
    assert [(r["referral_id"], r["action_needed"]) for r in needed] == [(sent["referral_id"], "expired")]

    async def gap_event() -> list[Envelope]:
        return [
            e
            for e in await events_on(service, topics.REFERRALS, sent["referral_id"])
            if isinstance(e.event, UnmetNeedRecorded)
        ]

    [gap] = await eventually(gap_event)
    assert (gap.event.cause, gap.event.agency_kind, gap.event.topic_code) == (
        "expired",
        "course_provider",
        "language_course",
    )


async def test_a_withdrawn_sharing_consent_withdraws_the_open_referrals_to_that_agency(service: Running) -> None:
    agency, unaffected = add_agency(service), add_agency(service)
    case = await open_case(service)
    first = await refer(service, case, agency, consent=("name", "topic"))
    other = await refer(service, case, unaffected, consent=("name", "topic"))
    withdrawn = ConsentWithdrawn(
        client_id=case.client_id,
        consent_id=uuid.uuid4(),
        purpose=ConsentPurpose.SHARING,
        agency_id=agency,
        agency_kind=None,
        data_categories=(DataCategory.NAME,),
        withdrawn_on=date.today(),
    )
    await publish(service.bootstrap, topics.CLIENTS, [Envelope(event=withdrawn, source="test")])
    await eventually(lambda: _is(service, first["referral_id"], "withdrawn"))

    async def told() -> list[Envelope]:
        found = await events_on(service, topics.agency_referrals(agency), first["referral_id"])
        return found if len(found) == 2 else []

    notice = (await eventually(told))[1]
    assert isinstance(notice.event, ReferralWithdrawn) and notice.event.reason == "consent_withdrawn"
    assert await status_of(service, other["referral_id"]) == "sent"


async def test_a_consent_withdrawn_for_an_agency_kind_reaches_every_agency_of_that_kind(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "topic"))
    await service.http.post(
        f"/inbox/{agency}/referrals/{sent['referral_id']}/accept", headers=service.as_agency(agency)
    )
    withdrawn = ConsentWithdrawn(
        client_id=case.client_id,
        consent_id=uuid.uuid4(),
        purpose=ConsentPurpose.SHARING,
        agency_kind=AgencyKind.COURSE_PROVIDER,
        data_categories=(DataCategory.NAME,),
        withdrawn_on=date.today(),
    )
    await publish(service.bootstrap, topics.CLIENTS, [Envelope(event=withdrawn, source="test")])
    await eventually(lambda: _is(service, sent["referral_id"], "withdrawn"))


async def test_a_case_managers_list_by_status_and_what_needs_action(service: Running) -> None:
    agency = add_agency(service)
    case_manager = unique("cm")
    case = await open_case(service, case_manager_id=case_manager)
    accepted = await refer(service, case, agency, consent=("name", "topic"))
    declined = await refer(service, case, agency, consent=("name", "topic"))
    waiting = await refer(service, case, agency, consent=("name", "topic"))
    await service.http.post(
        f"/inbox/{agency}/referrals/{accepted['referral_id']}/accept", headers=service.as_agency(agency)
    )
    await service.http.post(
        f"/inbox/{agency}/referrals/{declined['referral_id']}/decline",
        headers=service.as_agency(agency),
        json={"reason": "other"},
    )

    mine = (await service.http.get("/referrals", params={"case_manager_id": case_manager})).json()
    assert {r["referral_id"] for r in mine} == {
        accepted["referral_id"],
        declined["referral_id"],
        waiting["referral_id"],
    }
    assert all(r["case_manager_id"] == case_manager for r in mine)
    open_ones = (
        await service.http.get(
            "/referrals", params=[("case_manager_id", case_manager), ("status", "sent"), ("status", "accepted")]
        )
    ).json()
    assert {r["referral_id"] for r in open_ones} == {accepted["referral_id"], waiting["referral_id"]}
    # Not yet half of 30 days: only the declined one needs the case manager now.
    needed = (await service.http.get("/referrals/action-needed", params={"case_manager_id": case_manager})).json()
    assert [(r["referral_id"], r["action_needed"]) for r in needed] == [(declined["referral_id"], "declined")]
    invalid = await service.http.get("/referrals", params={"status": "lost"})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "status.0"


async def test_the_directory_lists_the_seeded_duisburg_partners_by_topic(service: Running) -> None:
    directory = (await service.http.get("/agencies", params={"topic_code": "work"})).json()
    ids = {agency["agency_id"] for agency in directory}
    assert {"jobcenter-duisburg", "agentur-fuer-arbeit-duisburg"} <= ids
    jobcenter = next(a for a in directory if a["agency_id"] == "jobcenter-duisburg")
    assert (jobcenter["kind"], jobcenter["channel"], jobcenter["response_days"]) == ("jobcenter", "kafka", 10)
    kinds = {a["kind"] for a in (await service.http.get("/agencies")).json()}
    assert {"sozialamt", "schulamt", "course_provider", "welfare_organisation"} <= kinds


async def test_after_a_merge_an_answer_quoting_the_retired_id_is_applied_under_the_surviving_one(
    service: Running,
) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "topic"))
    survivor = uuid.uuid4()
    merged = ClientsMerged(client_id=survivor, merged_client_id=case.client_id, merged_at=datetime.now(UTC))
    await publish(service.bootstrap, topics.CLIENTS, [Envelope(event=merged, source="test")])

    async def moved() -> bool:
        referral = (await service.http.get(f"/referrals/{sent['referral_id']}")).json()
        return referral["client_id"] == str(survivor)

    await eventually(moved)
    # The agency still knows the person by the id it was sent.
    await answer_as(
        service,
        agency,
        ReferralAccepted(
            client_id=case.client_id, referral_id=uuid.UUID(sent["referral_id"]), agency_id=agency,
            accepted_at=datetime.now(UTC),
        ),
    )  # fmt: skip
    await eventually(lambda: _is(service, sent["referral_id"], "accepted"))

    async def confirmed() -> list[Envelope]:
        found = await events_on(service, topics.REFERRALS, sent["referral_id"])
        return [e for e in found if isinstance(e.event, ReferralAccepted)]

    [accepted] = await eventually(confirmed)
    assert accepted.event.client_id == survivor


async def test_a_referral_repeated_with_its_idempotency_key_is_sent_once_and_its_events_carry_the_request(
    service: Running,
) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    service.intake.consents[(str(case.client_id), agency)] = ("name", "topic")
    correlation_id = f"it-{uuid.uuid4()}"
    headers = {"Idempotency-Key": f"it-{case.case_id}", "X-Correlation-ID": correlation_id}
    body = {"case_id": str(case.case_id), "agency_id": agency, "topic_code": "language_course"}
    first = await service.http.post("/referrals", json=body, headers=headers)
    again = await service.http.post("/referrals", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    async with service.database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM referrals WHERE case_id = $1", case.case_id) == 1
    referral_id = first.json()["referral_id"]

    # The agency's answer, confirmed on the lifecycle topic, names that answer as its cause.
    answer = await answer_as(
        service,
        agency,
        ReferralAccepted(
            client_id=case.client_id, referral_id=uuid.UUID(referral_id), agency_id=agency,
            accepted_at=datetime.now(UTC),
        ),
    )  # fmt: skip

    async def both() -> list[Envelope]:
        found = await events_on(service, topics.REFERRALS, referral_id)
        return found if len(found) == 2 else []

    sent, accepted = await eventually(both)
    assert isinstance(sent.event, ReferralSent) and sent.correlation_id == correlation_id
    assert isinstance(accepted.event, ReferralAccepted)
    assert (accepted.correlation_id, accepted.causation_id) == (answer.correlation_id, str(answer.id))


async def test_operations_can_run_the_deadline_watch_at_once(service: Running) -> None:
    ran = await service.http.post("/admin/deadlines/run")
    assert ran.status_code == 200, ran.text
    assert set(ran.json()) == {"reminded", "expired"}
    assert all(isinstance(count, int) and count >= 0 for count in ran.json().values())
