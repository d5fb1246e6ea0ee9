"""The start page: what the signed-in person needs first, by role (issue 10, screen 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.texts import register

if TYPE_CHECKING:
    from web.app import WebApp

register(
    {
        "start_title": {"de": "Start", "en": "Start"},
        "start_welcome": {"de": "Guten Tag, {name}.", "en": "Hello, {name}."},
        "start_office_hours": {
            "de": "Offene Sprechstunden Ihrer Dienststelle",
            "en": "Open office hours of your office",
        },
    }
)


def router(web: WebApp) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.get("/", response_class=HTMLResponse)
    async def start(request: Request) -> HTMLResponse:
        visitor = await web.visitor(request)
        offices = []
        if visitor.actor.offices:
            every = await web.backend.get(visitor, "intake", "/offices")
            offices = [office for office in every if office["office_id"] in visitor.actor.offices]
        return web.pages.render(request, visitor, "start.html", offices=offices)

    return pages
