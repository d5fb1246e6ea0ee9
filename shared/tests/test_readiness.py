"""/health/ready: a stalled consumer takes the replica out of service, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from knotenpunkt.service import ServiceRuntime
from knotenpunkt.settings import ServiceSettings


class _Consumer:
    def __init__(self, reason: str | None) -> None:
        self.reason = reason

    def stalled(self) -> str | None:
        return self.reason


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> ServiceRuntime:
    runtime = ServiceRuntime(ServiceSettings(service_name="readiness-test"), Path("/nonexistent"))

    async def reachable() -> bool:
        return True

    # Database and broker answer; only the consumers decide here.
    monkeypatch.setattr(runtime.database, "ping", reachable)
    monkeypatch.setattr(runtime, "_broker_ok", reachable)
    return runtime


def test_ready_while_no_consumer_is_stalled(runtime: ServiceRuntime) -> None:
    runtime.consumers.append(_Consumer(None))  # type: ignore[arg-type]
    answer = TestClient(runtime.app).get("/health/ready")
    assert answer.status_code == 200
    assert answer.json()["checks"]["consumers"] == "ok"


def test_a_stalled_consumer_answers_503_with_its_reason(runtime: ServiceRuntime) -> None:
    reason = "knotenpunkt.cases:knotenpunkt.intake.clients.v1: no progress for over 300 s on ...[0]"
    runtime.consumers.extend([_Consumer(None), _Consumer(reason)])  # type: ignore[list-item]
    answer = TestClient(runtime.app).get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["checks"]["consumers"] == [reason]
