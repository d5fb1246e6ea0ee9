"""Composition root of the web app: sessions, sign-in, the backend clients, the pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from knotenpunkt import migrations
from knotenpunkt.db import Database
from knotenpunkt.http import BodySizeLimitMiddleware, CorrelationIdMiddleware, current_correlation_id
from knotenpunkt.identity import OidcConfig, TokenVerifier
from knotenpunkt.logging import configure_logging, get_logger
from web.auth import LANGUAGE_COOKIE, SignIn, _safe_next
from web.backend import Backend, Refused, ServiceDown
from web.pages import admin, cases, dpo, persons, start
from web.sessions import SessionStore
from web.settings import WebSettings
from web.texts import LANGUAGES, pick_language
from web.ui import FormRejected, Pages, checked_form
from web.visitor import SignInRequired

MIGRATIONS = Path(__file__).parent / "migrations"
STATIC = Path(__file__).parent / "static"
log = get_logger("web")


class WebApp:
    """Everything a page module needs: the visitor (`await web.visitor(request)`), the backend
    (`web.backend.get(visitor, "cases", "/cases")`) and the pages (`web.pages.render(...)`)."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url, settings.db_pool_min_size, settings.db_pool_max_size)
        self.sessions = SessionStore(
            self.database, timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours)
        )
        verifier = TokenVerifier(OidcConfig.of(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url))
        self.sign_in = SignIn(settings, self.sessions, verifier)
        self.backend = Backend(settings)
        self.pages = Pages()

    async def visitor(self, request: Request):  # noqa: ANN201 - a Visitor
        return await self.sign_in.visitor(request)

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await migrations.apply(self.settings.database_url, [("web", MIGRATIONS)])
        await self.database.connect()
        pruning = asyncio.create_task(self._prune_sessions())
        log.info("web app started", port=self.settings.http_port, public_url=self.settings.public_url)
        try:
            yield
        finally:
            pruning.cancel()
            await asyncio.gather(pruning, return_exceptions=True)
            await self.backend.close()
            await self.database.close()

    async def _prune_sessions(self) -> None:
        while True:
            try:
                await self.sessions.prune()
            except Exception:  # retried next round
                log.exception("pruning sessions failed")
            await asyncio.sleep(300)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()
    configure_logging(settings.log_level, settings.log_json)
    web = WebApp(settings)
    app = FastAPI(title="Knotenpunkt web", lifespan=web.lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(CorrelationIdMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Served by the app itself from the npm packages (no CDN): KERN UX, htmx.
    app.mount("/assets/kern", StaticFiles(directory=settings.assets / "@kern-ux/native/dist"), name="kern")
    app.mount("/assets/htmx", StaticFiles(directory=settings.assets / "htmx.org/dist"), name="htmx")
    _install_error_pages(app, web)
    app.include_router(web.sign_in.router())
    app.include_router(_session_routes(web))
    for pages in (start, persons, cases, dpo, admin):
        app.include_router(pages.router(web))
    return app


def _session_routes(web: WebApp) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        ok = await web.database.ping()
        return JSONResponse({"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503)

    @router.get("/language")
    async def language(to: str, next: str = "/") -> RedirectResponse:
        response = RedirectResponse(_safe_next(next), status_code=303)
        if to in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, to, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        visitor = await web.visitor(request)
        await checked_form(request, visitor)
        return await web.sign_in.sign_out(visitor.session)

    @router.get("/signed-out", response_class=HTMLResponse)
    async def signed_out(request: Request) -> HTMLResponse:
        language = pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        return web.pages.render(request, None, "signed_out.html", language=language)

    return router


def _install_error_pages(app: FastAPI, web: WebApp) -> None:
    def language_of(request: Request) -> str:
        return pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))

    def page(request: Request, status: int, title_key: str, message: str) -> HTMLResponse:
        return web.pages.render(
            request,
            None,
            "error.html",
            status_code=status,
            language=language_of(request),
            title_key=title_key,
            message=message,
            correlation_id=current_correlation_id(),
        )

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, error: SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?{urlencode({'next': error.next_path})}", status_code=303)

    @app.exception_handler(FormRejected)
    async def form_rejected(request: Request, _error: FormRejected) -> HTMLResponse:
        from web.texts import translate

        return page(request, 403, "error_forbidden_title", translate("error_form_expired", language_of(request)))

    @app.exception_handler(ServiceDown)
    async def service_down(request: Request, _error: ServiceDown) -> HTMLResponse:
        from web.texts import translate

        return page(request, 503, "error_title", translate("error_unavailable", language_of(request)))

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> HTMLResponse:
        # A refusal no page handled itself: the service's own words (in the visitor's language).
        titles = {403: "error_forbidden_title", 404: "error_not_found_title", 410: "error_not_found_title"}
        return page(request, error.status, titles.get(error.status, "error_title"), error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> HTMLResponse:
        return page(
            request, error.status_code, "error_not_found_title" if error.status_code == 404 else "error_title", ""
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _error: Exception) -> HTMLResponse:
        from web.texts import translate

        log.exception("unhandled error", path=request.url.path)
        message = translate("error_internal", language_of(request), correlation_id=current_correlation_id())
        return page(request, 500, "error_title", message)
