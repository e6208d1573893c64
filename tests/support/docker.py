"""A real Docker daemon for tests (a failure under CI=true when none answers)."""

from __future__ import annotations

import subprocess

from tests.support.requirements import missing, require_binary


def require_docker() -> str:
    binary = require_binary("docker")
    done = subprocess.run(
        [binary, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        missing("a Docker daemon")
    return binary


def containers(*filters: str) -> list[str]:
    args = ["docker", "ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}"]
    for item in filters:
        args += ["--filter", item]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def remove_node_containers(node: str) -> None:
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.minikube-py.node={node}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=60, check=False)
