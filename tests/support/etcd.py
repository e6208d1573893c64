"""Start real etcd members on free loopback ports for tests and benchmarks."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class EtcdMember:
    """One etcd process; ``client_url`` is what ``--etcd-servers`` takes."""

    name: str
    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, binary: str, initial_cluster: str, state: str = "new") -> None:
        log = open(self.data_dir.with_suffix(".log"), "ab")  # noqa: SIM115 - owned by the process
        flags = {
            "name": self.name,
            "data-dir": str(self.data_dir),
            "listen-client-urls": self.client_url,
            "advertise-client-urls": self.client_url,
            "listen-peer-urls": self.peer_url,
            "initial-advertise-peer-urls": self.peer_url,
            "initial-cluster": initial_cluster,
            "initial-cluster-state": state,
            "initial-cluster-token": "minikube-py-test",
            # Fast elections keep the fail-over tests short.
            "heartbeat-interval": "50",
            "election-timeout": "500",
        }
        args = [binary, *(f"--{name}={value}" for name, value in flags.items())]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1) as answer:
                return b'"true"' in answer.read()
        except OSError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class EtcdCluster:
    members: list[EtcdMember]

    @property
    def endpoints(self) -> str:
        return ",".join(m.client_url for m in self.members)

    def wait_healthy(self, timeout: float = 30.0, members: list[EtcdMember] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(members or self.members)
        while pending:
            pending = [m for m in pending if not m.healthy()]
            if not pending:
                return
            for m in pending:
                if m.process and m.process.poll() is not None:
                    log = m.data_dir.with_suffix(".log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"etcd {m.name} exited early:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd members not healthy: {[m.name for m in pending]}")
            time.sleep(0.05)

    def stop(self) -> None:
        for m in self.members:
            m.stop()


@contextlib.contextmanager
def etcd_cluster(binary: str, base_dir: Path, size: int = 1) -> Iterator[EtcdCluster]:
    """Start ``size`` fresh etcd members on loopback and stop them afterwards."""
    members = [EtcdMember(f"m{i}", base_dir / f"m{i}.etcd") for i in range(size)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    cluster = EtcdCluster(members)
    try:
        for m in members:
            m.start(binary, initial)
        cluster.wait_healthy()
        yield cluster
    finally:
        cluster.stop()
