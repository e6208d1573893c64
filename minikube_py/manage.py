"""``status``, ``down`` and ``kubeconfig``: look after a cluster started by ``up``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MANAGED_LABEL = "io.minikube-py.managed=true"
NODE_LABEL = "io.minikube-py.node"


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(os.path.expanduser(str(args.data_dir or "~/.minikube-py")))


def running_pid(data_dir: Path) -> int | None:
    """The pid of the ``up`` holding this data dir, if it is alive."""
    try:
        text = (data_dir / "up.pid").read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _server(data_dir: Path) -> str | None:
    import yaml

    try:
        config = yaml.safe_load((data_dir / "kubeconfig").read_text())
    except (OSError, ValueError):
        return None
    return str(config["clusters"][0]["cluster"]["server"])


def _get(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            data: dict[str, object] = json.loads(answer.read())
            return data
    except (OSError, ValueError):
        return None


def status(data_dir: Path) -> int:
    pid = running_pid(data_dir)
    server = _server(data_dir)
    if pid is None or server is None:
        print(f"minikube-py is not running (data dir {data_dir})")
        return 1
    nodes = _get(f"{server}/api/v1/nodes") or {}
    pods = _get(f"{server}/api/v1/pods") or {}
    node_items = nodes.get("items") or []
    assert isinstance(node_items, list)
    pod_items = pods.get("items") or []
    assert isinstance(pod_items, list)
    print(f"minikube-py is running (pid {pid}) at {server}")
    print(f"  data dir: {data_dir}")
    for node in node_items:
        ready = next(
            (c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"),
            "Unknown",
        )
        print(f"  node {node['metadata']['name']}: Ready={ready}")
    phases: dict[str, int] = {}
    for pod in pod_items:
        phase = pod.get("status", {}).get("phase", "Unknown")
        phases[phase] = phases.get(phase, 0) + 1
    summary = ", ".join(f"{n} {p}" for p, n in sorted(phases.items())) or "none"
    print(f"  pods: {summary}")
    return 0


def down(data_dir: Path, purge: bool) -> int:
    pid = running_pid(data_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while running_pid(data_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"stopped minikube-py (pid {pid})")
    removed = _remove_containers(_nodes(data_dir))
    print(f"removed {removed} container(s)")
    if purge:
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"deleted {data_dir}")
    return 0


def _nodes(data_dir: Path) -> list[str]:
    """The nodes this data dir's cluster ran (``up`` records them)."""
    try:
        return (data_dir / "nodes").read_text().split()
    except FileNotFoundError:
        return []


def _remove_containers(nodes: list[str]) -> int:
    """Every container this cluster's nodes created (others on the daemon are left alone)."""
    listed: list[str] = []
    for node in nodes:
        try:
            listed += subprocess.run(
                [
                    "docker",
                    "ps",
                    "-aq",
                    "--filter",
                    f"label={MANAGED_LABEL}",
                    "--filter",
                    f"label={NODE_LABEL}={node}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            return 0
    if listed:
        subprocess.run(
            ["docker", "rm", "-f", *listed], capture_output=True, timeout=120, check=False
        )
    return len(listed)


def main(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    if args.command == "status":
        return status(data_dir)
    if args.command == "down":
        return down(data_dir, args.purge)
    path = data_dir / "kubeconfig"
    if not path.exists():
        print(
            f"minikube-py: no kubeconfig in {data_dir}: run `minikube-py up` first", file=sys.stderr
        )
        return 1
    print(path.read_text(), end="")
    return 0
