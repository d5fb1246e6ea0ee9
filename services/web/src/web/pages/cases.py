"""Cases (issue 10, screens 5 and 6): the case as one page (Gesamtfall im Überblick) and the
lists of cases (mine, my office's) with filters, names and pages.

Every decision is a service's: the page sends what was typed with the signed-in person's token
and shows the answer, field errors at their fields, a 403 reason as it is. Every change posts a
form (CSRF-checked), carries the case's ETag from a hidden field as If-Match, and redirects to
the case page after success (303), so reloading never repeats it; forms that create something
send an Idempotency-Key derived from a hidden per-form id, so a double click creates one record.
Nothing personal is logged here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from knotenpunkt.events import AgencyKind, ConsultationMode, ServiceLine
from web.backend import Refused
from web.texts import register
from web.ui import checked_form, form_id, idempotency_key
from web.visitor import Visitor

if TYPE_CHECKING:
    from web.app import WebApp

PAGE_SIZE = 25
CITY_TIME = ZoneInfo("Europe/Berlin")
NEED_CAUSES = ("no_agency", "no_capacity")
# The sections of the case page, in order (ids of their headings, for the table of contents).
SECTIONS = ("person", "actions", "consultations", "plan", "referrals", "history")
# The values the history's texts name, and what names them.
HISTORY_PARAMETERS = {
    "case_manager_id": "staff",
    "to_office_id": "office",
    "reason": "reason",
    "topic_code": "topic",
    "status": "goal_status",
    "agency_id": "agency",
}
# Messages after a successful change (shown once, after the redirect).
DONE = (
    "consultation_recorded",
    "consultation_corrected",
    "goal_set",
    "goal_changed",
    "goal_status_changed",
    "referral_sent",
    "referral_withdrawn",
    "referral_dismissed",
    "need_recorded",
    "case_assigned",
    "case_transferred",
    "case_closed",
    "case_reopened",
    "case_handed_over",
)

register(
    {
        # --- the lists ---
        "cases_list_title": {"de": "Fälle", "en": "Cases"},
        "cases_scope": {"de": "Welche Fälle", "en": "Which cases"},
        "cases_scope_mine": {"de": "Meine Fälle", "en": "My cases"},
        "cases_scope_office": {"de": "Fälle meiner Dienststelle", "en": "My office's cases"},
        "cases_filters": {"de": "Filter", "en": "Filters"},
        "cases_filter_status": {"de": "Status", "en": "Status"},
        "cases_filter_line": {"de": "Angebot", "en": "Service line"},
        "cases_filter_topic": {"de": "Beratungsthema", "en": "Counselling topic"},
        "cases_filter_handover": {"de": "Übergang mit 27 fällig", "en": "Handover at 27 due"},
        "cases_any": {"de": "alle", "en": "any"},
        "cases_apply_filters": {"de": "Anzeigen", "en": "Show"},
        "cases_none": {"de": "Keine Fälle mit diesen Filtern.", "en": "No cases with these filters."},
        "cases_next_page": {"de": "Nächste Seite", "en": "Next page"},
        "cases_first_page": {"de": "Zur ersten Seite", "en": "Back to the first page"},
        "cases_table_caption": {
            "de": "Fälle, die neuesten zuerst ({count} auf dieser Seite)",
            "en": "Cases, newest first ({count} on this page)",
        },
        "cases_names_missing": {
            "de": "Namen können gerade nicht angezeigt werden; die Fälle sind mit ihrer Nummer aufgeführt.",
            "en": "Names cannot be shown right now; the cases are listed by their number.",
        },
        "col_person": {"de": "Person", "en": "Person"},
        "col_line": {"de": "Angebot", "en": "Service line"},
        "col_office": {"de": "Dienststelle", "en": "Office"},
        "col_status": {"de": "Status", "en": "Status"},
        "col_manager": {"de": "Fallmanagement", "en": "Case manager"},
        "col_opened": {"de": "Eröffnet", "en": "Opened"},
        "col_consultations": {"de": "Beratungen", "en": "Consultations"},
        "col_handover": {"de": "Übergang fällig", "en": "Handover due"},
        "unassigned": {"de": "nicht zugewiesen", "en": "unassigned"},
        "unknown_person": {"de": "Person {short}", "en": "Person {short}"},
        "born": {"de": "geb. {year}", "en": "born {year}"},
        "status_open": {"de": "offen", "en": "open"},
        "status_closed": {"de": "geschlossen", "en": "closed"},
        "yes": {"de": "ja", "en": "yes"},
        "no": {"de": "nein", "en": "no"},
        # --- the case page ---
        "case_title": {"de": "Fall: {name}", "en": "Case: {name}"},
        "case_contents": {"de": "Inhalt dieser Seite", "en": "On this page"},
        "case_section_person": {"de": "Person und Fall", "en": "Person and case"},
        "case_section_actions": {"de": "Fall bearbeiten", "en": "Work on the case"},
        "case_section_consultations": {"de": "Beratungen", "en": "Consultations"},
        "case_section_plan": {"de": "Integrationsplan", "en": "Integration plan"},
        "case_section_referrals": {"de": "Vermittlungen", "en": "Referrals"},
        "case_section_history": {"de": "Verlauf", "en": "History"},
        "case_person_unavailable": {"de": "Personendaten nicht verfügbar", "en": "Person's data unavailable"},
        "case_open_person": {"de": "Zur Person", "en": "Open the person"},
        "case_other_lines": {"de": "Alle Fälle der Person", "en": "All cases of the person"},
        "case_this_one": {"de": "(dieser Fall)", "en": "(this case)"},
        "case_closed_because": {"de": "Geschlossen: {reason}", "en": "Closed: {reason}"},
        "case_handover_due": {
            "de": "Die Person ist 27 geworden (seit {month}): Bitte über den Übergang in die MBE entscheiden.",
            "en": "The person turned 27 ({month}): please decide on the handover to MBE.",
        },
        "field_name": {"de": "Name", "en": "Name"},
        "field_birth": {"de": "Geburtsdatum / -jahr", "en": "Birth date / year"},
        "field_languages": {"de": "Sprachen", "en": "Languages"},
        "field_case_number": {"de": "Fallnummer", "en": "Case number"},
        "field_version": {"de": "Version", "en": "Version"},
        # changes
        "changed_meanwhile": {
            "de": "Der Fall wurde inzwischen von {who} geändert. Die Seite zeigt jetzt den aktuellen Stand; "
            "bitte prüfen und die Änderung erneut senden.",
            "en": "The case was changed meanwhile by {who}. The page now shows its current state; "
            "please check and send your change again.",
        },
        "someone": {"de": "jemand anderem", "en": "someone else"},
        "reload": {"de": "Neu laden", "en": "Reload"},
        "form_has_errors": {"de": "Bitte korrigieren:", "en": "Please correct:"},
        "refused_title": {"de": "Nicht möglich", "en": "Not possible"},
        "done_title": {"de": "Gespeichert", "en": "Saved"},
        "done_consultation_recorded": {"de": "Die Beratung ist erfasst.", "en": "The consultation is recorded."},
        "done_consultation_corrected": {"de": "Die Beratung ist korrigiert.", "en": "The consultation is corrected."},
        "done_goal_set": {"de": "Das Ziel ist gesetzt.", "en": "The goal is set."},
        "done_goal_changed": {"de": "Das Ziel ist geändert.", "en": "The goal is changed."},
        "done_goal_status_changed": {"de": "Der Stand des Ziels ist geändert.", "en": "The goal's status changed."},
        "done_referral_sent": {"de": "Die Vermittlung ist gesendet.", "en": "The referral is sent."},
        "done_referral_withdrawn": {"de": "Die Vermittlung ist zurückgezogen.", "en": "The referral is withdrawn."},
        "done_referral_dismissed": {
            "de": "Die Vermittlung ist als erledigt markiert.",
            "en": "The referral is marked as dealt with.",
        },
        "done_need_recorded": {
            "de": "Der ungedeckte Bedarf ist erfasst.",
            "en": "The unmet need is recorded.",
        },
        "done_case_assigned": {"de": "Der Fall ist zugewiesen.", "en": "The case is assigned."},
        "done_case_transferred": {"de": "Der Fall ist übergeben.", "en": "The case is transferred."},
        "done_case_closed": {"de": "Der Fall ist geschlossen.", "en": "The case is closed."},
        "done_case_reopened": {"de": "Der Fall ist wieder offen.", "en": "The case is open again."},
        "done_case_handed_over": {
            "de": "Der JMD-Fall ist geschlossen und der MBE-Fall eröffnet.",
            "en": "The JMD case is closed and the MBE case opened.",
        },
        "handover_new_case": {"de": "Zum neuen MBE-Fall", "en": "Open the new MBE case"},
        # actions
        "action_assign": {"de": "Zuweisen", "en": "Assign"},
        "action_transfer": {"de": "Übergeben", "en": "Transfer"},
        "action_close": {"de": "Fall schließen", "en": "Close the case"},
        "action_reopen": {"de": "Fall wieder öffnen", "en": "Reopen the case"},
        "action_handover": {"de": "Übergang JMD → MBE", "en": "Handover JMD → MBE"},
        "action_handover_hint": {
            "de": "Schließt diesen JMD-Fall und eröffnet in einem Schritt den MBE-Fall an der gewählten Dienststelle.",
            "en": "Closes this JMD case and opens the MBE case at the chosen office in one step.",
        },
        "label_case_manager": {"de": "Fallmanagerin / Fallmanager", "en": "Case manager"},
        "label_office": {"de": "Dienststelle", "en": "Office"},
        "label_reason": {"de": "Grund", "en": "Reason"},
        "label_keep": {"de": "(unverändert)", "en": "(unchanged)"},
        "label_nobody": {"de": "(noch niemand)", "en": "(nobody yet)"},
        "choose": {"de": "Bitte wählen", "en": "Please choose"},
        # consultations
        "consultations_none": {"de": "Noch keine Beratung erfasst.", "en": "No consultation recorded yet."},
        "consultation_record": {"de": "Beratung erfassen", "en": "Record a consultation"},
        "consultation_correct": {"de": "Korrigieren", "en": "Correct"},
        "consultation_correct_title": {
            "de": "Beratung vom {day} korrigieren",
            "en": "Correct the consultation of {day}",
        },
        "consultation_save": {"de": "Beratung speichern", "en": "Save the consultation"},
        "consultation_save_correction": {"de": "Korrektur speichern", "en": "Save the correction"},
        "label_held_on": {"de": "Datum", "en": "Date"},
        "label_duration": {"de": "Dauer (Minuten)", "en": "Duration (minutes)"},
        "label_topics": {"de": "Themen", "en": "Topics"},
        "label_mode": {"de": "Form", "en": "Mode"},
        "label_language": {"de": "Sprache (Kürzel, z. B. ar)", "en": "Language (code, e.g. ar)"},
        "label_interpreter": {"de": "Mit Dolmetschung", "en": "With an interpreter"},
        "label_family": {"de": "Mitberatene Familienangehörige", "en": "Family members counselled"},
        "label_note": {"de": "Notiz", "en": "Note"},
        "label_held_by": {"de": "Beraten von", "en": "Held by"},
        "mode_in_person": {"de": "persönlich", "en": "in person"},
        "mode_phone": {"de": "telefonisch", "en": "by phone"},
        "mode_video": {"de": "per Video", "en": "by video"},
        "mode_group": {"de": "in der Gruppe", "en": "in a group"},
        "mode_open_office_hours": {"de": "offene Sprechstunde", "en": "open office hours"},
        "consultations_caption": {"de": "Erfasste Beratungen", "en": "Recorded consultations"},
        # plan
        "plan_none": {"de": "Noch kein Ziel gesetzt.", "en": "No goal set yet."},
        "plan_caption": {"de": "Ziele des Integrationsplans", "en": "Goals of the integration plan"},
        "goal_set": {"de": "Ziel setzen", "en": "Set a goal"},
        "goal_save": {"de": "Ziel speichern", "en": "Save the goal"},
        "goal_edit": {"de": "Ändern", "en": "Edit"},
        "goal_edit_title": {"de": "Ziel ändern", "en": "Edit the goal"},
        "goal_save_changes": {"de": "Änderung speichern", "en": "Save the change"},
        "goal_mark_reached": {"de": "Erreicht", "en": "Reached"},
        "goal_mark_dropped": {"de": "Aufgegeben", "en": "Dropped"},
        "goal_mark_open": {"de": "Wieder öffnen", "en": "Open again"},
        "goal_reached_label": {"de": "Ziel „{topic}“ als erreicht markieren", "en": "Mark goal '{topic}' reached"},
        "goal_dropped_label": {"de": "Ziel „{topic}“ als aufgegeben markieren", "en": "Mark goal '{topic}' dropped"},
        "goal_open_label": {"de": "Ziel „{topic}“ wieder öffnen", "en": "Open goal '{topic}' again"},
        "label_topic": {"de": "Thema", "en": "Topic"},
        "label_target_date": {"de": "Zieldatum", "en": "Target date"},
        "label_description": {"de": "Beschreibung", "en": "Description"},
        "goal_status_open": {"de": "offen", "en": "open"},
        "goal_status_reached": {"de": "erreicht", "en": "reached"},
        "goal_status_dropped": {"de": "aufgegeben", "en": "dropped"},
        "col_actions": {"de": "Aktionen", "en": "Actions"},
        # referrals
        "referrals_none": {"de": "Noch keine Vermittlung.", "en": "No referral yet."},
        "referrals_caption": {"de": "Vermittlungen an Partnerstellen", "en": "Referrals to partner agencies"},
        "referral_send": {"de": "An eine Partnerstelle vermitteln", "en": "Refer to a partner agency"},
        "referral_send_button": {"de": "Vermittlung senden", "en": "Send the referral"},
        "referral_consent_hint": {
            "de": "Vor dem Senden prüft das System die Einwilligung (Schweigepflichtentbindung) der Person "
            "für diese Partnerstelle. Nur die Angaben, in deren Weitergabe die Person eingewilligt hat, "
            "erreichen die Stelle.",
            "en": "Before sending, the system checks the person's consent to share their data with this "
            "agency. Only what the person consented to share reaches the agency.",
        },
        "referral_no_consent_title": {"de": "Keine gültige Einwilligung", "en": "No valid consent"},
        "referral_no_consent_explained": {
            "de": "Eine Vermittlung teilt der Partnerstelle mindestens mit, dass die Person zu diesem Thema "
            "Unterstützung braucht. Dafür braucht es eine gültige Einwilligung der Person zur Weitergabe an "
            "diese Stelle (oder an Stellen dieser Art), die das Thema umfasst. Bitte die Einwilligung auf der "
            "Seite der Person erfassen und dann erneut senden.",
            "en": "A referral tells the agency at least that the person needs support on this topic. That "
            "needs the person's valid consent to share with this agency (or agencies of its kind), covering "
            "the topic. Please record the consent on the person's page, then send again.",
        },
        "referral_record_consent": {
            "de": "Einwilligung bei der Person erfassen",
            "en": "Record the consent on the person's page",
        },
        "label_agency": {"de": "Partnerstelle", "en": "Partner agency"},
        "col_agency": {"de": "Partnerstelle", "en": "Partner agency"},
        "col_sent": {"de": "Gesendet", "en": "Sent"},
        "col_due": {"de": "Antwort bis", "en": "Answer due"},
        "referral_status_sent": {"de": "gesendet, Antwort ausstehend", "en": "sent, awaiting answer"},
        "referral_status_accepted": {"de": "angenommen", "en": "accepted"},
        "referral_status_declined": {"de": "abgelehnt", "en": "declined"},
        "referral_status_completed": {"de": "abgeschlossen", "en": "completed"},
        "referral_status_withdrawn": {"de": "zurückgezogen", "en": "withdrawn"},
        "referral_status_expired": {"de": "abgelaufen (keine Antwort)", "en": "expired (no answer)"},
        "referral_action_needed": {"de": "Handlungsbedarf", "en": "Action needed"},
        "referral_withdraw": {"de": "Zurückziehen", "en": "Withdraw"},
        "referral_withdraw_label": {
            "de": "Vermittlung an {agency} zurückziehen",
            "en": "Withdraw the referral to {agency}",
        },
        "referral_dismiss": {"de": "Erledigt", "en": "Dealt with"},
        "referral_dismiss_label": {
            "de": "Vermittlung an {agency} als erledigt markieren",
            "en": "Mark the referral to {agency} as dealt with",
        },
        "need_record": {"de": "Ungedeckten Bedarf erfassen", "en": "Record an unmet need"},
        "need_hint": {
            "de": "Wenn keine Partnerstelle das Thema übernimmt: Der Bedarf zählt im Lückenregister (ohne Namen).",
            "en": "When no partner agency takes the topic: the need counts in the gap register (without names).",
        },
        "need_save": {"de": "Bedarf erfassen", "en": "Record the need"},
        "label_cause": {"de": "Ursache", "en": "Cause"},
        "label_agency_kind": {"de": "Art der Stelle (falls bekannt)", "en": "Kind of agency (if known)"},
        "cause_no_agency": {"de": "Keine Stelle bietet das an", "en": "No agency offers it"},
        "cause_no_capacity": {"de": "Stellen sind ausgelastet", "en": "Agencies are full"},
        # history
        "history_caption": {"de": "Was wann von wem geändert wurde", "en": "What was changed when, by whom"},
        "col_when": {"de": "Wann", "en": "When"},
        "col_what": {"de": "Was", "en": "What"},
        "col_who": {"de": "Wer", "en": "Who"},
        "history_by_system": {"de": "automatisch (anderer Dienst)", "en": "automatic (another service)"},
        "event_CaseOpened": {"de": "Fall eröffnet", "en": "Case opened"},
        "event_CaseAssigned": {"de": "Zugewiesen an {case_manager_id}", "en": "Assigned to {case_manager_id}"},
        "event_CaseTransferred": {"de": "Übergeben an {to_office_id}", "en": "Transferred to {to_office_id}"},
        "event_CaseClosed": {"de": "Geschlossen ({reason})", "en": "Closed ({reason})"},
        "event_CaseReopened": {"de": "Wieder geöffnet", "en": "Reopened"},
        "event_ConsultationRecorded": {"de": "Beratung erfasst", "en": "Consultation recorded"},
        "event_ConsultationCorrected": {"de": "Beratung korrigiert", "en": "Consultation corrected"},
        "event_PlanGoalSet": {"de": "Ziel gesetzt: {topic_code}", "en": "Goal set: {topic_code}"},
        "event_PlanGoalStatusChanged": {"de": "Ziel: {status}", "en": "Goal: {status}"},
        "event_PlanGoalDescribed": {"de": "Zielbeschreibung geändert", "en": "Goal description changed"},
        "event_ReferralSent": {"de": "Vermittelt an {agency_id}", "en": "Referred to {agency_id}"},
        "event_ReferralAccepted": {"de": "Vermittlung angenommen", "en": "Referral accepted"},
        "event_ReferralDeclined": {"de": "Vermittlung abgelehnt", "en": "Referral declined"},
        "event_ReferralCompleted": {"de": "Vermittlung abgeschlossen", "en": "Referral completed"},
        "event_ReferralWithdrawn": {"de": "Vermittlung zurückgezogen", "en": "Referral withdrawn"},
        "event_ReferralExpired": {"de": "Vermittlung abgelaufen", "en": "Referral expired"},
        "event_ServiceLineHandoverDue": {"de": "Übergang mit 27 fällig", "en": "Handover at 27 due"},
        "event_ClientsMerged": {"de": "Doppelte Personen zusammengeführt", "en": "Duplicate persons merged"},
        "event_ClientErased": {"de": "Personendaten gelöscht", "en": "Person's data erased"},
    }
)


def router(web: WebApp) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    # --- the lists --------------------------------------------------------------------------

    @pages.get("/cases", response_class=HTMLResponse)
    async def case_list(request: Request) -> HTMLResponse:
        visitor = await web.visitor(request)
        query = request.query_params
        default_scope = "mine" if visitor.has("case_manager") else "office"
        filters = {
            "scope": query.get("scope") if query.get("scope") in ("mine", "office") else default_scope,
            "status": _one_of(query.get("status"), ("open", "closed", "all"), "open"),
            "service_line": _one_of(query.get("service_line"), [line.value for line in ServiceLine], ""),
            "topic": query.get("topic", "")[:100],
            "handover_due": "1" if query.get("handover_due") == "1" else "",
        }
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if filters["scope"] == "mine":
            params["case_manager_id"] = visitor.actor.subject
        elif len(visitor.actor.offices) == 1:
            params["office_id"] = next(iter(visitor.actor.offices))
        for name in ("status", "service_line", "topic"):
            if filters[name] and filters[name] != "all":
                params[name] = filters[name]
        if filters["handover_due"]:
            params["handover_due"] = "true"
        cursor = query.get("cursor")
        if cursor:
            params["cursor"] = cursor[:500]
        page = await web.backend.get(visitor, "cases", "/cases", params=params)
        topics = await web.backend.get(visitor, "cases", "/topics")
        names, names_missing = await _names(web, visitor, [case["client_id"] for case in page["items"]])
        staff = await _staff_names(web, visitor)
        next_url = None
        if page.get("next_cursor"):
            next_url = "/cases?" + urlencode({**_non_empty(filters), "cursor": page["next_cursor"]})
        response = web.pages.render(
            request,
            visitor,
            "cases_list.html",
            cases=page["items"],
            names=names,
            names_missing=names_missing,
            staff=staff,
            filters=filters,
            topics=topics,
            topic_labels=_labels(topics, visitor.language),
            service_lines=[line.value for line in ServiceLine],
            next_url=next_url,
            first_url="/cases?" + urlencode(_non_empty(filters)) if cursor else None,
        )
        return response

    # --- the case ---------------------------------------------------------------------------

    @pages.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case_page(request: Request, case_id: UUID) -> HTMLResponse:
        visitor = await web.visitor(request)
        done = request.query_params.get("done")
        opened = request.query_params.get("opened")
        return await _show(
            web,
            request,
            visitor,
            case_id,
            done=done if done in DONE else None,
            opened_case=_uuid_or_none(opened),
        )

    @pages.get("/cases/{case_id}/{rest:path}", response_class=RedirectResponse)
    async def back_to_case(case_id: UUID, rest: str) -> RedirectResponse:
        """A form's address opened by GET (the language switch or the address bar after a refused
        form): the case page."""
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    # consultations

    @pages.post("/cases/{case_id}/consultations", response_model=None)
    async def record_consultation(request: Request, case_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body = _consultation_body(form)
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            "record_consultation",
            "cases",
            "POST",
            f"/cases/{case_id}/consultations",
            body,
            done="consultation_recorded",
            idempotent=True,
            anchor="consultations",
        )

    @pages.post("/cases/{case_id}/consultations/{consultation_id}", response_model=None)
    async def correct_consultation(request: Request, case_id: UUID, consultation_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body = _consultation_body(form)
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            f"correct_{consultation_id}",
            "cases",
            "PATCH",
            f"/cases/{case_id}/consultations/{consultation_id}",
            body,
            done="consultation_corrected",
            anchor="consultations",
        )

    # plan goals

    @pages.post("/cases/{case_id}/goals", response_model=None)
    async def set_goal(request: Request, case_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body = _goal_body(form, with_empty=False)
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            "set_goal",
            "cases",
            "POST",
            f"/cases/{case_id}/plan/goals",
            body,
            done="goal_set",
            idempotent=True,
            anchor="plan",
        )

    @pages.post("/cases/{case_id}/goals/{goal_id}", response_model=None)
    async def edit_goal(request: Request, case_id: UUID, goal_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body = _goal_body(form, with_empty=True)
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            f"goal_{goal_id}",
            "cases",
            "PATCH",
            f"/cases/{case_id}/plan/goals/{goal_id}",
            body,
            done="goal_changed",
            anchor="plan",
        )

    @pages.post("/cases/{case_id}/goals/{goal_id}/status", response_model=None)
    async def goal_status(request: Request, case_id: UUID, goal_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body = {"status": str(form.get("status", ""))}
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            f"goal_status_{goal_id}",
            "cases",
            "POST",
            f"/cases/{case_id}/plan/goals/{goal_id}/status",
            body,
            done="goal_status_changed",
            anchor="plan",
        )

    # referrals

    @pages.post("/cases/{case_id}/referrals", response_model=None)
    async def send_referral(request: Request, case_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body = {
            "case_id": str(case_id),
            "agency_id": str(form.get("agency_id", "")),
            "topic_code": str(form.get("topic_code", "")),
        }
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            "send_referral",
            "referrals",
            "POST",
            "/referrals",
            body,
            done="referral_sent",
            idempotent=True,
            anchor="referrals",
            if_match=False,
        )

    @pages.post("/cases/{case_id}/referrals/{referral_id}/{what}", response_model=None)
    async def referral_step(request: Request, case_id: UUID, referral_id: UUID, what: str) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        if what not in ("withdraw", "dismiss"):
            raise HTTPException(404)
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            f"referral_{referral_id}",
            "referrals",
            "POST",
            f"/referrals/{referral_id}/{what}",
            {},
            done="referral_withdrawn" if what == "withdraw" else "referral_dismissed",
            anchor="referrals",
            if_match=False,
        )

    @pages.post("/cases/{case_id}/unmet-needs", response_model=None)
    async def record_need(request: Request, case_id: UUID) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body: dict[str, Any] = {
            "case_id": str(case_id),
            "topic_code": str(form.get("topic_code", "")),
            "cause": str(form.get("cause", "")),
        }
        if form.get("agency_kind"):
            body["agency_kind"] = str(form.get("agency_kind"))
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            "record_need",
            "referrals",
            "POST",
            "/unmet-needs",
            body,
            done="need_recorded",
            idempotent=True,
            anchor="referrals",
            if_match=False,
        )

    # the case itself

    @pages.post("/cases/{case_id}/{what}", response_model=None)
    async def case_action(request: Request, case_id: UUID, what: str) -> Response:
        visitor = await web.visitor(request)
        form = await checked_form(request, visitor)
        body: dict[str, Any]
        if what == "assign":
            body = {"case_manager_id": str(form.get("case_manager_id", ""))}
            done = "case_assigned"
        elif what == "transfer":
            body = {"reason": str(form.get("reason", ""))}
            for name in ("to_office_id", "to_case_manager_id"):
                if form.get(name):
                    body[name] = str(form.get(name))
            done = "case_transferred"
        elif what == "close":
            body = {"reason": str(form.get("reason", ""))}
            done = "case_closed"
        elif what == "reopen":
            body = {}
            done = "case_reopened"
        elif what == "handover":
            body = {"office_id": str(form.get("office_id", "")), "reason": str(form.get("reason") or "handed_over")}
            if form.get("case_manager_id"):
                body["case_manager_id"] = str(form.get("case_manager_id"))
            done = "case_handed_over"
        else:
            raise HTTPException(404)
        return await _change(
            web,
            request,
            visitor,
            case_id,
            form,
            what,
            "cases",
            "POST",
            f"/cases/{case_id}/{what}",
            body,
            done=done,
            anchor="actions",
        )

    return pages


# --- changing -------------------------------------------------------------------------------


async def _change(
    web: WebApp,
    request: Request,
    visitor: Visitor,
    case_id: UUID,
    form: FormData,
    form_name: str,
    service: str,
    method: str,
    path: str,
    body: dict[str, Any],
    *,
    done: str,
    anchor: str,
    idempotent: bool = False,
    if_match: bool = True,
) -> Response:
    """Send one change; after success back to the case page (303), else the case page again with
    the answer: field errors at the form's fields, a version conflict as "changed meanwhile", any
    other refusal (403, 409) in the service's words at the form."""
    headers: dict[str, str] = {}
    version = str(form.get("version", ""))
    if if_match and version.isdigit():
        headers["If-Match"] = f'"{version}"'
    if idempotent:
        headers["Idempotency-Key"] = idempotency_key(form_id(form), body)
    response = await web.backend.call(visitor, service, method, path, json=body, headers=headers)
    if response.status_code < 400:
        target = f"/cases/{case_id}?done={done}"
        if done == "case_handed_over":
            target += f"&opened={response.json()['opened']['case_id']}"
        return RedirectResponse(f"{target}#{anchor}", status_code=303)
    refused = Refused(response)
    values = {key: form.getlist(key) if key == "topics" else str(form.get(key, "")) for key in form}
    values.pop("csrf_token", None)
    return await _show(
        web,
        request,
        visitor,
        case_id,
        status_code=refused.status,
        failed=FailedForm(form_name, values, refused),
    )


class FailedForm:
    """A form the service refused, to show again with what was typed and why."""

    def __init__(self, name: str, values: Mapping[str, Any], refused: Refused) -> None:
        self.name = name
        self.values = dict(values)
        self.refused = refused
        self.conflict = refused.code == "version_conflict"
        self.no_consent = refused.code == "no_sharing_consent"
        # The form's own fields (a list element's error goes to its list: topics.0 -> topics).
        self.errors: dict[str, str] = {}
        for field, message in refused.fields.items():
            self.errors.setdefault(field.split(".")[0], message)
        self.message = "" if self.errors and not refused.message else refused.message


# --- showing the case -----------------------------------------------------------------------


async def _show(
    web: WebApp,
    request: Request,
    visitor: Visitor,
    case_id: UUID,
    *,
    status_code: int = 200,
    failed: FailedForm | None = None,
    done: str | None = None,
    opened_case: UUID | None = None,
) -> HTMLResponse:
    # The overview first: a 403 or 404 here is the whole page's answer (the error page).
    overview = await web.backend.get(visitor, "cases", f"/cases/{case_id}/overview")
    case = overview["case"]
    topics = await web.backend.get(visitor, "cases", "/topics")
    reasons = await web.backend.get(visitor, "cases", "/reasons")
    offices = await web.backend.get(visitor, "intake", "/offices")
    agencies = await web.backend.get(visitor, "referrals", "/agencies")
    referrals = await _referrals(web, visitor, case_id, overview["referrals"])
    staff = {member["staff_id"]: member["display_name"] for office in offices for member in office["staff"]}
    office_names = {office["office_id"]: office["name"] for office in offices}
    agency_names = {agency["agency_id"]: agency["name"] for agency in agencies}
    language = visitor.language
    topic_labels = _labels(topics, language)
    reason_labels = {
        kind: {r["code"]: r["label_de"] if language == "de" else r["label_en"] for r in reasons[kind]}
        for kind in ("close", "transfer")
    }
    person = overview.get("person") or None
    name = _person_name(person, case["client_id"], language)
    changed_by = None
    if failed is not None and failed.conflict:
        acted = [entry["acted_by"] for entry in overview["history"] if entry.get("acted_by")]
        changed_by = staff.get(acted[-1], acted[-1]) if acted else None
    return web.pages.render(
        request,
        visitor,
        "cases_case.html",
        status_code=status_code,
        overview=overview,
        case=case,
        person=person,
        name=name,
        version=case["version"],
        topics=topics,
        topic_labels=topic_labels,
        reasons=reasons,
        reason_labels=reason_labels,
        offices=offices,
        office_names=office_names,
        case_office_staff=[
            member for office in offices if office["office_id"] == case["office_id"] for member in office["staff"]
        ],
        agencies=agencies,
        agency_names=agency_names,
        referrals=referrals,
        staff=staff,
        failed=failed,
        changed_by=changed_by,
        done=done,
        opened_case=opened_case,
        modes=[mode.value for mode in ConsultationMode],
        agency_kinds=[kind.value for kind in AgencyKind],
        need_causes=NEED_CAUSES,
        sections=SECTIONS,
        today=date.today().isoformat(),
        new_form_id=lambda: str(uuid.uuid4()),
        history_text=lambda entry: _history_text(
            entry,
            language,
            {
                "staff": staff,
                "office": office_names,
                "agency": agency_names,
                "topic": topic_labels,
                "reason": {**reason_labels["transfer"], **reason_labels["close"]},
            },
        ),
        form_state=lambda name, defaults=None: _form_state(failed, name, defaults or {}),
        when=lambda value: _when(value, language),
        day=lambda value: _day(value, language),
    )


class FormState:
    """What one form of the page shows: the values typed (after a refusal) or its defaults, the
    field errors, the refusal's message, and a fresh id for its Idempotency-Key."""

    def __init__(self, values: Mapping[str, Any], errors: Mapping[str, str], message: str, failed: bool) -> None:
        self.values = values
        self.errors = errors
        self.message = message
        self.failed = failed
        self.form_id = str(values.get("form_id") or uuid.uuid4())


def _form_state(failed: FailedForm | None, name: str, defaults: Mapping[str, Any]) -> FormState:
    if failed is None or failed.name != name:
        return FormState(defaults, {}, "", False)
    # A version conflict is said once at the top of the page; the form keeps what was typed.
    message = "" if failed.conflict else failed.message
    return FormState({**defaults, **failed.values}, failed.errors, message, True)


def _when(value: str | None, language: str) -> str:
    """A moment as the city's clock shows it."""
    if not value:
        return ""
    moment = datetime.fromisoformat(str(value)).astimezone(CITY_TIME)
    return moment.strftime("%d.%m.%Y %H:%M" if language == "de" else "%Y-%m-%d %H:%M")


def _day(value: str | None, language: str) -> str:
    if not value:
        return ""
    day = date.fromisoformat(str(value)[:10])
    return day.strftime("%d.%m.%Y" if language == "de" else "%Y-%m-%d")


async def _referrals(web: WebApp, visitor: Visitor, case_id: UUID, known: list[dict]) -> list[dict]:
    """The case's referrals as referrals has them now (with what needs action); what cases
    learned from the events when referrals does not answer this person."""
    try:
        return await web.backend.get(visitor, "referrals", "/referrals", params={"case_id": str(case_id)})
    except Refused:
        return [{**referral, "action_needed": None, "due_at": referral.get("answer_due_on")} for referral in known]


async def _names(web: WebApp, visitor: Visitor, client_ids: list[str]) -> tuple[dict[str, dict], bool]:
    """The names of a page of cases, and whether intake withheld them (the page says so)."""
    found = await web.backend.person_names(visitor, client_ids)
    return (found or {}), found is None


async def _staff_names(web: WebApp, visitor: Visitor) -> dict[str, str]:
    try:
        offices = await web.backend.get(visitor, "intake", "/offices")
    except Refused:
        return {}
    return {member["staff_id"]: member["display_name"] for office in offices for member in office["staff"]}


# --- small helpers --------------------------------------------------------------------------


def _history_text(entry: Mapping[str, Any], language: str, names: Mapping[str, Mapping[str, str]]) -> str:
    """What an entry of the history says, with names for the ids and codes it mentions."""
    from web.texts import TEXTS, translate

    key = f"event_{entry['event']}"
    if key not in TEXTS:
        return str(entry["event"])
    data = entry.get("data") or {}
    params = {}
    for name, kind in HISTORY_PARAMETERS.items():
        value = str(data.get(name) or "?")
        if kind == "goal_status":
            params[name] = translate(f"goal_status_{value}", language)
        else:
            params[name] = names.get(kind, {}).get(value, value)
    return translate(key, language, **params)


def _person_name(person: Mapping[str, Any] | None, client_id: str, language: str) -> str:
    from web.texts import translate

    if person and person.get("family_name"):
        return f"{person.get('given_name') or ''} {person['family_name']}".strip()
    return translate("unknown_person", language, short=str(client_id)[:8])


def _consultation_body(form: FormData) -> dict[str, Any]:
    """The consultation as the API takes it; a correction sends every field of its form (the
    service changes only what differs)."""
    body: dict[str, Any] = {
        "held_on": str(form.get("held_on", "")),
        "duration_minutes": _number(form.get("duration_minutes")),
        "topics": [str(topic) for topic in form.getlist("topics")],
        "mode": str(form.get("mode") or "in_person"),
        "interpreter_used": form.get("interpreter_used") == "on",
        "family_members_counselled": _number(form.get("family_members_counselled")) or 0,
        "language": str(form.get("language", "")).strip().lower() or None,
        "note": str(form.get("note", "")).strip() or None,
    }
    return body


def _goal_body(form: FormData, *, with_empty: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"topic_code": str(form.get("topic_code", ""))}
    target = str(form.get("target_date", "")).strip()
    description = str(form.get("description", "")).strip()
    if target or with_empty:
        body["target_date"] = target or None
    if description or with_empty:
        body["description"] = description or None
    return body


def _number(value: object) -> int | str | None:
    """A number typed in a form; what is not a number goes to the service as typed (its 422
    names the field)."""
    text = str(value or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def _labels(topics: list[dict], language: str) -> dict[str, str]:
    return {topic["code"]: topic["label_de"] if language == "de" else topic["label_en"] for topic in topics}


def _one_of(value: str | None, allowed: Any, default: str) -> str:
    return value if value in allowed else default


def _non_empty(values: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in values.items() if value}


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
