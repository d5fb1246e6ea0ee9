"""A small migration runner: numbered SQL files, applied once, in order, under a lock.

Why not Alembic or yoyo: see docs/decisions/0002-migrations.md. The platform's own tables
(outbox, processed events, idempotency keys) are a migration set of their own, applied to
every service's database before the service's set.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

PLATFORM_MIGRATIONS = Path(__file__).parent / "sql"
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 7_401_001  # arbitrary, constant: one migrator per database at a time


@dataclass(frozen=True)
class Migration:
    scope: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(scope: str, folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name} is not NNN_name.sql")
        migrations.append(Migration(scope, int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration versions in {folder}")
    return migrations


async def apply(dsn: str, sets: list[tuple[str, Path]]) -> list[str]:
    """Apply what is missing; returns the names applied. Fails on an edited applied file."""
    connection = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   scope text NOT NULL,
                   version integer NOT NULL,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (scope, version))"""
        )
        for scope, folder in sets:
            done = {
                row["version"]: row["checksum"]
                for row in await connection.fetch(
                    "SELECT version, checksum FROM schema_migrations WHERE scope = $1", scope
                )
            }
            for migration in load(scope, folder):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"applied migration {scope}/{migration.name} was edited; add a new migration instead"
                        )
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (scope, version, name, checksum) VALUES ($1, $2, $3, $4)",
                        scope,
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied_now.append(f"{scope}/{migration.name}")
    finally:
        await connection.close()
    return applied_now


def migration_sets(service: str, service_folder: Path) -> list[tuple[str, Path]]:
    return [("platform", PLATFORM_MIGRATIONS), (service, service_folder)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply a service's database migrations.")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--folder", required=True, type=Path)
    args = parser.parse_args()
    applied = asyncio.run(apply(args.dsn, migration_sets(args.service, args.folder)))
    print(f"{args.service}: applied {len(applied)} migration(s)")


if __name__ == "__main__":
    main()
