from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from knotenpunkt.localinfra import free_ports
from knotenpunkt.testing.fixtures import unique
from tools.stack import SERVICES, Stack


@pytest.fixture(scope="session")
def stack(infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The four services and the example partner as real processes on the real infrastructure."""
    state: Path = tmp_path_factory.mktemp("stack")
    running = Stack(
        state,
        service_ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
        external_kafka_bootstrap=infra.kafka_bootstrap,
        external_postgres_admin_dsn=infra.postgres_admin_dsn,
        external_keycloak_url=infra.keycloak_url,
        database_prefix=unique("e2e") + "_",
        # The tests compare counts before and after; small-count suppression (tested on its own in
        # tests/integration/test_stats_access.py) would hide the small ones of a fresh system.
        extra_env={
            "KP_OUTBOX_POLL_INTERVAL_S": "0.2",
            "KP_REPORT_SUPPRESSION_THRESHOLD": "0",
            "KP_GAP_SUPPRESSION_THRESHOLD": "0",
        },
    )
    running.start()
    yield running
    running.stop()
