"""Where the tests find a real Kafka broker and a real PostgreSQL, in this order:

1. addresses given in the environment (KP_TEST_KAFKA_BOOTSTRAP and KP_TEST_POSTGRES_ADMIN_DSN);
2. testcontainers, where a Docker engine answers;
3. otherwise they start both locally (Kafka from Maven Central jars, PostgreSQL's binaries).

If none works, the tests fail with the reason. They never skip.
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


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap: str
    postgres_admin_dsn: str
    origin: str


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
def infrastructure() -> Iterator[Infrastructure]:
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
