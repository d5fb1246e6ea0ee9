"""Tokens from the running Keycloak for tests, the demo and tools: a person signs in on
Keycloak's own login page (authorization code with PKCE, as a browser would; the realm allows no
password grant), a service or an agency's software with its client credentials."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

REALM = "knotenpunkt"
WEB_CLIENT = "knotenpunkt-web"
DEMO_PASSWORD = "demo"
REDIRECT_URI = "http://127.0.0.1/signed-in"


class SignInFailed(AssertionError):
    pass


def dev_secret(client_id: str) -> str:
    """The realm file's local default secret of a client (`${ENV:default}` in the realm)."""
    return f"dev-secret-{client_id}"


class _BearerAuth(httpx.Auth):
    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {self._token()}"
        yield request


@dataclass
class Identity:
    """Signs in and hands out access tokens, cached until shortly before they expire."""

    keycloak_url: str
    web_client_secret: str = field(default_factory=lambda: dev_secret(WEB_CLIENT))
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict, init=False)

    @property
    def issuer(self) -> str:
        return f"{self.keycloak_url}/realms/{REALM}"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    def token(self, username: str, password: str = DEMO_PASSWORD) -> str:
        """A person's access token, signed in through the login form."""
        return self._cached(f"user:{username}", lambda: self._sign_in(username, password))

    def client_token(self, client_id: str, secret: str | None = None) -> str:
        """A machine client's access token (client credentials)."""
        return self._cached(f"client:{client_id}", lambda: self._client_credentials(client_id, secret))

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def auth(self, username: str) -> httpx.Auth:
        """For `httpx.AsyncClient(auth=...)`: every request signed as this person (a request
        that sets its own Authorization header keeps it)."""
        return _BearerAuth(lambda: self.token(username))

    def client_auth(self, client_id: str, secret: str | None = None) -> httpx.Auth:
        return _BearerAuth(lambda: self.client_token(client_id, secret))

    def _cached(self, key: str, fetch: object) -> str:
        cached = self._cache.get(key)
        if cached and cached[1] > time.monotonic() + 30:
            return cached[0]
        token, lifetime = fetch()  # type: ignore[operator]
        self._cache[key] = (token, time.monotonic() + lifetime)
        return token

    def _client_credentials(self, client_id: str, secret: str | None) -> tuple[str, float]:
        response = httpx.post(
            self.token_url,
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret or dev_secret(client_id)),
            timeout=15,
        )
        if response.status_code != 200:
            raise SignInFailed(f"client credentials for {client_id} refused: {response.status_code} {response.text}")
        body = response.json()
        return body["access_token"], float(body["expires_in"])

    def _sign_in(self, username: str, password: str) -> tuple[str, float]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        state = secrets.token_urlsafe(16)
        with httpx.Client(timeout=15, follow_redirects=False) as browser:
            page = browser.get(
                f"{self.issuer}/protocol/openid-connect/auth",
                params={
                    "client_id": WEB_CLIENT,
                    "response_type": "code",
                    "scope": "openid",
                    "redirect_uri": REDIRECT_URI,
                    "state": state,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            )
            form = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
            if page.status_code != 200 or form is None:
                raise SignInFailed(f"no login form from Keycloak ({page.status_code})")
            # Keycloak marks its session cookies Secure, which httpx keeps from plain http: sent by hand,
            # as a browser on localhost (a secure context) does.
            cookies = "; ".join(f"{name}={value}" for name, value in page.cookies.items())
            browser.cookies.clear()
            answer = browser.post(
                html.unescape(form.group(1)),
                data={"username": username, "password": password},
                headers={"Cookie": cookies},
            )
            location = answer.headers.get("location", "")
            query = parse_qs(urlsplit(location).query)
            if answer.status_code != 302 or not location.startswith(REDIRECT_URI) or "code" not in query:
                raise SignInFailed(f"sign-in of {username} refused ({answer.status_code})")
            if query.get("state") != [state]:
                raise SignInFailed("sign-in answered with another state")
            tokens = browser.post(
                self.token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                },
                auth=(WEB_CLIENT, self.web_client_secret),
            )
        if tokens.status_code != 200:
            raise SignInFailed(f"code exchange for {username} refused: {tokens.status_code} {tokens.text}")
        body = tokens.json()
        return body["access_token"], float(body["expires_in"])
