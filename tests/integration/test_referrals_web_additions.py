"""What the web app needs of referrals beyond the first API (issue 10): taking a declined or
expired referral off the action-needed list once followed up, and recording an unmet need
without a referral. The whole service runs in-process on the real broker and database (the
fixture of test_referrals_network); every call signs in through the real Keycloak, and each rule
is shown from its allowed and its denied side.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from knotenpunkt import topics
from knotenpunkt.events import DeclineReason, ReferralAccepted, ReferralDeclined, UnmetNeedRecorded
from knotenpunkt.testing.fixtures import eventually, unique
from tests.integration.test_referrals_network import (
    Running,
    add_agency,
    answer_as,
    events_on,
    open_case,
    read,
    refer,
)
from tests.integration.test_referrals_network import (
    service as running_referrals,  # noqa: F401 - a fixture (the module's running service), used by `running`
)

pytestmark = pytest.mark.integration


@pytest.fixture
def running(running_referrals: Running) -> Running:  # noqa: F811 - the imported fixture, by name
    return running_referrals


async def declined_referral(running: Running, case_manager: str) -> tuple[dict, object]:
    agency = add_agency(running)
    case = await open_case(running, case_manager_id=case_manager)
    sent = await refer(running, case, agency, consent=("name", "topic"), sender=case_manager)
    await answer_as(
        running,
        agency,
        ReferralDeclined(
            client_id=case.client_id,
            agency_id=agency,
            referral_id=uuid.UUID(sent["referral_id"]),
            declined_at=datetime.now(UTC),
            reason=DeclineReason.NOT_RESPONSIBLE,
        ),
    )

    async def is_declined() -> bool:
        return (await read(running, sent["referral_id"], case_manager))["status"] == "declined"

    await eventually(is_declined)
    return sent, case


async def action_needed(running: Running, case_manager: str) -> list[str]:
    answer = await running.http.get(
        "/referrals/action-needed", params={"case_manager_id": case_manager}, headers=running.as_staff(case_manager)
    )
    assert answer.status_code == 200, answer.text
    return [r["referral_id"] for r in answer.json()]


async def test_a_followed_up_declined_referral_leaves_the_action_needed_list(running: Running) -> None:
    case_manager = "staff-hamborn-1"
    sent, _ = await declined_referral(running, case_manager)
    assert sent["referral_id"] in await action_needed(running, case_manager)
    dismissed = await running.http.post(
        f"/referrals/{sent['referral_id']}/dismiss", headers=running.as_staff(case_manager)
    )
    assert dismissed.status_code == 200, dismissed.text
    assert (dismissed.json()["status"], dismissed.json()["dismissed_at"] is not None) == ("declined", True)
    assert sent["referral_id"] not in await action_needed(running, case_manager)
    shown = await read(running, sent["referral_id"], case_manager)
    # The referral and its status stay; only the call to act is gone.
    assert (shown["status"], shown["action_needed"], shown["dismissed_at"] is not None) == ("declined", None, True)
    again = await running.http.post(f"/referrals/{sent['referral_id']}/dismiss", headers=running.as_staff(case_manager))
    assert (again.status_code, again.json()["code"]) == (409, "referral_already_dismissed")


async def test_an_open_or_accepted_referral_is_not_dismissed(running: Running) -> None:
    agency = add_agency(running)
    case = await open_case(running, case_manager_id="staff-hamborn-1")
    sent = await refer(running, case, agency, consent=("name", "topic"))
    waiting = await running.http.post(f"/referrals/{sent['referral_id']}/dismiss", headers=running.as_staff())
    assert (waiting.status_code, waiting.json()["code"]) == (409, "referral_nothing_to_dismiss")
    await answer_as(
        running,
        agency,
        ReferralAccepted(
            client_id=case.client_id,
            agency_id=agency,
            referral_id=uuid.UUID(sent["referral_id"]),
            accepted_at=datetime.now(UTC),
        ),
    )

    async def accepted() -> bool:
        return (await read(running, sent["referral_id"]))["status"] == "accepted"

    await eventually(accepted)
    refused = await running.http.post(f"/referrals/{sent['referral_id']}/dismiss", headers=running.as_staff())
    assert (refused.status_code, refused.json()["code"]) == (409, "referral_nothing_to_dismiss")
    unknown = await running.http.post(f"/referrals/{uuid.uuid4()}/dismiss", headers=running.as_staff())
    assert unknown.status_code == 404


async def test_only_who_may_withdraw_dismisses(running: Running) -> None:
    sent, _ = await declined_referral(running, "staff-hamborn-1")
    url = f"/referrals/{sent['referral_id']}/dismiss"
    for user, code in (
        ("staff-hamborn-2", "forbidden_not_assigned"),
        ("staff-hochfeld-1", "forbidden_office"),
        ("intake-hamborn", "forbidden_role"),
        ("coordinator", "forbidden_role"),
    ):
        denied = await running.http.post(url, headers=running.as_staff(user))
        assert (user, denied.status_code, denied.json()["code"]) == (user, 403, code)
    allowed = await running.http.post(url, headers=running.as_staff("lead-hamborn"))
    assert allowed.status_code == 200, allowed.text


async def test_an_unmet_need_is_recorded_without_a_referral_and_counted_in_the_gap_register(
    running: Running,
) -> None:
    case = await open_case(running, case_manager_id="staff-hamborn-1")
    body = {"case_id": str(case.case_id), "topic_code": "housing", "cause": "no_capacity", "agency_kind": "sozialamt"}
    recorded = await running.http.post("/unmet-needs", json=body, headers=running.as_staff())
    assert recorded.status_code == 201, recorded.text
    need = recorded.json()
    assert (need["topic_code"], need["cause"], need["agency_kind"]) == ("housing", "no_capacity", "sozialamt")
    unnamed = await running.http.post(
        "/unmet-needs",
        json={"case_id": str(case.case_id), "topic_code": "debts", "cause": "no_agency"},
        headers=running.as_staff(),
    )
    assert (unnamed.status_code, unnamed.json()["agency_kind"]) == (201, "unspecified")

    [published] = await eventually(lambda: events_on(running, topics.REFERRALS, need["need_id"]))
    assert isinstance(published.event, UnmetNeedRecorded)
    assert (published.event.client_id, published.event.office_id, published.event.cause) == (
        case.client_id,
        "rsc-hamborn",
        "no_capacity",
    )
    gaps = await running.http.get(
        "/gaps", params={"topic_code": "housing", "agency_kind": "sozialamt"}, headers=running.as_staff("coordinator")
    )
    assert gaps.status_code == 200
    # Counted (or, as a small count, suppressed) like every other entry of the register.
    assert any(row["cause"] == "no_capacity" and (row["count"] or row["suppressed"]) for row in gaps.json())

    bad = await running.http.post(
        "/unmet-needs",
        json={"case_id": str(case.case_id), "topic_code": "astrology", "cause": "lost"},
        headers=running.as_staff(),
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"cause"}
    unknown_topic = await running.http.post(
        "/unmet-needs",
        json={"case_id": str(case.case_id), "topic_code": "astrology", "cause": "no_agency"},
        headers=running.as_staff(),
    )
    assert [e["field"] for e in unknown_topic.json()["errors"]] == ["topic_code"]
    no_case = await running.http.post(
        "/unmet-needs",
        json={"case_id": str(uuid.uuid4()), "topic_code": "housing", "cause": "no_agency"},
        headers=running.as_staff(),
    )
    assert no_case.status_code == 404


async def test_only_who_may_refer_from_the_case_records_an_unmet_need(running: Running) -> None:
    case = await open_case(running, case_manager_id=unique("cm"))
    body = {"case_id": str(case.case_id), "topic_code": "housing", "cause": "no_agency"}
    for user, code in (
        ("staff-hamborn-1", "forbidden_not_assigned"),
        ("staff-hochfeld-1", "forbidden_office"),
        ("intake-hamborn", "forbidden_role"),
        ("dpo", "forbidden_role"),
    ):
        denied = await running.http.post("/unmet-needs", json=body, headers=running.as_staff(user))
        assert (user, denied.status_code, denied.json()["code"]) == (user, 403, code)
    allowed = await running.http.post("/unmet-needs", json=body, headers=running.as_staff("lead-hamborn"))
    assert allowed.status_code == 201, allowed.text
