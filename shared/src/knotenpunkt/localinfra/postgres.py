"""PostgreSQL from the machine's binaries, initialised into a folder of ours.

initdb refuses to run as root, so as root the server runs as the `postgres` system user
(present wherever Debian's PostgreSQL packages are installed).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from knotenpunkt.localinfra.ports import InfraError, port_in_use, tail, wait_for_port

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres"  # local, loopback-only development and test clusters


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise InfraError(
        f"PostgreSQL binary '{name}' not found: install PostgreSQL "
        "(apt-get install postgresql), or use Docker: docker compose up"
    )


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int = 5432
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise InfraError("running as root needs the 'postgres' system user (apt-get install postgresql)") from None
        return ["runuser", "-u", "postgres", "--"]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout_s: float = 60) -> None:
        if port_in_use(self.port):
            raise InfraError(
                f"port {self.port} is already in use: another PostgreSQL (or a `make up`) may be running. "
                "Stop it (`make down`) or choose another port (KP_POSTGRES_PORT)."
            )
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        prefix = self._as_server_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._chown(self.data_dir)
            password_file = self.data_dir.parent / "pg_superuser_password"
            password_file.write_text(SUPERUSER_PASSWORD)
            self._chown(password_file)
            result = subprocess.run(
                [
                    *prefix,
                    _binary("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={password_file}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            password_file.unlink(missing_ok=True)
            if result.returncode != 0:
                raise InfraError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        self.log_file.touch()
        self._chown(self.log_file)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *prefix,
                    _binary("postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.data_dir}",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "fsync=on",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, timeout_s, self.process, self.log_file)

    def stop(self, timeout_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGINT: PostgreSQL's "fast" shutdown (aborts sessions, checkpoints cleanly).
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __repr__(self) -> str:
        return f"LocalPostgres(port={self.port}, log={tail(self.log_file, 0)!r})"


async def ensure_database(admin_dsn: str, name: str, password: str | None = None) -> str:
    """A role and a database of that name owned by it (idempotent); returns the service's DSN."""
    password = password or name
    host_part = admin_dsn.split("@", 1)[1].rsplit("/", 1)[0]
    connection = await asyncpg.connect(admin_dsn)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            await connection.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    finally:
        await connection.close()
    return f"postgresql://{name}:{password}@{host_part}/{name}"
