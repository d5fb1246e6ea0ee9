"""The person summary for the case overview, fetched from intake over HTTP.

Personal data stays in intake; cases asks for it only when a case manager opens the overview,
on their behalf (the service client sends cases' own token and theirs, so intake checks the
person's office and audits the read as theirs), keeps nothing of it, and never logs it. When
intake cannot answer (or refuses the person asking), the overview still comes,
with the reason instead of the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from knotenpunkt.clients import ServiceClient, ServiceUnavailable
from knotenpunkt.logging import get_logger

log = get_logger("cases.intake")

# What a case manager needs to recognise and reach the person; other fields intake may add
# (address, household, ...) stay there (data minimisation).
SUMMARY_FIELDS = (
    "client_id",
    "family_name",
    "given_name",
    "name_variants",
    "birth_date",
    "birth_year",
    "gender",
    "nationalities",
    "languages",
    "counselling_language",
    "phone",
    "email",
    "office_id",
    "service_line",
    "service_lines",
)


@dataclass(frozen=True)
class PersonLookup:
    person: dict[str, Any] | None
    # A message code (schemas.py) saying why `person` is None.
    unavailable: str | None = None


class IntakeDirectory:
    """intake's person lookup, over the service's one long-lived client for intake."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def person_summary(self, client_id: UUID) -> PersonLookup:
        try:
            response = await self._client.get(f"/clients/{client_id}")
        except ServiceUnavailable as unavailable:
            # The error's type only (the client's message carries nothing more an operator needs).
            log.warning("intake unreachable for the case overview", error=str(unavailable))
            return PersonLookup(None, "intake_unreachable")
        if response.status_code == 404:
            return PersonLookup(None, "person_not_in_intake")
        if response.status_code == 403:
            # intake checks the person asking (relayed in X-On-Behalf-Of) itself: it may refuse.
            return PersonLookup(None, "intake_forbidden")
        if response.status_code != 200:
            log.warning("intake answered the person lookup with an error", status=response.status_code)
            return PersonLookup(None, "intake_error")
        try:
            record = ServiceClient.json_object(response)
        except ServiceUnavailable:
            return PersonLookup(None, "intake_error")
        return PersonLookup({name: record[name] for name in SUMMARY_FIELDS if name in record})
