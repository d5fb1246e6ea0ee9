"""Where the read models live: one PostgreSQL schema, created from readmodel.sql, swappable.

The tables are UNLOGGED: they are rebuilt from the log, so they need no write-ahead log (the
projection writes several times faster). After a PostgreSQL crash, PostgreSQL empties them,
offsets and version included; stats then recreates and refills them from offset 0. A clean
restart keeps them. Standbys do not receive them: stats reads its own primary.

The live read models are the schema `readmodel`. A rebuild fills a fresh schema
(`readmodel_rebuild`) from offset 0 while the live one keeps answering, then swaps it in with
one transaction (see stats.rebuild). The projection offsets live in the same schema as the
tables they describe, so the swap replaces both at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from knotenpunkt.db import Database
from knotenpunkt.logging import get_logger
from knotenpunkt.projection import offsets_table_ddl

log = get_logger("stats.readmodel")

LIVE_SCHEMA = "readmodel"
REBUILD_SCHEMA = "readmodel_rebuild"
PROJECTION_NAME = "stats"
DDL = (Path(__file__).parent / "readmodel.sql").read_text()
# A changed definition needs fresh tables: the live schema records the version it was built from.
VERSION = hashlib.sha256(DDL.encode()).hexdigest()[:16]
_LOCK_KEY = 7_401_404  # one creator of the live schema at a time (replicas starting together)


def offsets_table(schema: str) -> str:
    return f"{schema}.projection_offsets"


async def create_schema(connection: asyncpg.Connection, schema: str) -> None:
    """Create an empty read-model schema (tables, offsets table, version) inside a transaction."""
    await connection.execute(f"CREATE SCHEMA {schema}")
    await connection.execute(f"SET LOCAL search_path TO {schema}")
    await connection.execute(DDL)
    await connection.execute(offsets_table_ddl(offsets_table(schema), unlogged=True))
    await connection.execute(
        f"CREATE UNLOGGED TABLE {schema}.read_model_info "
        "(version text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    await connection.execute(f"INSERT INTO {schema}.read_model_info (version) VALUES ($1)", VERSION)
    await connection.execute("SET LOCAL search_path TO DEFAULT")


async def schema_version(connection: asyncpg.Connection, schema: str) -> str | None:
    exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.read_model_info")
    if not exists:
        return None
    return await connection.fetchval(f"SELECT version FROM {schema}.read_model_info")


async def ensure_live(database: Database) -> None:
    """At startup: the live schema exists and matches this code's definition.

    A missing schema is created empty (the projection then fills it from offset 0). A schema of
    another definition is replaced by an empty one of this definition: the figures are complete
    again once the projection has caught up (run `python -m stats.rebuild` before such a
    deployment to avoid the gap).
    """
    async with database.transaction() as connection:
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        version = await schema_version(connection, LIVE_SCHEMA)
        if version == VERSION:
            return
        if version is not None:
            log.warning("read model definition changed; rebuilding it from the log", old=version, new=VERSION)
        await connection.execute(f"DROP SCHEMA IF EXISTS {LIVE_SCHEMA} CASCADE")
        await create_schema(connection, LIVE_SCHEMA)


async def swap_in(connection: asyncpg.Connection, schema: str) -> None:
    """Replace the live schema by `schema` (inside the caller's transaction)."""
    await connection.execute(f"DROP SCHEMA IF EXISTS {LIVE_SCHEMA} CASCADE")
    await connection.execute(f"ALTER SCHEMA {schema} RENAME TO {LIVE_SCHEMA}")


@asynccontextmanager
async def reading(database: Database) -> AsyncIterator[asyncpg.Connection]:
    """A read-only snapshot of the live read models: every query of a report sees the same state."""
    async with database.connection() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
        await connection.execute(f"SET LOCAL search_path TO {LIVE_SCHEMA}, public")
        yield connection
