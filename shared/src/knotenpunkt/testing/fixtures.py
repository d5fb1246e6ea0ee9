"""pytest fixtures shared by every service's tests (registered in the root conftest.py)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from knotenpunkt import migrations
from knotenpunkt.db import Database
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.identity import Identity
from knotenpunkt.testing.infrastructure import Infrastructure, infrastructure

T = TypeVar("T")


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    """A real Kafka broker, PostgreSQL and Keycloak for the whole session; fails loudly if one is
    unavailable. Services built in the tests (and those the end-to-end tests start) trust this
    Keycloak's realm: KP_OIDC_ISSUER is set for the session."""
    with infrastructure() as found:
        print(f"\ninfrastructure from {found.origin}: kafka {found.kafka_bootstrap}, keycloak {found.keycloak_url}")
        previous = os.environ.get("KP_OIDC_ISSUER")
        os.environ["KP_OIDC_ISSUER"] = found.oidc_issuer
        try:
            yield found
        finally:
            if previous is None:
                os.environ.pop("KP_OIDC_ISSUER", None)
            else:
                os.environ["KP_OIDC_ISSUER"] = previous


@pytest.fixture(scope="session")
def identity(infra: Infrastructure) -> Identity:
    """Signs demo staff in through the running Keycloak: `identity.headers("staff-hamborn-1")`."""
    return Identity(infra.keycloak_url)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def make_database(infra: Infrastructure) -> AsyncIterator[Callable[..., Awaitable[Database]]]:
    """A fresh database (own role) with the platform migrations and optionally a service's."""
    created: list[Database] = []

    async def make(service: str | None = None, folder: Path | None = None) -> Database:
        dsn = await ensure_database(infra.postgres_admin_dsn, unique("t"))
        sets = [("platform", migrations.PLATFORM_MIGRATIONS)]
        if service and folder:
            sets.append((service, folder))
        await migrations.apply(dsn, sets)
        database = Database(dsn, min_size=1, max_size=5)
        await database.connect()
        created.append(database)
        return database

    yield make
    for database in created:
        await database.close()


@pytest.fixture
async def database(make_database: Callable[..., Awaitable[Database]]) -> Database:
    return await make_database()


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 30, interval_s: float = 0.1) -> T:
    """Poll until `check` returns a truthy value or raise AssertionError at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last value: {last!r})")


async def count_rows(database: Database, sql: str, *args: object) -> int:
    async with database.connection() as connection:
        return int(await connection.fetchval(sql, *args))
