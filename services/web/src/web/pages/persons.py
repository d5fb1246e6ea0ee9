"""Persons (issue 10, screens 2-4): find a person, register one (search before create, likely
duplicates side by side), and the person's page (record with corrections, consents, service
lines, cases).

Every decision is intake's: the page sends what was typed and shows intake's answer, its field
errors at their fields (in the visitor's language), its 403 reason as it is. Names are searched
with POST, never in a URL (URLs end in access logs); nothing personal is logged here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from knotenpunkt.events import AccessRoute, AgencyKind, ConsentPurpose, DataCategory, Gender
from web.backend import Refused, ServiceDown
from web.texts import register
from web.ui import checked_form, form_id, idempotency_key
from web.visitor import Visitor

if TYPE_CHECKING:
    from web.app import WebApp

# The consent form's text version, as printed on the paper form staff hand out.
CONSENT_TEXT_VERSION = "2024-01"
HOUSEHOLD_RELATIONS = ("partner", "child", "parent", "sibling", "other")
# Fields of the person's record as the forms carry them (lists as comma-separated text).
TEXT_FIELDS = (
    "family_name",
    "given_name",
    "birth_date",
    "birth_year",
    "gender",
    "counselling_language",
    "residence_status",
    "arrival_date",
    "access_route",
    "street",
    "postcode",
    "city",
    "district",
    "phone",
    "email",
)
LIST_FIELDS = ("name_variants", "nationalities", "languages")
# Intake's model-wide refusals that belong to one field of the form.
FIELD_OF_CODE = {
    "birth_year_conflict": "birth_year",
    "arrival_before_birth": "arrival_date",
    "search_needs_criteria": "family_name",
    "sharing_needs_agency": "recipient",
    "valid_until_before_given": "valid_until",
}
# Who sees cases (the cases service decides which ones).
CASE_ROLES = ("case_manager", "office_lead")

register(
    {
        "persons_search_title": {"de": "Person finden", "en": "Find a person"},
        "persons_register_title": {"de": "Person anmelden", "en": "Register a person"},
        "persons_register_search_first": {
            "de": "Bitte zuerst suchen, ob die Person schon erfasst ist (auch in anderer Schreibweise).",
            "en": "Please search first whether the person is already registered (also in another spelling).",
        },
        "persons_search_intro": {
            "de": "Gesucht wird nach Klang (Kölner Phonetik), Schreibvarianten und Namensteilen, "
            "unter den Personen Ihrer Dienststelle.",
            "en": "The search matches sound-alikes (Kölner Phonetik), spelling variants and parts of names, "
            "among the persons of your office.",
        },
        "persons_search_button": {"de": "Suchen", "en": "Search"},
        "persons_results": {"de": "Ergebnisse", "en": "Results"},
        "persons_results_count": {"de": "{count} Personen gefunden.", "en": "{count} persons found."},
        "persons_results_more": {
            "de": "Es gibt weitere Treffer: bitte die Suche genauer fassen.",
            "en": "There are more matches: please narrow the search.",
        },
        "persons_none_found": {
            "de": "Keine Person gefunden. Sie können die Person jetzt anmelden.",
            "en": "Nobody found. You can register the person now.",
        },
        "persons_register_new": {"de": "Neue Person anmelden", "en": "Register a new person"},
        "persons_open": {"de": "Öffnen", "en": "Open"},
        "persons_open_person": {"de": "{name} öffnen", "en": "Open {name}"},
        "persons_required": {"de": "Pflichtfeld", "en": "required"},
        "persons_errors_title": {"de": "Bitte prüfen Sie Ihre Eingaben", "en": "Please check your entries"},
        "persons_name": {"de": "Name", "en": "Name"},
        "persons_family_name": {"de": "Familienname", "en": "Family name"},
        "persons_given_name": {"de": "Vorname(n)", "en": "Given name(s)"},
        "persons_name_variants": {"de": "Andere Schreibweisen", "en": "Other spellings"},
        "persons_comma_hint": {"de": "Mehrere durch Komma trennen.", "en": "Separate several with commas."},
        "persons_birth": {"de": "Geburt", "en": "Birth"},
        "persons_birth_date": {"de": "Geburtsdatum", "en": "Date of birth"},
        "persons_birth_year": {"de": "Geburtsjahr", "en": "Year of birth"},
        "persons_birth_year_hint": {
            "de": "Wenn nur das Jahr bekannt ist.",
            "en": "When only the year is known.",
        },
        "persons_gender": {"de": "Geschlecht", "en": "Gender"},
        "persons_gender_female": {"de": "weiblich", "en": "female"},
        "persons_gender_male": {"de": "männlich", "en": "male"},
        "persons_gender_diverse": {"de": "divers", "en": "diverse"},
        "persons_gender_not_stated": {"de": "keine Angabe", "en": "not stated"},
        "persons_origin": {"de": "Herkunft und Sprachen", "en": "Origin and languages"},
        "persons_nationalities": {"de": "Staatsangehörigkeiten", "en": "Nationalities"},
        "persons_nationalities_hint": {
            "de": "Ländercodes (ISO 3166), z. B. SY, IQ; staatenlos: XX. Mehrere durch Komma trennen.",
            "en": "Country codes (ISO 3166), e.g. SY, IQ; stateless: XX. Separate several with commas.",
        },
        "persons_languages": {"de": "Sprachen", "en": "Languages"},
        "persons_languages_hint": {
            "de": "Sprachcodes (ISO 639-1), z. B. ar, de. Mehrere durch Komma trennen.",
            "en": "Language codes (ISO 639-1), e.g. ar, de. Separate several with commas.",
        },
        "persons_counselling_language": {"de": "Beratungssprache", "en": "Counselling language"},
        "persons_counselling_language_hint": {"de": "Sprachcode, z. B. ar.", "en": "Language code, e.g. ar."},
        "persons_household": {"de": "Haushalt", "en": "Household"},
        "persons_household_hint": {
            "de": "Wie viele Personen leben mit der Person zusammen?",
            "en": "How many people live with the person?",
        },
        "persons_household_partner": {"de": "Partner/in", "en": "Partner"},
        "persons_household_child": {"de": "Kinder", "en": "Children"},
        "persons_household_parent": {"de": "Eltern", "en": "Parents"},
        "persons_household_sibling": {"de": "Geschwister", "en": "Siblings"},
        "persons_household_other": {"de": "Andere", "en": "Others"},
        "persons_residence": {"de": "Aufenthalt", "en": "Residence"},
        "persons_residence_status": {"de": "Aufenthaltsstatus", "en": "Residence status"},
        "persons_arrival_date": {"de": "Einreise nach Deutschland", "en": "Arrival in Germany"},
        "persons_access_route": {"de": "Zugang", "en": "How the person came"},
        "persons_access_route_open_office_hours": {"de": "Offene Sprechstunde", "en": "Open office hours"},
        "persons_access_route_appointment": {"de": "Termin", "en": "Appointment"},
        "persons_access_route_referred_by_partner": {
            "de": "Von einer Partnerstelle geschickt",
            "en": "Referred by a partner",
        },
        "persons_not_stated": {"de": "– keine Angabe –", "en": "– not stated –"},
        "persons_address": {"de": "Anschrift", "en": "Address"},
        "persons_street": {"de": "Straße und Hausnummer", "en": "Street and number"},
        "persons_postcode": {"de": "Postleitzahl", "en": "Postcode"},
        "persons_city": {"de": "Ort", "en": "City"},
        "persons_district": {"de": "Stadtteil", "en": "District"},
        "persons_contact": {"de": "Kontakt", "en": "Contact"},
        "persons_phone": {"de": "Telefon", "en": "Phone"},
        "persons_email": {"de": "E-Mail", "en": "E-mail"},
        "persons_office": {"de": "Beratungsstelle", "en": "Office"},
        "persons_register_button": {"de": "Person anmelden", "en": "Register the person"},
        "persons_duplicates_title": {
            "de": "Diese Person ist möglicherweise schon erfasst",
            "en": "This person may already be registered",
        },
        "persons_duplicates_intro": {
            "de": "Bitte vergleichen Sie Ihre Eingabe mit den gefundenen Personen. Ist es dieselbe Person, "
            "öffnen Sie die bestehende; sonst bestätigen Sie die Anmeldung als neue Person.",
            "en": "Please compare your entry with the persons found. If it is the same person, open the existing "
            "one; otherwise confirm the registration as a new person.",
        },
        "persons_duplicates_caption": {
            "de": "Ihre Eingabe und mögliche Dubletten",
            "en": "Your entry and likely duplicates",
        },
        "persons_your_entry": {"de": "Ihre Eingabe", "en": "Your entry"},
        "persons_candidate": {"de": "Erfasste Person {number}", "en": "Registered person {number}"},
        "persons_open_existing": {"de": "Bestehende Person öffnen", "en": "Open the existing person"},
        "persons_confirm_new": {"de": "Als neue Person bestätigen", "en": "Confirm as a new person"},
        "persons_elsewhere": {
            "de": "Wahrscheinlich gleiche Personen in anderen Beratungsstellen (ohne Namen; bitte dort nachfragen):",
            "en": "Likely the same person at other offices (no names shown; please ask there):",
        },
        "persons_elsewhere_count": {"de": "{office}: {count}", "en": "{office}: {count}"},
        "persons_registered": {
            "de": "Die Person ist angemeldet: {lines} in der Beratungsstelle {office}.",
            "en": "The person is registered: {lines} at the office {office}.",
        },
        "persons_corrected": {"de": "Die Angaben sind korrigiert.", "en": "The record has been corrected."},
        "persons_nothing_changed": {"de": "Es wurde nichts geändert.", "en": "Nothing was changed."},
        "persons_consent_given": {"de": "Die Einwilligung ist erfasst.", "en": "The consent has been recorded."},
        "persons_consent_withdrawn": {
            "de": "Die Einwilligung ist widerrufen.",
            "en": "The consent has been withdrawn.",
        },
        "persons_changed_meanwhile": {
            "de": "Die Angaben wurden inzwischen von jemand anderem geändert. Bitte die Seite neu laden und die "
            "Korrektur erneut eingeben.",
            "en": "The record was changed meanwhile by someone else. Please reload the page and enter the "
            "correction again.",
        },
        "persons_reload": {"de": "Seite neu laden", "en": "Reload the page"},
        "persons_record": {"de": "Angaben zur Person", "en": "The person's record"},
        "persons_registered_at": {"de": "Angemeldet am", "en": "Registered on"},
        "persons_service_lines": {"de": "Beratungsdienste und Stelle", "en": "Service lines and office"},
        "persons_service_line_first": {"de": "Erster Fall in", "en": "First case in"},
        "persons_lines": {"de": "Beratungsdienste", "en": "Service lines"},
        "persons_cases": {"de": "Fälle", "en": "Cases"},
        "persons_cases_none": {"de": "Noch keine Fälle.", "en": "No cases yet."},
        "persons_cases_not_for_role": {
            "de": "Fälle sieht das Fallmanagement der Beratungsstelle.",
            "en": "Cases are seen by the office's case management.",
        },
        "persons_case": {"de": "Fall", "en": "Case"},
        "persons_case_status": {"de": "Status", "en": "Status"},
        "persons_case_opened": {"de": "Eröffnet", "en": "Opened"},
        "persons_case_manager": {"de": "Fallverantwortung", "en": "Case manager"},
        "persons_case_open": {"de": "Fall {line} öffnen", "en": "Open case {line}"},
        "persons_unassigned": {"de": "nicht zugewiesen", "en": "unassigned"},
        "persons_consents": {"de": "Einwilligungen", "en": "Consents"},
        "persons_consents_none": {"de": "Noch keine Einwilligungen.", "en": "No consents yet."},
        "persons_purpose": {"de": "Zweck", "en": "Purpose"},
        "persons_purpose_counselling": {"de": "Beratung", "en": "Counselling"},
        "persons_purpose_sharing": {"de": "Weitergabe an Partnerstellen", "en": "Sharing with partners"},
        "persons_purpose_statistics": {"de": "Statistik", "en": "Statistics"},
        "persons_recipient": {"de": "Empfänger", "en": "Recipient"},
        "persons_recipient_hint": {
            "de": "Nur für die Weitergabe: eine bestimmte Partnerstelle oder jede Stelle einer Art.",
            "en": "For sharing only: one partner agency or every agency of a kind.",
        },
        "persons_recipient_none": {
            "de": "– keiner (Beratung, Statistik) –",
            "en": "– none (counselling, statistics) –",
        },
        "persons_agencies": {"de": "Partnerstellen", "en": "Partner agencies"},
        "persons_agency_kinds": {"de": "Jede Stelle der Art", "en": "Every agency of the kind"},
        "persons_kind": {"de": "jede Stelle: {kind}", "en": "any agency: {kind}"},
        "persons_categories": {"de": "Datenarten", "en": "Data categories"},
        "persons_category_name": {"de": "Name", "en": "Name"},
        "persons_category_contact": {"de": "Kontaktdaten", "en": "Contact details"},
        "persons_category_birth_date": {"de": "Geburtsdatum", "en": "Date of birth"},
        "persons_category_residence_status": {"de": "Aufenthaltsstatus", "en": "Residence status"},
        "persons_category_topic": {"de": "Beratungsthema", "en": "Counselling topic"},
        "persons_category_health": {"de": "Gesundheit", "en": "Health"},
        "persons_category_family": {"de": "Familie", "en": "Family"},
        "persons_text_version": {"de": "Fassung des Einwilligungstexts", "en": "Version of the consent text"},
        "persons_given_on": {"de": "Erteilt am", "en": "Given on"},
        "persons_valid_until": {"de": "Gültig bis", "en": "Valid until"},
        "persons_valid_until_hint": {
            "de": "Leer lassen: gilt bis zum Widerruf.",
            "en": "Leave empty: valid until withdrawn.",
        },
        "persons_consent_state": {"de": "Stand", "en": "State"},
        "persons_consent_valid": {"de": "gültig", "en": "in effect"},
        "persons_consent_withdrawn_on": {"de": "widerrufen am {day}", "en": "withdrawn on {day}"},
        "persons_consent_expired_on": {"de": "abgelaufen am {day}", "en": "expired on {day}"},
        "persons_consent_not_yet": {"de": "noch nicht gültig", "en": "not yet in effect"},
        "persons_until_withdrawn": {"de": "bis Widerruf", "en": "until withdrawn"},
        "persons_withdraw": {"de": "Widerrufen", "en": "Withdraw"},
        "persons_withdraw_label": {
            "de": "Einwilligung vom {day} widerrufen",
            "en": "Withdraw the consent of {day}",
        },
        "persons_give_consent": {"de": "Einwilligung erfassen", "en": "Record a consent"},
        "persons_give_consent_button": {"de": "Einwilligung erfassen", "en": "Record the consent"},
        "persons_correct": {"de": "Angaben korrigieren", "en": "Correct the record"},
        "persons_correct_open": {"de": "Korrekturformular öffnen", "en": "Open the correction form"},
        "persons_correct_button": {"de": "Korrektur speichern", "en": "Save the correction"},
        "persons_actions": {"de": "Aktion", "en": "Action"},
        "persons_unknown": {"de": "unbekannt", "en": "unknown"},
        "persons_service_unavailable": {
            "de": "Dieser Teil ist gerade nicht verfügbar.",
            "en": "This part is not available right now.",
        },
    }
)


def router(web: WebApp) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    # --- find a person --------------------------------------------------------------------------

    @pages.get("/persons", response_class=HTMLResponse)
    async def find(request: Request) -> HTMLResponse:
        visitor = await web.visitor(request)
        return _search_page(web, request, visitor, register_mode=False)

    @pages.get("/persons/new", response_class=HTMLResponse)
    async def new(request: Request) -> HTMLResponse:
        # Registering starts with the search (against duplicates); the form comes after it.
        visitor = await web.visitor(request)
        return _search_page(web, request, visitor, register_mode=True)

    @pages.post("/persons", response_class=HTMLResponse)
    async def search(request: Request) -> HTMLResponse:
        # A POST, not a GET: what is searched for never appears in a URL (nor in access logs).
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        values = _texts(form, ("family_name", "given_name", "birth_date", "birth_year"))
        register_mode = form.get("mode") == "register"
        query: dict[str, Any] = {
            "name": " ".join(v for v in (values["family_name"], values["given_name"]) if v) or None,
            "birth_date": values["birth_date"] or None,
            "birth_year": values["birth_year"] or None,
        }
        try:
            found = await web.backend.post(
                visitor, "intake", "/clients/search", json={k: v for k, v in query.items() if v is not None}
            )
        except Refused as refused:
            if refused.status != 422:
                raise
            errors = _field_errors(refused, {"name": "family_name"})
            return _search_page(
                web, request, visitor, register_mode=register_mode, values=values, errors=errors, status_code=422
            )
        return _search_page(web, request, visitor, register_mode=register_mode, values=values, found=found)

    # --- register a person ----------------------------------------------------------------------

    @pages.post("/persons/new", response_class=HTMLResponse)
    async def register_person(request: Request) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        choices = await _choices(web, visitor)
        if form.get("prefill"):
            # From the search: the form, with what was searched for.
            values: dict[str, Any] = _texts(form, ("family_name", "given_name", "birth_date", "birth_year"))
            # Nothing chosen for the person before they say: "not stated", "unknown".
            values.update(form_id=str(uuid.uuid4()), gender="not_stated", residence_status="unknown")
            return _register_page(web, request, visitor, choices, values)
        values = _record_values(form)
        values["form_id"] = form_id(form)
        values["office_id"] = str(form.get("office_id", "")).strip()
        if not values["office_id"] and len(choices["own_offices"]) == 1:
            values["office_id"] = choices["own_offices"][0][0]
        body = _record_body(values)
        body["office_id"] = values["office_id"]
        if form.get("confirm_new"):
            body["confirm_new"] = True
        answer = await web.backend.call(
            visitor,
            "intake",
            "POST",
            "/clients",
            json=body,
            headers={"Idempotency-Key": idempotency_key(values["form_id"], body)},
        )
        if answer.status_code == 201:
            client_id = answer.json()["client_id"]
            return RedirectResponse(f"/persons/{client_id}?registered=1", status_code=303)
        refused = Refused(answer)
        if refused.status == 409 and refused.code == "possible_duplicates":
            return _register_page(
                web,
                request,
                visitor,
                choices,
                values,
                duplicates=refused.body.get("candidates") or [],
                elsewhere=refused.body.get("elsewhere") or [],
                status_code=409,
            )
        if refused.status == 422:
            return _register_page(
                web, request, visitor, choices, values, errors=_field_errors(refused), status_code=422
            )
        raise refused

    # --- the person -----------------------------------------------------------------------------

    @pages.get("/persons/{client_id}", response_class=HTMLResponse)
    async def person(request: Request, client_id: UUID) -> HTMLResponse:
        visitor = await web.visitor(request)
        notice = {
            "corrected": "persons_corrected",
            "unchanged": "persons_nothing_changed",
            "consent": "persons_consent_given",
            "withdrawn": "persons_consent_withdrawn",
        }.get(request.query_params.get("done", ""))
        return await _person_page(
            web, request, visitor, client_id, registered=bool(request.query_params.get("registered")), notice=notice
        )

    @pages.post("/persons/{client_id}/correct", response_class=HTMLResponse)
    async def correct(request: Request, client_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        values = _record_values(form)
        body = _record_body(values, correction=True)
        answer = await web.backend.call(
            visitor,
            "intake",
            "PATCH",
            f"/clients/{client_id}",
            json=body,
            headers={"If-Match": str(form.get("etag", ""))},
        )
        if answer.status_code == 200:
            done = "corrected" if answer.json().get("changed") else "unchanged"
            return RedirectResponse(f"/persons/{client_id}?done={done}", status_code=303)
        refused = Refused(answer)
        if refused.status in (409, 428) and refused.code in ("version_conflict", "if_match_required"):
            return await _person_page(web, request, visitor, client_id, conflict=True, status_code=409)
        if refused.status == 422:
            return await _person_page(
                web,
                request,
                visitor,
                client_id,
                correction=values,
                correction_errors=_field_errors(refused),
                status_code=422,
            )
        raise refused

    @pages.post("/persons/{client_id}/consents", response_class=HTMLResponse)
    async def give_consent(request: Request, client_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        values = _texts(form, ("purpose", "recipient", "text_version", "given_on", "valid_until"))
        values["data_categories"] = [str(category) for category in form.getlist("data_categories")]
        values["form_id"] = form_id(form)
        body: dict[str, Any] = {
            "purpose": values["purpose"],
            "data_categories": values["data_categories"],
            "text_version": values["text_version"],
            "given_on": values["given_on"] or None,
            "valid_until": values["valid_until"] or None,
        }
        kind, _, recipient = values["recipient"].partition(":")
        if kind == "agency" and recipient:
            body["agency_id"] = recipient
        elif kind == "kind" and recipient:
            body["agency_kind"] = recipient
        answer = await web.backend.call(
            visitor,
            "intake",
            "POST",
            f"/clients/{client_id}/consents",
            json=body,
            headers={"Idempotency-Key": idempotency_key(values["form_id"], body)},
        )
        if answer.status_code == 201:
            return RedirectResponse(f"/persons/{client_id}?done=consent#consents", status_code=303)
        refused = Refused(answer)
        if refused.status == 422:
            errors = _field_errors(refused, {"agency_id": "recipient", "agency_kind": "recipient"})
            return await _person_page(
                web, request, visitor, client_id, consent=values, consent_errors=errors, status_code=422
            )
        raise refused

    @pages.post("/persons/{client_id}/consents/{consent_id}/withdraw", response_class=HTMLResponse)
    async def withdraw_consent(request: Request, client_id: UUID, consent_id: UUID) -> Response:
        visitor = await web.visitor(request)
        await checked_form(request, visitor)
        answer = await web.backend.call(
            visitor, "intake", "POST", f"/clients/{client_id}/consents/{consent_id}/withdraw", json={}
        )
        if answer.status_code == 200:
            return RedirectResponse(f"/persons/{client_id}?done=withdrawn#consents", status_code=303)
        refused = Refused(answer)
        if refused.status == 409:
            # Withdrawn meanwhile (or expired): the page says so and shows the current state.
            return await _person_page(web, request, visitor, client_id, alert=refused.message, status_code=409)
        raise refused

    return pages


# --- pages ----------------------------------------------------------------------------------------


def _search_page(
    web: WebApp,
    request: Request,
    visitor: Visitor,
    *,
    register_mode: bool,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    found: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return web.pages.render(
        request,
        visitor,
        "persons_search.html",
        status_code=status_code,
        register_mode=register_mode,
        values=values or {},
        errors=errors or {},
        found=found,
    )


def _register_page(
    web: WebApp,
    request: Request,
    visitor: Visitor,
    choices: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    errors: Mapping[str, str] | None = None,
    duplicates: list[dict[str, Any]] | None = None,
    elsewhere: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return web.pages.render(
        request,
        visitor,
        "persons_register.html",
        status_code=status_code,
        values=values,
        errors=errors or {},
        duplicates=duplicates or [],
        elsewhere=elsewhere or [],
        **choices,
    )


async def _person_page(
    web: WebApp,
    request: Request,
    visitor: Visitor,
    client_id: UUID,
    *,
    registered: bool = False,
    notice: str | None = None,
    alert: str | None = None,
    conflict: bool = False,
    correction: Mapping[str, Any] | None = None,
    correction_errors: Mapping[str, str] | None = None,
    consent: Mapping[str, Any] | None = None,
    consent_errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    answer = await web.backend.call(visitor, "intake", "GET", f"/clients/{client_id}")
    if answer.status_code >= 400:
        raise Refused(answer)  # 403 with the service's reason, 404, 410 (erased): the error page
    record = answer.json()
    etag = answer.headers.get("ETag", "")
    if str(record["client_id"]) != str(client_id):
        # A merged record: its person lives on under the surviving id.
        return RedirectResponse(f"/persons/{record['client_id']}", status_code=303)  # type: ignore[return-value]
    # The rest only once the person may be seen, asked of the services at the same time.
    consents, choices, (cases, cases_note), agencies = await asyncio.gather(
        web.backend.get(visitor, "intake", f"/clients/{client_id}/consents"),
        _choices(web, visitor),
        _cases(web, visitor, client_id),
        _agencies(web, visitor),
    )
    shown = correction if correction is not None else _values_of_record(record)
    consent_values = consent or {
        "purpose": "",
        "recipient": "",
        "text_version": CONSENT_TEXT_VERSION,
        "given_on": date.today().isoformat(),
        "valid_until": "",
        "data_categories": [],
    }
    consent_values = {**consent_values, "form_id": (consent or {}).get("form_id") or str(uuid.uuid4())}
    return web.pages.render(
        request,
        visitor,
        "persons_person.html",
        status_code=status_code,
        person=record,
        etag=etag,
        consents=consents,
        cases=cases,
        cases_note=cases_note,
        agencies=agencies,
        agency_kinds=[kind.value for kind in AgencyKind],
        purposes=[purpose.value for purpose in ConsentPurpose],
        categories=[category.value for category in DataCategory],
        registered=registered,
        notice=notice,
        alert=alert,
        conflict=conflict,
        values=shown,
        errors=correction_errors or {},
        consent=consent_values,
        consent_errors=consent_errors or {},
        open_correction=bool(correction_errors),
        today=date.today().isoformat(),
        **choices,
    )


async def _cases(web: WebApp, visitor: Visitor, client_id: UUID) -> tuple[list[dict[str, Any]], str | None]:
    """The person's cases the visitor may see, or why none are shown."""
    if not visitor.has(*CASE_ROLES):
        return [], "persons_cases_not_for_role"
    try:
        return await web.backend.get(visitor, "cases", "/cases", params={"client_id": str(client_id)}), None
    except Refused as refused:
        return [], refused.message or "persons_cases_not_for_role"
    except ServiceDown:
        return [], "persons_service_unavailable"


async def _agencies(web: WebApp, visitor: Visitor) -> list[dict[str, Any]]:
    """The partner agencies a consent may name (active ones); without an answer, none (the form
    then offers the kinds of agency only)."""
    try:
        return [a for a in await web.backend.get(visitor, "referrals", "/agencies") if a.get("active", True)]
    except (Refused, ServiceDown):
        return []


async def _choices(web: WebApp, visitor: Visitor) -> dict[str, Any]:
    """Options of the forms: offices (the visitor's to register at), residence statuses, genders,
    access routes, in the visitor's language."""
    offices, statuses = await asyncio.gather(
        web.backend.get(visitor, "intake", "/offices"), web.backend.get(visitor, "intake", "/residence-statuses")
    )
    label = "label_de" if visitor.language == "de" else "label_en"
    return {
        "office_names": {office["office_id"]: office["name"] for office in offices},
        "own_offices": [
            (office["office_id"], office["name"]) for office in offices if office["office_id"] in visitor.actor.offices
        ],
        "residence_statuses": [(status["code"], status[label]) for status in statuses],
        "status_names": {status["code"]: status[label] for status in statuses},
        "genders": [gender.value for gender in Gender],
        "access_routes": [route.value for route in AccessRoute],
        "relations": HOUSEHOLD_RELATIONS,
    }


# --- forms and bodies -----------------------------------------------------------------------------


def _texts(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in names}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _record_values(form: FormData) -> dict[str, Any]:
    """What the record form carries, as typed (shown again as it was when refused)."""
    values: dict[str, Any] = _texts(form, TEXT_FIELDS + LIST_FIELDS)
    for relation in HOUSEHOLD_RELATIONS:
        values[f"household_{relation}"] = str(form.get(f"household_{relation}", "")).strip()
    return values


def _record_body(values: Mapping[str, Any], correction: bool = False) -> dict[str, Any]:
    """The JSON intake expects; numbers and dates as typed, so intake's messages say what is wrong."""
    body: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = values.get(name, "")
        if name in ("family_name", "given_name"):
            body[name] = value
        elif value:
            body[name] = value
        elif correction and name not in ("gender", "residence_status"):
            body[name] = None  # emptied in the form: removed from the record
    for name in LIST_FIELDS:
        body[name] = _split(values.get(name, ""))
    body["household_members"] = [
        {"relation": relation, "count": count}
        for relation in HOUSEHOLD_RELATIONS
        if (count := values.get(f"household_{relation}", "")) and count != "0"
    ]
    return body


def _values_of_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as the correction form shows it."""
    values: dict[str, Any] = {name: "" if record.get(name) is None else str(record[name]) for name in TEXT_FIELDS}
    for name in LIST_FIELDS:
        values[name] = ", ".join(record.get(name) or [])
    counts = {relation: 0 for relation in HOUSEHOLD_RELATIONS}
    for member in record.get("household_members") or []:
        counts[member["relation"]] = counts.get(member["relation"], 0) + int(member["count"])
    for relation, count in counts.items():
        values[f"household_{relation}"] = str(count) if count else ""
    return values


def _field_errors(refused: Refused, renamed: Mapping[str, str] | None = None) -> dict[str, str]:
    """Intake's field errors keyed by the form's field: "nationalities.1" is the nationalities
    field, "household_members.0.count" the household; refusals of the whole record that concern
    one field go to it; others ("") show in the summary only."""
    renamed = renamed or {}
    errors: dict[str, str] = {}
    for error in refused.body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        path = str(error.get("field", ""))
        name = path.split(".")[0] if path != "body" else ""
        if name == "household_members":
            name = "household"
        name = FIELD_OF_CODE.get(str(error.get("code")), renamed.get(name, name))
        errors.setdefault(name, str(error.get("message", "")))
    if not errors:
        errors[""] = refused.message
    return errors
