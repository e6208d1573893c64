"""Kubeconfig files: write the cluster's own, and merge it into the user's (as minikube does)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

NAME = "minikube-py"


def document(server: str) -> dict[str, Any]:
    """One cluster, one user (no credentials: plain HTTP on loopback), one current context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": {"server": server}}],
        "users": [{"name": NAME, "user": {}}],
        "contexts": [
            {"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": "default"}}
        ],
        "current-context": NAME,
        "preferences": {},
    }


def user_path() -> Path:
    """Where kubectl looks: the first file in $KUBECONFIG, else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first) if first else Path.home() / ".kube" / "config"


def _replace(entries: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("name") != new["name"]] + [new]


def merge(path: Path, server: str) -> None:
    """Add or refresh our cluster, user and context and make it current; keep the rest."""
    try:
        current = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        current = {}
    ours = document(server)
    merged = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": current.get("preferences") or {},
        **{k: v for k, v in current.items() if k not in ("clusters", "users", "contexts")},
    }
    for section in ("clusters", "users", "contexts"):
        merged[section] = _replace(list(current.get(section) or []), ours[section][0])
    merged["current-context"] = NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".minikube-py.tmp")
    temporary.write_text(yaml.safe_dump(merged, sort_keys=False))
    temporary.chmod(0o600)
    temporary.replace(path)


def write(path: Path, server: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document(server), sort_keys=False))
    path.chmod(0o600)
