"""The platform tables' housekeeping, written once for every service: rows that have done their
job are deleted after a configurable time (docs/decisions/0011-housekeeping.md).

- `outbox`: published rows after `outbox_retention_hours` (kept only to diagnose what was
  published when; Kafka has the events). Unpublished rows are never touched, however old:
  they are events still to be delivered.
- `processed_events`: after `processed_events_retention_days`, longer than any redelivery of
  an event a consumer has applied (the decision record works out the longest).
- `idempotency_keys`: after `idempotency_keys_retention_days`; a repeat of a request after
  that is not a retry.

Deletes run in small batches, each its own short transaction, so a large backlog (the first
run after an upgrade) never holds locks for long or blocks the relay and consumers. Several
replicas may run it at once: a batch skips rows another replica has locked.

ServiceRuntime runs `Housekeeping.run` periodically (`KP_HOUSEKEEPING_INTERVAL_S`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from knotenpunkt.db import Database
from knotenpunkt.logging import get_logger
from knotenpunkt.settings import ServiceSettings

log = get_logger("knotenpunkt.housekeeping")


@dataclass(frozen=True)
class Retention:
    """How long a table's rows are kept after their time column; None keeps them for ever."""

    table: str
    time_column: str
    keep: timedelta | None


class Housekeeping:
    def __init__(self, database: Database, settings: ServiceSettings, batch_size: int = 1000) -> None:
        self._database = database
        self._batch_size = batch_size
        self.retentions = (
            # `published_at < cutoff` never matches an unpublished row (NULL).
            Retention("outbox", "published_at", _hours(settings.outbox_retention_hours)),
            Retention("processed_events", "processed_at", _days(settings.processed_events_retention_days)),
            Retention("idempotency_keys", "created_at", _days(settings.idempotency_keys_retention_days)),
            # The audit trail's append-only trigger lets only this job delete, and only when it
            # says so in its transaction.
            Retention("audit_log", "at", _days(settings.audit_retention_days)),
        )

    async def run_once(self) -> dict[str, int]:
        """Prune every table once; returns the rows deleted per table."""
        pruned = {}
        for retention in self.retentions:
            pruned[retention.table] = 0 if retention.keep is None else await self._prune(retention, retention.keep)
        return pruned

    async def run(self) -> None:
        """One periodic round (for ServiceRuntime.every): prune, and say what went."""
        pruned = await self.run_once()
        if any(pruned.values()):
            log.info("housekeeping: rows pruned", **pruned)

    async def _prune(self, retention: Retention, keep: timedelta) -> int:
        # The cutoff comes from the database's clock, the same one that wrote the timestamps.
        # ctid addresses the selected rows within the statement; SKIP LOCKED leaves rows that a
        # concurrent replica (or a transaction still using them) holds.
        sql = (
            f"DELETE FROM {retention.table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {retention.table} WHERE {retention.time_column} < now() - $1::interval "
            f"LIMIT $2 FOR UPDATE SKIP LOCKED))"
        )
        total = 0
        while True:
            async with self._database.connection() as connection, connection.transaction():
                if retention.table == "audit_log":
                    await connection.execute("SET LOCAL knotenpunkt.audit_retention = 'on'")
                status = await connection.execute(sql, keep, self._batch_size)
            deleted = int(status.split()[-1])  # "DELETE <n>"
            total += deleted
            if deleted < self._batch_size:
                return total
            await asyncio.sleep(0)  # let the service's own work run between batches


def _hours(hours: int) -> timedelta | None:
    return timedelta(hours=hours) if hours > 0 else None


def _days(days: int) -> timedelta | None:
    return timedelta(days=days) if days > 0 else None
