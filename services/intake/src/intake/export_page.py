"""The Art. 15 export as a readable German HTML page: the same content as the JSON, rendered on
the server, every value escaped, no scripts and no external assets (it is handed to the person
or printed)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi.encoders import jsonable_encoder

from intake.disclosure import PersonExport

# German labels of the fields a reader meets most; any other key is shown as stored.
LABELS = {
    "client_id": "Kennung der Person",
    "family_name": "Familienname",
    "given_name": "Vorname(n)",
    "name_variants": "Andere Schreibweisen",
    "phonetic_names": "Suchschlüssel der Namen (Kölner Phonetik)",
    "birth_date": "Geburtsdatum",
    "birth_year": "Geburtsjahr",
    "gender": "Geschlecht",
    "nationalities": "Staatsangehörigkeiten",
    "languages": "Sprachen",
    "counselling_language": "Beratungssprache",
    "phone": "Telefon",
    "email": "E-Mail",
    "street": "Straße",
    "postcode": "Postleitzahl",
    "city": "Ort",
    "district": "Stadtteil",
    "household_members": "Haushalt",
    "residence_status": "Aufenthaltsstatus",
    "arrival_date": "Einreise",
    "access_route": "Zugangsweg",
    "office_id": "Beratungsstelle",
    "service_line": "Beratungsdienst",
    "service_lines": "Beratungsdienste",
    "registered_at": "Angemeldet am",
    "merged_into": "Zusammengeführt mit",
    "version": "Version",
    "handover_raised_on": "Übergabe JMD → MBE angestoßen am",
    "erased_at": "Gelöscht am",
    "consent_id": "Kennung der Einwilligung",
    "purpose": "Zweck",
    "agency_id": "Partnerstelle",
    "agency_kind": "Art der Stelle",
    "data_categories": "Datenarten",
    "text_version": "Fassung des Einwilligungstextes",
    "given_on": "Erteilt am",
    "valid_until": "Gültig bis",
    "withdrawn_on": "Widerrufen am",
    "withdrawn_by": "Widerruf erfasst von",
    "expired_on": "Abgelaufen am",
    "recorded_by": "Erfasst von",
    "recorded_at": "Erfasst am",
    "at": "Zeitpunkt",
    "service": "Dienst",
    "actor_id": "Wer",
    "roles": "Rollen",
    "offices": "Dienststellen",
    "via": "Über Dienst",
    "action": "Vorgang",
    "route": "Aufruf",
    "purpose_of_access": "Zweck",
    "outcome": "Ergebnis",
}
# Audit columns shown in the page's table (the JSON has them all).
AUDIT_COLUMNS = ("at", "service", "actor_id", "roles", "via", "action", "method", "route", "purpose", "outcome")


def _label(key: str) -> str:
    return escape(LABELS.get(key, key))


def _value(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, dict):
        return _definitions(value)
    if isinstance(value, list):
        if all(isinstance(item, dict) for item in value):
            return _table(value)
        return escape(", ".join(str(item) for item in value))
    if isinstance(value, bool):
        return "ja" if value else "nein"
    return escape(str(value))


def _definitions(mapping: dict[str, Any]) -> str:
    rows = "".join(f"<dt>{_label(key)}</dt><dd>{_value(value)}</dd>" for key, value in mapping.items())
    return f"<dl>{rows}</dl>"


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> str:
    if not rows:
        return "<p>Keine Einträge.</p>"
    keys = list(columns or dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{_label(key)}</th>" for key in keys)
    body = "".join("<tr>" + "".join(f"<td>{_value(row.get(key))}</td>" for key in keys) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{content}</section>"


def render(answer: PersonExport) -> str:
    data = jsonable_encoder(answer)
    intake = data["intake"]
    sections = [
        _section("Angaben zur Person (Anmeldung, intake)", "".join(_definitions(r) for r in intake["records"])),
        _section("Einwilligungen mit Verlauf", _table(intake["consents"])),
    ]
    for key, title in (
        ("cases", "Fälle, Beratungen und Hilfeplan (cases)"),
        ("referrals", "Überweisungen (referrals)"),
    ):
        part = data[key]
        sections.append(
            _section(
                title,
                _definitions(part) if part is not None else "<p>Dieser Teil fehlt: der Dienst antwortete nicht.</p>",
            )
        )
    trail = data["audit"]
    sections.append(
        _section(
            "Wer hat wann auf die Daten zugegriffen (Protokoll)",
            f"<p>Dienste: {escape(', '.join(trail['services']))}</p>" + _table(trail["entries"], AUDIT_COLUMNS),
        )
    )
    missing = (
        '<p class="incomplete"><strong>Unvollständig:</strong> '
        + escape(", ".join(data["incomplete"]))
        + " (diese Dienste antworteten nicht; bitte die Auskunft später erneut anfordern).</p>"
        if data["incomplete"]
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">'
        "<title>Auskunft nach Art. 15 DSGVO</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}dt{font-weight:bold}dd{margin:0 0 .4em 1.5em}"
        "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #999;padding:.2em .4em;"
        "vertical-align:top;text-align:left}.incomplete{color:#a00}</style></head><body>"
        "<h1>Auskunft über die gespeicherten Daten (Art. 15 DSGVO)</h1>"
        f"<p>Kennung der Person: {escape(str(data['client_id']))}<br>"
        f"Erstellt am: {escape(str(data['exported_at']))}</p>" + missing + "".join(sections) + "</body></html>"
    )
