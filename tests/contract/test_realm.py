"""The Keycloak realm in the repository is the one tools/realm.py writes, and its demo staff are
intake's staff (their staff ids match, so what they do is attributed to known staff)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tools.realm import REALM_FILE, STAFF, render

INTAKE_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "intake" / "src" / "intake" / "migrations"


def test_the_realm_file_is_current() -> None:
    assert REALM_FILE.read_text() == render(), "run: python -m tools.realm"


def test_every_demo_staff_member_is_in_intakes_staff_list() -> None:
    sql = "\n".join(path.read_text() for path in sorted(INTAKE_MIGRATIONS.glob("*.sql")))
    staff_ids = set(re.findall(r"\(\s*'([a-z0-9-]+)',\s*'(?:rsc-[a-z]+|[a-z-]*)'", sql))
    missing = [username for username, *_ in STAFF if username not in staff_ids]
    assert not missing, f"demo staff not in intake's staff table: {missing}"


def test_no_client_of_the_realm_allows_the_password_grant_and_every_one_names_our_audience() -> None:
    realm = json.loads(REALM_FILE.read_text())
    for client in realm["clients"]:
        assert client["directAccessGrantsEnabled"] is False, client["clientId"]
        audiences = [m["config"].get("included.custom.audience") for m in client["protocolMappers"]]
        assert "knotenpunkt-api" in audiences, client["clientId"]
