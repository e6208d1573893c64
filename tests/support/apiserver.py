"""Run ``minikube-py apiserver`` as a real subprocess for tests, and drive kubectl at it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.etcd import free_port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    cache_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server with a fresh discovery cache."""
        env = {**os.environ, "KUBECACHEDIR": str(self.cache_dir), "KUBECONFIG": "/dev/null"}
        result = subprocess.run(
            ["kubectl", "-s", self.url, *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> tuple[int, Any]:
        data = (
            body
            if isinstance(body, bytes)
            else (json.dumps(body).encode() if body is not None else None)
        )
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "Accept": accept},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                raw = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_apiserver(
    tmp: Path, *, etcd_servers: str = "", extra: tuple[str, ...] = ()
) -> Iterator[Server]:
    port = free_port()
    log = tmp / "apiserver.log"
    args = [
        sys.executable,
        "-m",
        "minikube_py",
        "apiserver",
        "--data-dir",
        str(tmp / "data"),
        "--port",
        str(port),
        *extra,
    ]
    if etcd_servers:
        args += ["--etcd-servers", etcd_servers]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"apiserver did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield Server(url, process, log, tmp / "kubectl-cache")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
