#!/bin/bash
# One role and one database per service, each owned by its role: a service sees only its own data.
# The official postgres image runs this once, when it initialises an empty data directory
# (mounted at /docker-entrypoint-initdb.d/ by docker-compose.yml). Local development passwords:
# each role's password is its name, matching KP_DATABASE_URL in docker-compose.yml.
set -euo pipefail

# keycloak: the identity provider's own database.
for service in intake cases referrals stats web keycloak; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v name="$service" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'name';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
