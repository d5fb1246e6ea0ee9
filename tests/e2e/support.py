"""Helpers for the end-to-end tests."""

from __future__ import annotations

import asyncpg

from knotenpunkt.testing.kafka import group_lag
from tools.stack import Stack


async def settled(stack: Stack) -> bool:
    """True when every service has published its outbox and every consumer group caught up, so
    figures taken now are not still moving from earlier tests."""
    for dsn in stack.dsns.values():
        connection = await asyncpg.connect(dsn)
        try:
            if await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                return False
        finally:
            await connection.close()
    for service in stack.service_ports:
        # The web app consumes nothing; every other service does.
        if service != "web" and await group_lag(stack.kafka_bootstrap, f"knotenpunkt.{service}"):
            return False
    return True
