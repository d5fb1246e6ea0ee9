"""A service's API for integration tests: every shared HTTP mechanism, identity and audit
included, trusting the test session's Keycloak (KP_OIDC_ISSUER, set by the `infra` fixture)."""

from __future__ import annotations

from fastapi import FastAPI

from knotenpunkt.db import Database
from knotenpunkt.http import Access, create_api
from knotenpunkt.identity import OidcConfig, TokenVerifier, check_routes
from knotenpunkt.settings import ServiceSettings


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
