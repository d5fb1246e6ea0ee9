"""The start page: what the signed-in person needs first, by role (issue 10, screen 1).

Case managers and office leads see their open cases with the persons' names, what needs action
(referral answers overdue, declined or expired; handovers at 27 due) and their office's opening
hours; intake staff the way to find or register a person; coordinators the reports; the data
protection officer and the admin their areas. Every list is the services' answer to the
visitor's own token: what the role may not see is not there."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from web.backend import Refused, ServiceDown
from web.texts import register
from web.ui import checked_form

if TYPE_CHECKING:
    from web.app import WebApp
    from web.visitor import Visitor

register(
    {
        "start_title": {"de": "Start", "en": "Start"},
        "start_welcome": {"de": "Guten Tag, {name}.", "en": "Hello, {name}."},
        "start_office_hours": {
            "de": "Offene Sprechstunden Ihrer Dienststelle",
            "en": "Open office hours of your office",
        },
        "start_today": {"de": "Heute ist {weekday}, der {day}.", "en": "Today is {weekday}, {day}."},
        "start_my_cases": {"de": "Meine offenen Fälle", "en": "My open cases"},
        "start_my_cases_none": {
            "de": "Ihnen ist kein offener Fall zugewiesen.",
            "en": "No open case is assigned to you.",
        },
        "start_more_cases": {"de": "Alle Fälle ansehen", "en": "See all cases"},
        "start_action_needed": {"de": "Was zu tun ist", "en": "What needs action"},
        "start_action_none": {"de": "Gerade ist nichts zu tun.", "en": "Nothing needs action right now."},
        "start_referrals_action": {"de": "Überweisungen ansehen", "en": "Referrals to look at"},
        "start_handovers_due": {
            "de": "Übergaben JMD → MBE fällig (27 Jahre)",
            "en": "Handovers JMD → MBE due (turned 27)",
        },
        "start_action_no_answer_yet": {"de": "Noch keine Antwort", "en": "No answer yet"},
        "start_action_declined": {"de": "Abgelehnt – nachfassen", "en": "Declined – follow up"},
        "start_action_expired": {"de": "Frist abgelaufen", "en": "Deadline passed"},
        "start_col_person": {"de": "Person", "en": "Person"},
        "start_col_service_line": {"de": "Leistung", "en": "Service line"},
        "start_col_opened": {"de": "Eröffnet", "en": "Opened"},
        "start_col_consultations": {"de": "Beratungen", "en": "Consultations"},
        "start_col_case": {"de": "Fall", "en": "Case"},
        "start_col_agency": {"de": "Partnerstelle", "en": "Partner agency"},
        "start_col_topic": {"de": "Thema", "en": "Topic"},
        "start_col_sent": {"de": "Gesendet", "en": "Sent"},
        "start_col_due": {"de": "Antwort fällig", "en": "Answer due"},
        "start_col_why": {"de": "Warum", "en": "Why"},
        "start_col_done": {"de": "Erledigt?", "en": "Dealt with?"},
        "start_dismiss": {"de": "Erledigt", "en": "Dealt with"},
        "start_dismiss_named": {
            "de": "Überweisung für {name} als erledigt markieren",
            "en": "Mark the referral for {name} as dealt with",
        },
        "start_done_dismissed": {
            "de": "Als erledigt markiert: Die Überweisung steht nicht mehr auf der Liste.",
            "en": "Marked as dealt with: the referral is off the list.",
        },
        "start_col_handover_due": {"de": "Fällig seit", "en": "Due since"},
        "start_open_case": {"de": "Fall öffnen", "en": "Open case"},
        "start_open_case_of": {"de": "Fall öffnen: {name}", "en": "Open case: {name}"},
        "start_person_unnamed": {"de": "Person {short}", "en": "Person {short}"},
        "start_find_person_title": {"de": "Person finden oder anmelden", "en": "Find or register a person"},
        "start_find_person_text": {
            "de": "Suchen Sie zuerst, ob die Person schon angemeldet ist; neu anmelden beginnt mit der Suche.",
            "en": "First search whether the person is registered already; registering starts with the search.",
        },
        "start_find_person_link": {"de": "Person suchen", "en": "Search for a person"},
        "start_reports_title": {"de": "Zahlen und Berichte", "en": "Figures and reports"},
        "start_report_year": {"de": "Berichtsjahr", "en": "Reporting year"},
        "start_report_format": {"de": "Format", "en": "Format"},
        "start_report_download": {"de": "Herunterladen", "en": "Download"},
        "start_report_download_named": {"de": "{title} herunterladen", "en": "Download {title}"},
        "start_reports_none": {"de": "Keine Berichte verfügbar.", "en": "No reports available."},
        "start_dpo_title": {"de": "Datenschutz", "en": "Data protection"},
        "start_dpo_text": {
            "de": "Wer hat auf wessen Daten zugegriffen, Auskunft (Art. 15) und Löschung (Art. 17).",
            "en": "Who accessed whose data, access export (Art. 15) and erasure (Art. 17).",
        },
        "start_dpo_link": {"de": "Zugriffe und Auskunft", "en": "Access log and export"},
        "start_admin_title": {"de": "Stammdaten pflegen", "en": "Maintain reference data"},
        "start_admin_text": {
            "de": "Dienststellen, Mitarbeitende, Routing-Regeln, Themen und Partnerstellen.",
            "en": "Offices, staff, routing rules, topics and partner agencies.",
        },
        "start_admin_link": {"de": "Zu den Stammdaten", "en": "Go to reference data"},
        "start_part_unavailable": {
            "de": "Ein Teil dieser Seite fehlt gerade: {what} antwortet nicht.",
            "en": "Part of this page is missing right now: {what} does not answer.",
        },
        "start_weekday_0": {"de": "Montag", "en": "Monday"},
        "start_weekday_1": {"de": "Dienstag", "en": "Tuesday"},
        "start_weekday_2": {"de": "Mittwoch", "en": "Wednesday"},
        "start_weekday_3": {"de": "Donnerstag", "en": "Thursday"},
        "start_weekday_4": {"de": "Freitag", "en": "Friday"},
        "start_weekday_5": {"de": "Samstag", "en": "Saturday"},
        "start_weekday_6": {"de": "Sonntag", "en": "Sunday"},
    }
)

CASE_WORK = {"case_manager", "office_lead"}
REPORT_FORMATS = ("xlsx", "csv", "json")
MY_CASES_SHOWN = 50
DONE = {"dismissed"}
# What the case manager can mark as dealt with; an answer still awaited stays until it comes.
DISMISSABLE = {"declined", "expired"}


def router(web: WebApp) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.get("/", response_class=HTMLResponse)
    async def start(request: Request, done: str | None = None) -> HTMLResponse:
        visitor = await web.visitor(request)
        work = {"offices": _office_hours(web, visitor)}
        if visitor.has(*CASE_WORK):
            work["cases"] = _case_work(web, visitor)
        if visitor.has("coordinator", "office_lead"):
            work["reports"] = web.backend.get(visitor, "stats", "/reports")
        # One round trip's time for the whole page: the services are asked side by side.
        answers = dict(zip(work, await asyncio.gather(*work.values(), return_exceptions=True), strict=True))
        missing = []
        for part, answer in answers.items():
            if isinstance(answer, Refused):
                answers[part] = None  # a part the role may not see is left out, not an error page
            elif isinstance(answer, ServiceDown):
                missing.append(answer.service)  # the rest of the page is still worth showing
                answers[part] = None
            elif isinstance(answer, BaseException):
                raise answer
        today = date.today()
        return web.pages.render(
            request,
            visitor,
            "start.html",
            offices=answers["offices"] or [],
            work=answers.get("cases"),
            reports=answers.get("reports"),
            missing=missing,
            today=today,
            weekday_key=f"start_weekday_{today.weekday()}",
            report_years=[today.year - 1, today.year],
            report_formats=REPORT_FORMATS,
            done=done if done in DONE else None,
            dismissable=DISMISSABLE,
            day=_day,
        )

    @pages.post("/start/referrals/{referral_id}/dismiss")
    async def dismiss(request: Request, referral_id: str) -> RedirectResponse:
        """A declined or expired referral followed up: off the list (referrals decides who may)."""
        visitor = await web.visitor(request)
        await checked_form(request, visitor)
        try:
            referral_id = str(UUID(referral_id))
        except ValueError:
            raise HTTPException(404) from None
        try:
            await web.backend.post(visitor, "referrals", f"/referrals/{referral_id}/dismiss")
        except Refused as refused:
            # Sent twice (a double click): the first one did it.
            if refused.code != "referral_already_dismissed":
                raise
        return RedirectResponse("/?done=dismissed", status_code=303)

    @pages.get("/reports/{name}/download")
    async def download_report(request: Request, name: str, year: int, format: str = "xlsx") -> Response:
        """A report as the stats service makes it (figures only, small counts suppressed),
        handed through with its file name."""
        visitor = await web.visitor(request)
        answer = await web.backend.call(
            visitor, "stats", "GET", f"/reports/{name}", params={"year": year, "format": format}
        )
        if answer.status_code >= 400:
            raise Refused(answer)
        headers = {
            key: value
            for key, value in answer.headers.items()
            if key.lower() in {"content-type", "content-disposition"}
        }
        if "content-disposition" not in {key.lower() for key in headers}:
            headers["Content-Disposition"] = f'attachment; filename="{name}-{year}.{format}"'
        return Response(answer.content, status_code=200, headers=headers)

    return pages


async def _office_hours(web: WebApp, visitor: Visitor) -> list[dict[str, Any]]:
    if not visitor.actor.offices:
        return []
    every = await web.backend.get(visitor, "intake", "/offices")
    return [office for office in every if office["office_id"] in visitor.actor.offices]


async def _case_work(web: WebApp, visitor: Visitor) -> dict[str, Any]:
    """My open cases and what needs action, each row with the person's name."""
    me = visitor.actor.subject
    # An office lead follows up the whole office; a case manager their own cases.
    if visitor.has("office_lead"):
        scopes = [{"office_id": office} for office in sorted(visitor.actor.offices)]
    else:
        scopes = [{"case_manager_id": me}]
    mine, *rest = await asyncio.gather(
        web.backend.get(
            visitor,
            "cases",
            "/cases",
            params={"case_manager_id": me, "status": "open", "limit": MY_CASES_SHOWN},
        ),
        *(web.backend.get(visitor, "referrals", "/referrals/action-needed", params=scope) for scope in scopes),
        *(
            web.backend.get(
                visitor, "cases", "/cases", params={**scope, "status": "open", "handover_due": "true", "limit": 100}
            )
            for scope in scopes
        ),
    )
    referrals = [referral for answer in rest[: len(scopes)] for referral in answer]
    handovers = [case for answer in rest[len(scopes) :] for case in answer["items"]]
    cases = mine["items"]
    label = "label_de" if visitor.language == "de" else "label_en"
    names, agencies, topics = await asyncio.gather(
        _names(web, visitor, [row["client_id"] for row in [*cases, *referrals, *handovers]]),
        _labels(
            lambda: web.backend.get(visitor, "referrals", "/agencies", params={"include_inactive": "true"}), referrals
        ),
        _labels(lambda: web.backend.get(visitor, "cases", "/topics"), referrals),
    )
    return {
        "agencies": {agency["agency_id"]: agency["name"] for agency in agencies},
        "topics": {topic["code"]: topic[label] for topic in topics},
        "cases": cases,
        "more_cases": mine.get("next_cursor") is not None,
        "referrals": referrals,
        "handovers": handovers,
        "names": names,
    }


async def _labels(ask: Callable[[], Awaitable[list[Any]]], needed: list[Any]) -> list[Any]:
    """Reference data to label rows with (agency and topic names), asked only when there are
    rows; without it the rows show the codes."""
    if not needed:
        return []
    try:
        return await ask()
    except (Refused, ServiceDown):
        return []


def _day(value: str | None) -> str:
    """An ISO date or timestamp as the German day (dd.mm.yyyy), used in both languages."""
    if not value:
        return ""
    return date.fromisoformat(value[:10]).strftime("%d.%m.%Y")


async def _names(web: WebApp, visitor: Visitor, client_ids: list[str]) -> dict[str, str]:
    """Each person as "Family, Given (year)"; without intake's answer the rows show a short
    pseudonymous id."""
    names = {}
    for client_id, person in ((await web.backend.person_names(visitor, client_ids)) or {}).items():
        name = ", ".join(part for part in (person.get("family_name"), person.get("given_name")) if part)
        names[client_id] = f"{name} ({person['birth_year']})" if person.get("birth_year") else name
    return names
