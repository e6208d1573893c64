"""From a pod's container spec to the runtime's ContainerConfig: env, mounts, limits.

Environment resolution follows the kubelet: ``envFrom`` first, then ``env`` in order,
``$(VAR)`` references expanded against what is defined so far, values from the downward
API, config maps, secrets and resource fields.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from minikube_py.kubelet.runtime.interface import (
    ContainerConfig,
    Mount,
    PodRef,
    SecurityContext,
)
from minikube_py.kubelet.volumes import Fetch, HostVolume, VolumeError, field_value
from minikube_py.meta.objects import Obj, dig

_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "K": 10**3,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def quantity(text: object) -> float:
    """A Kubernetes quantity (``128Mi``, ``500m``, ``1.5``) as a number."""
    value = str(text).strip()
    if value.endswith("m"):
        return float(value[:-1]) / 1000
    for suffix, factor in sorted(_UNITS.items(), key=lambda kv: -len(kv[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def expand(value: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` expansion as the kubelet does it; ``$$`` escapes, unknown refs stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, value)


def _resource_field(container: Obj, ref: Obj) -> str:
    resource = str(ref.get("resource", ""))
    section, _, name = resource.partition(".")
    raw = dig(container, "resources", section, name)
    divisor = quantity(ref.get("divisor") or "1")
    if raw is None:
        return "0"
    amount = quantity(raw) / divisor
    return str(int(amount)) if name != "cpu" else str(max(1, int(-(-amount // 1))))


async def _value_from(pod: Obj, container: Obj, source: Obj, fetch: Fetch) -> str | None:
    if "fieldRef" in source:
        return field_value(pod, str(source["fieldRef"].get("fieldPath", "")))
    if "resourceFieldRef" in source:
        return _resource_field(container, source["resourceFieldRef"])
    for kind, key_ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        if key_ref in source:
            ref = source[key_ref]
            obj = await fetch(kind, str(ref.get("name", "")))
            data = (obj or {}).get("data") or {}
            if ref.get("key") not in data:
                if ref.get("optional"):
                    return None
                where = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
                raise VolumeError(f"couldn't find key {ref.get('key')} in {kind} {where}")
            value = data[ref["key"]]
            return (
                base64.b64decode(value).decode(errors="replace") if kind == "Secret" else str(value)
            )
    return None


async def environment(pod: Obj, container: Obj, fetch: Fetch) -> list[tuple[str, str]]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key not in source:
                continue
            obj = await fetch(kind, str(source[key].get("name", "")))
            if obj is None:
                if source[key].get("optional"):
                    continue
                raise VolumeError(f'{kind.lower()} "{source[key].get("name")}" not found')
            for name, value in (obj.get("data") or {}).items():
                text = (
                    base64.b64decode(value).decode(errors="replace")
                    if kind == "Secret"
                    else str(value)
                )
                env[prefix + name] = text
    for item in container.get("env") or []:
        name = str(item.get("name"))
        if "valueFrom" in item:
            value = await _value_from(pod, container, item["valueFrom"], fetch)
            if value is not None:
                env[name] = value
        else:
            env[name] = expand(str(item.get("value", "")), env)
    return list(env.items())


def mounts(container: Obj, volumes: Mapping[str, HostVolume]) -> tuple[Mount, ...]:
    found = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(str(mount.get("name")))
        if volume is None:
            raise VolumeError(f'volume "{mount.get("name")}" is not set up')
        sub_path = str(mount.get("subPath") or "")
        host = f"{volume.path}/{sub_path}" if sub_path else volume.path
        found.append(
            Mount(
                host_path=host,
                container_path=str(mount.get("mountPath")),
                read_only=bool(mount.get("readOnly")) or volume.read_only,
                tmpfs=volume.tmpfs and not sub_path,
                sub_path=sub_path,
            )
        )
    return tuple(found)


ETC_HOSTS = "/etc/hosts"


def hosts_mount(container: Obj, hosts_file: str) -> tuple[Mount, ...]:
    """The pod's managed hosts file over ``/etc/hosts``, unless the container mounts its
    own there (as the kubelet leaves it then); writable, as the kubelet mounts it."""
    if not hosts_file or any(
        m.get("mountPath") == ETC_HOSTS for m in container.get("volumeMounts") or []
    ):
        return ()
    return (Mount(host_path=hosts_file, container_path=ETC_HOSTS),)


def _security(pod: Obj, container: Obj) -> SecurityContext:
    pod_ctx = dig(pod, "spec", "securityContext") or {}
    ctx = container.get("securityContext") or {}
    caps = ctx.get("capabilities") or {}
    return SecurityContext(
        run_as_user=ctx.get("runAsUser", pod_ctx.get("runAsUser")),
        run_as_group=ctx.get("runAsGroup", pod_ctx.get("runAsGroup")),
        privileged=bool(ctx.get("privileged")),
        read_only_root=bool(ctx.get("readOnlyRootFilesystem")),
        add_capabilities=tuple(caps.get("add") or ()),
        drop_capabilities=tuple(caps.get("drop") or ()),
    )


async def container_config(
    pod: Obj,
    container: Obj,
    attempt: int,
    volumes: Mapping[str, HostVolume],
    fetch: Fetch,
    *,
    hosts_file: str = "",
) -> ContainerConfig:
    """``hosts_file``: the pod's managed hosts file on the host ("": Docker's own stays)."""
    meta = pod["metadata"]
    ref = PodRef(str(meta["uid"]), str(meta["name"]), str(meta.get("namespace", "")))
    env = await environment(pod, container, fetch)
    env_map = dict(env)
    limits = dig(container, "resources", "limits") or {}
    requests = dig(container, "resources", "requests") or {}
    cpu_request = quantity(requests.get("cpu", limits.get("cpu", 0)))
    return ContainerConfig(
        pod=ref,
        name=str(container["name"]),
        attempt=attempt,
        image=str(container.get("image", "")),
        command=tuple(expand(str(c), env_map) for c in container.get("command") or []),
        args=tuple(expand(str(a), env_map) for a in container.get("args") or []),
        env=tuple(env),
        working_dir=str(container.get("workingDir") or ""),
        mounts=(*mounts(container, volumes), *hosts_mount(container, hosts_file)),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        memory_limit=int(quantity(limits["memory"])) if "memory" in limits else 0,
        cpu_limit_millis=int(quantity(limits["cpu"]) * 1000) if "cpu" in limits else 0,
        cpu_shares=max(2, int(cpu_request * 1024)) if cpu_request else 2,
        security=_security(pod, container),
        termination_message_path=str(
            container.get("terminationMessagePath") or "/dev/termination-log"
        ),
    )
