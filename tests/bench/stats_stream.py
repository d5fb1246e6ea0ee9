"""A realistic event stream for the stats projection (tests and the throughput benchmark).

People register at the three Duisburg offices, get a case, consultations (with co-counselled
family members), plan goals, referrals with every answer a partner can give, unmet needs,
closings, corrections, merges and JMD->MBE handovers; about 8.5 events per person. Every event
is valid against the contracts. `Expected` counts what was generated, independently of stats.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from aiokafka import AIOKafkaProducer

from knotenpunkt import topics
from knotenpunkt.envelope import Envelope
from knotenpunkt.events import (
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    ClientRegistered,
    ClientsMerged,
    ClientUpdated,
    ConsultationRecorded,
    DeclineReason,
    GoalStatus,
    PlanGoalSet,
    PlanGoalStatusChanged,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralSent,
    ServiceLineHandoverDue,
    UnmetNeedRecorded,
)
from knotenpunkt.events.common import AgeBand, Gender, ServiceLine
from knotenpunkt.events.referrals import CompletionOutcome

OFFICES = ("rsc-hamborn", "rsc-hochfeld", "rsc-rheinhausen")
DISTRICTS = ("hamborn", "hochfeld", "rheinhausen", "marxloh", "neumuehl", "homberg")
TOPICS = ("residence", "housing", "work", "language_course", "school", "benefits", "debts", "health", "family")
LANGUAGES = ("de", "tr", "ar", "ru", "pl", "en", "uk")
NATIONALITIES = ("TR", "SY", "UA", "PL", "RO", "BG", "IQ", "AF", "XX")
RESIDENCE = ("permanent", "temporary", "asylum_seeker", "tolerated", "eu_citizen", "unknown")
AGENCIES = ("jobcenter-duisburg", "auslaenderbehoerde-duisburg", "jugendamt-duisburg", "vhs-duisburg")
MANAGERS = tuple(f"cm-{office.removeprefix('rsc-')}-{n}" for office in OFFICES for n in (1, 2, 3))


@dataclass
class Expected:
    """What the stream contains, counted while generating it."""

    persons: int = 0
    cases_opened: int = 0
    cases_closed: int = 0
    consultations: int = 0
    family_members: int = 0
    referrals_sent: int = 0
    referrals_accepted: int = 0
    referrals_declined: int = 0
    unmet_needs: int = 0
    handovers: int = 0
    events: int = 0
    consultations_by_year: dict[int, int] = field(default_factory=dict)


def _at(day: date, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, rng.randint(8, 16), rng.randint(0, 59), tzinfo=UTC)


def person_story(rng: random.Random, start: date, span_days: int) -> list[Envelope]:
    """Every event about one person, in the order they happen."""
    client_id = uuid.uuid4()
    day = start + timedelta(days=rng.randrange(span_days))
    age = rng.choice(list(AgeBand)[:5])
    line = ServiceLine.JMD if age in (AgeBand.AGE_12_17, AgeBand.AGE_18_26) else ServiceLine.MBE
    office = rng.choice(OFFICES)
    registered = ClientRegistered(
        client_id=client_id,
        registered_at=_at(day, rng),
        age_band=age,
        service_line=line,
        service_lines=(line,),
        office_id=office,
        gender=rng.choice(list(Gender)),
        district=rng.choice(DISTRICTS),
        nationalities=(rng.choice(NATIONALITIES),),
        languages=(rng.choice(LANGUAGES), "de"),
        counselling_language=rng.choice(LANGUAGES),
        residence_status=rng.choice(RESIDENCE),
        arrival_year=day.year - rng.randint(0, 15),
        household_size=rng.randint(1, 6),
    )
    events: list = [registered]
    if rng.random() < 0.1:
        events.append(
            ClientUpdated(
                client_id=client_id,
                updated_at=_at(day + timedelta(days=1), rng),
                changed=("district",),
                district=rng.choice(DISTRICTS),
            )
        )
    case_id = uuid.uuid4()
    manager = rng.choice([m for m in MANAGERS if office.removeprefix("rsc-") in m])
    events.append(
        CaseOpened(client_id=client_id, case_id=case_id, service_line=line, office_id=office, opened_at=_at(day, rng))
    )
    if rng.random() < 0.5:
        events.append(
            CaseAssigned(client_id=client_id, case_id=case_id, case_manager_id=manager, assigned_at=_at(day, rng))
        )
    held = day
    for _ in range(rng.randint(1, 6)):
        held = held + timedelta(days=rng.randint(1, 40))
        events.append(
            ConsultationRecorded(
                client_id=client_id,
                consultation_id=uuid.uuid4(),
                case_id=case_id,
                service_line=line,
                office_id=office,
                held_on=held,
                duration_minutes=rng.choice((30, 45, 60, 90)),
                topics=tuple(rng.sample(TOPICS, rng.randint(1, 3))),
                family_members_counselled=rng.choice((0, 0, 0, 1, 2, 3)),
                language=rng.choice(LANGUAGES),
                case_manager_id=manager,
            )
        )
    if rng.random() < 0.3:
        goal_id = uuid.uuid4()
        events.append(
            PlanGoalSet(
                client_id=client_id,
                goal_id=goal_id,
                case_id=case_id,
                topic_code=rng.choice(TOPICS),
                set_at=_at(day, rng),
            )
        )
        if rng.random() < 0.5:
            events.append(
                PlanGoalStatusChanged(
                    client_id=client_id,
                    goal_id=goal_id,
                    case_id=case_id,
                    status=GoalStatus.REACHED,
                    changed_at=_at(held, rng),
                )
            )
    if rng.random() < 0.4:
        referral_id = uuid.uuid4()
        agency = rng.choice(AGENCIES)
        topic = rng.choice(TOPICS)
        sent = _at(day + timedelta(days=2), rng)
        events.append(
            ReferralSent(
                client_id=client_id,
                referral_id=referral_id,
                case_id=case_id,
                agency_id=agency,
                topic_code=topic,
                office_id=office,
                sent_at=sent,
            )
        )
        answer = sent + timedelta(hours=rng.randint(1, 240))
        roll = rng.random()
        if roll < 0.65:
            events.append(
                ReferralAccepted(client_id=client_id, referral_id=referral_id, agency_id=agency, accepted_at=answer)
            )
            if rng.random() < 0.5:
                events.append(
                    ReferralCompleted(
                        client_id=client_id,
                        referral_id=referral_id,
                        agency_id=agency,
                        completed_at=answer + timedelta(days=14),
                        outcome=CompletionOutcome.SUCCESSFUL,
                    )
                )
        elif roll < 0.9:
            events.append(
                ReferralDeclined(
                    client_id=client_id,
                    referral_id=referral_id,
                    agency_id=agency,
                    declined_at=answer,
                    reason=DeclineReason.NO_CAPACITY,
                )
            )
            events.append(
                UnmetNeedRecorded(
                    client_id=client_id,
                    referral_id=referral_id,
                    topic_code=topic,
                    agency_kind="jobcenter",
                    office_id=office,
                    cause="no_capacity",
                    recorded_at=answer,
                )
            )
        else:
            events.append(
                ReferralExpired(client_id=client_id, referral_id=referral_id, agency_id=agency, expired_at=answer)
            )
    if rng.random() < 0.6:
        events.append(
            CaseClosed(
                client_id=client_id,
                case_id=case_id,
                service_line=line,
                office_id=office,
                reason="goals_reached",
                closed_at=_at(held + timedelta(days=rng.randint(1, 30)), rng),
            )
        )
    if line is ServiceLine.JMD and rng.random() < 0.05:
        events.append(
            ServiceLineHandoverDue(
                client_id=client_id,
                from_service_line=ServiceLine.JMD,
                to_service_line=ServiceLine.MBE,
                due_on=held,
            )
        )
    return [Envelope(event=event, source="bench") for event in events]


def stream(events: int, seed: int = 5, start: date = date(2024, 1, 1), span_days: int = 730) -> Iterator[Envelope]:
    """About `events` events (whole stories), in the order they happen per person."""
    rng = random.Random(seed)
    produced = 0
    previous: uuid.UUID | None = None
    while produced < events:
        story = person_story(rng, start, span_days)
        if previous is not None and rng.random() < 0.005:
            # A duplicate record found later: the new registration is merged into an earlier one.
            story.append(
                Envelope(
                    event=ClientsMerged(
                        client_id=previous, merged_client_id=story[0].event.client_id, merged_at=datetime.now(UTC)
                    ),
                    source="bench",
                )
            )
        previous = story[0].event.client_id
        produced += len(story)
        yield from story


def count(envelopes: list[Envelope]) -> Expected:
    expected = Expected(events=len(envelopes))
    for envelope in envelopes:
        event = envelope.event
        if isinstance(event, ClientRegistered):
            expected.persons += 1
        elif isinstance(event, CaseOpened):
            expected.cases_opened += 1
        elif isinstance(event, CaseClosed):
            expected.cases_closed += 1
        elif isinstance(event, ConsultationRecorded):
            expected.consultations += 1
            expected.family_members += event.family_members_counselled
            year = event.held_on.year
            expected.consultations_by_year[year] = expected.consultations_by_year.get(year, 0) + 1
        elif isinstance(event, ReferralSent):
            expected.referrals_sent += 1
        elif isinstance(event, ReferralAccepted):
            expected.referrals_accepted += 1
        elif isinstance(event, ReferralDeclined):
            expected.referrals_declined += 1
        elif isinstance(event, UnmetNeedRecorded):
            expected.unmet_needs += 1
        elif isinstance(event, ServiceLineHandoverDue):
            expected.handovers += 1
    return expected


def topic_of(envelope: Envelope, names: dict[str, str] | None = None) -> str:
    """The lifecycle topic of an event (optionally renamed, for tests on unique topics)."""
    topic = type(envelope.event).topic
    return (names or {}).get(topic, topic)


LIFECYCLE_TOPICS = (topics.CLIENTS, topics.CASES, topics.REFERRALS)


async def publish_stream(
    bootstrap: str, envelopes: list[Envelope], names: dict[str, str] | None = None, chunk: int = 20_000
) -> None:
    """Publish events to their (optionally renamed) lifecycle topics, keyed by client id.

    Sent without waiting for each acknowledgement (the idempotent producer keeps per-partition
    order), then flushed: fast enough for a million events.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        for begin in range(0, len(envelopes), chunk):
            futures = [
                await producer.send(
                    topic_of(envelope, names), envelope.body(), key=envelope.key.encode(), headers=envelope.headers()
                )
                for envelope in envelopes[begin : begin + chunk]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
