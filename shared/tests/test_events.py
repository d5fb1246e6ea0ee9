"""Event contracts: round trip through the Kafka envelope, schema documentation, rejection."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from knotenpunkt import topics
from knotenpunkt.envelope import Envelope, InvalidEvent, decode
from knotenpunkt.events import (
    AgeBand,
    AgencyKind,
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
    ClientErased,
    ClientRegistered,
    ClientsMerged,
    ClientUpdated,
    CompletionOutcome,
    ConsentExpired,
    ConsentGiven,
    ConsentPurpose,
    ConsentWithdrawn,
    ConsultationRecorded,
    DataCategory,
    DeclineReason,
    Event,
    GoalStatus,
    PlanGoalSet,
    PlanGoalStatusChanged,
    ReferralAccepted,
    ReferralCompleted,
    ReferralDeclined,
    ReferralExpired,
    ReferralReminderSent,
    ReferralSent,
    ReferralWithdrawn,
    ServiceLine,
    ServiceLineHandoverDue,
    SharedPersonData,
    UnmetNeedRecorded,
    all_event_models,
)

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
CLIENT = uuid.uuid4()


def examples() -> list[Event]:
    case_id, referral_id, consent_id, goal_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    consent = {
        "client_id": CLIENT,
        "consent_id": consent_id,
        "purpose": ConsentPurpose.SHARING,
        "agency_kind": AgencyKind.JOBCENTER,
        "data_categories": (DataCategory.NAME, DataCategory.TOPIC),
    }
    agency = {"client_id": CLIENT, "referral_id": referral_id, "agency_id": "jobcenter-duisburg"}
    return [
        ClientUpdated(client_id=CLIENT, updated_at=NOW, changed=("district",), district="Hamborn"),
        ClientsMerged(client_id=CLIENT, merged_client_id=uuid.uuid4(), merged_at=NOW),
        ClientErased(client_id=CLIENT, erased_at=NOW),
        ServiceLineHandoverDue(
            client_id=CLIENT,
            from_service_line=ServiceLine.JMD,
            to_service_line=ServiceLine.MBE,
            due_on=date(2026, 11, 20),
        ),
        ConsentGiven(**consent, text_version="2026-01", given_on=date(2026, 11, 1), valid_until=date(2027, 11, 1)),
        ConsentWithdrawn(**consent, withdrawn_on=date(2026, 11, 20)),
        ConsentExpired(**consent, expired_on=date(2027, 11, 2)),
        CaseAssigned(client_id=CLIENT, case_id=case_id, case_manager_id="staff-7", assigned_at=NOW),
        CaseTransferred(
            client_id=CLIENT,
            case_id=case_id,
            from_office_id="rsc-hamborn",
            to_office_id="rsc-hochfeld",
            reason="moved",
            transferred_at=NOW,
        ),
        CaseClosed(
            client_id=CLIENT,
            case_id=case_id,
            service_line=ServiceLine.JMD,
            office_id="rsc-hamborn",
            reason="goals_reached",
            closed_at=NOW,
        ),
        CaseReopened(client_id=CLIENT, case_id=case_id, reopened_at=NOW),
        PlanGoalSet(client_id=CLIENT, goal_id=goal_id, case_id=case_id, topic_code="work", set_at=NOW),
        PlanGoalStatusChanged(
            client_id=CLIENT, goal_id=goal_id, case_id=case_id, status=GoalStatus.REACHED, changed_at=NOW
        ),
        ReferralCompleted(**agency, completed_at=NOW, outcome=CompletionOutcome.SUCCESSFUL),
        ReferralWithdrawn(**agency, withdrawn_at=NOW, reason="by_case_manager"),
        ReferralReminderSent(**agency, answer_due_on=date(2026, 12, 1), reminded_at=NOW),
        ReferralExpired(**agency, expired_at=NOW),
        UnmetNeedRecorded(
            client_id=CLIENT,
            referral_id=referral_id,
            topic_code="housing",
            agency_kind="sozialamt",
            office_id="rsc-hamborn",
            cause="no_capacity",
            recorded_at=NOW,
        ),
        ClientRegistered(
            client_id=CLIENT,
            registered_at=NOW,
            age_band=AgeBand.AGE_18_26,
            service_line=ServiceLine.JMD,
            office_id="rsc-hamborn",
        ),
        CaseOpened(
            client_id=CLIENT, case_id=case_id, service_line=ServiceLine.JMD, office_id="rsc-hamborn", opened_at=NOW
        ),
        ConsultationRecorded(
            client_id=CLIENT,
            consultation_id=uuid.uuid4(),
            case_id=case_id,
            service_line=ServiceLine.JMD,
            office_id="rsc-hamborn",
            held_on=date(2026, 11, 19),
            duration_minutes=45,
            topics=("work", "housing"),
            family_members_counselled=2,
        ),
        ReferralSent(
            client_id=CLIENT,
            referral_id=referral_id,
            case_id=case_id,
            agency_id="jobcenter-duisburg",
            topic_code="work",
            office_id="rsc-hamborn",
            sent_at=NOW,
            shared_data=SharedPersonData(categories=("name",), family_name="Yılmaz", given_name="Ayşe"),
        ),
        ReferralAccepted(client_id=CLIENT, referral_id=referral_id, agency_id="jobcenter-duisburg", accepted_at=NOW),
        ReferralDeclined(
            client_id=CLIENT,
            referral_id=referral_id,
            agency_id="jobcenter-duisburg",
            declined_at=NOW,
            reason=DeclineReason.NO_CAPACITY,
        ),
    ]


def test_examples_cover_every_registered_event() -> None:
    assert {type(event) for event in examples()} == set(all_event_models().values())


@pytest.mark.parametrize("event", examples(), ids=lambda event: type(event).__name__)
def test_round_trip_through_the_kafka_envelope(event: Event) -> None:
    envelope = Envelope(event=event, source="test", correlation_id="corr-1", causation_id="cause-1")

    decoded = decode(envelope.headers(), envelope.body(), topic=event.topic)

    assert decoded.event == event
    assert (decoded.id, decoded.type, decoded.source) == (envelope.id, envelope.type, "test")
    assert (decoded.correlation_id, decoded.causation_id) == ("corr-1", "cause-1")
    assert decoded.time == envelope.time
    assert decoded.origin_topic == event.topic


def test_headers_are_cloudevents_binary_mode_and_key_is_the_client_id() -> None:
    envelope = Envelope(event=examples()[0], source="knotenpunkt/intake")
    headers = dict(envelope.headers())
    assert {"ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time", "ce_subject", "correlation_id"} <= set(
        headers
    )
    assert headers["ce_specversion"] == b"1.0"
    assert envelope.key == str(CLIENT) == headers["ce_subject"].decode()


@pytest.mark.parametrize("model", list(all_event_models().values()), ids=lambda model: model.__name__)
def test_every_field_is_documented_for_partner_agencies(model: type[Event]) -> None:
    schema = model.model_json_schema()
    undocumented = [name for name, spec in schema["properties"].items() if not spec.get("description")]
    assert undocumented == []
    assert model.__doc__


def test_events_are_immutable() -> None:
    event = examples()[0]
    with pytest.raises(ValidationError):
        event.office_id = "elsewhere"  # type: ignore[misc]


def test_topics_are_versioned_and_defined_once() -> None:
    for model in all_event_models().values():
        assert model.topic.endswith(".v1")
    assert topics.agency_of_topic(topics.agency_answers("jobcenter-duisburg")) == "jobcenter-duisburg"
    assert topics.agency_of_topic(topics.CASES) is None
    with pytest.raises(ValueError):
        topics.agency_referrals("../etc")


def _headers(event_type: str = ClientRegistered.event_type) -> list[tuple[str, bytes]]:
    return [("ce_id", str(uuid.uuid4()).encode()), ("ce_type", event_type.encode())]


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (_headers(), b"{not json", "not valid JSON"),
        (_headers("knotenpunkt.nothing.Happened.v1"), b"{}", "unknown event type"),
        ([("ce_id", b"x")], b"{}", "missing header ce_type"),
        (_headers(), json.dumps({"client_id": str(CLIENT)}).encode(), "does not match its contract"),
    ],
)
def test_messages_that_cannot_be_applied_are_refused_with_a_reason(headers, body, reason) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode(headers, body)


def test_the_reason_never_repeats_field_values() -> None:
    body = json.dumps({"client_id": "Ayşe Yılmaz, Duisburger Straße 1"}).encode()
    with pytest.raises(InvalidEvent) as refused:
        decode(_headers(), body)
    assert "Ayşe" not in refused.value.reason and "Duisburger" not in refused.value.reason


def test_readers_tolerate_fields_added_later() -> None:
    event = examples()[1]
    body = json.loads(Envelope(event=event).body())
    body["added_in_a_later_version"] = "ignored"
    assert decode(Envelope(event=event).headers(), json.dumps(body).encode()).event == event
