"""Who is asking: bearer tokens from Keycloak checked on every request, turned into an `Actor`.

- `TokenVerifier` checks a token's signature against the realm's JWKS (PyJWT's `PyJWKClient`,
  keys cached), its issuer, audience and expiry, and builds the actor: staff id, roles,
  offices, agency (docs/decisions/0012-identity.md).
- `AuthenticationMiddleware` denies by default: every path but the open ones (`/health/*`;
  `/metrics` and `/docs` as configured) needs a valid token, else 401. Whether the actor may do
  what the route does is the route's `allow(action)` dependency (`knotenpunkt.policy`); a route
  without one does not start (`check_routes`).
- A service relaying a person's request (cases asking intake for the person on a case) sends
  its own token and the person's token in `X-On-Behalf-Of`; both are checked, the request then
  acts as that person `via` the service. `ServiceCredentials` fetch and cache the service's own
  token (client credentials).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from knotenpunkt.errors import DomainError, Unauthenticated, Unavailable
from knotenpunkt.i18n import register_messages
from knotenpunkt.logging import get_logger
from knotenpunkt.policy import ROLES, Action, require
from knotenpunkt.uow import Actor

ON_BEHALF_OF_HEADER = "X-On-Behalf-Of"
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256"]

log = get_logger("knotenpunkt.identity")

# The actor and the raw token of the request being handled, for relaying it to another service.
_current_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("actor", default=None)
_current_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("token", default=None)

register_messages(
    {
        "token_missing": {
            "de": "Bitte anmelden: Die Anfrage braucht ein Zugriffstoken (Authorization: Bearer …).",
            "en": "Please sign in: the request needs an access token (Authorization: Bearer …).",
        },
        "token_expired": {
            "de": "Die Anmeldung ist abgelaufen. Bitte erneut anmelden.",
            "en": "The sign-in has expired. Please sign in again.",
        },
        "token_invalid": {
            "de": "Das Zugriffstoken ist ungültig ({reason}).",
            "en": "The access token is invalid ({reason}).",
        },
        "token_without_identity": {
            "de": "Das Zugriffstoken nennt weder Fachkraft, Stelle noch Dienst.",
            "en": "The access token names no staff member, agency or service.",
        },
        "identity_provider_unreachable": {
            "de": "Der Anmeldedienst ist gerade nicht erreichbar. Bitte später erneut versuchen.",
            "en": "The sign-in service cannot be reached right now. Please try again later.",
        },
    }
)


def current_actor() -> Actor | None:
    return _current_actor.get()


def current_token() -> str | None:
    """The bearer token of the person whose request is being handled (to relay it)."""
    return _current_token.get()


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str

    @classmethod
    def of(cls, issuer: str, audience: str, jwks_url: str = "") -> OidcConfig:
        return cls(issuer.rstrip("/"), audience, jwks_url or f"{issuer.rstrip('/')}/protocol/openid-connect/certs")


class TokenVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=600, timeout=5)

    async def actor(self, token: str) -> Actor:
        """The actor the token names, or Unauthenticated (401) / Unavailable (503)."""
        claims = await self.claims(token)
        return actor_from_claims(claims)

    async def claims(self, token: str) -> dict[str, Any]:
        try:
            # PyJWKClient fetches over blocking HTTP when a key id is new; cached keys are instant.
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as error:
            log.warning("JWKS unreachable", error=type(error).__name__)
            raise Unavailable("identity_provider_unreachable") from None
        except (jwt.PyJWKClientError, jwt.DecodeError):
            raise Unauthenticated("token_invalid", reason="signature") from None
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={"require": ["exp", "iat", "iss", "aud"]},
                leeway=5,  # seconds of clock difference between Keycloak and us
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token_expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token_invalid", reason="audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token_invalid", reason="issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token_invalid", reason="signature") from None
        except jwt.MissingRequiredClaimError as missing:
            raise Unauthenticated("token_invalid", reason="audience" if missing.claim == "aud" else "format") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("token_invalid", reason="format") from None


def actor_from_claims(claims: dict[str, Any]) -> Actor:
    roles = frozenset(role for role in claims.get("realm_access", {}).get("roles", []) if role in ROLES)
    offices = claims.get("offices") or []
    if isinstance(offices, str):
        offices = [offices]
    if "service" in roles and claims.get("service"):
        return Actor.service(str(claims["service"]))
    if roles & {"agency_staff", "agency_system"} and claims.get("agency_id"):
        subject = claims.get("staff_id") or claims.get("azp") or claims.get("preferred_username")
        return Actor(
            kind="agency",
            subject=str(subject),
            roles=roles & {"agency_staff", "agency_system"},
            agency_id=str(claims["agency_id"]),
        )
    if claims.get("staff_id"):
        return Actor(
            kind="staff",
            subject=str(claims["staff_id"]),
            roles=roles - {"service", "agency_staff", "agency_system"},
            offices=frozenset(str(office) for office in offices),
        )
    raise Unauthenticated("token_without_identity")


Refuse = Callable[[Scope, Receive, Send, DomainError], Awaitable[None]]


class AuthenticationMiddleware:
    """Every request but those to open paths carries a valid token, else 401."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        open_paths: Iterable[str],
        open_prefixes: Iterable[str],
        refuse: Refuse,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)
        self.refuse = refuse

    def is_open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            token = _bearer(headers.get(b"authorization", b"").decode("latin-1"))
            actor = await self.verifier.actor(token)
            relayed = headers.get(ON_BEHALF_OF_HEADER.lower().encode(), b"").decode("latin-1").strip()
            if relayed:
                if actor.kind != "service":
                    raise Unauthenticated("token_invalid", reason="on-behalf-of")
                person = await self.verifier.actor(relayed)
                actor = Actor(
                    kind=person.kind,
                    subject=person.subject,
                    roles=person.roles,
                    offices=person.offices,
                    agency_id=person.agency_id,
                    via=actor.subject,
                )
                token = relayed
        except DomainError as error:
            scope.setdefault("state", {})["actor"] = Actor.unknown()
            await self.refuse(scope, receive, send, error)
            return
        scope.setdefault("state", {})["actor"] = actor
        actor_token = _current_actor.set(actor)
        raw_token = _current_token.set(token)
        try:
            await self.app(scope, receive, send)
        finally:
            _current_actor.reset(actor_token)
            _current_token.reset(raw_token)


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("token_missing")
    return token.strip()


def request_actor(request: Request) -> Actor:
    actor = getattr(request.state, "actor", None)
    return actor if isinstance(actor, Actor) else Actor.unknown()


def allow(action: Action) -> Callable[[Request], Actor]:
    """A route's dependency: the actor, if any of their roles allows `action` at all (else 403).
    Per-record checks (this office, this case) are the use case's, with `policy.require`."""

    def dependency(request: Request) -> Actor:
        actor = request_actor(request)
        request.state.audit_action = action
        require(actor, action)
        return actor

    dependency.knotenpunkt_action = action  # type: ignore[attr-defined]
    dependency.__name__ = f"allow_{action.value.replace('.', '_')}"
    return dependency


def route_action(route: APIRoute) -> Action | None:
    for dependant in route.dependant.dependencies:
        action = getattr(dependant.call, "knotenpunkt_action", None)
        if action is not None:
            return action
    return None


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of the app, those of included routers too (FastAPI keeps them as route
    contexts holding the route)."""
    from knotenpunkt.openapi import iter_routes

    found = []
    for entry in iter_routes(app):
        route = entry if isinstance(entry, APIRoute) else getattr(entry, "route", None)
        if isinstance(route, APIRoute):
            found.append(route)
    return found


def check_routes(app: FastAPI, is_open: Callable[[str], bool]) -> None:
    """Refuse to start with a route that is neither open nor guarded by `allow(action)`."""
    routes = api_routes(app)
    unguarded = [
        f"{sorted(route.methods)} {getattr(route, 'path_format', route.path)}"
        for route in routes
        if not is_open(getattr(route, "path_format", route.path)) and route_action(route) is None
    ]
    if unguarded:
        raise RuntimeError(f"routes without a permission (knotenpunkt.identity.allow): {', '.join(unguarded)}")


class ServiceCredentials:
    """This service's own access token (client credentials), fetched when needed and cached
    until shortly before it expires."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, timeout_s: float = 5) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._timeout_s = timeout_s
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() > self._valid_until - 30:
                try:
                    async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                        response = await client.post(
                            self.token_url,
                            data={"grant_type": "client_credentials"},
                            auth=(self.client_id, self._secret),
                        )
                except httpx.HTTPError as error:
                    log.warning("identity provider unreachable for the service token", error=type(error).__name__)
                    raise Unavailable("identity_provider_unreachable") from None
                if response.status_code != 200:
                    log.error("service token refused", status=response.status_code, client_id=self.client_id)
                    raise Unavailable("identity_provider_unreachable")
                body = response.json()
                self._token = body["access_token"]
                self._valid_until = time.monotonic() + float(body.get("expires_in", 60))
            return self._token

    async def headers(self) -> dict[str, str]:
        """Authorization with this service's token and, inside a person's request, that
        person's token in X-On-Behalf-Of."""
        headers = {"Authorization": f"Bearer {await self.token()}"}
        if (person := current_token()) is not None:
            headers[ON_BEHALF_OF_HEADER] = person
        return headers
