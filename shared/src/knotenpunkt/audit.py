"""The audit trail: who read or changed what, when, why, and whether they were allowed.

One row per API call that is not open (health), reads included, in the service's own database
(table `audit_log`, platform migration 020): when, who (staff id, roles, offices, agency, the
relaying service), the action (knotenpunkt.policy), the route, the record ids and pseudonymous
client ids concerned, the purpose, the outcome (allowed, denied, refused, failed) with its
status and reason, the correlation id and the client address. Never personal data itself.

- A command writes its row in its own unit of work (`run_command`), so the change and its
  audit entry commit together; its client ids are the keys of the events it published.
- Every other call is written by `AuditMiddleware` before the answer leaves: if the entry
  cannot be written the answer is 503, never an unaudited read.
- Rows form a hash chain (each row's hash covers the previous hash), written under a lock, and
  a trigger refuses UPDATE, DELETE and TRUNCATE but for the retention job. `python -m
  knotenpunkt.audit verify` recomputes the chain and prints its head.
- Handlers name the persons a read concerned with `audit.concerns(request, client_ids)`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knotenpunkt.db import Database
from knotenpunkt.identity import allow
from knotenpunkt.logging import get_logger
from knotenpunkt.policy import Action
from knotenpunkt.uow import Actor

log = get_logger("knotenpunkt.audit")

PURPOSE_HEADER = "X-Purpose"
GENESIS = "0" * 64
# One writer of the chain at a time per database (arbitrary constant).
_CHAIN_LOCK = 7_401_020
_SAFE_PURPOSE = re.compile(r"^[\w .:/-]{1,100}$")


@dataclass
class AuditEntry:
    actor: Actor
    action: str
    method: str
    route: str
    outcome: str
    status: int
    correlation_id: str
    purpose: str
    record_ids: list[str] = field(default_factory=list)
    client_ids: list[UUID] = field(default_factory=list)
    reason: str | None = None
    client_address: str | None = None


def _canonical(service: str, at: datetime, entry: AuditEntry) -> bytes:
    return json.dumps(
        {
            "at": at.isoformat(),
            "service": service,
            "actor_kind": entry.actor.kind,
            "actor_id": entry.actor.subject,
            "roles": sorted(entry.actor.roles),
            "offices": sorted(entry.actor.offices),
            "agency_id": entry.actor.agency_id,
            "via": entry.actor.via,
            "action": entry.action,
            "method": entry.method,
            "route": entry.route,
            "record_ids": entry.record_ids,
            "client_ids": sorted(str(client_id) for client_id in entry.client_ids),
            "purpose": entry.purpose,
            "outcome": entry.outcome,
            "status": entry.status,
            "reason": entry.reason,
            "correlation_id": entry.correlation_id,
            "client_address": entry.client_address,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def chain_hash(previous: str, canonical: bytes) -> str:
    return hashlib.sha256(previous.encode() + canonical).hexdigest()


async def append(connection: asyncpg.Connection, service: str, entry: AuditEntry) -> None:
    """Append one entry to the chain, in the caller's transaction (which must be open)."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", _CHAIN_LOCK)
    previous = await connection.fetchval("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1") or GENESIS
    at = datetime.now(UTC)
    entry.client_ids = sorted(set(entry.client_ids), key=str)
    entry.record_ids = sorted(set(entry.record_ids))
    digest = chain_hash(previous, _canonical(service, at, entry))
    await connection.execute(
        "INSERT INTO audit_log (at, service, actor_kind, actor_id, roles, offices, agency_id, via, action, method, "
        "route, record_ids, client_ids, purpose, outcome, status, reason, correlation_id, client_address, "
        "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
        "$19, $20, $21)",
        at,
        service,
        entry.actor.kind,
        entry.actor.subject,
        sorted(entry.actor.roles),
        sorted(entry.actor.offices),
        entry.actor.agency_id,
        entry.actor.via,
        entry.action,
        entry.method,
        entry.route,
        entry.record_ids,
        entry.client_ids,
        entry.purpose,
        entry.outcome,
        entry.status,
        entry.reason,
        entry.correlation_id,
        entry.client_address,
        previous,
        digest,
    )


@dataclass(frozen=True)
class ChainCheck:
    entries: int
    first_seq: int | None
    head: str
    broken_at: int | None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


async def verify(connection: asyncpg.Connection, service: str | None = None) -> ChainCheck:
    """Recompute the chain from its first kept row (older rows may have gone by retention)."""
    previous: str | None = None
    count = 0
    first: int | None = None
    head = GENESIS
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        async for row in connection.cursor("SELECT * FROM audit_log ORDER BY seq"):
            entry = AuditEntry(
                actor=Actor(
                    kind=row["actor_kind"],
                    subject=row["actor_id"],
                    roles=frozenset(row["roles"]),
                    offices=frozenset(row["offices"]),
                    agency_id=row["agency_id"],
                    via=row["via"],
                ),
                action=row["action"],
                method=row["method"],
                route=row["route"],
                outcome=row["outcome"],
                status=row["status"],
                correlation_id=row["correlation_id"],
                purpose=row["purpose"],
                record_ids=list(row["record_ids"]),
                client_ids=list(row["client_ids"]),
                reason=row["reason"],
                client_address=row["client_address"],
            )
            if first is None:
                first = row["seq"]
            elif row["prev_hash"] != previous:
                return ChainCheck(count, first, head, row["seq"])
            if chain_hash(row["prev_hash"], _canonical(row["service"], row["at"], entry)) != row["hash"]:
                return ChainCheck(count, first, head, row["seq"])
            previous = head = row["hash"]
            count += 1
    return ChainCheck(count, first, head, None)


# --- HTTP: who the call concerned, and the middleware that writes the row ---------------------


def concerns(request: Request, client_ids: Iterable[UUID | str | None] = (), record_ids: Iterable[str] = ()) -> None:
    """Name the persons (client ids) and records a request read, for its audit entry."""
    state = _state(request.scope)
    clients: set[UUID] = state.setdefault("audit_clients", set())
    records: set[str] = state.setdefault("audit_records", set())
    for client_id in client_ids:
        if client_id is not None:
            clients.add(client_id if isinstance(client_id, UUID) else UUID(str(client_id)))
    records.update(str(record_id) for record_id in record_ids)


def _state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})


def purpose_of(headers: dict[bytes, bytes], action: str) -> str:
    """The purpose a client states in X-Purpose (a short, safe text), else the action."""
    stated = headers.get(PURPOSE_HEADER.lower().encode(), b"").decode("utf-8", "replace").strip()
    return stated if _SAFE_PURPOSE.match(stated) else action


def subjects_of(scope: Scope) -> tuple[list[str], list[UUID]]:
    """Record ids and client ids of a request: its path parameters and what the handler named."""
    state = _state(scope)
    records = {str(value) for value in (scope.get("path_params") or {}).values()}
    records |= state.get("audit_records", set())
    clients: set[UUID] = set(state.get("audit_clients", set()))
    client_param = (scope.get("path_params") or {}).get("client_id")
    if client_param is not None:
        try:
            clients.add(UUID(str(client_param)))
        except ValueError:
            pass
    return sorted(records), sorted(clients, key=str)


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status >= 500:
        return "failed"
    if status >= 400:
        return "refused"
    return "allowed"


def entry_for(scope: Scope, status: int, correlation_id: str, reason: str | None = None) -> AuditEntry:
    state = _state(scope)
    actor = state.get("actor") if isinstance(state.get("actor"), Actor) else Actor.unknown()
    action = state.get("audit_action")
    action_name = action.value if isinstance(action, Action) else "unknown"
    route = getattr(scope.get("route"), "path", None) or scope.get("path", "")
    records, clients = subjects_of(scope)
    client = scope.get("client")
    headers = dict(scope.get("headers") or [])
    return AuditEntry(
        actor=actor,
        action=action_name,
        method=scope.get("method", ""),
        route=str(route)[:200],
        outcome=outcome_of(status),
        status=status,
        correlation_id=correlation_id,
        purpose=purpose_of(headers, action_name),
        record_ids=records,
        client_ids=clients,
        reason=reason or state.get("audit_reason"),
        client_address=client[0] if client else None,
    )


class AuditMiddleware:
    """Writes the audit entry of every call not written by its command, before the answer."""

    def __init__(
        self,
        app: ASGIApp,
        service: str,
        database: Callable[[], Database],
        is_open: Callable[[str], bool],
        correlation_id: Callable[[], str],
        unavailable: Callable[[Scope], bytes],
    ) -> None:
        self.app = app
        self.service = service
        self.database = database
        self.is_open = is_open
        self.correlation_id = correlation_id
        self.unavailable = unavailable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        failed_audit = False

        async def send_audited(message: Message) -> None:
            nonlocal failed_audit
            if message["type"] == "http.response.start" and not _state(scope).get("audited"):
                try:
                    entry = entry_for(scope, message["status"], self.correlation_id())
                    async with self.database().connection() as connection, connection.transaction():
                        await append(connection, self.service, entry)
                except Exception as error:
                    # Fail closed: an answer whose audit entry is lost is not sent.
                    log.error("audit entry not written; answering 503", error=type(error).__name__)
                    failed_audit = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 503,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": self.unavailable(scope)})
                    return
            if failed_audit:
                return
            await send(message)

        await self.app(scope, receive, send_audited)


# --- the data protection officer's questions --------------------------------------------------


class AuditRecord(BaseModel):
    seq: int
    at: datetime
    service: str
    actor_kind: str
    actor_id: str = Field(description="Staff id, agency client id or service name (pseudonymous).")
    roles: list[str]
    offices: list[str]
    agency_id: str | None
    via: str | None = Field(description="The service that relayed a person's request.")
    action: str
    method: str
    route: str
    record_ids: list[str]
    client_ids: list[UUID]
    purpose: str
    outcome: str
    status: int
    reason: str | None
    correlation_id: str
    client_address: str | None


class ChainAnswer(BaseModel):
    service: str
    entries: int
    first_seq: int | None
    head: str
    intact: bool
    broken_at: int | None


async def entries(
    connection: asyncpg.Connection,
    client_id: UUID | None,
    actor_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[AuditRecord]:
    rows = await connection.fetch(
        "SELECT seq, at, service, actor_kind, actor_id, roles, offices, agency_id, via, action, method, route, "
        "record_ids, client_ids, purpose, outcome, status, reason, correlation_id, client_address FROM audit_log "
        "WHERE ($1::uuid IS NULL OR client_ids @> ARRAY[$1::uuid]) AND ($2::text IS NULL OR actor_id = $2) "
        "AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4) "
        "ORDER BY seq DESC LIMIT $5",
        client_id,
        actor_id,
        since,
        until,
        limit,
    )
    return [AuditRecord(**dict(row)) for row in rows]


def audit_router(service: str, database: Callable[[], Database]) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get(
        "/audit/entries",
        summary="The audit trail: who read or changed what (data protection officer)",
        dependencies=[Depends(allow(Action.AUDIT_READ))],
    )
    async def list_entries(
        client_id: Annotated[UUID | None, Query(description="Entries concerning this person.")] = None,
        actor_id: Annotated[str | None, Query(max_length=200, description="Entries of this staff member.")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[AuditRecord]:
        async with database().connection() as connection:
            return await entries(connection, client_id, actor_id, since, until, limit)

    @router.get(
        "/audit/verify",
        summary="Recompute the audit trail's hash chain (data protection officer)",
        dependencies=[Depends(allow(Action.AUDIT_READ))],
    )
    async def check_chain() -> ChainAnswer:
        async with database().connection() as connection:
            checked = await verify(connection)
        return ChainAnswer(
            service=service,
            entries=checked.entries,
            first_seq=checked.first_seq,
            head=checked.head,
            intact=checked.intact,
            broken_at=checked.broken_at,
        )

    return router


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Check a service's audit trail (hash chain).")
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("--database-url", default=os.environ.get("KP_DATABASE_URL"), help="default: KP_DATABASE_URL")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set KP_DATABASE_URL")

    async def run() -> ChainCheck:
        connection = await asyncpg.connect(args.database_url)
        try:
            return await verify(connection)
        finally:
            await connection.close()

    checked = asyncio.run(run())
    if checked.intact:
        print(f"audit trail intact: {checked.entries} entries from seq {checked.first_seq}, head {checked.head}")
        return
    print(f"audit trail BROKEN at seq {checked.broken_at} (after {checked.entries} intact entries)", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
