"""A pod's files on the host: its volumes and its managed ``/etc/hosts``.

Volumes (emptyDir, hostPath, configMap, secret, downwardAPI, projected): each pod gets
``<root>/pods/<uid>/volumes/<plugin>/<name>``. Files of configMap, secret, downwardAPI
and projected volumes are written as the kubelet's atomic writer does: a fresh
timestamped directory, a ``..data`` symlink swapped to it in one rename, and one symlink
per key into ``..data`` — so containers see an update all at once, never half.

The hosts file is ``<root>/pods/<uid>/etc-hosts``, one per pod, bind-mounted over
``/etc/hosts`` in each of its containers: written by the kubelet (not by Docker) so that
it holds the pod's FQDN and ``hostAliases``.
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

    def __init__(self, message: str, volume: str = "") -> None:
        super().__init__(message)
        self.volume = volume
        """The volume's name in the pod spec, when the error is about one volume."""


class MountFailed(VolumeError):
    """Some of a pod's volumes could not be set up: one error per volume, each named.

    The others were set up all the same, as the kubelet's volume manager mounts each
    volume on its own; the pod waits until every one is there.
    """

    def __init__(self, failures: list[VolumeError]) -> None:
        super().__init__("; ".join(map(str, failures)), failures[0].volume)
        self.failures = failures


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


_MISSING_KEY = {
    "ConfigMap": "configmap references non-existent config key: {}",
    "Secret": "references non-existent secret key: {}",
}


def _items(
    kind: str, data: dict[str, bytes], source: Obj, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    items = source.get("items")
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    chosen = {}
    for item in items:
        key = item.get("key")
        if key not in data:
            if source.get("optional"):
                continue
            raise VolumeError(_MISSING_KEY[kind].format(key))
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
    return _items(kind, data, source, mode)


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


_HOST_PATH_TYPES: dict[str, tuple[Callable[[int], bool], str]] = {
    "Directory": (stat.S_ISDIR, "directory"),
    "File": (stat.S_ISREG, "file"),
    "Socket": (stat.S_ISSOCK, "socket file"),
    "CharDevice": (stat.S_ISCHR, "character device"),
    "BlockDevice": (stat.S_ISBLK, "block device"),
}
"""hostPath types checked on an existing path, with the kubelet's word for each."""


def _host_path(source: Obj) -> HostVolume:
    path = Path(str(source.get("path", "")))
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    test = _HOST_PATH_TYPES.get(kind)
    if test is not None and not (path.exists() and test[0](path.stat().st_mode)):
        raise VolumeError(f"hostPath type check failed: {path} is not a {test[1]}")
    return HostVolume(str(path))


async def prepare(root: Path, pod: Obj, fetch: Fetch) -> dict[str, HostVolume]:
    """Set up (or refresh) every volume of ``pod``; volume name → where it is on the host.

    Raises MountFailed naming every volume that could not be set up (after setting up
    all the others).
    """
    base = pod_dir(root, str(dig(pod, "metadata", "uid"))) / "volumes"
    found: dict[str, HostVolume] = {}
    failures: list[VolumeError] = []
    for volume in dig(pod, "spec", "volumes") or []:
        name = str(volume.get("name"))
        try:
            found[name] = await _set_up(base, pod, volume, fetch)
        except (VolumeError, OSError) as exc:
            failures.append(VolumeError(str(exc), name))
    if failures:
        raise MountFailed(failures)
    return found


_FILE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


async def _set_up(base: Path, pod: Obj, volume: Obj, fetch: Fetch) -> HostVolume:
    name = str(volume.get("name"))
    if "hostPath" in volume:
        return _host_path(volume["hostPath"])
    if any(source in volume for source in _FILE_SOURCES):
        plugin, files = await _files_of(pod, volume, fetch)
        path = base / plugin / name
        _atomic_files(path, files)
        return HostVolume(str(path), read_only=True)
    # emptyDir, and unsupported sources acting as one
    path = base / "kubernetes.io~empty-dir" / name
    path.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in volume:
        path.chmod(0o777)
        memory = (volume.get("emptyDir") or {}).get("medium") == "Memory"
        return HostVolume(str(path), tmpfs=memory)
    return HostVolume(str(path))


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


# -- the managed /etc/hosts --

CLUSTER_DOMAIN = "cluster.local"
HOSTS_FILE = "etc-hosts"
NODE_HOSTS = Path("/etc/hosts")
_MANAGED_HEADER = "# Kubernetes-managed hosts file.\n"
_HOST_NETWORK_HEADER = "# Kubernetes-managed hosts file (host network).\n"
_LOCAL_ENTRIES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)
MAX_HOSTNAME = 63


def pod_hostname(pod: Obj, cluster_domain: str = CLUSTER_DOMAIN) -> tuple[str, str]:
    """(hostname, domain) as the kubelet derives them for a pod.

    The hostname is ``spec.hostname`` or the pod's name, cut to 63 characters without a
    trailing ``-`` or ``.``; the domain is ``<subdomain>.<namespace>.svc.<cluster domain>``
    when ``spec.subdomain`` is set, else empty.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    hostname = str(spec.get("hostname") or meta.get("name") or "")
    if len(hostname) > MAX_HOSTNAME:
        hostname = hostname[:MAX_HOSTNAME].rstrip("-.")
    subdomain = spec.get("subdomain")
    if not subdomain:
        return hostname, ""
    return hostname, f"{subdomain}.{meta.get('namespace') or 'default'}.svc.{cluster_domain}"


def _host_aliases(pod: Obj) -> str:
    """``spec.hostAliases`` as hosts lines (one per IP, its names tab-separated)."""
    aliases = dig(pod, "spec", "hostAliases") or []
    if not aliases:
        return ""
    lines = []
    for alias in aliases:
        names = "\t".join(str(name) for name in alias.get("hostnames") or [])
        lines.append(f"{alias.get('ip', '')}\t{names}\n")
    return "\n# Entries added by HostAliases.\n" + "".join(lines)


def hosts_content(
    pod: Obj,
    pod_ips: list[str],
    *,
    node_hosts: Path = NODE_HOSTS,
    cluster_domain: str = CLUSTER_DOMAIN,
) -> str:
    """The pod's ``/etc/hosts`` as kubelet 1.32 writes it.

    On the pod network: localhost and the IPv6 names, each pod IP with the hostname (and
    the FQDN first with a subdomain), then the host aliases. On the host network: the
    node's own hosts file under its own header, then the host aliases.
    """
    if dig(pod, "spec", "hostNetwork"):
        return _HOST_NETWORK_HEADER + node_hosts.read_text() + _host_aliases(pod)
    hostname, domain = pod_hostname(pod, cluster_domain)
    names = f"{hostname}.{domain}\t{hostname}" if domain else hostname
    own = "".join(f"{ip}\t{names}\n" for ip in pod_ips)
    return _MANAGED_HEADER + _LOCAL_ENTRIES + own + _host_aliases(pod)


def write_hosts_file(
    root: Path,
    pod: Obj,
    pod_ips: list[str],
    *,
    node_hosts: Path = NODE_HOSTS,
    cluster_domain: str = CLUSTER_DOMAIN,
) -> Path:
    """Write the pod's hosts file (see ``hosts_content``); its path on the host.

    Written in place, never replaced by a rename: a file bind mount holds on to its
    inode, so running containers would keep seeing a replaced file's old content.
    """
    path = pod_dir(root, str(dig(pod, "metadata", "uid"))) / HOSTS_FILE
    content = hosts_content(pod, pod_ips, node_hosts=node_hosts, cluster_domain=cluster_domain)
    if not path.exists() or path.read_text() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    path.chmod(0o644)
    return path
