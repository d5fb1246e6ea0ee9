from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class InfraError(RuntimeError):
    """Infrastructure could not be started; the message says what to do."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all probes stay bound until every port is chosen, so the kernel
    cannot hand the same port out twice."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes] | None, log_file: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise InfraError(f"process exited with code {process.returncode}; see {log_file}:\n{tail(log_file)}")
        if port_in_use(port):
            return
        time.sleep(0.2)
    raise InfraError(f"port {port} did not open within {timeout_s:.0f} s; see {log_file}:\n{tail(log_file)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
