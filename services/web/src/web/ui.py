"""Rendering pages and checking forms, written once for every page module.

- `Pages.render(request, visitor, "template.html", ...)`: a Jinja2 page with `t()` (texts in the
  visitor's language), the visitor, the CSRF token and the navigation of their roles.
- `checked_form(request, visitor)`: the posted form, if its CSRF token is the session's (else a
  403 page); every form has `{{ csrf_field() }}`.
- Field errors from a service's 422 are shown at their field and in a summary linked to them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.datastructures import FormData

from web.texts import translate
from web.visitor import Visitor

TEMPLATES = Path(__file__).parent / "templates"

# (text key, path, roles that see it): the navigation follows what the roles may do.
NAVIGATION = [
    ("nav_start", "/", None),
    ("nav_find_person", "/persons", {"intake_staff", "case_manager", "office_lead"}),
    ("nav_cases", "/cases", {"case_manager", "office_lead"}),
    ("nav_audit", "/audit", {"data_protection_officer"}),
    ("nav_admin", "/admin", {"admin"}),
]


# Namespace of the Idempotency-Keys derived from a form's id and what it sends.
FORM_KEYS = uuid.UUID("5b0c7f2e-3c55-4a8e-9d61-0f3f2f9b6a10")


def form_id(form: FormData) -> str:
    """The form's own id (hidden field `form_id`), kept across re-displays; a fresh one when it is
    missing or not an id (then a double click may not be recognised, but nothing breaks)."""
    try:
        return str(uuid.UUID(str(form.get("form_id", ""))))
    except ValueError:
        return str(uuid.uuid4())


def idempotency_key(form: str, body: Mapping[str, Any]) -> str:
    """The Idempotency-Key of one submission of a form: the same form sent twice with the same
    content (a double click) is one request; corrected content after a refusal is a new one."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return str(uuid.uuid5(FORM_KEYS, f"{form}:{digest}"))


class FormRejected(Exception):
    """A posted form without this session's CSRF token."""


class Pages:
    def __init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(TEMPLATES))

    def render(
        self,
        request: Request,
        visitor: Visitor | None,
        template: str,
        status_code: int = 200,
        language: str = "de",
        **context: Any,
    ) -> HTMLResponse:
        language = visitor.language if visitor else language

        def t(key: str, **params: Any) -> str:
            return translate(key, language, **params)

        def csrf_field() -> Markup:
            token = visitor.csrf_token if visitor else ""
            return Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">')

        navigation = [
            (t(key), path)
            for key, path, roles in NAVIGATION
            if visitor is not None and (roles is None or visitor.has(*roles))
        ]
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "t": t,
                "lang": language,
                "visitor": visitor,
                "csrf_field": csrf_field,
                "navigation": navigation,
                "current_path": request.url.path,
                **context,
            },
            status_code=status_code,
        )


async def checked_form(request: Request, visitor: Visitor) -> FormData:
    """The form, if it carries this session's token (SameSite cookies aside, a page elsewhere
    cannot make the browser post here in the visitor's name)."""
    form = await request.form()
    sent = str(form.get("csrf_token", ""))
    if not sent or not hmac.compare_digest(sent, visitor.csrf_token):
        raise FormRejected()
    return form
