"""Print an access token of a demo user of the running system (`make up`), for curl:

    TOKEN=$(python3 -m uv run python -m tools.token staff-hamborn-1)
    curl -H "Authorization: Bearer $TOKEN" localhost:8002/cases

Signs in on Keycloak's login page as a browser would (the realm has no password grant).
`--client agency-jobcenter-duisburg` prints a machine client's token instead (client credentials,
with the realm file's local default secret). Demo users only: a city's real staff sign in through
the web app.
"""

from __future__ import annotations

import argparse
import os

from knotenpunkt.testing.identity import DEMO_PASSWORD, Identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("username", nargs="?", help="a demo user, e.g. staff-hamborn-1, coordinator, dpo")
    parser.add_argument("--client", help="a machine client id instead, e.g. agency-jobcenter-duisburg")
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument(
        "--keycloak",
        default=os.environ.get("KP_KEYCLOAK_URL", f"http://127.0.0.1:{os.environ.get('KP_KEYCLOAK_PORT', '8080')}"),
    )
    args = parser.parse_args()
    identity = Identity(args.keycloak)
    if args.client:
        print(identity.client_token(args.client))
    elif args.username:
        print(identity.token(args.username, args.password))
    else:
        parser.error("name a demo user or --client")


if __name__ == "__main__":
    main()
