"""The HTTP adapter of the intake port, on the shared ServiceClient, against a mocked transport:
intake's answers become the port's results or its clear refusals, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from knotenpunkt.clients import ServiceClient
from knotenpunkt.events import AgencyKind, DataCategory
from knotenpunkt.http import CORRELATION_HEADER
from referrals.intake import HttpIntake, IntakeRefused, IntakeUnavailable, NoSharingConsent, UnknownClient

CLIENT = uuid.uuid4()


class MockedClient(ServiceClient):
    """The shared client with its connection pool replaced by a mocked transport."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__("http://intake")
        self._client = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://intake")


def intake(answer: Callable[[httpx.Request], httpx.Response]) -> HttpIntake:
    return HttpIntake(MockedClient(answer))


async def test_the_consent_check_asks_for_sharing_with_the_agency_and_passes_the_correlation_id_on() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"granted": True, "consent_id": "c-1", "categories": ["name", "topic"]})

    check = await intake(answer).consent_check(
        CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, (DataCategory.TOPIC,)
    )
    assert (check.granted, check.consent_id, check.categories) == (True, "c-1", ("name", "topic"))
    [request] = seen
    assert request.url.path == f"/clients/{CLIENT}/consent-check"
    assert dict(request.url.params) == {
        "purpose": "sharing",
        "agency_id": "jobcenter-duisburg",
        "agency_kind": "jobcenter",
        "categories": "topic",
    }
    assert request.headers[CORRELATION_HEADER]


async def test_shared_data_is_read_as_the_contract_model() -> None:
    shared = await intake(
        lambda request: httpx.Response(200, json={"categories": ["name"], "family_name": "Yılmaz"})
    ).shared_data(CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER)
    assert (shared.categories, shared.family_name, shared.phone) == (("name",), "Yılmaz", None)


@pytest.mark.parametrize(
    ("status", "body", "refusal"),
    [
        (404, {"code": "not_found"}, UnknownClient),
        (409, {"code": "no_valid_consent"}, NoSharingConsent),
        (403, {"code": "forbidden_agency"}, IntakeRefused),
        (500, {"code": "internal_error"}, IntakeUnavailable),
        (200, ["not", "an", "object"], IntakeUnavailable),
        (200, {"categories": "not a list of categories"}, IntakeUnavailable),
    ],
)
async def test_intakes_refusals_and_nonsense_become_clear_refusals(status: int, body: object, refusal: type) -> None:
    with pytest.raises(refusal):
        await intake(lambda request: httpx.Response(status, json=body)).shared_data(
            CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER
        )


async def test_a_consent_check_without_its_fields_or_unreachable_intake_is_intake_unavailable() -> None:
    with pytest.raises(IntakeUnavailable) as unavailable:
        await intake(lambda request: httpx.Response(200, json={})).consent_check(
            CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, (DataCategory.TOPIC,)
        )
    assert (unavailable.value.status_code, unavailable.value.code) == (503, "intake_unavailable")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(IntakeUnavailable) as unreachable:
        await intake(refuse).consent_check(CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, (DataCategory.TOPIC,))
    assert unreachable.value.detail == "ConnectError"


async def test_intake_refusing_the_person_is_passed_on_as_403_with_intakes_reason() -> None:
    with pytest.raises(IntakeRefused) as refused:
        await intake(lambda request: httpx.Response(403, json={"code": "forbidden_office"})).consent_check(
            CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, (DataCategory.TOPIC,)
        )
    assert (refused.value.status_code, refused.value.code) == (403, "forbidden_office")
    # A reason that is not one of the shared policy's is not passed on verbatim.
    with pytest.raises(IntakeRefused) as unknown:
        await intake(lambda request: httpx.Response(403, text="<html>")).consent_check(
            CLIENT, "jobcenter-duisburg", AgencyKind.JOBCENTER, (DataCategory.TOPIC,)
        )
    assert unknown.value.code == "forbidden_role"
