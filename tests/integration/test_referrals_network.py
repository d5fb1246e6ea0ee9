"""The referral network on the real broker and database: the whole referrals service (migrations,
consumers, outbox relay, deadline watcher) runs in-process; intake is a small HTTP stand-in that
answers its consent contract, so the real HTTP adapter is exercised.

Every call signs in through the session's real Keycloak: staff with their demo users, agencies
with their demo user (agency_staff) or their software's client (agency_system). The stand-in
checks what intake checks: referrals' own token plus the person's (X-On-Behalf-Of), and an
agency gets shared data only for itself.

Every test uses its own case and person (and, where no sign-in is needed, its own agencies), so
the tests share one running service.
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
from fastapi import FastAPI, Request, Response

from knotenpunkt import migrations, topics
from knotenpunkt.db import Database
from knotenpunkt.envelope import Envelope, decode
from knotenpunkt.errors import DomainError
from knotenpunkt.events import (
    AgencyKind,
    CaseOpened,
    ClientsMerged,
    CompletionOutcome,
    ConsentExpired,
    ConsentPurpose,
    ConsentWithdrawn,
    DataCategory,
    DeclineReason,
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
from knotenpunkt.identity import ON_BEHALF_OF_HEADER, OidcConfig, TokenVerifier
from knotenpunkt.localinfra import free_ports
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.fixtures import eventually, unique
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.kafka import publish, read_topic
from knotenpunkt.uow import Actor
from referrals.app import MIGRATIONS, create_app
from referrals.settings import ReferralsSettings

pytestmark = pytest.mark.integration

# The case manager who sends most referrals here: cases of her office (Hamborn) nobody else has.
CASE_MANAGER = "staff-hamborn-1"
# Seeded agencies with demo sign-ins (the realm's agency users and clients), for the inbox tests.
INBOX_AGENCY, OTHER_INBOX_AGENCY = "jugendamt-duisburg", "auslaenderbehoerde-duisburg"
# One agency "day" lasts this many seconds here, so an agency that promises 2 days gets its
# reminder after 2 s and its referral expires after 4 s.
DAY_SECONDS = 2.0


@dataclass
class IntakeStandIn:
    """intake's consent contract, answered from a dict: client id -> consented categories per agency.

    Like intake it answers only referrals relaying a signed-in person (both tokens checked against
    the real Keycloak); shared data goes to an agency only for that agency. `asked` records who
    was asked about which person: (path kind, client id, acting person, via)."""

    verifier: TokenVerifier
    consents: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    asked: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    async def person(self, request: Request, what: str, client_id: str) -> Actor | Response:
        try:
            caller = await self.verifier.actor(request.headers.get("authorization", "").removeprefix("Bearer "))
            relayed = request.headers.get(ON_BEHALF_OF_HEADER)
            if caller.kind != "service" or caller.subject != "referrals" or not relayed:
                return Response(status_code=403, content='{"code": "forbidden_not_relayed"}')
            person = await self.verifier.actor(relayed)
        except DomainError:
            return Response(status_code=401, content='{"code": "token_invalid"}')
        self.asked.append((what, client_id, person.subject, caller.subject))
        return person

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/clients/{client_id}/consent-check", response_model=None)
        async def consent_check(
            client_id: str, purpose: str, agency_id: str, agency_kind: str, categories: str, request: Request
        ) -> dict | Response:
            person = await self.person(request, "consent-check", client_id)
            if isinstance(person, Response):
                return person
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

        @app.get("/clients/{client_id}/shared-data", response_model=None)
        async def shared_data(
            client_id: str, agency_id: str, agency_kind: str, response: Response, request: Request
        ) -> dict | Response:
            person = await self.person(request, "shared-data", client_id)
            if isinstance(person, Response):
                return person
            if person.kind == "agency" and person.agency_id != agency_id:
                return Response(status_code=403, content='{"code": "forbidden_agency"}')
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
    identity: Identity

    def as_staff(self, username: str = CASE_MANAGER) -> dict[str, str]:
        """A demo staff member's headers, signed in through Keycloak's login page."""
        return self.identity.headers(username)

    def as_agency(self, agency_id: str) -> dict[str, str]:
        """The headers an agency's staff send: their demo user (agency-<agency_id>) signed in."""
        return self.identity.headers(f"agency-{agency_id}")

    def as_agency_software(self, agency_id: str) -> dict[str, str]:
        """The agency's own software: its machine client's token (client credentials)."""
        return {"Authorization": f"Bearer {self.identity.client_token(f'agency-{agency_id}')}"}


def add_agency(running: Running, response_days: int = 30, channel: str = "kafka") -> str:
    """A fresh agency of this test's own (created before the service started, so that the
    service's pattern subscription already covers its answers topic)."""
    return running.agencies[(response_days, channel)].pop()


# How many fresh agencies the tests take, by (promised response days, channel).
AGENCY_POOL = {(30, "kafka"): 25, (2, "kafka"): 2, (30, "inbox"): 2}


@pytest.fixture(scope="module")
async def service(infra, identity: Identity) -> AsyncIterator[Running]:
    dsn = await ensure_database(infra.postgres_admin_dsn, unique("referrals"))
    stand_in = IntakeStandIn(TokenVerifier(OidcConfig.of(infra.oidc_issuer, "knotenpunkt-api")))
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
    finally:
        await connection.close()
    settings = ReferralsSettings(
        service_name=name,
        database_url=dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        intake_url=f"http://127.0.0.1:{intake_port}",
        # The realm's client of referrals (the service name here is unique per test module).
        oidc_client_id="knotenpunkt-referrals",
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
            yield Running(http, database, infra.kafka_bootstrap, f"knotenpunkt.{name}", stand_in, agencies, identity)
        await database.close()
    intake_server.should_exit = True
    await intake_task


async def open_case(running: Running, case_manager_id: str | None = None, office_id: str = "rsc-hamborn") -> CaseOpened:
    opened = CaseOpened(
        client_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        service_line=ServiceLine.JMD,
        office_id=office_id,
        opened_at=datetime.now(UTC),
        case_manager_id=case_manager_id,
    )
    await publish(running.bootstrap, topics.CASES, [Envelope(event=opened, source="test")])

    async def known() -> bool:
        async with running.database.connection() as connection:
            return bool(await connection.fetchval("SELECT true FROM known_cases WHERE case_id = $1", opened.case_id))

    await eventually(known)
    return opened


async def refer(
    running: Running, case: CaseOpened, agency_id: str, consent: tuple[str, ...] | None, sender: str = CASE_MANAGER
) -> dict:
    if consent is not None:
        running.intake.consents[(str(case.client_id), agency_id)] = consent
    response = await running.http.post(
        "/referrals",
        json={"case_id": str(case.case_id), "agency_id": agency_id, "topic_code": "language_course"},
        headers=running.as_staff(sender),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def read(running: Running, referral_id: str, reader: str = CASE_MANAGER) -> dict:
    response = await running.http.get(f"/referrals/{referral_id}", headers=running.as_staff(reader))
    assert response.status_code == 200, response.text
    return response.json()


async def status_of(running: Running, referral_id: str) -> str:
    return (await read(running, referral_id))["status"]


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
    german = await service.http.post("/referrals", json=body, headers=service.as_staff())
    english = await service.http.post("/referrals", json=body, headers={**service.as_staff(), "Accept-Language": "en"})
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
    refused = await service.http.post("/referrals", json=body, headers=service.as_staff())
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
    referral = await read(service, sent["referral_id"])
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


def inbox_entry(listed: list[dict], referral_id: str) -> dict | None:
    return next((entry for entry in listed if entry["referral_id"] == referral_id), None)


async def test_the_inbox_lists_open_referrals_and_a_decline_for_capacity_becomes_a_gap(service: Running) -> None:
    agency = INBOX_AGENCY
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "contact", "topic"))
    inbox = f"/inbox/{agency}/referrals"
    listed = inbox_entry((await service.http.get(inbox, headers=service.as_agency(agency))).json(), sent["referral_id"])
    assert listed is not None
    assert (listed["status"], listed["topic_code"]) == ("sent", "language_course")
    # The inbox shows exactly the consented data, asked from intake (on behalf of the agency's
    # signed-in staff, via referrals) when the agency looks.
    assert (listed["person"]["family_name"], listed["person"]["phone"]) == ("Yılmaz", "+49 203 123456")
    assert ("shared-data", str(case.client_id), f"agency-{agency}", "referrals") in service.intake.asked
    service.intake.consents.pop((str(case.client_id), agency))  # the consent is gone (withdrawn)
    relisted = inbox_entry(
        (await service.http.get(inbox, headers=service.as_agency(agency))).json(), sent["referral_id"]
    )
    assert relisted is not None and (relisted["person"], relisted["person_unavailable"]) == (None, "no_consent")

    # An inbox agency's copy on its topic carries no personal data: it sees it in the inbox.
    [to_agency] = await eventually(lambda: events_on(service, topics.agency_referrals(agency), sent["referral_id"]))
    assert to_agency.event.shared_data is None

    answer = f"{inbox}/{sent['referral_id']}"
    early = await service.http.post(
        f"{answer}/complete", headers=service.as_agency(agency), json={"outcome": "successful"}
    )
    assert early.status_code == 409 and early.json()["code"] == "referral_not_accepted_yet"
    bad = await service.http.post(f"{answer}/decline", headers=service.as_agency(agency), json={"reason": "bored"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"

    declined = await service.http.post(
        f"{answer}/decline", headers=service.as_agency(agency), json={"reason": "no_capacity"}
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    listed_after = (await service.http.get(inbox, headers=service.as_agency(agency))).json()
    assert inbox_entry(listed_after, sent["referral_id"]) is None
    again = await service.http.post(f"{answer}/accept", headers=service.as_agency(agency))
    assert again.status_code == 409 and again.json()["code"] == "referral_closed"
    # Who answered is the signed-in agency user, from the token.
    async with service.database.connection() as connection:
        answered_by = await connection.fetchval(
            "SELECT answered_by FROM referrals WHERE referral_id = $1", uuid.UUID(sent["referral_id"])
        )
    assert answered_by == f"agency-{agency}"

    gaps = (
        await service.http.get(
            "/gaps",
            params={"agency_kind": "jugendamt", "office_id": "rsc-hamborn"},
            headers=service.as_staff("coordinator"),
        )
    ).json()
    [gap] = [g for g in gaps if g["topic_code"] == "language_course" and g["cause"] == "no_capacity"]
    # One unmet need is one person: the coordinator sees that there is a gap, not its count.
    assert (gap["count"], gap["suppressed"]) == (None, True)

    async def gap_event() -> list[type]:
        found = types(await events_on(service, topics.REFERRALS, sent["referral_id"]))
        return found if UnmetNeedRecorded in found else []

    assert await eventually(gap_event) == [ReferralSent, ReferralDeclined, UnmetNeedRecorded]


async def test_an_agency_reads_its_own_referral_with_only_the_consented_categories(service: Running) -> None:
    case = await open_case(service)
    sent = await refer(service, case, INBOX_AGENCY, consent=("name", "topic"))
    response = await service.http.get(
        f"/inbox/{INBOX_AGENCY}/referrals/{sent['referral_id']}", headers=service.as_agency(INBOX_AGENCY)
    )
    assert response.status_code == 200, response.text
    person = response.json()["person"]
    assert person["categories"] == ["name", "topic"]
    assert (person["family_name"], person["given_name"]) == ("Yılmaz", "Ayşe")
    # Not consented, so not there: contact, birth date, address.
    assert {key for key, value in person.items() if value is not None} == {"categories", "family_name", "given_name"}


async def test_an_agency_reading_or_answering_another_agencys_referral_is_refused_403(service: Running) -> None:
    case = await open_case(service)
    sent = await refer(service, case, OTHER_INBOX_AGENCY, consent=("name", "topic"))
    intruder = service.as_agency(INBOX_AGENCY)
    # Through its own inbox path, naming the other agency's referral ...
    own_path = f"/inbox/{INBOX_AGENCY}/referrals/{sent['referral_id']}"
    read_other = await service.http.get(own_path, headers={**intruder, "Accept-Language": "en"})
    assert (read_other.status_code, read_other.json()["code"]) == (403, "forbidden_agency")
    assert "another agency" in read_other.json()["message"]
    answer_other = await service.http.post(f"{own_path}/accept", headers=intruder)
    assert (answer_other.status_code, answer_other.json()["code"]) == (403, "forbidden_agency")
    # ... or through the other agency's path.
    other_path = f"/inbox/{OTHER_INBOX_AGENCY}/referrals"
    for response in (
        await service.http.get(other_path, headers=intruder),
        await service.http.get(f"{other_path}/{sent['referral_id']}", headers=intruder),
        await service.http.post(f"{other_path}/{sent['referral_id']}/accept", headers=intruder),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "forbidden_agency")
    # Its own list does not show it; the referral is unchanged; intake was never asked for it by them.
    assert (
        inbox_entry(
            (await service.http.get(f"/inbox/{INBOX_AGENCY}/referrals", headers=intruder)).json(), sent["referral_id"]
        )
        is None
    )
    assert await status_of(service, sent["referral_id"]) == "sent"
    assert not [a for a in service.intake.asked if a[1] == str(case.client_id) and a[2] == f"agency-{INBOX_AGENCY}"]
    # The addressed agency may.
    own = await service.http.get(f"{other_path}/{sent['referral_id']}", headers=service.as_agency(OTHER_INBOX_AGENCY))
    assert own.status_code == 200


async def test_the_inbox_needs_a_signed_in_agency(service: Running) -> None:
    case = await open_case(service)
    sent = await refer(service, case, INBOX_AGENCY, consent=("name", "topic"))
    accept = f"/inbox/{INBOX_AGENCY}/referrals/{sent['referral_id']}/accept"

    without = await service.http.post(accept, headers={"Accept-Language": "en"})
    assert without.status_code == 401 and without.json()["code"] == "token_missing"
    forged = await service.http.post(accept, headers={"Authorization": "Bearer not-a-real-token"})
    assert forged.status_code == 401 and forged.json()["code"] == "token_invalid"
    # Staff of the network do not answer for an agency, not even the office lead.
    for staff in (CASE_MANAGER, "lead-hamborn"):
        refused = await service.http.post(accept, headers=service.as_staff(staff))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
    assert (await service.http.get(f"/inbox/{INBOX_AGENCY}/referrals")).status_code == 401
    assert await status_of(service, sent["referral_id"]) == "sent"

    assert (await service.http.post(accept, headers=service.as_agency(INBOX_AGENCY))).status_code == 200
    assert await status_of(service, sent["referral_id"]) == "accepted"


async def test_an_agencys_own_software_uses_the_inbox_api_with_its_client_credentials(service: Running) -> None:
    software = "awo-campus-duisburg"  # a Kafka agency: its software may answer over HTTP as well
    case = await open_case(service)
    sent = await refer(service, case, software, consent=("name", "topic"))
    path = f"/inbox/{software}/referrals/{sent['referral_id']}"
    assert (await service.http.get(path, headers=service.as_agency_software(software))).status_code == 200
    accepted = await service.http.post(f"{path}/accept", headers=service.as_agency_software(software))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    # Another agency's software: refused.
    other = await service.http.get(path, headers=service.as_agency_software("jobcenter-duisburg"))
    assert (other.status_code, other.json()["code"]) == (403, "forbidden_agency")


async def test_the_case_manager_withdraws_and_the_agency_is_told(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service)
    sent = await refer(service, case, agency, consent=("name", "topic"))
    withdraw = f"/referrals/{sent['referral_id']}/withdraw"
    # Not a colleague of another office, not the coordinator.
    for other, reason in (("staff-hochfeld-1", "forbidden_office"), ("coordinator", "forbidden_role")):
        refused = await service.http.post(withdraw, headers=service.as_staff(other))
        assert (refused.status_code, refused.json()["code"]) == (403, reason)
    withdrawn = await service.http.post(withdraw, headers=service.as_staff())
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = await service.http.post(withdraw, headers={**service.as_staff(), "Accept-Language": "en"})
    assert again.status_code == 409
    assert again.json()["code"] == "referral_closed" and "withdrawn" in again.json()["message"]

    async def told() -> list[Envelope]:
        found = await events_on(service, topics.agency_referrals(agency), sent["referral_id"])
        return found if len(found) == 2 else []

    to_agency = await eventually(told)
    assert types(to_agency) == [ReferralSent, ReferralWithdrawn]
    assert to_agency[1].event.reason == "by_case_manager"
    async with service.database.connection() as connection:
        row = await connection.fetchrow(
            "SELECT sent_by, closed_by FROM referrals WHERE referral_id = $1", uuid.UUID(sent["referral_id"])
        )
    # Who acted comes from the tokens.
    assert (row["sent_by"], row["closed_by"]) == (CASE_MANAGER, CASE_MANAGER)


async def test_an_unanswered_referral_is_reminded_then_expires_and_becomes_a_gap(service: Running) -> None:
    agency = add_agency(service, response_days=2)
    case = await open_case(service, case_manager_id="staff-hamborn-2")
    sent = await refer(service, case, agency, consent=("name", "topic"), sender="staff-hamborn-2")

    async def on_agency_topic() -> list[type]:
        found = types(await events_on(service, topics.agency_referrals(agency), sent["referral_id"]))
        return found if ReferralExpired in found else []

    assert await eventually(on_agency_topic, timeout_s=30) == [ReferralSent, ReferralReminderSent, ReferralExpired]
    assert await status_of(service, sent["referral_id"]) == "expired"
    needed = (
        await service.http.get(
            "/referrals/action-needed",
            params={"case_manager_id": case.case_manager_id},
            headers=service.as_staff("staff-hamborn-2"),
        )
    ).json()
    assert (sent["referral_id"], "expired") in [(r["referral_id"], r["action_needed"]) for r in needed]

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
    await answer_as(
        service,
        agency,
        ReferralAccepted(
            client_id=case.client_id, referral_id=uuid.UUID(sent["referral_id"]), agency_id=agency,
            accepted_at=datetime.now(UTC),
        ),
    )  # fmt: skip
    await eventually(lambda: _is(service, sent["referral_id"], "accepted"))
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
    # The office lead may refer from any case of the office (this one is assigned to a colleague).
    accepted = await refer(service, case, agency, consent=("name", "topic"), sender="lead-hamborn")
    declined = await refer(service, case, agency, consent=("name", "topic"), sender="lead-hamborn")
    waiting = await refer(service, case, agency, consent=("name", "topic"), sender="lead-hamborn")
    common = {"client_id": case.client_id, "agency_id": agency}
    await answer_as(
        service,
        agency,
        ReferralAccepted(**common, referral_id=uuid.UUID(accepted["referral_id"]), accepted_at=datetime.now(UTC)),
    )
    await answer_as(
        service,
        agency,
        ReferralDeclined(
            **common,
            referral_id=uuid.UUID(declined["referral_id"]),
            declined_at=datetime.now(UTC),
            reason=DeclineReason.OTHER,
        ),
    )
    await eventually(lambda: _is(service, declined["referral_id"], "declined"))
    await eventually(lambda: _is(service, accepted["referral_id"], "accepted"))

    me = service.as_staff()
    mine = (await service.http.get("/referrals", params={"case_manager_id": case_manager}, headers=me)).json()
    assert {r["referral_id"] for r in mine} == {
        accepted["referral_id"],
        declined["referral_id"],
        waiting["referral_id"],
    }
    assert all(r["case_manager_id"] == case_manager for r in mine)
    open_ones = (
        await service.http.get(
            "/referrals",
            params=[("case_manager_id", case_manager), ("status", "sent"), ("status", "accepted")],
            headers=me,
        )
    ).json()
    assert {r["referral_id"] for r in open_ones} == {accepted["referral_id"], waiting["referral_id"]}
    # Not yet half of 30 days: only the declined one needs the case manager now.
    needed = (
        await service.http.get("/referrals/action-needed", params={"case_manager_id": case_manager}, headers=me)
    ).json()
    assert [(r["referral_id"], r["action_needed"]) for r in needed] == [(declined["referral_id"], "declined")]
    invalid = await service.http.get("/referrals", params={"status": "lost"}, headers=me)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "status.0"
    # Another office's case manager gets none of them: the list is filtered in the database.
    hochfeld = service.as_staff("staff-hochfeld-1")
    assert (
        await service.http.get("/referrals", params={"case_manager_id": case_manager}, headers=hochfeld)
    ).json() == []
    assert (
        await service.http.get("/referrals/action-needed", params={"case_manager_id": case_manager}, headers=hochfeld)
    ).json() == []


async def test_the_directory_lists_the_seeded_duisburg_partners_by_topic(service: Running) -> None:
    directory = (await service.http.get("/agencies", params={"topic_code": "work"}, headers=service.as_staff())).json()
    ids = {agency["agency_id"] for agency in directory}
    assert {"jobcenter-duisburg", "agentur-fuer-arbeit-duisburg"} <= ids
    jobcenter = next(a for a in directory if a["agency_id"] == "jobcenter-duisburg")
    assert (jobcenter["kind"], jobcenter["channel"], jobcenter["response_days"]) == ("jobcenter", "kafka", 10)
    kinds = {a["kind"] for a in (await service.http.get("/agencies", headers=service.as_staff())).json()}
    # Agency staff may read the directory; nobody without a token.
    assert (await service.http.get("/agencies", headers=service.as_agency(INBOX_AGENCY))).status_code == 200
    assert (await service.http.get("/agencies")).status_code == 401
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
        referral = await read(service, sent["referral_id"])
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
    headers = {
        **service.as_staff(),
        "Idempotency-Key": f"it-{case.case_id}",
        "X-Correlation-ID": correlation_id,
    }
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
    refused = await service.http.post("/admin/deadlines/run", headers=service.as_staff())
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
    ran = await service.http.post("/admin/deadlines/run", headers=service.as_staff("admin"))
    assert ran.status_code == 200, ran.text
    assert set(ran.json()) == {"reminded", "expired"}
    assert all(isinstance(count, int) and count >= 0 for count in ran.json().values())


async def test_a_hamborn_case_manager_cannot_refer_from_a_hochfeld_case(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service, office_id="rsc-hochfeld")
    service.intake.consents[(str(case.client_id), agency)] = ("name", "topic")
    body = {"case_id": str(case.case_id), "agency_id": agency, "topic_code": "language_course"}
    refused = await service.http.post("/referrals", json=body, headers=service.as_staff("staff-hamborn-1"))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_office")
    assert "Dienststelle" in refused.json()["message"]
    # Refused before anything was asked of intake about the person, and nothing was sent.
    assert not [asked for asked in service.intake.asked if asked[1] == str(case.client_id)]
    async with service.database.connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM referrals WHERE case_id = $1", case.case_id) == 0
    # A Hochfeld case manager may, and intake was asked on her behalf, via referrals.
    sent = await refer(service, case, agency, consent=None, sender="staff-hochfeld-1")
    assert ("consent-check", str(case.client_id), "staff-hochfeld-1", "referrals") in service.intake.asked
    # Hamborn cannot read it either; the coordinator and intake staff never read a referral.
    for reader, reason in (
        ("staff-hamborn-1", "forbidden_office"),
        ("coordinator", "forbidden_role"),
        ("intake-hochfeld", "forbidden_role"),
    ):
        response = await service.http.get(f"/referrals/{sent['referral_id']}", headers=service.as_staff(reader))
        assert (response.status_code, response.json()["code"]) == (403, reason)
    assert (await read(service, sent["referral_id"], reader="staff-hochfeld-2"))["office_id"] == "rsc-hochfeld"


async def test_a_case_manager_refers_only_from_cases_assigned_to_her_or_nobody(service: Running) -> None:
    agency = add_agency(service)
    case = await open_case(service, case_manager_id="staff-hamborn-2")
    service.intake.consents[(str(case.client_id), agency)] = ("name", "topic")
    body = {"case_id": str(case.case_id), "agency_id": agency, "topic_code": "language_course"}
    refused = await service.http.post("/referrals", json=body, headers=service.as_staff("staff-hamborn-1"))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_not_assigned")
    assert (
        await service.http.post("/referrals", json=body, headers=service.as_staff("staff-hamborn-2"))
    ).status_code == 201


async def test_the_coordinator_reads_the_gaps_but_no_referral(service: Running) -> None:
    coordinator = service.as_staff("coordinator")
    gaps = await service.http.get("/gaps", headers=coordinator)
    assert gaps.status_code == 200 and isinstance(gaps.json(), list)
    case = await open_case(service)
    sent = await refer(service, case, add_agency(service), consent=("name", "topic"))
    for path in (f"/referrals/{sent['referral_id']}", "/referrals", "/referrals/action-needed"):
        response = await service.http.get(path, headers=coordinator)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden_role")
    # A case manager has no gap register; nobody without a token has anything.
    assert (await service.http.get("/gaps", headers=service.as_staff())).status_code == 403
    assert (await service.http.get("/gaps")).status_code == 401


async def test_a_consent_that_runs_out_withdraws_the_open_referrals_it_covered(service: Running) -> None:
    agency, unaffected = add_agency(service), add_agency(service)
    case = await open_case(service)
    first = await refer(service, case, agency, consent=("name", "topic"))
    other = await refer(service, case, unaffected, consent=("name", "topic"))
    # What intake's consent job raises the day after the consent's last valid day.
    expired = ConsentExpired(
        client_id=case.client_id,
        consent_id=uuid.uuid4(),
        purpose=ConsentPurpose.SHARING,
        agency_id=agency,
        data_categories=(DataCategory.NAME, DataCategory.TOPIC),
        expired_on=date.today(),
    )
    await publish(service.bootstrap, topics.CLIENTS, [Envelope(event=expired, source="test")])
    await eventually(lambda: _is(service, first["referral_id"], "withdrawn"))

    async def told() -> list[Envelope]:
        found = await events_on(service, topics.agency_referrals(agency), first["referral_id"])
        return found if len(found) == 2 else []

    notice = (await eventually(told))[1]
    assert isinstance(notice.event, ReferralWithdrawn) and notice.event.reason == "consent_expired"
    assert (await read(service, first["referral_id"]))["withdraw_reason"] == "consent_expired"
    assert await status_of(service, other["referral_id"]) == "sent"


async def test_the_data_protection_officer_exports_a_persons_referrals_with_what_each_agency_received(
    service: Running,
) -> None:
    kafka_agency = add_agency(service)
    case = await open_case(service)
    to_kafka = await refer(service, case, kafka_agency, consent=("name", "contact", "topic"))
    to_inbox = await refer(service, case, INBOX_AGENCY, consent=("name", "topic"))
    await service.http.post(
        f"/inbox/{INBOX_AGENCY}/referrals/{to_inbox['referral_id']}/decline",
        headers=service.as_agency(INBOX_AGENCY),
        json={"reason": "not_responsible"},
    )
    export = f"/clients/{case.client_id}/export"
    for other in (CASE_MANAGER, "lead-hamborn", "coordinator"):
        refused = await service.http.get(export, headers=service.as_staff(other))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")

    answer = await service.http.get(export, headers=service.as_staff("dpo"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["service"], body["client_id"]) == ("referrals", str(case.client_id))
    by_id = {r["referral_id"]: r for r in body["referrals"]}
    assert set(by_id) == {to_kafka["referral_id"], to_inbox["referral_id"]}
    kafka = by_id[to_kafka["referral_id"]]
    assert kafka["agency_received"]["channel"] == "kafka"
    assert kafka["agency_received"]["data_categories"] == ["name", "contact", "topic"]
    assert [(step["step"], step["by"]) for step in kafka["history"]] == [("sent", CASE_MANAGER)]
    inbox = by_id[to_inbox["referral_id"]]
    assert inbox["agency_received"]["channel"] == "inbox"
    assert inbox["agency_received"]["data_categories"] == ["name", "topic"]
    assert [(step["step"], step["by"], step["detail"]) for step in inbox["history"]] == [
        ("sent", CASE_MANAGER, None),
        ("declined", f"agency-{INBOX_AGENCY}", "not_responsible"),
    ]
    # The export names no values: referrals keeps none.
    assert "Yılmaz" not in answer.text


async def test_reads_name_the_persons_they_showed_in_the_audit_trail(service: Running) -> None:
    case = await open_case(service)
    sent = await refer(service, case, add_agency(service), consent=("name", "topic"))
    correlation_id = f"it-{uuid.uuid4()}"
    await service.http.get(
        "/referrals",
        params={"case_id": str(case.case_id)},
        headers={**service.as_staff(), "X-Correlation-ID": correlation_id},
    )
    denied_id = f"it-{uuid.uuid4()}"
    await service.http.get(
        f"/referrals/{sent['referral_id']}", headers={**service.as_staff("coordinator"), "X-Correlation-ID": denied_id}
    )

    async with service.database.connection() as connection:
        listed = await connection.fetchrow(
            "SELECT actor_id, action, outcome, client_ids, record_ids FROM audit_log WHERE correlation_id = $1",
            correlation_id,
        )
        denied = await connection.fetchrow(
            "SELECT actor_id, action, outcome, status FROM audit_log WHERE correlation_id = $1", denied_id
        )
    assert (listed["actor_id"], listed["action"], listed["outcome"]) == (CASE_MANAGER, "referral.read", "allowed")
    assert list(listed["client_ids"]) == [case.client_id]
    assert sent["referral_id"] in listed["record_ids"]
    assert (denied["actor_id"], denied["action"], denied["outcome"], denied["status"]) == (
        "coordinator",
        "referral.read",
        "denied",
        403,
    )
