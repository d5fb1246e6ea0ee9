"""The admin's pages for reference data (issue 10, screen 7): offices, staff and routing rules
(intake), topics (cases), the partner directory (referrals). Each kind is a list and an edit form
described once (`Kind`, `Field`); what is valid is the owning service's decision, its 422 field
errors are shown at the field.

Reference data has no versions (the services keep none): the last change wins, so there is no
ETag to carry here. Topics are created with POST: an Idempotency-Key from the form's own id keeps
a double click from creating two.

Also the small helpers the data protection officer's pages share: `forbidden_unless` and
`field_errors`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from knotenpunkt.events.common import AgencyKind, ServiceLine
from knotenpunkt.http import current_correlation_id
from knotenpunkt.i18n import message
from knotenpunkt.policy import Action, permitted
from web.backend import Refused
from web.texts import register, translate
from web.ui import checked_form, form_id, idempotency_key

if TYPE_CHECKING:
    from web.app import WebApp
    from web.visitor import Visitor

register(
    {
        "admin_title": {"de": "Stammdaten", "en": "Reference data"},
        "admin_intro": {
            "de": "Was hier steht, gilt im ganzen Netzwerk: Änderungen wirken sofort, z. B. auf das Routing "
            "der nächsten Anmeldung oder die Partnerauswahl bei Überweisungen.",
            "en": "What is kept here applies network-wide: changes take effect at once, e.g. on routing the "
            "next registration or choosing partners for referrals.",
        },
        "admin_offices": {"de": "Dienststellen", "en": "Offices"},
        "admin_staff": {"de": "Mitarbeitende", "en": "Staff"},
        "admin_routing_rules": {"de": "Routing-Regeln", "en": "Routing rules"},
        "admin_topics": {"de": "Beratungsthemen", "en": "Counselling topics"},
        "admin_agencies": {"de": "Partnerstellen", "en": "Partner agencies"},
        "admin_offices_text": {
            "de": "Name, Anschrift, Sprechzeiten, Sprachen und Leistungen.",
            "en": "Name, address, opening hours, languages and service lines.",
        },
        "admin_staff_text": {
            "de": "Dienststelle, Stellenanteil, Leistungen; wer ausscheidet, wird deaktiviert.",
            "en": "Office, full-time equivalent, service lines; who leaves is deactivated.",
        },
        "admin_routing_rules_text": {
            "de": "Welche Anmeldung in welche Leistung geht (Alter, Aufenthaltsstatus).",
            "en": "Which registration goes to which service line (age, residence status).",
        },
        "admin_topics_text": {
            "de": "Die Themen der Beratungen; eigene Themen der Stadt hinzufügen.",
            "en": "The topics of consultations; add the city's own topics.",
        },
        "admin_agencies_text": {
            "de": "Das Partnerverzeichnis: Themen, Antwortfrist, Kanal; deaktivieren statt löschen.",
            "en": "The partner directory: topics, answer time, channel; deactivate instead of delete.",
        },
        "admin_new": {"de": "Neu anlegen", "en": "Add new"},
        "admin_new_title": {"de": "{kind}: neu anlegen", "en": "{kind}: add new"},
        "admin_edit": {"de": "Bearbeiten", "en": "Edit"},
        "admin_edit_named": {"de": "{name} bearbeiten", "en": "Edit {name}"},
        "admin_edit_title": {"de": "{kind}: {name} bearbeiten", "en": "{kind}: edit {name}"},
        "admin_save": {"de": "Speichern", "en": "Save"},
        "admin_cancel": {"de": "Abbrechen", "en": "Cancel"},
        "admin_back": {"de": "Zurück zu den Stammdaten", "en": "Back to reference data"},
        "admin_back_to_list": {"de": "Zurück zur Liste", "en": "Back to the list"},
        "admin_saved": {"de": "Gespeichert: {name}.", "en": "Saved: {name}."},
        "admin_empty": {"de": "Noch keine Einträge.", "en": "No entries yet."},
        "admin_actions": {"de": "Aktionen", "en": "Actions"},
        "admin_id_taken": {
            "de": "Diese Kennung ist schon vergeben; bitte den vorhandenen Eintrag bearbeiten.",
            "en": "This id is taken already; please edit the existing entry.",
        },
        "admin_id_hint": {
            "de": "Kleinbuchstaben, Ziffern und Bindestriche; wird später überall verwendet und nicht mehr geändert.",
            "en": "Lower-case letters, digits and hyphens; used everywhere later and never changed.",
        },
        "admin_list_hint": {"de": "Mehrere durch Komma getrennt.", "en": "Several separated by commas."},
        "admin_yes": {"de": "ja", "en": "yes"},
        "admin_no": {"de": "nein", "en": "no"},
        "admin_none": {"de": "–", "en": "–"},
        "admin_any": {"de": "alle", "en": "any"},
        "admin_network_wide": {"de": "netzwerkweit (keine Dienststelle)", "en": "network-wide (no office)"},
        "admin_deactivate": {"de": "Deaktivieren", "en": "Deactivate"},
        "admin_activate": {"de": "Aktivieren", "en": "Activate"},
        "admin_deactivate_named": {"de": "{name} deaktivieren", "en": "Deactivate {name}"},
        "admin_activate_named": {"de": "{name} aktivieren", "en": "Activate {name}"},
        "admin_status_active": {"de": "aktiv", "en": "active"},
        "admin_status_inactive": {"de": "deaktiviert", "en": "deactivated"},
        "admin_agency_deactivated": {
            "de": "{name} ist deaktiviert: keine neuen Überweisungen; offene werden weiter verfolgt.",
            "en": "{name} is deactivated: no new referrals; open ones are still followed up.",
        },
        "admin_agency_activated": {
            "de": "{name} ist wieder aktiv und nimmt Überweisungen an.",
            "en": "{name} is active again and takes referrals.",
        },
        "admin_topic_added": {"de": "Thema hinzugefügt: {name}.", "en": "Topic added: {name}."},
        "admin_topic_add": {"de": "Eigenes Thema hinzufügen", "en": "Add the city's own topic"},
        "admin_topic_built_in": {"de": "Standard", "en": "Built in"},
        "admin_topic_own": {"de": "eigenes", "en": "own"},
        "admin_topic_origin": {"de": "Herkunft", "en": "Origin"},
        "admin_form_errors_title": {"de": "Bitte korrigieren Sie:", "en": "Please correct:"},
        "admin_required_mark": {"de": "Pflichtfeld", "en": "required"},
        # fields
        "admin_f_office_id": {"de": "Kennung der Dienststelle", "en": "Office id"},
        "admin_f_name": {"de": "Name", "en": "Name"},
        "admin_f_office": {"de": "Dienststelle", "en": "Office"},
        "admin_f_address": {"de": "Anschrift", "en": "Address"},
        "admin_f_open_hours": {"de": "Sprechzeiten", "en": "Opening hours"},
        "admin_f_open_hours_hint": {"de": "z. B. „Di 10–12, Do 14–16“", "en": "e.g. “Tue 10–12, Thu 14–16”"},
        "admin_f_district": {"de": "Stadtteil", "en": "District"},
        "admin_f_languages": {"de": "Sprachen (ISO-Kürzel)", "en": "Languages (ISO codes)"},
        "admin_f_languages_hint": {
            "de": "Zweibuchstabige Kürzel, durch Komma getrennt, z. B. de, tr, ar.",
            "en": "Two-letter codes separated by commas, e.g. de, tr, ar.",
        },
        "admin_f_service_lines": {"de": "Leistungen", "en": "Service lines"},
        "admin_f_staff_id": {"de": "Kennung (Anmeldename)", "en": "Staff id (sign-in name)"},
        "admin_f_display_name": {"de": "Angezeigter Name", "en": "Display name"},
        "admin_f_fte": {"de": "Stellenanteil", "en": "Full-time equivalent"},
        "admin_f_fte_hint": {"de": "Über 0 bis 1, z. B. 0.75.", "en": "Above 0 up to 1, e.g. 0.75."},
        "admin_f_active": {"de": "Aktiv", "en": "Active"},
        "admin_f_staff_active_hint": {
            "de": "Abwählen, wenn die Person ausgeschieden ist (die Kennung bleibt bekannt).",
            "en": "Untick when the person has left (the id stays known).",
        },
        "admin_f_rule_id": {"de": "Kennung der Regel", "en": "Rule id"},
        "admin_f_service_line": {"de": "Leistung", "en": "Service line"},
        "admin_f_min_age": {"de": "Mindestalter (einschließlich)", "en": "Minimum age (inclusive)"},
        "admin_f_max_age": {"de": "Altersgrenze (ausschließlich)", "en": "Age limit (exclusive)"},
        "admin_f_age_hint": {"de": "Leer: keine Grenze.", "en": "Empty: no bound."},
        "admin_f_residence_statuses": {"de": "Aufenthaltsstatus", "en": "Residence statuses"},
        "admin_f_residence_statuses_hint": {"de": "Keiner gewählt: jeder Status.", "en": "None ticked: any status."},
        "admin_f_unsecured_only": {"de": "Nur ungesicherter Aufenthalt", "en": "Unsecured residence only"},
        "admin_f_description": {"de": "Beschreibung", "en": "Description"},
        "admin_f_code": {"de": "Code", "en": "Code"},
        "admin_f_code_hint": {
            "de": "Kleinbuchstaben und Unterstriche, z. B. energy_debts.",
            "en": "Lower-case letters and underscores, e.g. energy_debts.",
        },
        "admin_f_label_de": {"de": "Bezeichnung (deutsch)", "en": "Label (German)"},
        "admin_f_label_en": {"de": "Bezeichnung (englisch)", "en": "Label (English)"},
        "admin_f_agency_id": {"de": "Kennung der Partnerstelle", "en": "Agency id"},
        "admin_f_kind": {"de": "Art der Stelle", "en": "Kind of agency"},
        "admin_f_response_days": {"de": "Antwortfrist (Tage)", "en": "Answer time (days)"},
        "admin_f_channel": {"de": "Kanal", "en": "Channel"},
        "admin_f_topics": {"de": "Themen", "en": "Topics"},
        "admin_f_contact": {"de": "Kontakt", "en": "Contact"},
        "admin_f_status": {"de": "Status", "en": "Status"},
        "admin_channel_kafka": {"de": "eigene Software (Kafka)", "en": "own software (Kafka)"},
        "admin_channel_inbox": {"de": "Web-Posteingang", "en": "web inbox"},
        "admin_line_JMD": {"de": "JMD – Jugendmigrationsdienst", "en": "JMD – youth migration service"},
        "admin_line_MBE": {"de": "MBE – Migrationsberatung Erwachsene", "en": "MBE – migration counselling for adults"},
        "admin_line_REFUGEE": {"de": "Flüchtlingsberatung", "en": "Refugee counselling"},
        "admin_line_KIM": {
            "de": "KIM – Kommunales Integrationsmanagement",
            "en": "KIM – municipal integration management",
        },
        **{
            f"admin_agency_kind_{kind.value}": {"de": kind.value.replace("_", " "), "en": kind.value.replace("_", " ")}
            for kind in AgencyKind
        },
    }
)


# --- shared with the data protection officer's pages --------------------------------------------


def forbidden_unless(web: WebApp, request: Request, visitor: Visitor, action: Action) -> HTMLResponse | None:
    """The 403 page, in the words the services use, for a page whose every call the role would be
    refused anyway (asked of the same permission table the services enforce, so a form is never
    offered to someone who may not send it). None: go on."""
    if permitted(visitor.actor, action):
        return None
    return web.pages.render(
        request,
        visitor,
        "error.html",
        status_code=403,
        title_key="error_forbidden_title",
        message=message("forbidden_role", visitor.language, action=action.value),
        correlation_id=current_correlation_id(),
    )


def field_errors(refused: Refused, known: set[str]) -> dict[str, str]:
    """A service's field errors by the form's field names ("languages.2" is the languages
    field); one that names no field of the form, or a refusal without fields, is the form's
    (key "")."""
    errors: dict[str, str] = {}
    for name, text in refused.fields.items():
        head = name.split(".")[0]
        key = head if head in known else ""
        errors.setdefault(key, text)
    if not errors:
        errors[""] = refused.message
    return errors


# --- the kinds of reference data ---------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str  # as the API names it
    kind: str = "text"  # text, textarea, number, select, checks, checkbox, list
    required: bool = False
    hint: str | None = None  # text key
    options: str | None = None  # where the choices come from (see _options)
    empty_is_none: bool = True  # an empty optional value is sent as null
    label: str | None = None  # text key; default f_<name>

    @property
    def label_key(self) -> str:
        return self.label or f"admin_f_{self.name}"


@dataclass(frozen=True)
class Column:
    name: str
    label: str  # text key
    show: Callable[[Any, Callable[..., str]], str] | None = None


@dataclass(frozen=True)
class Kind:
    slug: str
    title: str  # text key
    service: str
    path: str  # the list; one entry is `{path}/{id}`
    key: str  # the id field
    fields: tuple[Field, ...]
    columns: tuple[Column, ...]
    list_params: Mapping[str, str] = field(default_factory=dict)
    name_field: str = "name"
    id_hint: str = "admin_id_hint"


def _listed(value: Any, t: Callable[..., str]) -> str:
    return ", ".join(str(v) for v in value) if value else t("admin_none")


def _yes_no(value: Any, t: Callable[..., str]) -> str:
    return t("admin_yes") if value else t("admin_no")


def _or_none(value: Any, t: Callable[..., str]) -> str:
    return t("admin_none") if value is None or value == "" else str(value)


def _any_if_none(value: Any, t: Callable[..., str]) -> str:
    return t("admin_any") if value is None else _listed(value, t)


def _active(value: Any, t: Callable[..., str]) -> str:
    return t("admin_status_active") if value else t("admin_status_inactive")


KINDS: dict[str, Kind] = {
    kind.slug: kind
    for kind in (
        Kind(
            slug="offices",
            title="admin_offices",
            service="intake",
            path="/offices",
            key="office_id",
            fields=(
                Field("name", required=True),
                Field("address", required=True),
                Field("open_hours", required=True, hint="admin_f_open_hours_hint"),
                Field("district"),
                Field("languages", kind="list", hint="admin_f_languages_hint"),
                Field("service_lines", kind="checks", options="service_lines"),
            ),
            columns=(
                Column("name", "admin_f_name"),
                Column("address", "admin_f_address"),
                Column("open_hours", "admin_f_open_hours"),
                Column("languages", "admin_f_languages", _listed),
                Column("service_lines", "admin_f_service_lines", _listed),
            ),
        ),
        Kind(
            slug="staff",
            title="admin_staff",
            service="intake",
            path="/staff",
            key="staff_id",
            name_field="display_name",
            fields=(
                Field("display_name", required=True),
                Field("office_id", kind="select", options="offices", label="admin_f_office"),
                Field("fte", kind="number", required=True, hint="admin_f_fte_hint"),
                Field("service_lines", kind="checks", options="service_lines"),
                Field("active", kind="checkbox", hint="admin_f_staff_active_hint"),
            ),
            columns=(
                Column("display_name", "admin_f_display_name"),
                Column("office_id", "admin_f_office", _or_none),
                Column("fte", "admin_f_fte"),
                Column("service_lines", "admin_f_service_lines", _listed),
                Column("active", "admin_f_status", _active),
            ),
        ),
        Kind(
            slug="routing-rules",
            title="admin_routing_rules",
            service="intake",
            path="/routing-rules",
            key="rule_id",
            name_field="rule_id",
            fields=(
                Field("service_line", kind="select", required=True, options="service_lines"),
                Field("min_age", kind="number", hint="admin_f_age_hint"),
                Field("max_age", kind="number", hint="admin_f_age_hint"),
                Field(
                    "residence_statuses",
                    kind="checks",
                    options="residence_statuses",
                    hint="admin_f_residence_statuses_hint",
                ),
                Field("unsecured_only", kind="checkbox"),
                Field("active", kind="checkbox"),
                Field("description", kind="textarea", required=True),
            ),
            columns=(
                Column("service_line", "admin_f_service_line"),
                Column("min_age", "admin_f_min_age", _or_none),
                Column("max_age", "admin_f_max_age", _or_none),
                Column("residence_statuses", "admin_f_residence_statuses", _any_if_none),
                Column("unsecured_only", "admin_f_unsecured_only", _yes_no),
                Column("active", "admin_f_status", _active),
                Column("description", "admin_f_description"),
            ),
        ),
        Kind(
            slug="agencies",
            title="admin_agencies",
            service="referrals",
            path="/agencies",
            key="agency_id",
            list_params={"include_inactive": "true"},
            fields=(
                Field("name", required=True),
                Field("kind", kind="select", required=True, options="agency_kinds"),
                Field("response_days", kind="number", required=True),
                Field("channel", kind="select", required=True, options="channels"),
                Field("topics", kind="checks", required=True, options="topics", empty_is_none=False),
                Field("languages", kind="list", required=True, hint="admin_f_languages_hint"),
                Field("contact"),
            ),
            columns=(
                Column("name", "admin_f_name"),
                Column("kind", "admin_f_kind"),
                Column("response_days", "admin_f_response_days"),
                Column("channel", "admin_f_channel"),
                Column("topics", "admin_f_topics", _listed),
                Column("active", "admin_f_status", _active),
            ),
        ),
    )
}

# Topics are only added (POST), never changed: a topic's code is in every consultation.
TOPIC_FIELDS = (
    Field("code", required=True, hint="admin_f_code_hint"),
    Field("label_de", required=True),
    Field("label_en", required=True),
)


def _shown(kind: Kind, record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as the form shows it (lists of codes as lists, free lists as text)."""
    values: dict[str, Any] = {}
    for f in kind.fields:
        value = record.get(f.name)
        if f.kind == "list":
            values[f.name] = ", ".join(value or [])
        elif f.kind == "checks":
            values[f.name] = [str(v) for v in value or []]
        elif f.kind == "checkbox":
            values[f.name] = bool(value)
        else:
            values[f.name] = "" if value is None else str(value)
    return values


def _posted(fields: tuple[Field, ...], form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """What was typed, to show again, and the JSON body for the service. Numbers go as typed:
    the service parses them and says at the field what is wrong."""
    shown: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for f in fields:
        if f.kind == "checks":
            chosen = [str(v) for v in form.getlist(f.name)]
            shown[f.name] = chosen
            body[f.name] = chosen if chosen or not f.empty_is_none else None
        elif f.kind == "checkbox":
            shown[f.name] = body[f.name] = form.get(f.name) == "on"
        elif f.kind == "list":
            text = str(form.get(f.name, "")).strip()
            shown[f.name] = text
            body[f.name] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            text = str(form.get(f.name, "")).strip()
            shown[f.name] = text
            body[f.name] = None if text == "" and not f.required and f.empty_is_none else text
    return shown, body


def router(web: WebApp) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    async def options(visitor: Visitor, kind: Kind) -> dict[str, list[tuple[str, str]]]:
        """The choices of the kind's select and check fields, in the visitor's language."""
        wanted = {f.options for f in kind.fields if f.options}
        found: dict[str, list[tuple[str, str]]] = {}
        if "service_lines" in wanted:
            found["service_lines"] = [(line.value, f"admin_line_{line.value}") for line in ServiceLine]
        if "agency_kinds" in wanted:
            found["agency_kinds"] = [(k.value, f"admin_agency_kind_{k.value}") for k in AgencyKind]
        if "channels" in wanted:
            found["channels"] = [("inbox", "admin_channel_inbox"), ("kafka", "admin_channel_kafka")]
        label = "label_de" if visitor.language == "de" else "label_en"
        fetch: dict[str, Any] = {}
        if "offices" in wanted:
            fetch["offices"] = web.backend.get(visitor, "intake", "/offices")
        if "residence_statuses" in wanted:
            fetch["residence_statuses"] = web.backend.get(visitor, "intake", "/residence-statuses")
        if "topics" in wanted:
            fetch["topics"] = web.backend.get(visitor, "cases", "/topics")
        answers = dict(zip(fetch, await asyncio.gather(*fetch.values()), strict=True))
        # Fetched choices carry their label as it is (marked "=" so the template does not translate).
        if "offices" in answers:
            found["offices"] = [("", "admin_network_wide")] + [
                (o["office_id"], f"={o['name']} ({o['office_id']})") for o in answers["offices"]
            ]
        if "residence_statuses" in answers:
            found["residence_statuses"] = [(s["code"], f"={s[label]}") for s in answers["residence_statuses"]]
        if "topics" in answers:
            found["topics"] = [(s["code"], f"={s[label]} ({s['code']})") for s in answers["topics"]]
        return found

    async def entries(visitor: Visitor, kind: Kind) -> list[dict[str, Any]]:
        return await web.backend.get(visitor, kind.service, kind.path, params=dict(kind.list_params))

    def kind_of(slug: str) -> Kind:
        if slug not in KINDS:
            raise HTTPException(404)
        return KINDS[slug]

    def form_page(
        request: Request,
        visitor: Visitor,
        kind: Kind,
        *,
        entry_id: str | None,
        name: str,
        values: dict[str, Any],
        choices: dict[str, list[tuple[str, str]]],
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        fields = [*([Field(kind.key, required=True, hint=kind.id_hint)] if entry_id is None else []), *kind.fields]
        return web.pages.render(
            request,
            visitor,
            "admin_form.html",
            status_code=status_code,
            kind=kind,
            entry_id=entry_id,
            name=name,
            fields=fields,
            values=values,
            choices=choices,
            errors=errors or {},
            action=f"/admin/{kind.slug}/{quote(entry_id, safe='') if entry_id else 'new'}",
        )

    @pages.get("/admin", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        visitor = await web.visitor(request)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        sections = [(kind.slug, kind.title, f"{kind.title}_text") for kind in KINDS.values()]
        sections.insert(3, ("topics", "admin_topics", "admin_topics_text"))
        return web.pages.render(request, visitor, "admin_index.html", sections=sections)

    @pages.get("/admin/topics", response_class=HTMLResponse)
    async def topics(request: Request, added: str | None = None) -> Response:
        visitor = await web.visitor(request)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        return await topics_page(request, visitor, added=added)

    async def topics_page(
        request: Request,
        visitor: Visitor,
        *,
        added: str | None = None,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        form_id: str | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        listed = await web.backend.get(visitor, "cases", "/topics")
        return web.pages.render(
            request,
            visitor,
            "admin_topics.html",
            status_code=status_code,
            topics=listed,
            added=added,
            fields=TOPIC_FIELDS,
            values=values or {},
            errors=errors or {},
            choices={},
            form_id=form_id or str(uuid.uuid4()),
        )

    @pages.post("/admin/topics", response_class=HTMLResponse)
    async def add_topic(request: Request) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        shown, body = _posted(TOPIC_FIELDS, form)
        this_form = form_id(form)
        try:
            # The form's own id: the same form sent twice is one topic.
            await web.backend.post(
                visitor, "cases", "/topics", json=body, headers={"Idempotency-Key": idempotency_key(this_form, body)}
            )
        except Refused as refused:
            if refused.status >= 500 or refused.status in (401, 403):
                raise
            errors = field_errors(refused, {f.name for f in TOPIC_FIELDS})
            return await topics_page(
                request, visitor, values=shown, errors=errors, form_id=str(uuid.uuid4()), status_code=422
            )
        return RedirectResponse(f"/admin/topics?{urlencode({'added': body['code']})}", status_code=303)

    @pages.get("/admin/{slug}", response_class=HTMLResponse)
    async def listing(request: Request, slug: str, saved: str | None = None, changed: str | None = None) -> Response:
        visitor = await web.visitor(request)
        kind = kind_of(slug)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        listed = await entries(visitor, kind)
        named = {str(entry[kind.key]): str(entry.get(kind.name_field) or entry[kind.key]) for entry in listed}
        return web.pages.render(
            request,
            visitor,
            "admin_list.html",
            kind=kind,
            entries=listed,
            saved=named.get(saved or "", saved),
            changed=changed,
            changed_name=named.get(request.query_params.get("agency", ""), ""),
        )

    @pages.get("/admin/{slug}/new", response_class=HTMLResponse)
    async def new_entry(request: Request, slug: str) -> Response:
        visitor = await web.visitor(request)
        kind = kind_of(slug)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        values = _shown(kind, {"active": True, "languages": ["de"]})
        return form_page(
            request, visitor, kind, entry_id=None, name="", values=values, choices=await options(visitor, kind)
        )

    @pages.get("/admin/{slug}/{entry_id}", response_class=HTMLResponse)
    async def edit_entry(request: Request, slug: str, entry_id: str) -> Response:
        visitor = await web.visitor(request)
        kind = kind_of(slug)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        listed, choices = await asyncio.gather(entries(visitor, kind), options(visitor, kind))
        entry = next((e for e in listed if str(e[kind.key]) == entry_id), None)
        if entry is None:
            raise HTTPException(404)
        name = str(entry.get(kind.name_field) or entry_id)
        return form_page(
            request, visitor, kind, entry_id=entry_id, name=name, values=_shown(kind, entry), choices=choices
        )

    @pages.post("/admin/{slug}/{entry_id}", response_class=HTMLResponse)
    async def save_entry(request: Request, slug: str, entry_id: str) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        kind = kind_of(slug)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        creating = entry_id == "new"
        shown, body = _posted(kind.fields, form)
        if creating:
            entry_id = str(form.get(kind.key, "")).strip()
            shown[kind.key] = entry_id
        known = {kind.key, *(f.name for f in kind.fields)}

        async def again(errors: dict[str, str]) -> HTMLResponse:
            return form_page(
                request,
                visitor,
                kind,
                entry_id=None if creating else entry_id,
                name=str(form.get("entry_name", entry_id)),
                values=shown,
                choices=await options(visitor, kind),
                errors=errors,
                status_code=422,
            )

        if creating:
            if not entry_id:
                return await again({kind.key: message("missing", visitor.language)})
            # PUT creates or replaces: a new entry must not silently replace one of the same id.
            if any(str(e[kind.key]) == entry_id for e in await entries(visitor, kind)):
                return await again({kind.key: translate("admin_id_taken", visitor.language)})
        try:
            response = await web.backend.call(
                visitor, kind.service, "PUT", f"{kind.path}/{quote(entry_id, safe='')}", json=body
            )
            if response.status_code >= 400:
                raise Refused(response)
        except Refused as refused:
            if refused.status in (401, 403):
                raise
            return await again(field_errors(refused, known))
        return RedirectResponse(f"/admin/{kind.slug}?{urlencode({'saved': entry_id})}", status_code=303)

    @pages.post("/admin/agencies/{agency_id}/{change}", response_class=HTMLResponse)
    async def switch_agency(request: Request, agency_id: str, change: str) -> Response:
        visitor = await web.visitor(request)
        await checked_form(request, visitor)
        if change not in ("activate", "deactivate"):
            raise HTTPException(404)
        if refusal := forbidden_unless(web, request, visitor, Action.REFERENCE_WRITE):
            return refusal
        await web.backend.post(visitor, "referrals", f"/agencies/{quote(agency_id, safe='')}/{change}")
        query = urlencode({"changed": change, "agency": agency_id})
        return RedirectResponse(f"/admin/agencies?{query}", status_code=303)

    return pages
