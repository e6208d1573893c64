"""Workloads end to end: the real kubectl 1.32 against a cluster whose node is real Docker.

One in-process cluster serves the whole module (SQLite, the scheduler, the workload and
core controllers, a kubelet on Docker), as ``minikube-py up`` runs them; each scenario
works in a namespace of its own. kubectl runs as a subprocess (``KUBECONFIG=/dev/null``,
``-s`` the server, a fresh ``KUBECACHEDIR``) and does what users do; the test then reads
the API through the in-process client and Docker through ``docker ps``, filtered by the
labels our kubelet puts on every container (node and pod namespace), so it sees only
its own containers on a daemon other tests share.

Pods run ``sh`` as PID 1 with a TERM trap: a bare ``httpd`` as PID 1 ignores SIGTERM and
every deletion would wait out the 30 s grace period.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

import minikube_py.components  # registers every component `up` runs
from minikube_py import errors
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers.base import resource
from minikube_py.kubelet.runtime.interface import NODE_NAME, POD_NAMESPACE
from minikube_py.kubelet.sync import PODS
from minikube_py.meta.objects import Obj
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

COMPONENTS = minikube_py.components.ALL
"""What ``minikube-py up`` runs beside the API server and the kubelet."""
SERVE = "trap 'exit 0' TERM; httpd -f -p 8080 -h /etc & wait"
"""Serves the container's /etc over HTTP; ``/hostname`` answers the pod's name."""

DEPLOYMENTS = resource("apps", "Deployment")
REPLICASETS = resource("apps", "ReplicaSet")
JOBS = resource("batch", "Job")
NAMESPACES = resource("", "Namespace")
ENDPOINTS = resource("", "Endpoints")
SLICES = resource("discovery.k8s.io", "EndpointSlice")


@dataclass
class Env:
    cluster: Cluster
    node: str
    home: Path

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.cluster.config.apiserver.port}"

    async def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """The real kubectl, run without blocking the loop the cluster lives in."""
        process = await asyncio.create_subprocess_exec(
            "kubectl",
            "-s",
            self.server,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(self.home)},
        )
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), 120
        )
        if check and process.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {process.returncode}: {err!r}")
        return out.decode()

    async def namespace(self) -> str:
        name = f"wl-{uuid.uuid4().hex[:8]}"
        await self.kubectl("create", "namespace", name)
        return name

    async def pods(self, namespace: str, selector: str = "") -> list[Obj]:
        listed = await self.cluster.client.list(PODS, Selection(namespace, selector))
        return listed.items

    async def containers(self, namespace: str) -> list[Container]:
        """This node's Docker containers (sandboxes included) for pods of ``namespace``."""
        fields = '{{.Names}}\t{{.State}}\t{{.Image}}\t{{.Label "io.kubernetes.pod.uid"}}'
        process = await asyncio.create_subprocess_exec(
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={NODE_NAME}={self.node}",
            "--filter",
            f"label={POD_NAMESPACE}={namespace}",
            "--format",
            fields,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0
        return [Container(*line.split("\t")) for line in out.decode().splitlines() if line]


@dataclass(frozen=True)
class Container:
    name: str
    state: str
    image: str
    pod_uid: str

    @property
    def sandbox(self) -> bool:
        return self.name.startswith("k8s_POD_")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    require_docker()
    require_binary("kubectl")
    node = f"wl-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("workloads")
    try:
        async with running_cluster(
            tmp, simulated_nodes=0, docker_node=node, components=COMPONENTS
        ) as cluster:
            yield Env(cluster, node, tmp / "kubectl-cache")
    finally:
        remove_node_containers(node)


async def test_up_runs_every_component_it_names() -> None:
    """What ``minikube-py up`` imports registers every component it means to start
    (it starts only the registered ones, so a missing import would go unnoticed)."""
    script = (
        "from minikube_py import components; from minikube_py.cluster import COMPONENTS;"
        " print(' '.join(n for n in components.ALL if n not in COMPONENTS))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert out.decode().split() == [], "components up names but never registers"


# -- helpers --


def running(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")


def image_of(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["image"])


async def http_get(url: str) -> str:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as answer,
    ):
        assert answer.status == 200, (url, answer.status)
        return await answer.text()


async def exactly(env: Env, namespace: str, selector: str, count: int, image: str) -> list[Obj]:
    """Wait until ``count`` pods match and all run ``image``, none terminating; return them."""
    found: list[Obj] = []

    async def settled() -> bool:
        nonlocal found
        found = await env.pods(namespace, selector)
        return len(found) == count and all(running(p) and image_of(p) == image for p in found)

    await wait_until(settled, within=90, interval=0.2, what=f"{count} pods of {image}")
    return found


async def containers_match(env: Env, namespace: str, pods: list[Obj], image: str) -> None:
    """Docker runs one sandbox and one ``image`` container per pod, and has nothing else
    for the namespace (the containers of deleted pods are removed, not just stopped)."""
    uids = {p["metadata"]["uid"] for p in pods}

    async def matches() -> bool:
        found = await env.containers(namespace)
        apps = [c for c in found if not c.sandbox]
        return (
            {c.pod_uid for c in found} == uids
            and len(found) == 2 * len(uids)
            and all(c.state == "running" for c in found)
            and all(c.image == image for c in apps)
        )

    await wait_until(matches, within=60, interval=0.2, what=f"Docker containers of {uids}")


# -- deployments --


def ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@dataclass
class RolloutBounds:
    """The most pods and the fewest ready pods seen at once (terminating ones left out),
    over every change a watch on the deployment's pods delivers."""

    most: int = 0
    fewest_ready: int = sys.maxsize
    events: int = 0


async def watch_bounds(env: Env, ns: str, selector: str, bounds: RolloutBounds) -> None:
    listed = await env.cluster.client.list(PODS, Selection(ns, selector))
    pods = {p["metadata"]["uid"]: p for p in listed.items}
    selection = Selection(ns, selector)
    async for event in env.cluster.client.watch(
        PODS, selection, resource_version=listed.resource_version
    ):
        uid = event.object["metadata"]["uid"]
        if event.type == "DELETED":
            pods.pop(uid, None)
        elif event.type in ("ADDED", "MODIFIED"):
            pods[uid] = event.object
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        bounds.events += 1
        bounds.most = max(bounds.most, len(live))
        bounds.fewest_ready = min(bounds.fewest_ready, sum(map(ready, live)))


async def http_hostname(pod: Obj) -> str:
    """What the pod's ``httpd`` serves on its own IP: its /etc/hostname, the pod's name."""
    return (await http_get(f"http://{pod['status']['podIP']}:8080/hostname")).strip()


async def test_deployment_scale_image_rollout_and_undo(env: Env) -> None:
    ns = await env.namespace()
    k = ("-n", ns)
    await env.kubectl(
        *k, "create", "deployment", "web", "--image=busybox:1.35", "--port=8080",
        "--", "sh", "-c", SERVE,
    )  # fmt: skip
    await env.kubectl(*k, "rollout", "status", "deployment/web", "--timeout=60s")
    (pod,) = await exactly(env, ns, "app=web", 1, "busybox:1.35")
    await containers_match(env, ns, [pod], "busybox:1.35")
    assert await http_hostname(pod) == pod["metadata"]["name"]

    await env.kubectl(*k, "scale", "deployment/web", "--replicas=3")
    await env.kubectl(*k, "rollout", "status", "deployment/web", "--timeout=60s")
    three = await exactly(env, ns, "app=web", 3, "busybox:1.35")
    assert pod["metadata"]["uid"] in {p["metadata"]["uid"] for p in three}
    assert len({p["status"]["podIP"] for p in three}) == 3
    await containers_match(env, ns, three, "busybox:1.35")

    # 25% of 3: at most one pod over, none unavailable, all through the rolling update.
    bounds = RolloutBounds()
    watching = asyncio.create_task(watch_bounds(env, ns, "app=web", bounds))
    try:
        await env.kubectl(*k, "set", "image", "deployment/web", "busybox=busybox:latest")
        status = await env.kubectl(*k, "rollout", "status", "deployment/web", "--timeout=90s")
        assert 'deployment "web" successfully rolled out' in status
        new = await exactly(env, ns, "app=web", 3, "busybox:latest")
    finally:
        watching.cancel()
    assert bounds.events >= 12  # three pods created, readied and deleted at least
    assert (bounds.most, bounds.fewest_ready) == (4, 3)
    await containers_match(env, ns, new, "busybox:latest")
    sets = (await env.cluster.client.list(REPLICASETS, Selection(ns))).items
    replicas = sorted(
        (s["spec"]["template"]["spec"]["containers"][0]["image"], s["spec"]["replicas"])
        for s in sets
    )
    assert replicas == [("busybox:1.35", 0), ("busybox:latest", 3)]
    history = await env.kubectl(*k, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    undone = await env.kubectl(*k, "rollout", "undo", "deployment/web")
    assert undone.strip() == "deployment.apps/web rolled back"
    await env.kubectl(*k, "rollout", "status", "deployment/web", "--timeout=90s")
    back = await exactly(env, ns, "app=web", 3, "busybox:1.35")
    await containers_match(env, ns, back, "busybox:1.35")
    deployment = await env.cluster.client.get(DEPLOYMENTS, ns, "web")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"

    await env.kubectl(*k, "scale", "deployment/web", "--replicas=1")
    await env.kubectl(*k, "rollout", "status", "deployment/web", "--timeout=60s")
    (left,) = await exactly(env, ns, "app=web", 1, "busybox:1.35")
    await containers_match(env, ns, [left], "busybox:1.35")
    assert left["metadata"]["uid"] in {p["metadata"]["uid"] for p in back}
    assert await http_hostname(left) == left["metadata"]["name"]


async def create_available(env: Env, ns: str, name: str, replicas: int) -> list[Obj]:
    await env.kubectl(
        "-n",
        ns,
        "create",
        "deployment",
        name,
        "--image=busybox:1.35",
        f"--replicas={replicas}",
        "--",
        "sh",
        "-c",
        SERVE,
    )
    await env.kubectl(
        "-n", ns, "wait", "--for=condition=available", f"deployment/{name}", "--timeout=60s"
    )
    return await exactly(env, ns, f"app={name}", replicas, "busybox:1.35")


async def test_delete_cascades_to_pods_and_containers(env: Env) -> None:
    ns = await env.namespace()
    pods = await create_available(env, ns, "gone", 2)
    await containers_match(env, ns, pods, "busybox:1.35")

    await env.kubectl("-n", ns, "delete", "deployment", "gone", "--timeout=60s")

    async def all_gone() -> bool:
        sets = await env.cluster.client.list(REPLICASETS, Selection(ns))
        return not sets.items and not await env.pods(ns) and not await env.containers(ns)

    await wait_until(all_gone, within=60, interval=0.2, what="ReplicaSet, pods, containers gone")


async def test_orphans_stay_until_their_namespace_goes(env: Env) -> None:
    ns = await env.namespace()
    pods = await create_available(env, ns, "kept", 2)
    await containers_match(env, ns, pods, "busybox:1.35")
    (owned,) = (await env.cluster.client.list(REPLICASETS, Selection(ns))).items
    assert owned["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

    await env.kubectl("-n", ns, "delete", "deployment", "kept", "--cascade=orphan", "--timeout=60s")
    # The Deployment is gone only once the garbage collector has released the ReplicaSet.
    with pytest.raises(errors.NotFound):
        await env.cluster.client.get(DEPLOYMENTS, ns, "kept")
    orphan = await env.cluster.client.get(REPLICASETS, ns, owned["metadata"]["name"])
    assert orphan["metadata"]["uid"] == owned["metadata"]["uid"]
    assert not orphan["metadata"].get("ownerReferences")
    assert {
        p["metadata"]["uid"] for p in await exactly(env, ns, "app=kept", 2, "busybox:1.35")
    } == {p["metadata"]["uid"] for p in pods}
    await containers_match(env, ns, pods, "busybox:1.35")

    await env.kubectl("delete", "namespace", ns, "--timeout=90s")
    with pytest.raises(errors.NotFound):
        await env.cluster.client.get(NAMESPACES, "", ns)
    assert await env.pods(ns) == []

    async def containers_gone() -> bool:
        return not await env.containers(ns)

    await wait_until(containers_gone, within=60, interval=0.2, what=f"containers of {ns} gone")


# -- jobs --

FAILING_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: bad
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: fail
        image: busybox:1.35
        command: [sh, -c, "echo failing; exit 3"]
"""


async def test_jobs_complete_and_fail_past_their_backoff_limit(env: Env) -> None:
    ns = await env.namespace()
    k = ("-n", ns)
    await env.kubectl(
        *k, "create", "job", "ok", "--image=busybox:1.35", "--", "sh", "-c", "echo done"
    )
    await env.kubectl(*k, "apply", "-f", "-", stdin=FAILING_JOB)
    await asyncio.gather(
        env.kubectl(*k, "wait", "--for=condition=complete", "job/ok", "--timeout=60s"),
        env.kubectl(*k, "wait", "--for=condition=failed", "job/bad", "--timeout=90s"),
    )
    ok = await env.cluster.client.get(JOBS, ns, "ok")
    assert ok["status"]["succeeded"] == 1
    assert (await env.kubectl(*k, "logs", "job/ok")).strip() == "done"
    bad = await env.cluster.client.get(JOBS, ns, "bad")
    assert bad["status"]["failed"] == 2
    (failed,) = [c for c in bad["status"]["conditions"] if c["type"] == "Failed"]
    assert failed["reason"] == "BackoffLimitExceeded"

    pods = {p["metadata"]["uid"]: p for p in await env.pods(ns)}
    phases = sorted(
        (p["metadata"]["labels"]["job-name"], p["status"]["phase"]) for p in pods.values()
    )
    assert phases == [("bad", "Failed"), ("bad", "Failed"), ("ok", "Succeeded")]
    # Docker keeps the finished containers, exited, until their pods go.
    apps = [c for c in await env.containers(ns) if not c.sandbox]
    assert {c.pod_uid for c in apps} == set(pods)
    assert {c.state for c in apps} == {"exited"}
    inspect = await asyncio.create_subprocess_exec(
        "docker",
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        *[c.name for c in apps if pods[c.pod_uid]["metadata"]["labels"]["job-name"] == "bad"],
        stdout=asyncio.subprocess.PIPE,
    )
    codes, _ = await inspect.communicate()
    assert codes.decode().split() == ["3", "3"]


# -- services --

READY_APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gate
spec:
  replicas: 2
  selector:
    matchLabels: {app: gate}
  template:
    metadata:
      labels: {app: gate}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox:1.35
        command: [sh, -c, "SERVE"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata:
  name: gate
spec:
  selector: {app: gate}
  ports:
  - {name: web, port: 80, targetPort: http}
""".replace("SERVE", SERVE.replace('"', '\\"'))


@dataclass(frozen=True)
class Addresses:
    ready: frozenset[str]
    not_ready: frozenset[str]


async def endpoints(env: Env, ns: str) -> Addresses:
    """Pod names by readiness, from the Endpoints (port 8080 everywhere)."""
    try:
        found = await env.cluster.client.get(ENDPOINTS, ns, "gate")
    except errors.NotFound:
        return Addresses(frozenset(), frozenset())
    ready, not_ready = set(), set()
    for subset in found.get("subsets") or []:
        assert [p["port"] for p in subset["ports"]] == [8080]
        ready |= {a["targetRef"]["name"] for a in subset.get("addresses") or []}
        not_ready |= {a["targetRef"]["name"] for a in subset.get("notReadyAddresses") or []}
    return Addresses(frozenset(ready), frozenset(not_ready))


async def slices(env: Env, ns: str) -> Addresses:
    """Pod names by ``conditions.ready``, from the service's EndpointSlices."""
    listed = await env.cluster.client.list(SLICES, Selection(ns, "kubernetes.io/service-name=gate"))
    ready, not_ready = set(), set()
    for item in listed.items:
        for endpoint in item.get("endpoints") or []:
            name = endpoint["targetRef"]["name"]
            (ready if endpoint["conditions"]["ready"] else not_ready).add(name)
    return Addresses(frozenset(ready), frozenset(not_ready))


async def test_endpoints_follow_readiness(env: Env) -> None:
    ns = await env.namespace()
    k = ("-n", ns)
    await env.kubectl(*k, "apply", "-f", "-", stdin=READY_APP)
    first, second = sorted(
        p["metadata"]["name"] for p in await exactly(env, ns, "app=gate", 2, "busybox:1.35")
    )

    async def shows(ready: set[str], not_ready: set[str]) -> None:
        wanted = Addresses(frozenset(ready), frozenset(not_ready))

        async def both() -> bool:
            return await endpoints(env, ns) == wanted and await slices(env, ns) == wanted

        await wait_until(both, within=30, interval=0.2, what=f"endpoints {wanted}")

    await shows(set(), {first, second})
    await env.kubectl(*k, "exec", first, "--", "touch", "/tmp/ready")
    await shows({first}, {second})
    await env.kubectl(
        *k, "wait", "--for=jsonpath={.status.readyReplicas}=1", "deployment/gate", "--timeout=30s"
    )
    await env.kubectl(*k, "exec", second, "--", "touch", "/tmp/ready")
    await shows({first, second}, set())
    await env.kubectl(*k, "exec", first, "--", "rm", "/tmp/ready")
    await shows({second}, {first})
    pod = await env.cluster.client.get(PODS, ns, second)
    answer = await http_get(f"http://{pod['status']['podIP']}:8080/hostname")
    assert answer.strip() == second
