"""The data protection officer's questions, answered across the services in one request.

- `audit_trail`: "who saw or changed person X, when" and "what did staff member Y access":
  intake's own audit entries plus those of cases, referrals and stats (each serves
  `GET /audit/entries`, knotenpunkt.audit), fetched with the officer's token relayed
  (`X-On-Behalf-Of`), merged newest first. A service that does not answer is named in
  `unavailable`, never silently left out.
- `export`: everything every service stores about a person (DSGVO Art. 15): intake's records
  (the person's and every duplicate merged into it), consents with their history, the parts of
  cases and referrals (`GET /clients/{client_id}/export` there) and the audit entries
  concerning the person. A part that does not come is named in `incomplete`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field, ValidationError

from intake import repository
from knotenpunkt import audit
from knotenpunkt.audit import AuditRecord
from knotenpunkt.clients import ServiceClient, ServiceUnavailable
from knotenpunkt.logging import get_logger
from knotenpunkt.policy import Action, require
from knotenpunkt.uow import Actor

log = get_logger("intake.disclosure")

SERVICE = "intake"
# Whose audit entries the trail gathers, besides intake's own, and who holds a part of a person's data.
AUDITED_PEERS = ("cases", "referrals", "stats")
EXPORTING_PEERS = ("cases", "referrals")

Reader = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


class AuditTrail(BaseModel):
    """Audit entries of every service, newest first."""

    entries: list[AuditRecord] = Field(description="The entries, newest first; each names its service.")
    services: list[str] = Field(description="The services whose entries are included.")
    unavailable: list[str] = Field(
        description="Services that did not answer: their entries are missing from this answer."
    )


class PersonExport(BaseModel):
    """Everything the services store about one person (DSGVO Art. 15)."""

    client_id: UUID = Field(description="The person (the surviving record after merges).")
    exported_at: datetime = Field(description="When the export was made (UTC).")
    intake: dict[str, Any] = Field(
        description="intake: `records` (the person's record and every duplicate merged into it, every stored field) "
        "and `consents` (every consent with its history: given, valid until, withdrawn, expired, by whom)."
    )
    cases: dict[str, Any] | None = Field(description="What cases stores about the person (its export), if it answered.")
    referrals: dict[str, Any] | None = Field(
        description="What referrals stores about the person, including what each agency received, if it answered."
    )
    audit: AuditTrail = Field(description="Every service's audit entries concerning the person.")
    incomplete: list[str] = Field(
        description="Parts missing because a service did not answer: a service's export (`cases`) or its audit "
        "entries (`audit:stats`)."
    )


async def _peer_entries(
    name: str, client: ServiceClient, params: Sequence[dict[str, str]]
) -> tuple[str, list[AuditRecord] | None]:
    found: list[AuditRecord] = []
    try:
        for query in params:
            response = await client.get("/audit/entries", params=query)
            if response.status_code != 200:
                raise ServiceUnavailable(f"answered {response.status_code}")
            body = response.json()
            if not isinstance(body, list):
                raise ServiceUnavailable("answered no list")
            found += [AuditRecord.model_validate(entry) for entry in body]
    except (ServiceUnavailable, ValueError, ValidationError) as error:
        # The error's type or status only: a text could quote a URL with an id.
        log.warning("audit entries of a service missing", service=name, error=type(error).__name__)
        return name, None
    return name, found


async def audit_trail(
    read: Reader,
    peers: Mapping[str, ServiceClient],
    *,
    client_ids: Sequence[UUID] = (),
    actor_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> AuditTrail:
    """Every service's entries about these persons (or of this staff member), newest first."""
    queries: list[dict[str, str]] = []
    for client_id in client_ids or [None]:  # type: ignore[list-item]
        query = {"limit": str(limit)}
        if client_id is not None:
            query["client_id"] = str(client_id)
        if actor_id is not None:
            query["actor_id"] = actor_id
        if since is not None:
            query["since"] = since.isoformat()
        if until is not None:
            query["until"] = until.isoformat()
        queries.append(query)
    asked = [name for name in AUDITED_PEERS if name in peers]
    answers = await asyncio.gather(*(_peer_entries(name, peers[name], queries) for name in asked))
    own: list[AuditRecord] = []
    async with read() as connection:
        for client_id in client_ids or [None]:  # type: ignore[list-item]
            own += await audit.entries(connection, client_id, actor_id, since, until, limit)
    entries = {(entry.service, entry.seq): entry for entry in own}
    unavailable = [name for name in AUDITED_PEERS if name not in peers]
    for name, found in answers:
        if found is None:
            unavailable.append(name)
            continue
        entries |= {(entry.service, entry.seq): entry for entry in found}
    newest_first = sorted(entries.values(), key=lambda entry: (entry.at, entry.service, entry.seq), reverse=True)
    return AuditTrail(
        entries=newest_first[:limit],
        services=[SERVICE, *(name for name in AUDITED_PEERS if name not in unavailable)],
        unavailable=sorted(unavailable),
    )


async def _peer_export(name: str, client: ServiceClient, client_id: UUID) -> tuple[str, dict[str, Any] | None]:
    try:
        return name, ServiceClient.json_object(await client.get(f"/clients/{client_id}/export"))
    except ServiceUnavailable as error:
        log.warning("a service's part of an export missing", service=name, error=str(error)[:40])
        return name, None


async def export(read: Reader, peers: Mapping[str, ServiceClient], client_id: UUID, actor: Actor) -> PersonExport:
    """Everything about the person, from every service (the officer's token relayed)."""
    async with read() as connection:
        row = await connection.fetchrow("SELECT office_id FROM clients WHERE client_id = $1", client_id)
        if row is None:
            raise repository.person_not_found()
        require(actor, Action.CLIENT_EXPORT, repository.person_record(row))
        # An erased person too: what is left (ids, consents, audit entries) is still theirs.
        family = await connection.fetch(
            "SELECT c.* FROM clients c WHERE c.client_id = ANY($1::uuid[]) ORDER BY c.registered_at, c.client_id",
            [member["client_id"] for member in await repository.merge_family(connection, client_id, lock=False)],
        )
        person_id = next((member["client_id"] for member in family if member["merged_into"] is None), client_id)
        consents = await connection.fetch(
            "SELECT * FROM consents WHERE client_id = ANY($1::uuid[]) ORDER BY given_on, recorded_at",
            [member["client_id"] for member in family],
        )
    ids = [member["client_id"] for member in family]
    parts = await asyncio.gather(
        *(_peer_export(name, peers[name], person_id) for name in EXPORTING_PEERS if name in peers)
    )
    got = dict(parts)
    trail = await audit_trail(read, peers, client_ids=ids, limit=5000)
    incomplete = [name for name in EXPORTING_PEERS if got.get(name) is None]
    incomplete += [f"audit:{name}" for name in trail.unavailable]
    return PersonExport(
        client_id=person_id,
        exported_at=datetime.now(UTC),
        intake={
            "records": [jsonable_encoder(dict(member)) for member in family],
            "consents": [jsonable_encoder(dict(consent)) for consent in consents],
        },
        cases=got.get("cases"),
        referrals=got.get("referrals"),
        audit=trail,
        incomplete=incomplete,
    )
