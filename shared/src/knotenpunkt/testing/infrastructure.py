"""Where the tests find a real Kafka broker, a real PostgreSQL and a real Keycloak, in this order:

1. addresses given in the environment (KP_TEST_KAFKA_BOOTSTRAP and KP_TEST_POSTGRES_ADMIN_DSN,
   KP_TEST_KEYCLOAK_URL);
2. testcontainers for Kafka and PostgreSQL, where a Docker engine answers;
3. otherwise they start them locally (Kafka from Maven Central jars, PostgreSQL's binaries).

Keycloak, unless given, runs as a local process (a JDK 21+, the distribution from Maven Central)
on a database of that PostgreSQL, with the realm of deploy/keycloak imported. If anything cannot
start, the tests fail with the reason. They never skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from knotenpunkt.localinfra import InfraError, LocalKafka, LocalPostgres, free_ports
from knotenpunkt.localinfra.keycloak import LocalKeycloak
from knotenpunkt.localinfra.postgres import ensure_database

REALM_FILE = Path(__file__).resolve().parents[4] / "deploy" / "keycloak" / "knotenpunkt-realm.json"


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap: str
    postgres_admin_dsn: str
    origin: str
    keycloak_url: str = ""

    @property
    def oidc_issuer(self) -> str:
        return f"{self.keycloak_url}/realms/knotenpunkt"


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def _from_testcontainers() -> Iterator[Infrastructure]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer("postgres:15", username="postgres", password="postgres") as postgres,
    ):
        dsn = postgres.get_connection_url(driver=None).replace("postgresql+psycopg2", "postgresql")
        yield Infrastructure(kafka.get_bootstrap_server(), dsn, "testcontainers")


@contextlib.contextmanager
def _started_locally(attempts: int = 2) -> Iterator[Infrastructure]:
    for attempt in range(1, attempts + 1):
        state = Path(tempfile.mkdtemp(prefix="knotenpunkt-test-"))
        os.chmod(state, 0o755)  # the PostgreSQL server user must reach its data folder
        kafka_port, controller_port, postgres_port = free_ports(3)
        kafka = LocalKafka(state / "kafka", port=kafka_port, controller_port=controller_port)
        postgres = LocalPostgres(state / "postgres" / "data", port=postgres_port)
        try:
            try:
                postgres.start()
                kafka.start()
            except InfraError as error:
                # A port taken between choosing and binding it is worth one more try; the
                # second failure is final and fails the tests with the reason.
                if attempt == attempts:
                    raise
                print(f"local infrastructure did not start ({error}); trying again on other ports")
                continue
            yield Infrastructure(kafka.bootstrap, postgres.admin_dsn, "local processes")
            return
        finally:
            kafka.stop()
            postgres.stop()
            shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def _kafka_and_postgres() -> Iterator[Infrastructure]:
    bootstrap = os.environ.get("KP_TEST_KAFKA_BOOTSTRAP")
    admin_dsn = os.environ.get("KP_TEST_POSTGRES_ADMIN_DSN")
    if bootstrap and admin_dsn:
        yield Infrastructure(bootstrap, admin_dsn, "environment")
    elif _docker_engine_answers():
        with _from_testcontainers() as found:
            yield found
    else:
        with _started_locally() as found:
            yield found


@contextlib.contextmanager
def keycloak(postgres_admin_dsn: str, attempts: int = 2) -> Iterator[str]:
    """The URL of a running Keycloak with our realm: KP_TEST_KEYCLOAK_URL, else one started here."""
    given = os.environ.get("KP_TEST_KEYCLOAK_URL")
    if given:
        yield given.rstrip("/")
        return
    import asyncio
    import uuid

    for attempt in range(1, attempts + 1):
        state = Path(tempfile.mkdtemp(prefix="knotenpunkt-keycloak-"))
        port, management_port = free_ports(2)
        database = asyncio.run(ensure_database(postgres_admin_dsn, f"keycloak_{uuid.uuid4().hex[:8]}"))
        server = LocalKeycloak(state, REALM_FILE, database, port=port, management_port=management_port)
        try:
            try:
                server.start()
            except InfraError as error:
                if attempt == attempts or "port" not in str(error):
                    raise
                continue
            yield server.url
            return
        finally:
            server.stop()
            shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def infrastructure() -> Iterator[Infrastructure]:
    with _kafka_and_postgres() as found, keycloak(found.postgres_admin_dsn) as keycloak_url:
        yield Infrastructure(found.kafka_bootstrap, found.postgres_admin_dsn, found.origin, keycloak_url)
