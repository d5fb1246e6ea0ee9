"""The data protection officer's pages (issue 10, screen 7): who accessed a person, what a staff
member accessed (intake's audit trail gathers every service's entries), the access export
(DSGVO Art. 15) as a download and as a readable page, and the erasure (Art. 17) with a
confirmation step.

The person is named here only by the pseudonymous id: the officer's role reads no records, and
the audit trail holds no personal data either."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from knotenpunkt.i18n import message
from knotenpunkt.policy import Action
from web.backend import Refused
from web.pages.admin import Field, field_errors, forbidden_unless
from web.texts import register, translate
from web.ui import checked_form

if TYPE_CHECKING:
    from web.app import WebApp
    from web.visitor import Visitor

register(
    {
        "dpo_title": {"de": "Zugriffe und Auskunft", "en": "Access log and export"},
        "dpo_intro": {
            "de": "Alle Dienste antworten gemeinsam: wer die Daten einer Person gesehen oder geändert hat, "
            "und was eine Fachkraft aufgerufen hat. Personen erscheinen nur mit ihrer Kennung.",
            "en": "Every service answers together: who saw or changed a person's data, and what a staff "
            "member accessed. Persons appear only by their id.",
        },
        "dpo_person_question": {"de": "Wer hat auf eine Person zugegriffen?", "en": "Who accessed a person?"},
        "dpo_staff_question": {"de": "Worauf hat eine Fachkraft zugegriffen?", "en": "What did a staff member access?"},
        "dpo_client_id": {"de": "Kennung der Person", "en": "Person id"},
        "dpo_client_id_hint": {
            "de": "Die Kennung (UUID) aus der Anfrage, z. B. 3f2c…-…",
            "en": "The id (UUID) from the request, e.g. 3f2c…-…",
        },
        "dpo_actor_id": {"de": "Kennung der Fachkraft", "en": "Staff id"},
        "dpo_actor_id_hint": {
            "de": "Der Anmeldename, z. B. staff-hochfeld-1.",
            "en": "The sign-in name, e.g. staff-hochfeld-1.",
        },
        "dpo_show": {"de": "Zugriffe anzeigen", "en": "Show accesses"},
        "dpo_trail_person": {"de": "Zugriffe auf Person {id}", "en": "Accesses to person {id}"},
        "dpo_trail_actor": {"de": "Zugriffe von {id}", "en": "Accesses by {id}"},
        "dpo_trail_count": {
            "de": "{count} Einträge, neueste zuerst (Dienste: {services}).",
            "en": "{count} entries, newest first (services: {services}).",
        },
        "dpo_trail_limited": {
            "de": "Es werden höchstens {limit} Einträge gezeigt.",
            "en": "At most {limit} entries are shown.",
        },
        "dpo_trail_none": {"de": "Keine Einträge.", "en": "No entries."},
        "dpo_unavailable": {
            "de": "Diese Dienste haben nicht geantwortet, ihre Einträge fehlen: {services}.",
            "en": "These services did not answer, their entries are missing: {services}.",
        },
        "dpo_col_when": {"de": "Wann", "en": "When"},
        "dpo_who_title": {"de": "Wer, wie oft", "en": "Who, how often"},
        "dpo_all_entries": {"de": "Alle Einträge", "en": "All entries"},
        "dpo_col_count": {"de": "Zugriffe", "en": "Accesses"},
        "dpo_col_first": {"de": "Erster", "en": "First"},
        "dpo_col_last": {"de": "Letzter", "en": "Last"},
        "dpo_col_service": {"de": "Dienst", "en": "Service"},
        "dpo_col_who": {"de": "Wer", "en": "Who"},
        "dpo_col_role": {"de": "Rolle", "en": "Role"},
        "dpo_col_action": {"de": "Handlung", "en": "Action"},
        "dpo_col_outcome": {"de": "Ergebnis", "en": "Outcome"},
        "dpo_col_purpose": {"de": "Zweck", "en": "Purpose"},
        "dpo_via": {"de": "über {service}", "en": "via {service}"},
        "dpo_outcome_allowed": {"de": "erlaubt", "en": "allowed"},
        "dpo_outcome_denied": {"de": "verweigert (keine Berechtigung)", "en": "denied (not permitted)"},
        "dpo_outcome_refused": {"de": "zurückgewiesen", "en": "refused"},
        "dpo_outcome_failed": {"de": "fehlgeschlagen", "en": "failed"},
        "dpo_export_title": {"de": "Auskunft (Art. 15 DSGVO)", "en": "Access export (GDPR Art. 15)"},
        "dpo_export_text": {
            "de": "Alles, was die Dienste über diese Person speichern, mit allen Zugriffen.",
            "en": "Everything the services store about this person, with every access.",
        },
        "dpo_export_json": {"de": "Auskunft herunterladen (JSON)", "en": "Download the export (JSON)"},
        "dpo_export_html": {"de": "Auskunft als lesbare Seite öffnen", "en": "Open the export as a readable page"},
        "dpo_erase_title": {"de": "Löschung (Art. 17 DSGVO)", "en": "Erasure (GDPR Art. 17)"},
        "dpo_erase_link": {"de": "Daten dieser Person löschen …", "en": "Erase this person's data …"},
        "dpo_erase_heading": {"de": "Daten einer Person löschen", "en": "Erase a person's data"},
        "dpo_erase_choose": {
            "de": "Geben Sie die Kennung der Person ein, deren Daten gelöscht werden sollen.",
            "en": "Enter the id of the person whose data is to be erased.",
        },
        "dpo_erase_next": {"de": "Weiter zur Bestätigung", "en": "Continue to confirmation"},
        "dpo_erase_what": {"de": "Was geschieht", "en": "What will happen"},
        "dpo_erase_what_1": {
            "de": "Alle personenbezogenen Angaben der Person {id} werden in allen Diensten gelöscht: "
            "Namen, Geburtsdatum, Kontakt, Anschrift, Notizen der Beratungen, Freitexte der Ziele.",
            "en": "Every personal value of person {id} is erased in every service: names, birth date, "
            "contact, address, consultation notes, free text of goals.",
        },
        "dpo_erase_what_2": {
            "de": "Auch jeder Datensatz, der als Dublette mit ihr zusammengeführt wurde.",
            "en": "Also every record merged into it as a duplicate.",
        },
        "dpo_erase_what_3": {
            "de": "Offene Überweisungen werden zurückgezogen. Die Kennung und anonyme Fakten (Themen, Zahlen) bleiben.",
            "en": "Open referrals are withdrawn. The id and anonymous facts (topics, figures) stay.",
        },
        "dpo_erase_what_4": {
            "de": "Was Partnerstellen bereits erhalten haben, bleibt dort bis zum Ablauf ihrer Aufbewahrung; "
            "die Antwort nennt sie.",
            "en": "What partner agencies already received stays there until their retention ends; the "
            "answer names them.",
        },
        "dpo_erase_irreversible": {
            "de": "Die Löschung kann nicht rückgängig gemacht werden.",
            "en": "The erasure cannot be undone.",
        },
        "dpo_erase_confirm_id": {
            "de": "Kennung zur Bestätigung erneut eingeben",
            "en": "Enter the id again to confirm",
        },
        "dpo_erase_confirm_id_hint": {
            "de": "Genau die Kennung {id}.",
            "en": "Exactly the id {id}.",
        },
        "dpo_erase_confirmed": {
            "de": "Ich habe geprüft, dass ein Löschantrag dieser Person vorliegt, und weiß, dass die Löschung "
            "endgültig ist.",
            "en": "I checked that this person asked for erasure and understand that it is final.",
        },
        "dpo_erase_submit": {"de": "Endgültig löschen", "en": "Erase for good"},
        "dpo_erase_cancel": {"de": "Abbrechen", "en": "Cancel"},
        "dpo_erase_id_mismatch": {
            "de": "Die Kennung stimmt nicht mit der zu löschenden überein.",
            "en": "The id does not match the one to be erased.",
        },
        "dpo_erase_tick": {"de": "Bitte bestätigen Sie die Löschung.", "en": "Please confirm the erasure."},
        "dpo_invalid_id": {
            "de": "Das ist keine gültige Kennung (UUID).",
            "en": "That is not a valid id (UUID).",
        },
        "dpo_erased_title": {"de": "Daten gelöscht", "en": "Data erased"},
        "dpo_erased_text": {
            "de": "Die Daten der Person {id} wurden am {at} gelöscht.",
            "en": "The data of person {id} was erased on {at}.",
        },
        "dpo_erased_records": {"de": "Gelöschte Datensätze", "en": "Records erased"},
        "dpo_remains": {"de": "Was anderswo bleibt", "en": "What remains elsewhere"},
        "dpo_remains_none": {"de": "Nichts.", "en": "Nothing."},
        "dpo_remains_agencies": {"de": "Stellen", "en": "Agencies"},
        "dpo_remains_days": {"de": "Aufbewahrung: {days} Tage", "en": "Retention: {days} days"},
        "dpo_erased_unknown": {
            "de": "Das Ergebnis dieser Löschung wird nur direkt nach ihr angezeigt. Die Zugriffe auf die Person "
            "zeigen sie weiterhin.",
            "en": "The result of this erasure is shown only right after it. The person's access log still shows it.",
        },
        "dpo_back": {"de": "Zurück zu den Zugriffen", "en": "Back to the access log"},
        "role_service": {"de": "Dienst", "en": "Service"},
        "role_agency_system": {"de": "Software einer Partnerstelle", "en": "Partner agency's software"},
    }
)

TRAIL_LIMIT = 500
CLIENT_FIELD = Field("client_id", hint="dpo_client_id_hint", label="dpo_client_id")
ACTOR_FIELD = Field("actor_id", hint="dpo_actor_id_hint", label="dpo_actor_id")
ERASE_ID_FIELD = Field("client_id", required=True, hint="dpo_client_id_hint", label="dpo_client_id")
CONFIRM_ID_FIELD = Field("confirm_client_id", required=True, label="dpo_erase_confirm_id")
CONFIRMED_FIELD = Field("confirmed", kind="checkbox", label="dpo_erase_confirmed")
LAST_ERASURE = "dpo_last_erasure"

try:
    LOCAL = ZoneInfo("Europe/Berlin")
except ZoneInfoNotFoundError:  # a system without time zone data: UTC, said so on the page
    LOCAL = None


def _when(at: str) -> str:
    moment = datetime.fromisoformat(at)
    if LOCAL is None:
        return moment.strftime("%d.%m.%Y %H:%M:%S UTC")
    return moment.astimezone(LOCAL).strftime("%d.%m.%Y %H:%M:%S")


def _who(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each actor once, with how often, where and when: the answer to "who accessed" at a glance
    (the entries are newest first)."""
    actors: dict[str, dict[str, Any]] = {}
    for entry in entries:
        actor = actors.setdefault(
            entry["actor_id"],
            {"actor_id": entry["actor_id"], "roles": entry["roles"], "count": 0, "services": [], "last": entry["when"]},
        )
        actor["count"] += 1
        actor["first"] = entry["when"]
        if entry["service"] not in actor["services"]:
            actor["services"].append(entry["service"])
    return sorted(actors.values(), key=lambda actor: -actor["count"])


def _uuid(text: str) -> str | None:
    try:
        return str(UUID(text.strip()))
    except ValueError:
        return None


def router(web: WebApp) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    def refusal(request: Request, visitor: Visitor, action: Action = Action.AUDIT_READ) -> HTMLResponse | None:
        return forbidden_unless(web, request, visitor, action)

    @pages.get("/audit", response_class=HTMLResponse)
    async def audit_page(request: Request, client_id: str = "", actor_id: str = "") -> Response:
        visitor = await web.visitor(request)
        if refused := refusal(request, visitor):
            return refused
        client_id, actor_id = client_id.strip(), actor_id.strip()
        trail = None
        errors: dict[str, str] = {}
        names: dict[str, str] = {}
        actors: list[dict[str, Any]] = []
        if client_id or actor_id:
            params: dict[str, Any] = {"limit": TRAIL_LIMIT}
            if client_id:
                params["client_id"] = client_id
            if actor_id:
                params["actor_id"] = actor_id
            try:
                trail, staff = await asyncio.gather(
                    web.backend.get(visitor, "intake", "/audit/trail", params=params),
                    web.backend.get(visitor, "intake", "/staff"),
                )
            except Refused as refused_answer:
                if refused_answer.status in (401, 403):
                    raise
                errors = field_errors(refused_answer, {"client_id", "actor_id"})
            else:
                names = {member["staff_id"]: member["display_name"] for member in staff}
                for entry in trail["entries"]:
                    entry["when"] = _when(entry["at"])
                actors = _who(trail["entries"])
        return web.pages.render(
            request,
            visitor,
            "dpo_audit.html",
            status_code=422 if errors else 200,
            client_id=client_id,
            actor_id=actor_id,
            trail=trail,
            names=names,
            actors=actors,
            errors=errors,
            fields=[CLIENT_FIELD, ACTOR_FIELD],
            client_field=CLIENT_FIELD,
            actor_field=ACTOR_FIELD,
            limit=TRAIL_LIMIT,
            valid_client=_uuid(client_id) if client_id and not errors else None,
        )

    @pages.get("/audit/persons/{client_id}/export")
    async def export(request: Request, client_id: str, format: str = "json") -> Response:
        """The export as intake makes it: JSON as a file to hand over, or intake's readable page."""
        visitor = await web.visitor(request)
        if refused := refusal(request, visitor, Action.CLIENT_EXPORT):
            return refused
        person = _uuid(client_id)
        if person is None or format not in ("json", "html"):
            raise HTTPException(404)
        answer = await web.backend.call(
            visitor, "intake", "GET", f"/clients/{person}/export", params={"format": format}
        )
        if answer.status_code >= 400:
            raise Refused(answer)
        if format == "html":
            return HTMLResponse(answer.text, headers={"Cache-Control": "no-store"})
        return Response(
            answer.content,
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="auskunft-{person}.json"',
                # Personal data: never kept by a browser cache or a proxy.
                "Cache-Control": "no-store",
            },
        )

    def erase_page(
        request: Request,
        visitor: Visitor,
        client_id: str,
        *,
        errors: dict[str, str] | None = None,
        confirm_value: str = "",
        status_code: int = 200,
    ) -> HTMLResponse:
        person = _uuid(client_id) if client_id else None
        errors = dict(errors or {})
        if client_id and person is None and "client_id" not in errors:
            errors["client_id"] = translate("dpo_invalid_id", visitor.language)
            status_code = 422
        confirm_field = Field(
            "confirm_client_id", required=True, label="dpo_erase_confirm_id", hint="dpo_erase_confirm_id_hint"
        )
        return web.pages.render(
            request,
            visitor,
            "dpo_erase.html",
            status_code=status_code,
            client_id=client_id,
            person=person if "client_id" not in errors else None,
            errors=errors,
            id_field=ERASE_ID_FIELD,
            confirm_field=confirm_field,
            confirmed_field=CONFIRMED_FIELD,
            fields=[ERASE_ID_FIELD, confirm_field, CONFIRMED_FIELD],
            confirm_value=confirm_value,
        )

    @pages.get("/audit/erase", response_class=HTMLResponse)
    async def erase_form(request: Request, client_id: str = "") -> Response:
        """Step 1: which person, and what the erasure will do; nothing is changed yet."""
        visitor = await web.visitor(request)
        if refused := refusal(request, visitor, Action.CLIENT_ERASE):
            return refused
        return erase_page(request, visitor, client_id.strip())

    @pages.post("/audit/erase", response_class=HTMLResponse)
    async def erase(request: Request) -> Response:
        """Step 2: the id typed again and the box ticked, then intake erases."""
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        if refused := refusal(request, visitor, Action.CLIENT_ERASE):
            return refused
        client_id = str(form.get("client_id", "")).strip()
        confirm = str(form.get("confirm_client_id", "")).strip()
        person = _uuid(client_id)
        if person is None:
            return erase_page(request, visitor, client_id, status_code=422)
        errors = {}
        if _uuid(confirm) != person:
            errors["confirm_client_id"] = translate("dpo_erase_id_mismatch", visitor.language)
            if not confirm:
                errors["confirm_client_id"] = message("missing", visitor.language)
        if form.get("confirmed") != "on":
            errors["confirmed"] = translate("dpo_erase_tick", visitor.language)
        if errors:
            return erase_page(request, visitor, client_id, errors=errors, confirm_value=confirm, status_code=422)
        try:
            # Erasing twice answers the same: a repeated click is harmless.
            result = await web.backend.post(visitor, "intake", f"/clients/{person}/erase")
        except Refused as refused_answer:
            if refused_answer.status in (401, 403):
                raise
            return erase_page(
                request,
                visitor,
                client_id,
                errors=field_errors(refused_answer, set()),
                status_code=refused_answer.status,
            )
        # The answer (ids, agencies, explanations; no personal data) shown once on the next page.
        visitor.session.set(**{LAST_ERASURE: result})
        await web.sessions.save(visitor.session)
        return RedirectResponse(f"/audit/erased/{person}", status_code=303)

    @pages.get("/audit/erased/{client_id}", response_class=HTMLResponse)
    async def erased(request: Request, client_id: str) -> Response:
        visitor = await web.visitor(request)
        if refused := refusal(request, visitor, Action.CLIENT_ERASE):
            return refused
        result = visitor.session.data.get(LAST_ERASURE)
        if not result or str(result.get("client_id")) != client_id:
            result = None
        else:
            result = {**result, "when": _when(result["erased_at"])}
        return web.pages.render(
            request,
            visitor,
            "dpo_erased.html",
            client_id=client_id,
            result=result,
            trail_link=f"/audit?{urlencode({'client_id': client_id})}",
        )

    return pages
