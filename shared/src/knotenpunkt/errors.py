"""Domain errors: what a use case raises when a rule says no.

Use cases never speak HTTP. They raise one of these; the HTTP layer maps them to a status once
(`knotenpunkt.http.install_error_handlers`): NotFound 404, Gone 410, Conflict 409,
Invalid 422, PreconditionRequired 428. A consumer that meets one in an event handler
dead-letters the event with the error's code as the reason (the event can never apply).

Each error names a message code from the catalogue (`knotenpunkt.i18n`), so the answer is
German or English as the caller asks. Parameters may be {"de": ..., "en": ...} pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FieldError = tuple[str, str, dict[str, Any]]  # (field path, message code, message params)


class DomainError(Exception):
    """Base of every rule-based refusal. `status_code` is the HTTP status it maps to."""

    status_code = 400

    def __init__(
        self,
        code: str,
        fields: Iterable[FieldError] | None = None,
        details: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.params = params
        # (field path, message code, message params)
        self.fields: list[FieldError] = list(fields or [])
        # Extra keys of the answer (e.g. the candidates of a duplicate warning).
        self.details: dict[str, Any] = dict(details or {})


class NotFound(DomainError):
    status_code = 404

    def __init__(self, what_de: str, what_en: str) -> None:
        super().__init__("not_found", what={"de": what_de, "en": what_en})


class Gone(DomainError):
    """The record existed but its content was erased on the person's request."""

    status_code = 410


class Conflict(DomainError):
    """The current state does not allow this (a closed case, an open case exists, ...)."""

    status_code = 409


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule, reported at its field(s)."""

    status_code = 422

    def __init__(self, field: str, code: str, **params: Any) -> None:
        super().__init__("validation_failed", fields=[(field, code, params)])
        self.field = field
        self.field_code = code

    @classmethod
    def at(cls, errors: Iterable[FieldError]) -> Invalid:
        """Several field errors in one answer."""
        errors = list(errors)
        first = errors[0]
        invalid = cls(first[0], first[1], **first[2])
        invalid.fields = errors
        return invalid


class PreconditionRequired(DomainError):
    """A change that must name the version it is based on (If-Match) did not."""

    status_code = 428


class Unavailable(DomainError):
    """Something this use case needs (another service) does not answer now; try again later."""

    status_code = 503


class Unauthenticated(DomainError):
    """No credentials, or credentials that cannot be trusted (expired, forged, for another
    audience or issuer): 401. `code` names which (`token_missing`, `token_expired`, ...)."""

    status_code = 401


class Forbidden(DomainError):
    """The signed-in person (or service, or agency) may not do this: 403 with the reason.

    `code` names the reason (`forbidden_role`, `forbidden_office`, ...); `action` is the
    permission asked for (knotenpunkt.policy.Action), kept for the audit trail."""

    status_code = 403

    def __init__(self, code: str, action: str, **params: Any) -> None:
        super().__init__(code, action=action, **params)
        self.action = action
