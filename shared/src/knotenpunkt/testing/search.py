"""Looking for a person's values everywhere: every table of a database, every record of a topic.
Used by the erasure tests, which must find nothing after an erasure (and something before it)."""

from __future__ import annotations

import asyncpg


async def personal_values_found(connection: asyncpg.Connection, values: list[str]) -> dict[str, int]:
    """Rows of every table of the database whose text (every column, bytea as UTF-8) holds one of
    the values (case-insensitive), by table."""
    patterns = [f"%{value}%" for value in values]
    found: dict[str, int] = {}
    tables = await connection.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    for table in tables:
        name = f'"{table["table_schema"]}"."{table["table_name"]}"'
        binary = await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
            "AND data_type = 'bytea'",
            table["table_schema"],
            table["table_name"],
        )
        conditions = ["t::text ILIKE ANY($1::text[])"] + [
            f"convert_from(t.\"{column['column_name']}\", 'UTF8') ILIKE ANY($1::text[])" for column in binary
        ]
        count = await connection.fetchval(f"SELECT count(*) FROM {name} t WHERE {' OR '.join(conditions)}", patterns)
        if count:
            found[table["table_name"]] = count
    return found


def values_in_records(records: list[bytes], values: list[str]) -> list[str]:
    """The values (case-insensitive) that occur in any of the records' bytes."""
    text = b"\n".join(records).decode("utf-8", "replace").lower()
    return [value for value in values if value.lower() in text]
