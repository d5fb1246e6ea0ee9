"""A genuine single-node Apache Kafka (KRaft) started with plain `java`.

The broker's jars come from Maven Central once (via `mvn dependency:copy-dependencies`) into a
cache folder; afterwards starting needs no network.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from knotenpunkt.localinfra.ports import InfraError, port_in_use, tail, wait_for_port

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
DEFAULT_CACHE = Path(os.environ.get("KP_CACHE_DIR", Path.home() / ".cache" / "knotenpunkt"))

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>knotenpunkt.local</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/><Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


def ensure_jars(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The folder of the broker's jars, fetched from Maven Central on first use."""
    libs = cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    # Java is needed on every start, Maven only for the first fetch.
    for tool, hint in (("java", "Java 17"), ("mvn", "Maven"))[: 1 if marker.exists() else 2]:
        if shutil.which(tool) is None:
            raise InfraError(
                f"'{tool}' not found: install {hint} (Java 17 and Maven are needed to run Kafka "
                "without Docker), or use Docker: docker compose up"
            )
    if marker.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    pom = libs.parent / "pom.xml"
    pom.write_text(_POM)
    print(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs} (once) ...", file=sys.stderr)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InfraError(f"Maven could not fetch the Kafka jars:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise InfraError(f"Maven ran but no kafka_2.13 jar is in {libs}")
    marker.write_text(KAFKA_VERSION)
    return libs


@dataclass
class LocalKafka:
    """A single-node KRaft broker whose data lives in `state_dir` (kept between runs)."""

    state_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "-Xms256m -Xmx512m"
    cache_dir: Path = DEFAULT_CACHE
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "kafka.log"

    def start(self, timeout_s: float = 90) -> None:
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise InfraError(
                    f"port {port} is already in use: another Kafka (or a `make up`) may be running. "
                    "Stop it (`make down`) or choose other ports (KP_KAFKA_PORT, KP_KAFKA_CONTROLLER_PORT)."
                )
        libs = ensure_jars(self.cache_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = self.state_dir / "data"
        properties = self.state_dir / "server.properties"
        properties.write_text(self._properties(data))
        (self.state_dir / "log4j2.xml").write_text(_LOG4J2)
        java = [
            "java",
            *self.heap.split(),
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.xml'}",
            "-cp",
            f"{libs}/*",
        ]
        cluster_id_file = self.state_dir / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(_kafka_cluster_id())
        formatted = subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id_file.read_text().strip(),
                "-c",
                str(properties),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if formatted.returncode != 0:
            raise InfraError(f"Kafka storage format failed:\n{formatted.stdout}\n{formatted.stderr}")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*java, "kafka.Kafka", str(properties)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, timeout_s, self.process, self.log_file)
        self._wait_until_started(timeout_s)

    def _wait_until_started(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "Kafka Server started" in self.log_file.read_text(errors="replace"):
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise InfraError(f"Kafka did not report 'started'; see {self.log_file}:\n{tail(self.log_file)}")

    def stop(self, timeout_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _properties(self, data: Path) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=3",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Services create their topics with the right partitions and retention.
                "auto.create.topics.enable=false",
                "",
            ]
        )


def _kafka_cluster_id() -> str:
    """Kafka's cluster ids are 16 random bytes, URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
