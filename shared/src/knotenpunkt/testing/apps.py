"""A service's API for integration tests: every shared HTTP mechanism, identity and audit
included, trusting the test session's Keycloak (KP_OIDC_ISSUER, set by the `infra` fixture)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from knotenpunkt.db import Database
from knotenpunkt.http import Access, create_api
from knotenpunkt.identity import OidcConfig, TokenVerifier, check_routes
from knotenpunkt.settings import ServiceSettings
from knotenpunkt.testing.identity import Identity


def secured_api(service: str, database: Database, title: str | None = None) -> FastAPI:
    """An app with authentication, audit and the OpenAPI security scheme; include the
    service's router, then call `check_guarded(app)`."""
    settings = ServiceSettings(service_name=service)
    verifier = TokenVerifier(OidcConfig.of(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url))
    access = Access(verifier=verifier, service=service, database=lambda: database)
    app = create_api(title or f"{service} under test", access=access)
    app.state.access = access
    return app


def check_guarded(app: FastAPI) -> FastAPI:
    """Fail as the service would at startup when a route has no permission."""
    check_routes(app, app.state.access.is_open)
    return app


class SignedIn:
    """HTTP clients of one app in the test process, each signed in through Keycloak as a demo
    user: `as_("intake-hochfeld").get(...)`; `as_("nobody")` sends no token. Close with `aclose`."""

    def __init__(self, app: FastAPI, identity: Identity, base_url: str = "http://service") -> None:
        self._transport = httpx.ASGITransport(app=app)
        self._identity = identity
        self._base_url = base_url
        self._clients: list[httpx.AsyncClient] = []

    def __call__(self, user: str) -> httpx.AsyncClient:
        headers = self._identity.headers(user) if user != "nobody" else {}
        self._clients.append(httpx.AsyncClient(transport=self._transport, base_url=self._base_url, headers=headers))
        return self._clients[-1]

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
