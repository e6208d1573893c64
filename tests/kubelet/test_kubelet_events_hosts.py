"""Events as the kubelet records them (Pulling, Pulled, Created, Started, FailedMount,
SandboxChanged, Failed/BackOff on pulls) and the kubelet-managed ``/etc/hosts``: the pure
rules first, then on real Docker, read back through the events API, ``kubectl describe``
and ``docker exec``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from minikube_py.client.events import EVENTS
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.kubelet import volumes
from minikube_py.kubelet.sync import KINDS, PODS, go_duration
from minikube_py.meta.objects import Obj
from tests.kubelet.conftest import DockerCLI
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

LOCAL = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)
ALIASES = [
    {"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]},
    {"ip": "10.1.2.4", "hostnames": ["baz.local"]},
]
ALIAS_LINES = (
    "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n10.1.2.4\tbaz.local\n"
)


def pod_obj(name: str = "web", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": "u-1"}, "spec": spec}


# -- the rules, without Docker --


def test_hosts_file_on_the_pod_network() -> None:
    plain = volumes.hosts_content(pod_obj(), ["172.17.0.5"])
    assert plain == "# Kubernetes-managed hosts file.\n" + LOCAL + "172.17.0.5\tweb\n"
    named = volumes.hosts_content(
        pod_obj(hostname="db-0", subdomain="db", hostAliases=ALIASES), ["172.17.0.6"]
    )
    assert named == (
        "# Kubernetes-managed hosts file.\n"
        + LOCAL
        + "172.17.0.6\tdb-0.db.ns.svc.cluster.local\tdb-0\n"
        + ALIAS_LINES
    )


def test_hosts_file_on_the_host_network_copies_the_node(tmp_path: Path) -> None:
    node = tmp_path / "hosts"
    node.write_text("127.0.0.1 localhost\n10.0.0.9 node-a\n")
    content = volumes.hosts_content(
        pod_obj(hostNetwork=True, hostAliases=ALIASES), ["10.0.0.9"], node_hosts=node
    )
    assert content == (
        "# Kubernetes-managed hosts file (host network).\n"
        "127.0.0.1 localhost\n10.0.0.9 node-a\n" + ALIAS_LINES
    )


def test_hostname_is_cut_to_a_dns_label() -> None:
    long = "a" * 62 + "-b" + "c" * 10
    assert volumes.pod_hostname(pod_obj(long)) == ("a" * 62, "")
    assert volumes.pod_hostname(pod_obj("x", subdomain="s")) == ("x", "s.ns.svc.cluster.local")


def test_hosts_file_is_rewritten_in_place(tmp_path: Path) -> None:
    """A bind mount of a file holds its inode: an update must keep it."""
    first = volumes.write_hosts_file(tmp_path, pod_obj(), ["172.17.0.5"])
    inode = first.stat().st_ino
    second = volumes.write_hosts_file(tmp_path, pod_obj(), ["172.17.0.7"])
    assert second == tmp_path / "pods" / "u-1" / "etc-hosts"
    assert second.stat().st_ino == inode
    assert second.read_text().endswith("172.17.0.7\tweb\n")
    assert oct(second.stat().st_mode & 0o777) == "0o644"


DURATIONS = [(0, "0s"), (0.0005, "0s"), (0.523, "523ms"), (1.2345, "1.234s"), (10, "10s")]
DURATIONS += [(80, "1m20s"), (300, "5m0s"), (3725.5, "1h2m5.5s")]


@pytest.mark.parametrize(("seconds", "text"), DURATIONS)
def test_durations_read_as_go_prints_them(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


async def test_every_volume_that_fails_is_named_and_the_others_set_up(tmp_path: Path) -> None:
    async def fetch(kind: str, name: str) -> Obj | None:
        return {"data": {"k": "v"}} if name == "there" else None

    pod = pod_obj(
        volumes=[
            {"name": "cfg", "configMap": {"name": "missing"}},
            {"name": "ok", "configMap": {"name": "there"}},
            {"name": "sec", "secret": {"secretName": "gone"}},
            {"name": "dir", "hostPath": {"path": str(tmp_path / "nope"), "type": "Directory"}},
        ]
    )
    with pytest.raises(volumes.MountFailed) as caught:
        await volumes.prepare(tmp_path, pod, fetch)
    assert [(f.volume, str(f)) for f in caught.value.failures] == [
        ("cfg", 'configmap "missing" not found'),
        ("sec", 'secret "gone" not found'),
        ("dir", f"hostPath type check failed: {tmp_path / 'nope'} is not a directory"),
    ]
    ok = tmp_path / "pods" / "u-1" / "volumes" / "kubernetes.io~configmap" / "ok" / "k"
    assert ok.read_text() == "v"


# -- on real Docker --


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require_docker()
    node = f"ev-{uuid.uuid4().hex[:8]}"
    try:
        async with running_cluster(
            tmp_path / "cluster", simulated_nodes=0, docker_node=node, crash_backoff=1.0
        ) as running:
            yield running
    finally:
        remove_node_containers(node)


def sleeper(name: str = "c", image: str = "busybox:1.35", **extra: Any) -> Obj:
    return {"name": name, "image": image, "command": ["sleep", "3600"], **extra}


async def create(cluster: Cluster, name: str, **spec: Any) -> Obj:
    pod = {"metadata": {"name": name}, "spec": {"nodeName": cluster.config.node_name, **spec}}
    return await cluster.client.create(PODS, "default", pod)


async def events_of(cluster: Cluster, pod: Obj) -> list[Obj]:
    found = await cluster.client.list(EVENTS, Selection(namespace="default"))
    uid = pod["metadata"]["uid"]
    return [e for e in found.items if e["involvedObject"].get("uid") == uid]


def matching(found: list[Obj], reason: str, message: str, field: str | None) -> list[Obj]:
    """Events with ``reason``, a message matching the regex ``message`` (and ``field``)."""
    return [
        e
        for e in found
        if e["reason"] == reason
        and re.fullmatch(message, e["message"])
        and field in (None, e["involvedObject"].get("fieldPath"))
    ]


async def one_event(
    cluster: Cluster, pod: Obj, reason: str, message: str, field: str | None = None
) -> Obj:
    """The event of ``pod`` that matches, once the kubelet recorded it."""

    async def recorded() -> bool:
        return bool(matching(await events_of(cluster, pod), reason, message, field))

    await wait_until(recorded, within=60, what=f"{reason} event {message!r}")
    return matching(await events_of(cluster, pod), reason, message, field)[0]


async def phase(cluster: Cluster, name: str) -> str:
    return str(((await cluster.client.get(PODS, "default", name)).get("status") or {}).get("phase"))


async def running(cluster: Cluster, name: str) -> None:
    async def check() -> bool:
        return await phase(cluster, name) == "Running"

    await wait_until(check, within=60, what=f"{name} Running")


async def kubectl(cluster: Cluster, tmp: Path, *args: str) -> str:
    binary = require_binary("kubectl")
    env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(tmp / "kubectl-cache")}
    server = f"http://127.0.0.1:{cluster.config.apiserver.port}"
    process = await asyncio.create_subprocess_exec(
        binary,
        "-s",
        server,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def container_ids(docker: DockerCLI, pod: Obj) -> dict[str, str]:
    """Container name (``POD`` for the sandbox) → Docker ID, from Docker's own labels."""
    uid = pod["metadata"]["uid"]
    out = await docker.run(
        "ps",
        "-a",
        "--filter",
        f"label=io.kubernetes.pod.uid={uid}",
        "--format",
        '{{.ID}} {{.Label "io.kubernetes.container.name"}}',
    )
    ids = {}
    for line in out.splitlines():
        cid, _, name = line.partition(" ")
        ids[name or "POD"] = cid
    return ids


async def test_a_normal_pod_tells_its_story_and_gets_the_managed_hosts_file(
    cluster: Cluster, docker: DockerCLI, tmp_path: Path
) -> None:
    pod = await create(
        cluster,
        "story",
        hostname="web-0",
        subdomain="web",
        hostAliases=ALIASES,
        initContainers=[
            {"name": "init", "image": "busybox:1.35", "command": ["cat", "/etc/hosts"]}
        ],
        containers=[sleeper()],
    )
    await running(cluster, "story")
    present = re.escape('Container image "busybox:1.35" already present on machine')
    for name, field in (("init", "spec.initContainers{init}"), ("c", "spec.containers{c}")):
        pulled = await one_event(cluster, pod, "Pulled", present, field)
        created = await one_event(cluster, pod, "Created", f"Created container {name}", field)
        started = await one_event(cluster, pod, "Started", f"Started container {name}", field)
        assert pulled["type"] == created["type"] == started["type"] == "Normal"
        assert started["source"]["component"] == "kubelet"
        assert pulled["firstTimestamp"] <= created["firstTimestamp"] <= started["firstTimestamp"]
    reasons = [e["reason"] for e in await events_of(cluster, pod)]
    assert "Pulling" not in reasons  # present already: no pull

    described = await kubectl(cluster, tmp_path, "describe", "pod", "story")
    events = described[described.index("Events:") :]
    for expected in (
        'Container image "busybox:1.35" already present on machine',
        "Created container c",
        "Started container c",
    ):
        assert re.search(rf"Normal\s+\w+\s+.*kubelet\s+{re.escape(expected)}", events), events

    status = (await cluster.client.get(PODS, "default", "story"))["status"]
    ids = await container_ids(docker, pod)
    hosts = await docker.run("exec", ids["c"], "cat", "/etc/hosts")
    assert hosts == (
        "# Kubernetes-managed hosts file.\n"
        + LOCAL
        + f"{status['podIP']}\tweb-0.web.default.svc.cluster.local\tweb-0\n"
        + ALIAS_LINES
    )
    assert await docker.run("logs", ids["init"]) == hosts  # the init container saw it too
    source = str(cluster.kubelets[0].config.node.root_dir / "pods" / pod["metadata"]["uid"])
    for name in ("c", "init"):
        mounts = (await docker.inspect(ids[name]))["Mounts"]
        assert {"Source": f"{source}/etc-hosts", "Destination": "/etc/hosts"}.items() <= next(
            m for m in mounts if m["Destination"] == "/etc/hosts"
        ).items()
    sandbox_mounts = (await docker.inspect(ids["POD"]))["Mounts"]
    assert all(m["Destination"] != "/etc/hosts" for m in sandbox_mounts)


async def test_host_network_pod_gets_the_node_hosts_file(
    cluster: Cluster, docker: DockerCLI
) -> None:
    pod = await create(cluster, "hostnet", hostNetwork=True, containers=[sleeper()])
    await running(cluster, "hostnet")
    ids = await container_ids(docker, pod)
    hosts = await docker.run("exec", ids["c"], "cat", "/etc/hosts")
    node = await asyncio.to_thread(Path("/etc/hosts").read_text)
    assert hosts == "# Kubernetes-managed hosts file (host network).\n" + node


async def test_a_missing_config_map_is_a_failed_mount_until_it_exists(cluster: Cluster) -> None:
    pod = await create(
        cluster,
        "mount",
        containers=[sleeper(volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])],
        volumes=[{"name": "cfg", "configMap": {"name": "later"}}],
    )
    message = 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found'
    failed = await one_event(cluster, pod, "FailedMount", re.escape(message))
    assert failed["type"] == "Warning"
    assert "fieldPath" not in failed["involvedObject"]

    async def counted_up() -> bool:
        found = await events_of(cluster, pod)
        return any(e["reason"] == "FailedMount" and e["count"] >= 2 for e in found)

    await wait_until(counted_up, within=30, what="the repeated FailedMount counted")
    assert await phase(cluster, "mount") == "Pending"
    await cluster.client.create(
        KINDS["ConfigMap"], "default", {"metadata": {"name": "later"}, "data": {"k": "v"}}
    )
    await running(cluster, "mount")
    await one_event(cluster, pod, "Started", "Started container c")


async def test_a_dead_sandbox_is_replaced_with_sandbox_changed(
    cluster: Cluster, docker: DockerCLI
) -> None:
    pod = await create(cluster, "phoenix", containers=[sleeper()])
    await running(cluster, "phoenix")
    first = await container_ids(docker, pod)
    await docker.run("kill", first["POD"])
    changed = await one_event(
        cluster,
        pod,
        "SandboxChanged",
        re.escape("Pod sandbox changed, it will be killed and re-created."),
    )
    assert changed["type"] == "Normal"

    async def replaced() -> bool:
        now = await container_ids(docker, pod)
        return bool(now.get("POD")) and now["POD"] != first["POD"] and "c" in now

    await wait_until(replaced, within=60, what="a new sandbox and container")
    ids = await container_ids(docker, pod)
    ip = (await docker.inspect(ids["POD"]))["NetworkSettings"]["IPAddress"]
    hosts = await docker.run("exec", ids["c"], "cat", "/etc/hosts")
    assert hosts.endswith(f"\n{ip}\tphoenix\n")  # the new sandbox's IP

    async def reported() -> bool:
        status = (await cluster.client.get(PODS, "default", "phoenix")).get("status") or {}
        return status.get("podIP") == ip and status.get("phase") == "Running"

    await wait_until(reported, within=30, what="the new pod IP reported")


async def test_pulls_from_a_registry_are_told(
    cluster: Cluster, docker: DockerCLI, registry: str
) -> None:
    image = f"{registry}/demo/busybox:v1"
    pod = await create(cluster, "pulled", containers=[sleeper(image=image)])
    await running(cluster, "pulled")
    quoted = re.escape(f'"{image}"')
    pulling = await one_event(cluster, pod, "Pulling", f"Pulling image {quoted}")
    size = json.loads(await docker.run("image", "inspect", image))[0]["Size"]
    duration = r"(\d+ms|[\d.]+s|\d+m[\d.]+s)"
    pulled = await one_event(
        cluster,
        pod,
        "Pulled",
        f"Successfully pulled image {quoted} in {duration} \\({duration} including waiting\\)."
        f" Image size: {size} bytes.",
    )
    assert pulling["involvedObject"]["fieldPath"] == "spec.containers{c}"
    assert pulled["firstTimestamp"] >= pulling["firstTimestamp"]

    missing = f"{registry}/demo/nothing:v1"
    gone = await create(cluster, "gone", containers=[sleeper(image=missing)])
    quoted = re.escape(f'"{missing}"')
    failed = await one_event(cluster, gone, "Failed", f"Failed to pull image {quoted}: .+")
    assert failed["type"] == "Warning"
    await one_event(cluster, gone, "Failed", "Error: ErrImagePull")
    await one_event(cluster, gone, "BackOff", f"Back-off pulling image {quoted}")
    await one_event(cluster, gone, "Failed", "Error: ImagePullBackOff")

    async def backing_off_with_the_cause() -> bool:
        status = (await cluster.client.get(PODS, "default", "gone")).get("status") or {}
        waiting = (status.get("containerStatuses") or [{}])[0].get("state", {}).get("waiting")
        return (
            bool(waiting)
            and waiting["reason"] == "ImagePullBackOff"
            and bool(
                re.fullmatch(
                    f"Back-off pulling image {quoted}: ErrImagePull: .+", waiting["message"]
                )
            )
        )

    await wait_until(backing_off_with_the_cause, within=60, what="ImagePullBackOff with cause")
