"""One HTTP client for calling another service (cases and referrals ask intake), written once.

Long-lived (one connection pool per service and target, opened in the lifespan, closed at
shutdown) instead of a client per call; every call passes the correlation id on, so one
person's story can be followed across services in the logs. Transport failures become
`ServiceUnavailable` with the error's type only: an error text may quote a URL with an id.
"""

from __future__ import annotations

from typing import Any

import httpx

from knotenpunkt.errors import Unavailable
from knotenpunkt.http import CORRELATION_HEADER, current_correlation_id
from knotenpunkt.identity import ServiceCredentials


class ServiceUnavailable(Exception):
    """The other service did not answer (or answered something that is not our JSON)."""


class ServiceClient:
    """HTTP/JSON calls to one other service of the network."""

    def __init__(self, base_url: str, timeout_s: float = 5.0, credentials: ServiceCredentials | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        # The service's own token and the person's (X-On-Behalf-Of) on every call.
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        # Created on first use when the lifespan has not opened it (scripts, tests).
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout_s)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(
        self, path: str, params: dict[str, str] | None = None, correlation_id: str | None = None
    ) -> httpx.Response:
        """GET with the correlation id passed on; ServiceUnavailable when there is no answer."""
        headers = {CORRELATION_HEADER: correlation_id or current_correlation_id()}
        try:
            if self._credentials is not None:
                headers |= await self._credentials.headers()
        except Unavailable:
            raise ServiceUnavailable("identity provider unreachable") from None
        try:
            return await self.http.get(path, params=params, headers=headers)
        except httpx.HTTPError as error:
            raise ServiceUnavailable(type(error).__name__) from None

    @staticmethod
    def json_object(response: httpx.Response) -> dict[str, Any]:
        """The body of a 200 answer as a JSON object, else ServiceUnavailable."""
        if response.status_code != 200:
            raise ServiceUnavailable(f"answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ServiceUnavailable("answered no JSON") from None
        if not isinstance(body, dict):
            raise ServiceUnavailable("answered no JSON object")
        return body
