"""The whole system as local processes: Kafka, PostgreSQL, the four services, the example partner.

`make up` runs `python -m tools.stack up`; the end-to-end tests start the same Stack on free
ports. Data lives in `.state/` (ignored by git) and is reused by the next `up`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from knotenpunkt import migrations
from knotenpunkt.localinfra import InfraError, LocalKafka, LocalPostgres, port_in_use
from knotenpunkt.localinfra.keycloak import LocalKeycloak
from knotenpunkt.localinfra.ports import tail
from knotenpunkt.localinfra.postgres import ensure_database
from knotenpunkt.testing.identity import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
REALM_FILE = ROOT / "deploy" / "keycloak" / "knotenpunkt-realm.json"
SERVICES = {"intake": 8001, "cases": 8002, "referrals": 8003, "stats": 8004, "web": 8000}
PARTNER_AGENCY = "jobcenter-duisburg"
# The example partner services `make up` starts: agency id -> how it answers (accept/decline).
DEFAULT_PARTNERS = {PARTNER_AGENCY: "accept"}


@dataclass
class Stack:
    state_dir: Path
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    postgres_port: int = 5432
    keycloak_port: int = 8080
    keycloak_management_port: int = 9000
    service_ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    partner_agencies: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PARTNERS))
    extra_env: dict[str, str] = field(default_factory=dict)
    # Given infrastructure (tests): use it instead of starting Kafka and PostgreSQL here.
    external_kafka_bootstrap: str | None = None
    external_postgres_admin_dsn: str | None = None
    external_keycloak_url: str | None = None
    database_prefix: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    # Extra processes of a service (same database and consumer group), by replica name.
    replica_ports: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.kafka = LocalKafka(self.state_dir / "kafka", self.kafka_port, self.kafka_controller_port)
        self.postgres = LocalPostgres(self.state_dir / "postgres" / "data", self.postgres_port)
        self.logs = self.state_dir / "logs"
        self.dsns: dict[str, str] = {}
        self.kafka_bootstrap = self.external_kafka_bootstrap or self.kafka.bootstrap
        self.postgres_admin_dsn = self.external_postgres_admin_dsn or self.postgres.admin_dsn
        self._own_infrastructure = self.external_kafka_bootstrap is None
        self.keycloak: LocalKeycloak | None = None
        self.keycloak_url = self.external_keycloak_url or f"http://127.0.0.1:{self.keycloak_port}"

    @property
    def oidc_issuer(self) -> str:
        return f"{self.keycloak_url}/realms/knotenpunkt"

    def url(self, service: str) -> str:
        port = self.replica_ports.get(service) or self.service_ports[service]
        return f"http://127.0.0.1:{port}"

    def start(self) -> None:
        busy = [f"{name} ({port})" for name, port in self.service_ports.items() if port_in_use(port)]
        if busy:
            raise InfraError(
                f"ports already in use: {', '.join(busy)}. Is the system already running? "
                "Stop it with `make down`, or free the ports."
            )
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            if self._own_infrastructure:
                self.postgres.start()
            if self.external_keycloak_url is None:
                # Keycloak takes longest: launched first, waited for after Kafka has started.
                dsn = asyncio.run(ensure_database(self.postgres_admin_dsn, f"{self.database_prefix}keycloak"))
                self.keycloak = LocalKeycloak(
                    self.state_dir / "keycloak", REALM_FILE, dsn, self.keycloak_port, self.keycloak_management_port
                )
                self.keycloak.launch()
            if self._own_infrastructure:
                self.kafka.start()
            if self.keycloak is not None:
                self.keycloak.wait_ready()
            asyncio.run(self._prepare_databases())
            for name in self.service_ports:
                self.start_service(name)
            for name in self.service_ports:
                self.wait_ready(name)
            for agency, decision in self.partner_agencies.items():
                self.start_partner(agency, decision)
        except BaseException:
            self.stop()
            raise

    async def _prepare_databases(self) -> None:
        for name in self.service_ports:
            self.dsns[name] = await ensure_database(self.postgres_admin_dsn, f"{self.database_prefix}{name}")
            package_dir = ROOT / "services" / name / "src" / name
            await migrations.apply(self.dsns[name], migrations.migration_sets(name, package_dir / "migrations"))

    def service_env(self, name: str) -> dict[str, str]:
        # Every service learns where the others' HTTP APIs are (KP_<NAME>_URL); a service's
        # settings class reads the ones it needs and ignores the rest.
        urls = {f"KP_{other.upper()}_URL": self.url(other) for other in self.service_ports}
        return {
            **os.environ,
            **urls,
            "KP_HTTP_PORT": str(self.service_ports[name]),
            # The address people open the web app at (its sign-in returns there).
            "KP_PUBLIC_URL": self.url("web") if "web" in self.service_ports else "",
            "KP_DATABASE_URL": self.dsns[name],
            "KP_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "KP_OIDC_ISSUER": self.oidc_issuer,
            "KP_LOG_JSON": "true",
            **self.extra_env,
        }

    def start_service(self, name: str) -> None:
        self._spawn(name, [sys.executable, "-m", name], self.service_env(name))

    def start_replica(self, name: str, replica: str, port: int) -> None:
        """One more process of a service: its own HTTP port, the same database and group."""
        self.replica_ports[replica] = port
        self._spawn(replica, [sys.executable, "-m", name], {**self.service_env(name), "KP_HTTP_PORT": str(port)})

    def start_partner(self, agency_id: str, decision: str = "accept") -> None:
        env = {
            **os.environ,
            "PARTNER_AGENCY_ID": agency_id,
            "PARTNER_DECISION": decision,
            "PARTNER_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            **self.extra_env,
        }
        self._spawn(f"partner-{agency_id}", [sys.executable, "-m", "partner_agency"], env)

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
            )

    def wait_ready(self, name: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise InfraError(
                    f"{name} exited with {process.returncode}; see {self.logs / name}.log:\n"
                    f"{tail(self.logs / f'{name}.log')}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url(name)}/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise InfraError(f"{name} not ready after {timeout_s:.0f} s; see {self.logs / name}.log")

    def stop_process(self, name: str, timeout_s: float = 30) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_process(name)
        if self.keycloak is not None:
            self.keycloak.stop()
        if self._own_infrastructure:
            self.kafka.stop()
            self.postgres.stop()


def _demo_users() -> list[tuple[str, str, str | None]]:
    from tools.realm import AGENCIES, STAFF

    users = [(username, role, office) for username, role, office, _first, _last in STAFF]
    return (
        users
        + [(f"agency-{agency}", "agency_staff", agency) for agency in AGENCIES[:3]]
        + [("agency-<agency id>", "agency_staff", "one per partner agency")]
    )


DEMO_USERS = _demo_users()


def _ports_from_env() -> dict[str, int]:
    return {name: int(os.environ.get(f"KP_{name.upper()}_PORT", port)) for name, port in SERVICES.items()}


def up(state_dir: Path) -> int:
    stack = Stack(
        state_dir,
        kafka_port=int(os.environ.get("KP_KAFKA_PORT", 9092)),
        kafka_controller_port=int(os.environ.get("KP_KAFKA_CONTROLLER_PORT", 9093)),
        postgres_port=int(os.environ.get("KP_POSTGRES_PORT", 5432)),
        keycloak_port=int(os.environ.get("KP_KEYCLOAK_PORT", 8080)),
        keycloak_management_port=int(os.environ.get("KP_KEYCLOAK_MANAGEMENT_PORT", 9000)),
        service_ports=_ports_from_env(),
    )
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    try:
        stack.start()
    except InfraError as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return 1
    pid_file = state_dir / "stack.pid"
    pid_file.write_text(str(os.getpid()))
    print(f"\nKnotenpunkt is up ({time.monotonic() - started:.1f} s).\n")
    if "web" in stack.service_ports:
        print(f"  Open {stack.url('web')} and sign in as a demo user below (password '{DEMO_PASSWORD}').\n")
    for name in stack.service_ports:
        if name == "web":
            continue
        print(
            f"  {name:<10} {stack.url(name)}   API docs: {stack.url(name)}/docs   ready: {stack.url(name)}/health/ready"
        )
    print(f"\n  Keycloak          {stack.keycloak_url}   sign-in page: {stack.oidc_issuer}/account")
    print(f"                    admin console: {stack.keycloak_url}/admin (admin / admin, this machine only)")
    print(f"\n  Demo staff (password '{DEMO_PASSWORD}'; docs/operations.md, 'Sign-in and roles'):")
    for username, role, office in DEMO_USERS:
        print(f"    {username:<32} {role:<24} {office or ''}")
    print(
        "  An access token for curl (run in another terminal):\n"
        "    TOKEN=$(python3 -m uv run python -m tools.token staff-hamborn-1)\n"
        '    curl -H "Authorization: Bearer $TOKEN" localhost:8002/cases'
    )
    print(f"\n  Kafka bootstrap   {stack.kafka.bootstrap}")
    print(f"  PostgreSQL        127.0.0.1:{stack.postgres.port} (one database and role per service)")
    partners = ", ".join(f"{agency} ({decision})" for agency, decision in stack.partner_agencies.items())
    print(f"  partner example   {partners} answers its referrals")
    keycloak_log = f", {stack.keycloak.log_file}" if stack.keycloak else ""
    print(f"  logs              {stack.logs}/ (and {stack.kafka.log_file}, {stack.postgres.log_file}{keycloak_log})")
    print("\nCtrl-C or `make down` stops everything; the next `make up` keeps the data.\n", flush=True)
    try:
        while not stopping:
            for name, process in list(stack.processes.items()):
                if process.poll() is not None:
                    print(f"WARNING: {name} exited with {process.returncode}; see {stack.logs / name}.log", flush=True)
                    stack.processes.pop(name)
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        pid_file.unlink(missing_ok=True)
        print("stopped.")
    return 0


def down(state_dir: Path) -> int:
    pid_file = state_dir / "stack.pid"
    if not pid_file.exists():
        print("nothing to stop: no running stack found")
        return 0
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        print("the stack was not running (stale pid file removed)")
        return 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("stopped.")
            return 0
        time.sleep(0.3)
    print("the stack did not stop within 90 s", file=sys.stderr)
    return 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Knotenpunkt locally without Docker.")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".state")
    args = parser.parse_args()
    sys.exit(up(args.state_dir) if args.command == "up" else down(args.state_dir))


if __name__ == "__main__":
    main()
