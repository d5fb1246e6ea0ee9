"""Issue or revoke web-inbox tokens for an agency (operations):

python -m referrals.tokens issue jugendamt-duisburg     # prints the token once
python -m referrals.tokens revoke jugendamt-duisburg
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from referrals.inbox_auth import issue_token, revoke_tokens
from referrals.settings import ReferralsSettings


async def run(command: str, agency_id: str) -> str:
    connection = await asyncpg.connect(ReferralsSettings().database_url)
    try:
        if command == "issue":
            return await issue_token(connection, agency_id)
        return f"revoked {await revoke_tokens(connection, agency_id)} token(s)"
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["issue", "revoke"])
    parser.add_argument("agency_id")
    args = parser.parse_args()
    print(asyncio.run(run(args.command, args.agency_id)))


if __name__ == "__main__":
    main()
