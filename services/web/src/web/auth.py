"""Sign-in through Keycloak: authorization code with PKCE (authlib), the tokens kept in the
server-side session, the access token verified as the services verify it; sign-out ends the
session here and at Keycloak."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from knotenpunkt.errors import DomainError
from knotenpunkt.identity import TokenVerifier
from knotenpunkt.logging import get_logger
from knotenpunkt.uow import Actor
from web.sessions import COOKIE, Session, SessionStore
from web.settings import WebSettings
from web.texts import pick_language
from web.visitor import SignInRequired, Visitor

log = get_logger("web.auth")
LANGUAGE_COOKIE = "kp_lang"


def _safe_next(path: str | None) -> str:
    """Only a path of this app (never another site) to return to after signing in."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path[:500]


class SignIn:
    def __init__(self, settings: WebSettings, sessions: SessionStore, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.sessions = sessions
        self.verifier = verifier
        token_url, self.client_id, self._secret = settings.oidc_client()
        self.token_url = token_url
        issuer = settings.oidc_issuer.rstrip("/")
        # The browser goes to the issuer's address; the server talks to Keycloak where it reaches it.
        self.authorize_url = f"{issuer}/protocol/openid-connect/auth"
        self.logout_url = f"{issuer}/protocol/openid-connect/logout"
        self.redirect_uri = f"{settings.public_url.rstrip('/')}/auth/callback"

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            self.client_id,
            self._secret,
            scope="openid",
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=10,
        )

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.session_id,
            httponly=True,
            secure=self.settings.cookies_secure,
            samesite="lax",
            max_age=self.settings.session_max_hours * 3600,
            path="/",
        )

    async def session_of(self, request: Request) -> Session | None:
        return await self.sessions.load(request.cookies.get(COOKIE))

    async def visitor(self, request: Request) -> Visitor:
        """The signed-in visitor, with a fresh access token; else SignInRequired."""
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        session = await self.session_of(request)
        if session is None or not session.signed_in:
            raise SignInRequired(path)
        if float(session.data.get("expires_at", 0)) < time.time() + 30:
            await self._refresh(session, path)
        data = session.data
        actor = Actor(
            kind=data["actor_kind"],
            subject=data["subject"],
            roles=frozenset(data["roles"]),
            offices=frozenset(data["offices"]),
            agency_id=data.get("agency_id"),
        )
        language = pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        return Visitor(session, actor, data.get("name") or actor.subject, language, path)

    async def _refresh(self, session: Session, path: str) -> None:
        refresh_token = session.data.get("refresh_token")
        if not refresh_token:
            raise SignInRequired(path)
        try:
            async with self._client() as client:
                token = await client.refresh_token(self.token_url, refresh_token=refresh_token)
            await self._keep(session, dict(token))
        except Exception as error:  # any refusal: the sign-in is over
            log.info("session refresh refused; signing in again", error=type(error).__name__)
            await self.sessions.delete(session)
            raise SignInRequired(path) from None

    async def _keep(self, session: Session, token: dict) -> None:
        try:
            actor = await self.verifier.actor(token["access_token"])
        except DomainError as refused:
            log.warning("access token from Keycloak refused", reason=refused.code)
            raise SignInRequired("/") from None
        claims = await self.verifier.claims(token["access_token"])
        session.set(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            id_token=token.get("id_token"),
            expires_at=time.time() + float(token.get("expires_in", 300)),
            actor_kind=actor.kind,
            subject=actor.subject,
            roles=sorted(actor.roles),
            offices=sorted(actor.offices),
            agency_id=actor.agency_id,
            name=claims.get("name") or claims.get("preferred_username") or actor.subject,
            # The form token lives as long as the signed-in session (stored with it here, so
            # every page rendered later shows the same one).
            csrf=session.data.get("csrf") or generate_token(43),
        )
        await self.sessions.save(session)

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/login")
        async def login(request: Request, next: str = "/") -> RedirectResponse:
            session = await self.session_of(request) or self.sessions.new()
            verifier = generate_token(64)
            async with self._client() as client:
                url, state = client.create_authorization_url(self.authorize_url, code_verifier=verifier)
            language = pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
            session.set(oauth_state=state, oauth_verifier=verifier, next=_safe_next(next))
            await self.sessions.save(session)
            response = RedirectResponse(f"{url}&{urlencode({'ui_locales': language})}", status_code=303)
            self.set_cookie(response, session)
            return response

        @router.get("/auth/callback")
        async def callback(request: Request, code: str = "", state: str = "") -> RedirectResponse:
            session = await self.session_of(request)
            if session is None or not state or state != session.data.get("oauth_state") or not code:
                return RedirectResponse("/login", status_code=303)
            verifier = session.pop("oauth_verifier")
            session.pop("oauth_state")
            async with self._client() as client:
                token = await client.fetch_token(self.token_url, code=code, code_verifier=verifier)
            # A new session id at sign-in: an id someone could have planted before is worth nothing.
            session = await self.sessions.renew(session)
            await self._keep(session, dict(token))
            response = RedirectResponse(_safe_next(session.pop("next")), status_code=303)
            await self.sessions.save(session)
            self.set_cookie(response, session)
            return response

        return router

    async def sign_out(self, session: Session) -> RedirectResponse:
        id_token = session.data.get("id_token")
        await self.sessions.delete(session)
        query = {"post_logout_redirect_uri": f"{self.settings.public_url.rstrip('/')}/signed-out"}
        if id_token:
            query["id_token_hint"] = id_token
        else:
            query["client_id"] = self.client_id
        response = RedirectResponse(f"{self.logout_url}?{urlencode(query)}", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response
