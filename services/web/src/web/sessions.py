"""Server-side sessions: the cookie carries a random id, PostgreSQL the rest (who is signed in,
their tokens, the form token against CSRF, the language). Several replicas share them."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from knotenpunkt.db import Database

COOKIE = "kp_session"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Session:
    session_id: str
    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    @property
    def signed_in(self) -> bool:
        return "access_token" in self.data

    @property
    def csrf_token(self) -> str:
        """Set at sign-in (web.auth); a session without one has no form to send."""
        return str(self.data.get("csrf", ""))

    def set(self, **values: Any) -> None:
        self.data.update(values)
        self.changed = True

    def pop(self, key: str) -> Any:
        self.changed = True
        return self.data.pop(key, None)


class SessionStore:
    def __init__(self, database: Database, idle: timedelta, maximum: timedelta) -> None:
        self.database = database
        self.idle = idle
        self.maximum = maximum

    async def load(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        async with self.database.connection() as connection:
            row = await connection.fetchrow(
                "UPDATE web_sessions SET last_seen = now() WHERE session_hash = $1 AND expires_at > now() "
                "AND last_seen > now() - $2::interval RETURNING data",
                _hash(session_id),
                self.idle,
            )
        if row is None:
            return None
        return Session(session_id, dict(row["data"]))

    def new(self) -> Session:
        return Session(secrets.token_urlsafe(32), changed=True)

    async def save(self, session: Session) -> None:
        async with self.database.connection() as connection:
            await connection.execute(
                "INSERT INTO web_sessions (session_hash, expires_at, data) VALUES ($1, now() + $2::interval, $3) "
                "ON CONFLICT (session_hash) DO UPDATE SET data = EXCLUDED.data, last_seen = now()",
                _hash(session.session_id),
                self.maximum,
                session.data,  # jsonb: the pool's codec encodes it
            )
        session.changed = False

    async def renew(self, session: Session) -> Session:
        """A new id for the same data (at sign-in: an id known before is never a signed-in one)."""
        await self.delete(session)
        renewed = Session(secrets.token_urlsafe(32), dict(session.data), changed=True)
        await self.save(renewed)
        return renewed

    async def delete(self, session: Session) -> None:
        async with self.database.connection() as connection:
            await connection.execute("DELETE FROM web_sessions WHERE session_hash = $1", _hash(session.session_id))

    async def prune(self) -> int:
        async with self.database.connection() as connection:
            status = await connection.execute(
                "DELETE FROM web_sessions WHERE expires_at < now() OR last_seen < now() - $1::interval", self.idle
            )
        return int(status.split()[-1])
