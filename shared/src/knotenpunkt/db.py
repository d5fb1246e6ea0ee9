"""asyncpg pool and one-transaction-per-use-case helper."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Database:
    """The service's own PostgreSQL database. Created in the composition root."""

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=self._min_size, max_size=self._max_size, init=_init_connection
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database not connected")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One unit of work: everything inside commits together or not at all."""
        async with self.pool.acquire() as connection, connection.transaction():
            yield connection

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as connection:
            yield connection

    async def ping(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2) as connection:
                return await connection.fetchval("SELECT 1", timeout=2) == 1
        except (OSError, asyncpg.PostgresError, TimeoutError, RuntimeError):
            return False

    async def dedicated_connection(self) -> asyncpg.Connection:
        """A connection outside the pool (for LISTEN and session advisory locks)."""
        connection = await asyncpg.connect(self.dsn)
        await _init_connection(connection)
        return connection
