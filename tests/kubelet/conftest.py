"""A real Docker daemon for the kubelet's tests, seen through the docker CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from minikube_py.kubelet.runtime.interface import NODE_NAME
from tests.support.docker import require_docker
from tests.support.etcd import free_port
from tests.support.requirements import missing, require_binary

PAUSE = "registry.k8s.io/pause:3.10"
BUSYBOX = "busybox:1.35"


@dataclass(frozen=True)
class DockerCLI:
    """The docker CLI: an independent view of what the runtime did (no aiodocker here)."""

    binary: str

    async def run(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        if process.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {err.decode(errors='replace')}")
        return out.decode()

    async def inspect(self, container_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(await self.run("inspect", container_id))
        return found[0]

    async def sweep(self, node_name: str) -> None:
        """Remove every container of ``node_name``, running or not, with its volumes."""
        ids = (await self.run("ps", "-aq", "--filter", f"label={NODE_NAME}={node_name}")).split()
        if ids:
            await self.run("rm", "-f", "-v", *ids)


@pytest.fixture(scope="session")
def docker() -> DockerCLI:
    """A running daemon with the test images, or skip (fail under CI=true)."""
    binary = require_binary("docker")
    answer = subprocess.run([binary, "version"], capture_output=True, timeout=30, check=False)
    if answer.returncode != 0:
        missing("a Docker daemon")
    for image in (PAUSE, BUSYBOX):
        found = subprocess.run(
            [binary, "image", "inspect", image], capture_output=True, timeout=30, check=False
        )
        if found.returncode != 0:
            missing(f"the image {image} (scripts/images.sh makes it)")
    return DockerCLI(binary)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry on a free loopback port holding ``demo/busybox:v1`` (pushed by Docker,
    then removed locally, so using it means pulling it)."""
    require_docker()
    binary = require_binary("docker-registry")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'blobs'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(tmp_path / "registry.log", "w") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("registry did not start") from None
                time.sleep(0.1)
        image = f"{address}/demo/busybox:v1"
        for args in (["tag", BUSYBOX, image], ["push", image], ["rmi", image]):
            subprocess.run(["docker", *args], check=True, capture_output=True, timeout=120)
        yield address
    finally:
        process.terminate()
        process.wait(10)
