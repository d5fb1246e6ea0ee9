"""HTTP mechanisms every service shares: field-level errors, correlation ids, idempotent POSTs,
health and readiness, and bad input refused in our error format (`create_api`)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knotenpunkt import audit
from knotenpunkt.db import Database
from knotenpunkt.errors import DomainError, Forbidden, NotFound, Unauthenticated
from knotenpunkt.i18n import message, negotiate
from knotenpunkt.identity import AuthenticationMiddleware, TokenVerifier, request_actor
from knotenpunkt.logging import get_logger
from knotenpunkt.openapi import DOCS_ASSETS_PATH, install_docs, install_openapi, iter_routes
from knotenpunkt.request_guard import refuse_control_characters
from knotenpunkt.retry import is_transient
from knotenpunkt.uow import Cause, UnitOfWork, UnitsOfWork

CORRELATION_HEADER = "X-Correlation-ID"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
log = get_logger("knotenpunkt.http")


def current_correlation_id() -> str:
    """The correlation id of the request being handled (a fresh one outside a request)."""
    return _correlation_id.get() or str(uuid.uuid4())


class ApiError(DomainError):
    """A clear 4xx answer about the HTTP request itself (a header, the body's size, ...).

    Use cases raise the domain errors of `knotenpunkt.errors` instead; both are answered by
    the same handler."""

    def __init__(
        self,
        status_code: int,
        code: str,
        fields: list[tuple[str, str, dict[str, Any]]] | None = None,
        details: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code, fields, details, **params)
        self.status_code = status_code


def not_found(what_de: str, what_en: str) -> NotFound:
    return NotFound(what_de, what_en)


class CorrelationIdMiddleware:
    """Takes X-Correlation-ID from the request (or makes one), binds it to every log line and to
    every event the request causes, and returns it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(CORRELATION_HEADER.lower().encode(), b"").decode()
        correlation_id = incoming if _valid_correlation_id(incoming) else str(uuid.uuid4())
        token = _correlation_id.set(correlation_id)

        async def send_with_header(event: Message) -> None:
            if event["type"] == "http.response.start":
                event.setdefault("headers", []).append((CORRELATION_HEADER.lower().encode(), correlation_id.encode()))
            await send(event)

        try:
            with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
                await self.app(scope, receive, send_with_header)
        finally:
            _correlation_id.reset(token)


class BodyTooLarge(StarletteHTTPException):
    """The request body grew past the limit while it was being read."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413)
        self.max_bytes = max_bytes


class BodySizeLimitMiddleware:
    """Refuses a request body larger than `max_bytes` with 413 in our error format.

    A declared Content-Length over the limit is refused before anything is read. The bytes that
    arrive are counted too, because a chunked body declares no length and a declared one may be
    wrong: reading stops at the limit, so a huge body is never held in memory."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException, so that FastAPI's body parsing passes it on unchanged to
                    # the exception handler (any other exception there becomes a 400).
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_limited, send_tracked)
        except BodyTooLarge:
            # Read outside the exception handlers' reach (e.g. by a middleware): answer here.
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        language = negotiate(Headers(scope=scope).get("accept-language"))
        content = error_body(language, "body_too_large", max_bytes=self.max_bytes)
        # The unread rest of the body makes the connection unusable for another request.
        response = JSONResponse(status_code=413, content=content, headers={"Connection": "close"})
        await response(scope, receive, send)


def _valid_correlation_id(value: str) -> bool:
    return 0 < len(value) <= 100 and all(c.isalnum() or c in "-_.:" for c in value)


def _language(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"))


def error_body(
    language: str, code: str, fields: list[dict[str, str]] | None = None, /, **params: Any
) -> dict[str, Any]:
    resolved = {
        key: value.get(language, value.get("de")) if isinstance(value, dict) else value for key, value in params.items()
    }
    body: dict[str, Any] = {"code": code, "message": message(code, language, **resolved)}
    if fields:
        body["errors"] = fields
    body["correlation_id"] = current_correlation_id()
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        language = _language(request)
        fields = []
        for item in error.errors():
            # The field path without FastAPI's location prefix ("body", "query", ...). A request
            # that is not JSON at all concerns the whole body.
            location = [str(part) for part in item.get("loc", ())[1:]] if item.get("type") != "json_invalid" else []
            context = {
                key: value for key, value in (item.get("ctx") or {}).items() if isinstance(value, str | int | float)
            }
            error_type = item.get("type", "invalid")
            # A domain validator names its message code in the ValueError text ("code:...").
            if error_type == "value_error" and isinstance(item.get("ctx", {}).get("error"), ValueError):
                text = str(item["ctx"]["error"])
                if text.startswith("code:"):
                    error_type = text[len("code:") :]
            fields.append(
                {
                    "field": ".".join(location) or "body",
                    "code": error_type,
                    "message": message(error_type, language, **context),
                }
            )
        return JSONResponse(status_code=422, content=error_body(language, "validation_failed", fields))

    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, error: DomainError) -> JSONResponse:
        language = _language(request)
        fields = [
            {"field": field, "code": code, "message": message(code, language, **params)}
            for field, code, params in error.fields
        ]
        body = error_body(language, error.code, fields or None, **error.params)
        body.update(jsonable_encoder(error.details))
        if isinstance(error, Forbidden | Unauthenticated):
            request.scope.setdefault("state", {})["audit_reason"] = error.code
        return JSONResponse(status_code=error.status_code, content=body, headers=_challenge(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Starlette's and FastAPI's own refusals (unknown route, wrong method, unreadable body,
        # body too large) in our format instead of {"detail": ...}; their headers (Allow) stay.
        language = _language(request)
        status = error.status_code
        if isinstance(error, BodyTooLarge):
            body = error_body(language, "body_too_large", max_bytes=error.max_bytes)
        elif status == 404:
            body = error_body(language, "unknown_route", method=request.method, path=request.url.path[:200])
        elif status == 405:
            headers = dict(error.headers or {})
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
            error = StarletteHTTPException(405, headers=headers)
            body = error_body(language, "method_not_allowed", method=request.method, allowed=headers["Allow"])
        elif status == 400:
            body = error_body(language, "bad_request")
        else:
            body = error_body(language, "http_error", status=status)
        return JSONResponse(status_code=status, content=body, headers=error.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        # Logged with the traceback for operators; the client sees no internals.
        log.exception("unhandled error", path=request.url.path)
        # The database or a broker is down or overloaded for a moment: "try again", not a bug.
        status = 503 if is_transient(error) else 500
        return JSONResponse(status_code=status, content=error_body(_language(request), "internal_error"))


def _challenge(error: DomainError) -> dict[str, str] | None:
    """RFC 6750: a 401 names the scheme it wants."""
    if not isinstance(error, Unauthenticated):
        return None
    if error.code == "token_missing":
        return {"WWW-Authenticate": 'Bearer realm="knotenpunkt"'}
    return {"WWW-Authenticate": 'Bearer realm="knotenpunkt", error="invalid_token"'}


async def refuse(scope: Scope, receive: Receive, send: Send, error: DomainError) -> None:
    """Answer a request refused before routing (401 from the authentication) in our format."""
    language = negotiate(Headers(scope=scope).get("accept-language"))
    scope.setdefault("state", {})["audit_reason"] = error.code
    response = JSONResponse(
        status_code=error.status_code,
        content=error_body(language, error.code, **error.params),
        headers=_challenge(error),
    )
    await response(scope, receive, send)


@dataclass(frozen=True)
class Access:
    """Who may reach the API and where calls are audited (ServiceRuntime builds it)."""

    verifier: TokenVerifier
    service: str
    database: Callable[[], Database]
    open_metrics: bool = True
    open_docs: bool = True

    def open_paths(self) -> set[str]:
        paths = {"/health/live", "/health/ready"}
        if self.open_metrics:
            paths.add("/metrics")
        if self.open_docs:
            paths |= {"/docs", "/openapi.json"}
        return paths

    def open_prefixes(self) -> tuple[str, ...]:
        return (DOCS_ASSETS_PATH + "/",) if self.open_docs else ()

    def is_open(self, path: str) -> bool:
        return path in self.open_paths() or path.startswith(self.open_prefixes() or ("\0",))


def _audit_unavailable(scope: Scope) -> bytes:
    language = negotiate(Headers(scope=scope).get("accept-language"))
    return json.dumps(error_body(language, "internal_error")).encode()


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_api(
    title: str,
    description: str = "",
    lifespan: Lifespan | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    access: Access | None = None,
) -> FastAPI:
    """A service's FastAPI app with every shared HTTP mechanism installed.

    Bad input gets a clear 4xx in our error format, never a 500: control characters (422, see
    `knotenpunkt.request_guard`; a dependency of the app, so every router included later has
    it), a body over `max_body_bytes` (413), malformed JSON (422), an unknown route (404) or
    method (405). The OpenAPI document declares these answers (`knotenpunkt.openapi`), and /docs
    serves Swagger UI from the package, not from a CDN.
    """
    app = FastAPI(
        title=title,
        description=description,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_control_characters)],
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    if access is not None:
        # Deny by default: outside the open paths, no valid token, no answer (401). The audit
        # middleware is outside it, so refused calls are audited as denied.
        app.add_middleware(
            AuthenticationMiddleware,
            verifier=access.verifier,
            open_paths=access.open_paths(),
            open_prefixes=access.open_prefixes(),
            refuse=refuse,
        )
        app.add_middleware(
            audit.AuditMiddleware,
            service=access.service,
            database=access.database,
            is_open=access.is_open,
            correlation_id=current_correlation_id,
            unavailable=_audit_unavailable,
        )
    # Added last, so outermost: a 413 answered by the body limit carries the correlation id too.
    app.add_middleware(CorrelationIdMiddleware)
    install_error_handlers(app)
    install_openapi(app, secured=access.is_open if access is not None else None)
    install_docs(app)
    return app


def _allowed_methods(request: Request) -> str:
    """The methods of every route at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in iter_routes(request.app):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(request.url.path):
            methods |= set(route_methods)
    return ", ".join(sorted(methods))


UseCase = Callable[[UnitOfWork], Awaitable[Any]]


async def run_command(
    units: UnitsOfWork,
    request: Request,
    use_case: UseCase,
    *,
    scope: str,
    payload: Any = None,
    status_code: int = 200,
) -> Response:
    """Run a command's use case in one unit of work; with an Idempotency-Key, store its answer
    and repeat it.

    The use case returns its response model (or None for 204); domain errors it raises become
    their 4xx answers. A second request with the same key and the same body gets the stored
    answer and causes nothing; the same key with another body is refused (422). A request that
    failed stored nothing (its transaction rolled back), so it may be retried with the same key.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key and len(key) > 200:
        raise ApiError(422, "validation_failed", fields=[(IDEMPOTENCY_HEADER, "string_too_long", {"max_length": 200})])
    request_hash = hashlib.sha256(json.dumps(jsonable_encoder(payload), sort_keys=True).encode()).hexdigest()
    cause = Cause(correlation_id=current_correlation_id())
    async with units.begin(cause, request_actor(request)) as uow:
        if key:
            replay = await _claim_key(uow.connection, scope, key, request_hash)
            if replay is not None:
                return replay
        result = await use_case(uow)
        content = jsonable_encoder(result)
        if key:
            await _store_answer(uow.connection, scope, key, status_code, content)
        await _audit_change(request, uow, status_code)
    if status_code == 204:
        return Response(status_code=204)
    return JSONResponse(status_code=status_code, content=content)


async def _audit_change(request: Request, uow: UnitOfWork, status_code: int) -> None:
    """The change's audit entry, in its own transaction: both commit or neither. The persons it
    concerned are the keys of the events it published (pseudonymous client ids)."""
    if not request.scope.get("state", {}).get("actor"):
        return  # an app without identity (unit tests of the HTTP mechanisms)
    entry = audit.entry_for(request.scope, status_code, uow.correlation_id)
    for envelope, _topic in uow.published:
        try:
            entry.client_ids.append(uuid.UUID(envelope.key))
        except ValueError:
            pass
    await audit.append(uow.connection, uow.source.removeprefix("knotenpunkt/"), entry)
    request.scope["state"]["audited"] = True


async def _claim_key(connection: asyncpg.Connection, scope: str, key: str, request_hash: str) -> JSONResponse | None:
    """Claim an Idempotency-Key; the stored answer when it was used before with the same body.

    One statement: it inserts the key, or locks and returns the row already there (a request
    with the same key still in flight is waited for), so no housekeeping between two statements
    can leave a claimed key without its row."""
    claimed = await connection.fetchrow(
        "INSERT INTO idempotency_keys (scope, idempotency_key, request_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (scope, idempotency_key) DO UPDATE SET scope = idempotency_keys.scope "
        "RETURNING xmax = 0 AS first, request_hash, status_code, response_body",
        scope,
        key,
        request_hash,
    )
    if claimed["first"]:
        return None
    if claimed["request_hash"] != request_hash:
        raise ApiError(422, "idempotency_key_reused")
    return JSONResponse(
        status_code=claimed["status_code"], content=claimed["response_body"], headers={"Idempotent-Replayed": "true"}
    )


async def _store_answer(connection: asyncpg.Connection, scope: str, key: str, status_code: int, content: Any) -> None:
    await connection.execute(
        "UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE scope = $1 AND idempotency_key = $2",
        scope,
        key,
        status_code,
        content,
    )
