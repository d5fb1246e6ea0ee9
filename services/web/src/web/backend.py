"""The four services' APIs, called with the signed-in person's token: the web app decides
nothing itself, every rule and permission is the service's (its 403 is shown as it is)."""

from __future__ import annotations

from typing import Any

import httpx

from knotenpunkt.http import CORRELATION_HEADER, current_correlation_id
from knotenpunkt.logging import get_logger
from web.settings import WebSettings
from web.visitor import SignInRequired, Visitor

log = get_logger("web.backend")
SERVICES = ("intake", "cases", "referrals", "stats")


class ServiceDown(Exception):
    """A service did not answer (or answered 5xx): the page says so and offers to try again."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


class Refused(Exception):
    """A 4xx answer: its code, message (in the visitor's language) and field errors, to show."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        super().__init__(body.get("code", str(response.status_code)))
        self.status = response.status_code
        self.code: str = body.get("code", "http_error")
        self.message: str = body.get("message", "")
        self.body: dict[str, Any] = body if isinstance(body, dict) else {}
        self.fields: dict[str, str] = {
            error["field"]: error["message"] for error in self.body.get("errors") or [] if isinstance(error, dict)
        }
        self.headers = response.headers


class Backend:
    def __init__(self, settings: WebSettings) -> None:
        urls = {
            "intake": settings.intake_url,
            "cases": settings.cases_url,
            "referrals": settings.referrals_url,
            "stats": settings.stats_url,
        }
        self._clients = {
            name: httpx.AsyncClient(base_url=url.rstrip("/"), timeout=settings.api_timeout_s)
            for name, url in urls.items()
        }

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def call(
        self,
        visitor: Visitor,
        service: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The raw answer; 401 means the sign-in is over (sign in again), no answer is ServiceDown."""
        sent = {
            "Authorization": f"Bearer {visitor.access_token}",
            "Accept-Language": visitor.language,
            CORRELATION_HEADER: current_correlation_id(),
            **(headers or {}),
        }
        try:
            response = await self._clients[service].request(method, path, headers=sent, **kwargs)
        except httpx.HTTPError as error:
            log.warning("service unreachable", service=service, error=type(error).__name__)
            raise ServiceDown(service) from None
        if response.status_code == 401:
            raise SignInRequired(visitor.path)
        if response.status_code >= 500:
            log.warning("service failed", service=service, status=response.status_code)
            raise ServiceDown(service)
        return response

    async def json(self, visitor: Visitor, service: str, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON of a 2xx answer; a 4xx raises Refused (its message is for the page)."""
        response = await self.call(visitor, service, method, path, **kwargs)
        if response.status_code >= 400:
            raise Refused(response)
        return response.json() if response.content else None

    async def get(self, visitor: Visitor, service: str, path: str, **kwargs: Any) -> Any:
        return await self.json(visitor, service, "GET", path, **kwargs)

    async def post(self, visitor: Visitor, service: str, path: str, **kwargs: Any) -> Any:
        return await self.json(visitor, service, "POST", path, **kwargs)

    async def person_names(self, visitor: Visitor, client_ids: list[str]) -> dict[str, dict[str, Any]] | None:
        """The names of a page of persons in one call (intake `POST /clients/names`, a POST so no
        id list ends up in an access log), by client id; persons the visitor may not read are
        left out. None when intake refuses the call (the page says names cannot be shown)."""
        wanted = list(dict.fromkeys(str(client_id) for client_id in client_ids))
        if not wanted:
            return {}
        try:
            found = await self.post(visitor, "intake", "/clients/names", json={"client_ids": wanted})
        except Refused:
            return None
        return {str(person["client_id"]): person for person in found or []}
