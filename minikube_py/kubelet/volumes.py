"""Pod volumes on the host: emptyDir, hostPath, configMap, secret, downwardAPI, projected.

Each pod gets ``<root>/pods/<uid>/volumes/<plugin>/<name>``. Files of configMap, secret,
downwardAPI and projected volumes are written as the kubelet's atomic writer does: a
fresh timestamped directory, a ``..data`` symlink swapped to it in one rename, and one
symlink per key into ``..data`` — so containers see an update all at once, never half.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minikube_py.meta.objects import Obj, dig

Fetch = Callable[[str, str], Awaitable[Obj | None]]
"""(kind "ConfigMap"|"Secret", name) → the object in the pod's namespace, or None."""


class VolumeError(Exception):
    """A volume cannot be set up yet (missing configMap, bad hostPath type...)."""


@dataclass(frozen=True)
class HostVolume:
    path: str
    tmpfs: bool = False
    read_only: bool = False


def pod_dir(root: Path, uid: str) -> Path:
    return root / "pods" / uid


def _atomic_files(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write ``files`` (relative path → content, mode) into ``target`` atomically."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    current = {}
    if data_link.is_symlink():
        old = target / os.readlink(data_link)
        current = {
            p.relative_to(old).as_posix(): p.read_bytes() for p in old.rglob("*") if p.is_file()
        }
    if current == {k: v for k, (v, _) in files.items()} and data_link.exists():
        return
    fresh = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    fresh.mkdir()
    for rel, (content, mode) in files.items():
        path = fresh / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    staging = target / "..data_tmp"
    staging.unlink(missing_ok=True)
    staging.symlink_to(fresh.name)
    staging.rename(data_link)
    for rel in {r.split("/", 1)[0] for r in files}:
        link = target / rel
        if not link.is_symlink():
            link.symlink_to(f"..data/{rel}")
    for entry in target.iterdir():
        if entry.name.startswith("..") and entry.name not in ("..data", fresh.name):
            shutil.rmtree(entry, ignore_errors=True)
    for entry in target.iterdir():
        if (
            not entry.name.startswith("..")
            and entry.is_symlink()
            and entry.name not in {r.split("/", 1)[0] for r in files}
        ):
            entry.unlink()


def _items(data: dict[str, bytes], source: Obj, default_mode: int) -> dict[str, tuple[bytes, int]]:
    items = source.get("items")
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    chosen = {}
    for item in items:
        key = item.get("key")
        if key not in data:
            raise VolumeError(f"configmap references non-existent config key: {key}")
        chosen[str(item.get("path") or key)] = (data[key], int(item.get("mode") or default_mode))
    return chosen


async def _source_files(kind: str, source: Obj, fetch: Fetch) -> dict[str, tuple[bytes, int]]:
    name = str(source.get("name") or source.get("secretName") or "")
    obj = await fetch(kind, name)
    mode = int(source.get("defaultMode") or 0o644)
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'{kind.lower()} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return _items(data, source, mode)


def field_value(pod: Obj, path: str) -> str:
    """A downward API fieldRef: metadata.name, metadata.labels['x'], status.podIP, ..."""
    if path.startswith("metadata.labels[") or path.startswith("metadata.annotations["):
        section = "labels" if "labels" in path else "annotations"
        key = path[path.index("[") + 1 : -1].strip("'\"")
        return str((dig(pod, "metadata", section) or {}).get(key, ""))
    if path in ("metadata.labels", "metadata.annotations"):
        values = dig(pod, "metadata", path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    aliases = {"spec.serviceAccountName": ("spec", "serviceAccountName")}
    steps = aliases.get(path, tuple(path.split(".")))
    value: Any = dig(pod, *steps)
    if path == "status.podIPs":
        value = ",".join(p.get("ip", "") for p in value or [])
    return "" if value is None else str(value)


async def _downward_files(pod: Obj, source: Obj) -> dict[str, tuple[bytes, int]]:
    mode = int(source.get("defaultMode") or 0o644)
    files = {}
    for item in source.get("items") or []:
        ref = item.get("fieldRef")
        value = field_value(pod, ref.get("fieldPath", "")) if ref else ""
        files[str(item["path"])] = (value.encode(), int(item.get("mode") or mode))
    return files


async def _projected_files(pod: Obj, source: Obj, fetch: Fetch) -> dict[str, tuple[bytes, int]]:
    mode = int(source.get("defaultMode") or 0o644)
    files: dict[str, tuple[bytes, int]] = {}
    for part in source.get("sources") or []:
        if "configMap" in part:
            files.update(
                await _source_files("ConfigMap", {"defaultMode": mode, **part["configMap"]}, fetch)
            )
        elif "secret" in part:
            files.update(
                await _source_files("Secret", {"defaultMode": mode, **part["secret"]}, fetch)
            )
        elif "downwardAPI" in part:
            files.update(await _downward_files(pod, {"defaultMode": mode, **part["downwardAPI"]}))
    return files


def _host_path(source: Obj) -> HostVolume:
    path = Path(str(source.get("path", "")))
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    tests: dict[str, Callable[[int], bool]] = {
        "Directory": stat.S_ISDIR,
        "File": stat.S_ISREG,
        "Socket": stat.S_ISSOCK,
        "CharDevice": stat.S_ISCHR,
        "BlockDevice": stat.S_ISBLK,
    }
    test = tests.get(kind)
    if test is not None and not (path.exists() and test(path.stat().st_mode)):
        raise VolumeError(f"hostPath type check failed: {path} is not a {kind}")
    return HostVolume(str(path))


async def prepare(root: Path, pod: Obj, fetch: Fetch) -> dict[str, HostVolume]:
    """Set up (or refresh) every volume of ``pod``; volume name → where it is on the host."""
    uid = str(dig(pod, "metadata", "uid"))
    base = pod_dir(root, uid) / "volumes"
    found: dict[str, HostVolume] = {}
    for volume in dig(pod, "spec", "volumes") or []:
        name = str(volume.get("name"))
        if "emptyDir" in volume:
            path = base / "kubernetes.io~empty-dir" / name
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
            memory = (volume.get("emptyDir") or {}).get("medium") == "Memory"
            found[name] = HostVolume(str(path), tmpfs=memory)
        elif "hostPath" in volume:
            found[name] = _host_path(volume["hostPath"])
        elif (
            "configMap" in volume
            or "secret" in volume
            or "downwardAPI" in volume
            or "projected" in volume
        ):
            plugin, files = await _files_of(pod, volume, fetch)
            path = base / plugin / name
            _atomic_files(path, files)
            found[name] = HostVolume(str(path), read_only=True)
        else:
            path = base / "kubernetes.io~empty-dir" / name  # unsupported sources act as emptyDir
            path.mkdir(parents=True, exist_ok=True)
            found[name] = HostVolume(str(path))
    return found


async def _files_of(
    pod: Obj, volume: Obj, fetch: Fetch
) -> tuple[str, dict[str, tuple[bytes, int]]]:
    if "configMap" in volume:
        return "kubernetes.io~configmap", await _source_files(
            "ConfigMap", volume["configMap"], fetch
        )
    if "secret" in volume:
        return "kubernetes.io~secret", await _source_files("Secret", volume["secret"], fetch)
    if "downwardAPI" in volume:
        return "kubernetes.io~downward-api", await _downward_files(pod, volume["downwardAPI"])
    return "kubernetes.io~projected", await _projected_files(pod, volume["projected"], fetch)


def cleanup(root: Path, uid: str) -> None:
    shutil.rmtree(pod_dir(root, uid), ignore_errors=True)
