"""Who may use an agency's web inbox: whoever holds one of that agency's tokens.

Tokens are issued by operations (`python -m referrals.tokens issue <agency_id>`), shown once,
stored only as SHA-256 hashes, and sent as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from knotenpunkt.errors import NotFound
from knotenpunkt.http import ApiError
from knotenpunkt.i18n import register_messages

register_messages(
    {
        "inbox_token_missing": {
            "de": "Für den Posteingang wird der Zugangsschlüssel der Stelle benötigt (Authorization: Bearer …).",
            "en": "The inbox needs the agency's access token (Authorization: Bearer …).",
        },
        "inbox_token_invalid": {
            "de": "Dieser Zugangsschlüssel ist ungültig oder widerrufen.",
            "en": "This access token is invalid or revoked.",
        },
        "inbox_other_agency": {
            "de": "Dieser Zugangsschlüssel gehört zu einer anderen Stelle.",
            "en": "This access token belongs to another agency.",
        },
    }
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(connection: asyncpg.Connection, agency_id: str) -> str:
    if not await connection.fetchval("SELECT 1 FROM agencies WHERE agency_id = $1", agency_id):
        raise NotFound("Die Partnerstelle", "The agency")
    token = secrets.token_urlsafe(32)
    await connection.execute(
        "INSERT INTO agency_tokens (token_hash, agency_id) VALUES ($1, $2)", token_hash(token), agency_id
    )
    return token


async def revoke_tokens(connection: asyncpg.Connection, agency_id: str) -> int:
    result = await connection.execute(
        "UPDATE agency_tokens SET revoked_at = now() WHERE agency_id = $1 AND revoked_at IS NULL", agency_id
    )
    return int(result.split()[-1])


async def check_agency_token(connection: asyncpg.Connection, agency_id: str, authorization: str | None) -> None:
    """401 without a valid token, 403 with another agency's token (errors about the request's
    Authorization header, hence ApiError)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "inbox_token_missing")
    owner = await connection.fetchval(
        "SELECT agency_id FROM agency_tokens WHERE token_hash = $1 AND revoked_at IS NULL", token_hash(token.strip())
    )
    if owner is None:
        raise ApiError(401, "inbox_token_invalid")
    if owner != agency_id:
        raise ApiError(403, "inbox_other_agency")
