"""The port to intake, which owns consents and personal data, and its HTTP adapter.

Referrals never stores personal data: it asks intake at send time whether a valid sharing
consent exists and for exactly the consented fields, and puts them only on the agency's topic.
Unit tests replace the port with a fake; integration and end-to-end tests use the HTTP adapter.

Every call is made inside a person's request (the case manager sending, the agency looking at
its inbox): the service client sends referrals' own token and that person's token, so intake
checks the person, `via` referrals. No consumer or periodic job of referrals calls intake (a
call there would carry the service token alone, which intake refuses).

The port's refusals are domain errors, so a use case lets them pass to the caller unchanged.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

import httpx

from knotenpunkt.clients import ServiceClient, ServiceUnavailable
from knotenpunkt.errors import Conflict, Forbidden, Unavailable
from knotenpunkt.events import AgencyKind, DataCategory, SharedPersonData
from knotenpunkt.i18n import CATALOGUE
from knotenpunkt.policy import Action
from referrals.domain import ConsentCheck


class IntakeUnavailable(Unavailable):
    """Intake did not answer (or answered nonsense): the referral cannot be checked, so it waits (503)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("intake_unavailable")
        self.detail = detail


class UnknownClient(Conflict):
    """Intake does not know the person (erased, or merged into another record)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("unknown_client")
        self.detail = detail


class NoSharingConsent(Conflict):
    """Intake refused the shared data: the consent ended between check and fetch."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("no_sharing_consent")
        self.detail = detail


class IntakeRefused(Forbidden):
    """Intake refused the person on whose behalf referrals asked (403): passed on with intake's
    reason when it is one of the shared policy's, so the person learns why."""

    def __init__(self, code: str, action: Action) -> None:
        known = code.startswith("forbidden_") and code in CATALOGUE
        super().__init__(code if known else "forbidden_role", action.value)


class IntakePort(Protocol):
    async def consent_check(
        self, client_id: UUID, agency_id: str, agency_kind: AgencyKind, categories: tuple[DataCategory, ...]
    ) -> ConsentCheck: ...

    async def shared_data(self, client_id: UUID, agency_id: str, agency_kind: AgencyKind) -> SharedPersonData: ...


class HttpIntake:
    """intake's HTTP API (GET /clients/{id}/consent-check and /clients/{id}/shared-data), called
    through the service's one long-lived client for intake."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def consent_check(
        self, client_id: UUID, agency_id: str, agency_kind: AgencyKind, categories: tuple[DataCategory, ...]
    ) -> ConsentCheck:
        response = await self._get(
            f"/clients/{client_id}/consent-check",
            {
                "purpose": "sharing",
                "agency_id": agency_id,
                "agency_kind": agency_kind.value,
                "categories": ",".join(category.value for category in categories),
            },
        )
        if response.status_code == 404:
            raise UnknownClient(str(client_id))
        self._refused(response, Action.CONSENT_READ)
        body = self._json(response)
        try:
            return ConsentCheck(
                granted=bool(body["granted"]),
                consent_id=body.get("consent_id"),
                categories=tuple(body.get("categories") or ()),
                reason=body.get("reason"),
            )
        except (KeyError, TypeError) as error:
            raise IntakeUnavailable(f"consent-check answered without {error}") from None

    async def shared_data(self, client_id: UUID, agency_id: str, agency_kind: AgencyKind) -> SharedPersonData:
        response = await self._get(
            f"/clients/{client_id}/shared-data", {"agency_id": agency_id, "agency_kind": agency_kind.value}
        )
        if response.status_code == 404:
            raise UnknownClient(str(client_id))
        if response.status_code == 409:
            raise NoSharingConsent(str(client_id))
        self._refused(response, Action.SHARED_DATA_READ)
        try:
            return SharedPersonData.model_validate(self._json(response))
        except ValueError:
            raise IntakeUnavailable("shared-data does not match SharedPersonData") from None

    async def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        try:
            return await self._client.get(path, params)
        except ServiceUnavailable as error:
            raise IntakeUnavailable(str(error)) from None

    @staticmethod
    def _refused(response: httpx.Response, action: Action) -> None:
        if response.status_code != 403:
            return
        try:
            code = str(response.json().get("code", ""))
        except (ValueError, AttributeError):
            code = ""
        raise IntakeRefused(code, action)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            return ServiceClient.json_object(response)
        except ServiceUnavailable as error:
            raise IntakeUnavailable(f"intake {error}") from None
