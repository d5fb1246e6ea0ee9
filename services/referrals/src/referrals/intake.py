"""The port to intake, which owns consents and personal data, and its HTTP adapter.

Referrals never stores personal data: it asks intake at send time whether a valid sharing
consent exists and for exactly the consented fields, and puts them only on the agency's topic.
Unit tests replace the port with a fake; integration and end-to-end tests use the HTTP adapter.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

import httpx

from knotenpunkt.events import AgencyKind, DataCategory, SharedPersonData
from referrals.domain import ConsentCheck


class IntakeUnavailable(Exception):
    """Intake did not answer (or answered nonsense): the referral cannot be checked, so it waits."""


class UnknownClient(Exception):
    """Intake does not know the person (erased, or merged into another record)."""


class NoSharingConsent(Exception):
    """Intake refused the shared data: the consent ended between check and fetch."""


class IntakePort(Protocol):
    async def consent_check(
        self, client_id: UUID, agency_id: str, agency_kind: AgencyKind, categories: tuple[DataCategory, ...]
    ) -> ConsentCheck: ...

    async def shared_data(self, client_id: UUID, agency_id: str, agency_kind: AgencyKind) -> SharedPersonData: ...


class HttpIntake:
    """intake's HTTP API (GET /clients/{id}/consent-check and /clients/{id}/shared-data)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

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
        try:
            return SharedPersonData.model_validate(self._json(response))
        except ValueError:
            raise IntakeUnavailable("shared-data does not match SharedPersonData") from None

    async def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        # A client per call: two calls per referral sent, and nothing to close at shutdown.
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout_s) as client:
                return await client.get(path, params=params)
        except httpx.HTTPError as error:
            raise IntakeUnavailable(type(error).__name__) from None

    @staticmethod
    def _json(response: httpx.Response) -> dict:
        if response.status_code != 200:
            raise IntakeUnavailable(f"intake answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise IntakeUnavailable("intake answered no JSON") from None
        if not isinstance(body, dict):
            raise IntakeUnavailable("intake answered no JSON object")
        return body
