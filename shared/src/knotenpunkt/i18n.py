"""Messages for staff: German by default, English via Accept-Language.

Pydantic's own messages are English; the common error types are translated here, and
domain rules raise with a message code from the catalogue.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LANGUAGE = "de"
LANGUAGES = ("de", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "missing": {"de": "Dieses Feld ist erforderlich.", "en": "This field is required."},
    "string_too_short": {"de": "Bitte ausfüllen.", "en": "Please fill in."},
    "string_too_long": {
        "de": "Der Text ist zu lang (höchstens {max_length} Zeichen).",
        "en": "The text is too long (at most {max_length} characters).",
    },
    "date_from_datetime_parsing": {
        "de": "Bitte ein Datum im Format JJJJ-MM-TT angeben.",
        "en": "Please give a date as YYYY-MM-DD.",
    },
    "date_parsing": {"de": "Bitte ein Datum im Format JJJJ-MM-TT angeben.", "en": "Please give a date as YYYY-MM-DD."},
    "date_type": {"de": "Bitte ein Datum im Format JJJJ-MM-TT angeben.", "en": "Please give a date as YYYY-MM-DD."},
    "int_parsing": {"de": "Bitte eine ganze Zahl angeben.", "en": "Please give a whole number."},
    "int_type": {"de": "Bitte eine ganze Zahl angeben.", "en": "Please give a whole number."},
    "greater_than_equal": {"de": "Der Wert muss mindestens {ge} sein.", "en": "The value must be at least {ge}."},
    "less_than_equal": {"de": "Der Wert darf höchstens {le} sein.", "en": "The value must be at most {le}."},
    "uuid_parsing": {"de": "Keine gültige Kennung (UUID).", "en": "Not a valid id (UUID)."},
    "enum": {"de": "Erlaubt sind: {expected}.", "en": "Allowed values: {expected}."},
    "extra_forbidden": {"de": "Dieses Feld ist unbekannt.", "en": "This field is unknown."},
    "json_invalid": {"de": "Die Anfrage ist kein gültiges JSON.", "en": "The request is not valid JSON."},
    "model_attributes_type": {"de": "Ein JSON-Objekt wird erwartet.", "en": "A JSON object is expected."},
    "string_type": {"de": "Bitte einen Text angeben.", "en": "Please give a text."},
    "list_type": {"de": "Eine Liste wird erwartet.", "en": "A list is expected."},
    "value_error": {"de": "Ungültiger Wert.", "en": "Invalid value."},
    "invalid": {"de": "Ungültige Eingabe.", "en": "Invalid input."},
    "validation_failed": {
        "de": "Die Eingaben sind unvollständig oder ungültig.",
        "en": "The input is incomplete or invalid.",
    },
    "not_found": {"de": "{what} wurde nicht gefunden.", "en": "{what} was not found."},
    "idempotency_key_reused": {
        "de": "Dieser Idempotency-Key wurde bereits für eine andere Anfrage verwendet.",
        "en": "This Idempotency-Key was already used for a different request.",
    },
    # Bad HTTP input, refused once for every service (knotenpunkt.request_guard, knotenpunkt.http).
    "control_character": {
        "de": "Das Steuerzeichen {character} ist hier nicht erlaubt (Zeilenumbruch und Tabulator nur in "
        "längeren Freitexten wie Notizen).",
        "en": "The control character {character} is not allowed here (line breaks and tabs only in longer "
        "free texts such as notes).",
    },
    "invalid_character": {
        "de": "Der Text enthält ein ungültiges Unicode-Zeichen ({character}).",
        "en": "The text contains an invalid Unicode character ({character}).",
    },
    "body_too_large": {
        "de": "Die Anfrage ist zu groß (höchstens {max_bytes} Bytes).",
        "en": "The request is too large (at most {max_bytes} bytes).",
    },
    "bad_request": {
        "de": "Die Anfrage konnte nicht gelesen werden (z. B. kein gültiges UTF-8).",
        "en": "The request could not be read (e.g. not valid UTF-8).",
    },
    "unknown_route": {
        "de": "Diese Adresse gibt es in der Schnittstelle nicht: {method} {path}",
        "en": "This address does not exist in the API: {method} {path}",
    },
    "method_not_allowed": {
        "de": "Die Methode {method} ist für diese Adresse nicht erlaubt (erlaubt: {allowed}).",
        "en": "The method {method} is not allowed for this address (allowed: {allowed}).",
    },
    "http_error": {
        "de": "Die Anfrage kann nicht bearbeitet werden (HTTP {status}).",
        "en": "The request cannot be processed (HTTP {status}).",
    },
    "internal_error": {
        "de": "Ein interner Fehler ist aufgetreten. Bitte später erneut versuchen.",
        "en": "An internal error occurred. Please try again later.",
    },
}


def negotiate(accept_language: str | None) -> str:
    """The first supported language in the Accept-Language header, else German."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower().split("-")[0]))
    for _quality, language in sorted(ranked, key=lambda item: -item[0]):
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def message(code: str, language: str, /, **params: Any) -> str:
    texts = CATALOGUE.get(code) or CATALOGUE["invalid"]
    text = texts.get(language) or texts[DEFAULT_LANGUAGE]
    try:
        return text.format(**params)
    except (KeyError, IndexError):
        return text


def register_messages(messages: dict[str, dict[str, str]]) -> None:
    """Services add their own domain messages at import time."""
    for code, texts in messages.items():
        if set(texts) != set(LANGUAGES):
            raise ValueError(f"message {code} needs exactly the languages {LANGUAGES}")
        CATALOGUE[code] = texts
