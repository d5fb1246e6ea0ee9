"""The words on the pages, German first and English switchable. Each page module registers its
own texts (`register`); templates call `t("key", name=...)`."""

from __future__ import annotations

from typing import Any

LANGUAGES = ("de", "en")
DEFAULT = "de"
TEXTS: dict[str, dict[str, str]] = {}


def register(texts: dict[str, dict[str, str]]) -> None:
    for key, variants in texts.items():
        if set(variants) != set(LANGUAGES):
            raise ValueError(f"text {key!r} needs exactly {LANGUAGES}")
        TEXTS[key] = variants


def translate(key: str, language: str, **params: Any) -> str:
    variants = TEXTS.get(key)
    if variants is None:
        return key  # visible in the page and caught by the page tests, never a crash
    text = variants.get(language) or variants[DEFAULT]
    return text.format(**params) if params else text


def pick_language(stored: str | None, accept_language: str | None) -> str:
    if stored in LANGUAGES:
        return stored  # type: ignore[return-value]
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT


register(
    {
        "app_name": {"de": "Knotenpunkt", "en": "Knotenpunkt"},
        "app_tagline": {"de": "Integrationsnetzwerk Duisburg", "en": "Duisburg integration network"},
        "skip_to_content": {"de": "Zum Inhalt springen", "en": "Skip to content"},
        "sign_in": {"de": "Anmelden", "en": "Sign in"},
        "sign_out": {"de": "Abmelden", "en": "Sign out"},
        "signed_in_as": {"de": "Angemeldet als {name}", "en": "Signed in as {name}"},
        "language_switch": {"de": "English", "en": "Deutsch"},
        "language_switch_label": {"de": "Switch to English", "en": "Auf Deutsch umschalten"},
        "main_navigation": {"de": "Hauptnavigation", "en": "Main navigation"},
        "nav_start": {"de": "Start", "en": "Start"},
        "nav_find_person": {"de": "Person finden", "en": "Find a person"},
        "nav_cases": {"de": "Fälle", "en": "Cases"},
        "nav_inbox": {"de": "Posteingang", "en": "Inbox"},
        "nav_figures": {"de": "Zahlen", "en": "Figures"},
        "nav_audit": {"de": "Zugriffe", "en": "Access log"},
        "nav_admin": {"de": "Stammdaten", "en": "Reference data"},
        "role_intake_staff": {"de": "Anmeldung", "en": "Intake"},
        "role_case_manager": {"de": "Fallmanagement", "en": "Case management"},
        "role_office_lead": {"de": "Leitung", "en": "Office lead"},
        "role_coordinator": {"de": "Koordination", "en": "Coordination"},
        "role_data_protection_officer": {"de": "Datenschutz", "en": "Data protection"},
        "role_admin": {"de": "Administration", "en": "Administration"},
        "role_agency_staff": {"de": "Partnerstelle", "en": "Partner agency"},
        "error_title": {"de": "Das hat nicht geklappt", "en": "That did not work"},
        "error_forbidden_title": {"de": "Kein Zugriff", "en": "No access"},
        "error_not_found_title": {"de": "Nicht gefunden", "en": "Not found"},
        "error_unavailable": {
            "de": "Ein Dienst antwortet gerade nicht. Bitte in einem Moment erneut versuchen.",
            "en": "A service does not answer right now. Please try again in a moment.",
        },
        "error_internal": {
            "de": "Ein unerwarteter Fehler ist aufgetreten. Er wurde protokolliert (Vorgangsnummer {correlation_id}).",
            "en": "An unexpected error occurred. It has been logged (reference {correlation_id}).",
        },
        "error_form_expired": {
            "de": "Das Formular ist abgelaufen oder wurde von anderer Stelle gesendet. Bitte die Seite neu laden.",
            "en": "The form has expired or was sent from elsewhere. Please reload the page.",
        },
        "back_to_start": {"de": "Zur Startseite", "en": "Back to the start page"},
        "signed_out_title": {"de": "Abgemeldet", "en": "Signed out"},
        "signed_out_text": {"de": "Sie sind abgemeldet.", "en": "You are signed out."},
        "reference": {"de": "Vorgangsnummer", "en": "Reference"},
    }
)
