"""Real infrastructure without Docker: Apache Kafka from Maven Central jars, PostgreSQL from the
machine's binaries. Used by `make up` and by the test fixtures: the same code for both."""

from knotenpunkt.localinfra.kafka import LocalKafka
from knotenpunkt.localinfra.ports import InfraError, free_port, free_ports, port_in_use
from knotenpunkt.localinfra.postgres import LocalPostgres

__all__ = ["InfraError", "LocalKafka", "LocalPostgres", "free_port", "free_ports", "port_in_use"]
