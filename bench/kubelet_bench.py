"""Kubelet benchmark: pod start-up latency of ``minikube-py up`` beside raw Docker, same run.

Run ``.venv/bin/python -m bench.kubelet_bench [--quick]`` (``make bench`` runs it through
``scripts/run-bench.sh``). It starts ``minikube-py up`` as a subprocess (its own data dir on
a real disk, a free port, a node name of its own, no kubeconfig touched), waits for the node
to be Ready and measures, on real Docker:

* pod start-up latency, the Kubernetes SLI: from just before the POST of a one-container
  busybox pod (``busybox:1.35``, ``sleep 3600``, ``nodeName`` set, image present) to when
  a watch on the pods collection (``?watch=true``) shows it ``Running``; p50 and p99 over
  30 pods created one after another (each once the previous one runs);
* beside it, the ceiling: what the kubelet must ask of Docker for such a pod, done
  directly with aiodocker in this process: create+start of a pause container, then
  create+start of the busybox container joining its network and IPC namespaces, with the
  very bodies the kubelet sends (``docker_config``). Raw pods and kubelet pods alternate,
  so drift in a shared machine's load hits both alike;
* where a kubelet pod's time goes, from Docker's own timestamps of its two containers;
* 50 pods created at once: time until all are Running, beside 50 raw pods at once.

The Docker daemon may be shared: ``minikube-py down`` of another cluster on it removes
every minikube-py container, ours too. The kubelet then redoes them and the figures are
wrong, so a warning is printed whenever a container had to be redone.

A raw pod's containers are labelled ``io.minikube-py.node=<node>-raw``, so that the kubelet
(which only lists ``<node>``) never mistakes them for orphans. Everything labelled with
either node name is removed at the end, after ``up`` is stopped (``up`` leaves pods running
on SIGTERM by design). Docker: the daemon that answers is used; if none does, one is started
with ``scripts/docker-daemon.sh start`` and stopped at the end, and only then. Missing images
are made by ``scripts/images.sh``. The ``up`` pid goes to ``<work>/minikube-py-up.pid`` and
the node names to ``<work>/docker-nodes`` so that ``scripts/run-bench.sh`` can clean up even
if this process is killed outright.

Speed is reported, never judged by the exit status: it is non-zero only when the benchmark
itself fails. ``--quick`` is a smoke run (5 pods, then 5 at once).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import aiodocker
import aiohttp
import orjson

from bench.storage_bench import RAM_FILESYSTEMS, disk_dir, filesystem, percentile, process_cpu
from minikube_py.kubelet.runtime.docker_config import (
    DEFAULT_PAUSE_IMAGE,
    container_body,
    container_name,
    parse_time,
    sandbox_body,
    sandbox_name,
)
from minikube_py.kubelet.runtime.interface import (
    CONTAINER_TYPE,
    NODE_NAME,
    POD_NAME,
    RESTART_COUNT,
    ContainerConfig,
    PodRef,
    SandboxConfig,
)
from minikube_py.logging import configure as configure_logging
from tests.support.etcd import etcd_cluster, free_port

REPO = Path(__file__).resolve().parent.parent
BUSYBOX = "busybox:1.35"
PAUSE = DEFAULT_PAUSE_IMAGE
NAMESPACE = "default"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

P50_RATIO_TARGET = 1.3
P99_TARGET_MS = 2000.0
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
RUNNING_TIMEOUT = 120.0


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: ``FULL`` is what the targets are about, ``QUICK`` a smoke run."""

    serial: int
    """Pods created one after another (each once the previous one runs), and as many raw."""
    burst: int
    """Pods created at once, and as many raw pods at once."""
    warmup: int
    """Pods (and raw pods) run first and not counted: the first of each pays one-off costs."""


FULL = Settings(serial=30, burst=50, warmup=2)
QUICK = Settings(serial=5, burst=5, warmup=1)


@dataclass(frozen=True)
class Labels:
    """Every figure's and target's label, so that the smoke test can look for each."""

    settings: Settings

    def startup(self, q: int) -> str:
        return f"pod start-up p{q} ms ({self.settings.serial} one by one)"

    def raw(self, q: int) -> str:
        return f"raw docker pod p{q}"

    @property
    def burst_all(self) -> str:
        return f"{self.settings.burst} pods at once: all Running ms"

    @property
    def raw_burst_all(self) -> str:
        return f"raw: {self.settings.burst} pods at once"

    def burst(self, q: int) -> str:
        return f"{self.settings.burst} pods at once: p{q} ms"

    def raw_burst(self, q: int) -> str:
        return f"raw: {self.settings.burst} at once p{q}"

    def figures(self) -> list[str]:
        return [
            self.startup(50),
            self.startup(99),
            self.burst_all,
            self.burst(50),
            self.burst(99),
        ]

    @property
    def p50_target(self) -> str:
        return f"pod start-up p50 <= {P50_RATIO_TARGET}x raw p50"

    @property
    def p99_target(self) -> str:
        return f"pod start-up p99 <= {P99_TARGET_MS / 1000:g} s"

    def targets(self) -> list[str]:
        return [self.p50_target, self.p99_target]


# -- output --


def number(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit in ("ms", "MB") and abs(value) >= 100:
        return f"{value:,.0f}"
    if unit == "MB":
        return f"{value:,.1f}"
    return f"{value:,.2f}" if unit in ("ms", "s", "%") else f"{value:,.0f}"


@dataclass
class Report:
    """Prints rows as they are measured, and the targets (OK or BELOW) at the end.

    Shared with ``up_bench``: both print ``figure value unit | bound value unit ratio`` rows,
    where the bound is a ceiling measured in the same run, a fixed target or an anchor.
    """

    out: TextIO = sys.stdout
    width: int = 36
    bound_width: int = 22
    values: dict[str, float] = field(default_factory=dict)
    targets: list[tuple[str, str, bool]] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def section(self, title: str) -> None:
        self.line()
        self.line(title)
        self.line("-" * len(title))

    def header(self, bound: str = "ceiling (same run)") -> None:
        self.line(
            f"{'figure':<{self.width}} {'value':>9} {'':<3}  | {bound:<{self.bound_width}}"
            f" {'value':>9} {'':<3} {'ratio':>7}"
        )

    def figure(
        self, label: str, value: float, unit: str, bound_label: str, bound: float, note: str = ""
    ) -> None:
        self.values[label] = value
        self.bound(label, value, unit, bound_label, bound, note)

    def bound(
        self, label: str, value: float, unit: str, bound_label: str, bound: float, note: str = ""
    ) -> None:
        """A row; with ``label`` empty, one more bound for the figure of the row above."""
        ratio = value / bound if bound else math.nan
        shown = number(value, unit) if label else ""
        self.line(
            f"{label:<{self.width}} {shown:>9} {unit if label else '':<3}  |"
            f" {bound_label:<{self.bound_width}} {number(bound, unit):>9} {unit:<3}"
            f" {ratio:>6.2f}x  {note}".rstrip()
        )

    def note(self, text: str) -> None:
        self.line(f"  {text}")

    def target(self, label: str, shown: str, ok: bool) -> None:
        self.targets.append((label, shown, ok))

    def print_targets(self) -> None:
        self.section("targets")
        for label, shown, ok in self.targets:
            self.line(f"  {label:<40} {shown:<30} {'OK' if ok else 'BELOW'}")


# -- Docker: the one that answers, or one started here and stopped here --


def docker_answers() -> bool:
    status = subprocess.run(
        [str(REPO / "scripts/docker-daemon.sh"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return status.returncode == 0


@contextmanager
def docker_daemon(work: Path, report: Report) -> Iterator[bool]:
    """A Docker daemon for the block; yields whether it was started here.

    A daemon that already answers is left alone whoever started it (a system service, the
    test suite, another session). One started here is stopped when the block ends; a marker
    in ``work`` tells ``scripts/run-bench.sh`` to stop it should this process be killed.
    """
    if docker_answers():
        yield False
        return
    script = str(REPO / "scripts/docker-daemon.sh")
    started = subprocess.run([script, "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        raise RuntimeError(
            f"no Docker daemon answers and none could be started:\n{started.stdout}{started.stderr}"
        )
    marker = work / "dockerd.started"
    marker.write_text("started by this bench\n")
    report.line(f"Docker: {started.stdout.strip()} (stopped again at the end)")
    try:
        yield True
    finally:
        stopped = subprocess.run([script, "stop"], capture_output=True, text=True, check=False)
        marker.unlink(missing_ok=True)
        report.line(f"Docker: {stopped.stdout.strip() or stopped.stderr.strip()}")


async def missing_images(images: Sequence[str]) -> list[str]:
    docker = aiodocker.Docker()
    try:
        missing = []
        for image in images:
            try:
                await docker.images.inspect(image)
            except aiodocker.DockerError:
                missing.append(image)
        return missing
    finally:
        await docker.close()


def ensure_images(report: Report) -> None:
    """The pause and busybox images, made by ``scripts/images.sh`` (pull or offline build)."""
    missing = asyncio.run(missing_images([PAUSE, BUSYBOX]))
    if not missing:
        return
    report.line(f"images missing ({', '.join(missing)}): running scripts/images.sh")
    done = subprocess.run(
        [str(REPO / "scripts/images.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/images.sh failed:\n{done.stdout}\n{done.stderr}")


def docker_version() -> str:
    done = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() or "?"


def remove_node_containers(*nodes: str) -> int:
    """Remove (forced) every container labelled with one of ``nodes``; how many there were."""
    ids: list[str] = []
    for node in nodes:
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={NODE_NAME}={node}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        ids += listed.stdout.split()
    for start in range(0, len(ids), 50):
        subprocess.run(
            ["docker", "rm", "-f", *ids[start : start + 50]],
            capture_output=True,
            timeout=300,
            check=False,
        )
    return len(ids)


def daemon_pid(name: str) -> int | None:
    """The pid of the one process whose comm is ``name`` (dockerd), None if not exactly one."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found[0] if len(found) == 1 else None


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds ``pid`` used so far; NaN when unknown or gone."""
    if pid is None:
        return math.nan
    try:
        return process_cpu(pid)
    except (OSError, IndexError, ValueError):
        return math.nan


# -- the store: SQLite in the data dir, or a single etcd member started here --


@contextmanager
def store_servers(backend: str, work: Path, etcd: str | None) -> Iterator[str]:
    """``--etcd-servers`` for ``up``: empty for SQLite (its default), else a fresh member's URL."""
    if backend != "etcd":
        yield ""
        return
    binary = etcd or shutil.which("etcd")
    if binary is None:
        raise RuntimeError("no etcd binary (`make system` installs it)")
    (work / "etcd").mkdir()
    with etcd_cluster(binary, work / "etcd", size=1) as cluster:
        member = cluster.members[0]
        assert member.process is not None
        (work / "etcd.pid").write_text(f"{member.process.pid}\n")
        yield cluster.endpoints


# -- the `minikube-py up` process --


@dataclass
class Up:
    """``minikube-py up`` running as a subprocess on a free loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    node: str
    data_dir: Path
    log: Path
    started: float
    """``time.perf_counter()`` just before the process was started."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def unique_node(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def record_nodes(work: Path, *nodes: str) -> None:
    """Node names whose containers ``scripts/run-bench.sh`` removes if this process is killed."""
    with open(work / "docker-nodes", "a") as out:
        out.writelines(f"{node}\n" for node in nodes)


def start_up(
    work: Path,
    node: str,
    etcd_servers: str = "",
    name: str = "up",
    env: Mapping[str, str | None] | None = None,
) -> Up:
    """Start ``minikube-py up``; its pid goes to ``<work>/minikube-py-up.pid``.

    ``--data-dir`` is under ``work``, so the command line names run-bench.sh's scratch dir,
    which is how it recognises a process it may stop. The log level is the default one (what
    users get). ``KUBECONFIG`` points into ``work`` as well, in case the flag were ignored.
    ``env`` changes this process's environment for it (None removes a variable).
    """
    data_dir = work / name
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "minikube_py",
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--node-name",
        node,
        "--no-update-kubeconfig",
    ]
    if etcd_servers:
        args += ["--etcd-servers", etcd_servers]
    log = work / f"{name}.log"
    environ = child_env({"KUBECONFIG": str(work / "kubeconfig"), **(env or {})})
    with open(log, "wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=environ
        )
    with open(work / "minikube-py-up.pid", "a") as pids:
        pids.write(f"{process.pid}\n")
    return Up(process, f"http://127.0.0.1:{port}", node, data_dir, log, began)


def child_env(changes: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` (a None value removes the variable)."""
    environ = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


def stop_up(up: Up) -> str:
    """SIGTERM, as Ctrl-C would; SIGKILL only if it has not gone within ``STOP_TIMEOUT``.

    Returns how it stopped, for the report: a slow shutdown is a finding too.
    """
    if up.process.poll() is not None:
        return f"had already exited ({up.process.returncode})"
    began = time.perf_counter()
    up.process.send_signal(signal.SIGTERM)
    try:
        status = up.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        up.process.kill()
        up.process.wait()
        return f"still running {STOP_TIMEOUT:g} s after SIGTERM: killed"
    return f"exited ({status}) {time.perf_counter() - began:.2f} s after SIGTERM"


async def wait_api(
    session: aiohttp.ClientSession, up: Up, within: float = READY_TIMEOUT, interval: float = 0.005
) -> float:
    """Poll ``/readyz`` until 200; the ``perf_counter`` time it first answered so."""
    deadline = time.perf_counter() + within
    while True:
        if up.process.poll() is not None:
            raise RuntimeError(f"minikube-py up exited at start-up:\n{up.log_tail()}")
        try:
            async with session.get(f"{up.url}/readyz") as answer:
                if answer.status == 200:
                    return time.perf_counter()
        except aiohttp.ClientError:
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the API did not answer within {within:g} s:\n{up.log_tail()}")
        await asyncio.sleep(interval)


def node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def wait_node_ready(
    session: aiohttp.ClientSession, up: Up, within: float = READY_TIMEOUT, interval: float = 0.01
) -> float:
    """Poll the Node until its Ready condition is True; the ``perf_counter`` time it was."""
    deadline = time.perf_counter() + within
    while True:
        if up.process.poll() is not None:
            raise RuntimeError(f"minikube-py up exited at start-up:\n{up.log_tail()}")
        try:
            async with session.get(f"{up.url}/api/v1/nodes/{up.node}") as answer:
                if answer.status == 200 and node_ready(await answer.json()):
                    return time.perf_counter()
        except aiohttp.ClientError:
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(f"node {up.node} not Ready within {within:g} s:\n{up.log_tail()}")
        await asyncio.sleep(interval)


# -- pods through the API, seen through a watch --


def busybox_pod(name: str, node: str) -> dict[str, Any]:
    """The pod of the SLI: one busybox container sleeping, already placed on ``node``.

    A grace period of 0 lets the bench delete the pods between its phases without waiting
    for ``sleep``, which ignores SIGTERM as PID 1.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "kubelet-bench"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "busybox",
                    "image": BUSYBOX,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                }
            ],
        },
    }


def pods_url(up: Up) -> str:
    return f"{up.url}/api/v1/namespaces/{NAMESPACE}/pods"


async def create_pod(session: aiohttp.ClientSession, up: Up, name: str) -> None:
    body = busybox_pod(name, up.node)
    async with session.post(pods_url(up), json=body, headers=JSON_HEADERS) as answer:
        if answer.status != 201:
            raise RuntimeError(f"POST pod {name}: {answer.status} {await answer.text()}")


async def delete_pod(session: aiohttp.ClientSession, up: Up, name: str) -> None:
    url = f"{pods_url(up)}/{name}"
    async with session.delete(url, params={"gracePeriodSeconds": "0"}) as answer:
        if answer.status not in (200, 202, 404):
            raise RuntimeError(f"DELETE pod {name}: {answer.status} {await answer.text()}")


class PodWatch:
    """A watch on the namespace's pods: when each was first seen Running, and which are gone.

    One long ``?watch=true`` request from the resourceVersion of a LIST (resumed from the
    last version seen should the server end it); the arrival time of each event is taken
    as soon as its line is read.
    """

    def __init__(self, session: aiohttp.ClientSession, up: Up) -> None:
        self.session = session
        self.up = up
        self.running: dict[str, float] = {}
        """Pod name → ``perf_counter`` when the watch first showed it Running."""
        self.running_wall: dict[str, float] = {}
        self.gone: set[str] = set()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._failure: Exception | None = None

    async def start(self) -> None:
        async with self.session.get(pods_url(self.up)) as answer:
            listed = await answer.json()
        version = str(listed["metadata"]["resourceVersion"])
        self._task = asyncio.create_task(self._run(version), name="pod-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, version: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        try:
            while True:
                params = {"watch": "true", "resourceVersion": version}
                url = pods_url(self.up)
                async with self.session.get(url, params=params, timeout=timeout) as answer:
                    if answer.status != 200:
                        raise RuntimeError(f"watch: {answer.status} {await answer.text()}")
                    async for line in answer.content:
                        if line.strip():
                            version = await self._event(line) or version
        except Exception as exc:  # (not SystemExit from SIGTERM: that must end the bench)
            self._failure = exc
            async with self._changed:
                self._changed.notify_all()

    async def _event(self, line: bytes) -> str | None:
        now, wall = time.perf_counter(), time.time()
        event = orjson.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise RuntimeError(f"watch error: {obj}")
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        if kind == "DELETED":
            self.gone.add(name)
        elif (obj.get("status") or {}).get("phase") == "Running" and name not in self.running:
            self.running[name] = now
            self.running_wall[name] = wall
        async with self._changed:
            self._changed.notify_all()
        return str(meta.get("resourceVersion") or "") or None

    async def until(self, condition: Callable[[], bool], what: str, within: float) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: condition() or self._failure is not None)

        try:
            await asyncio.wait_for(wait(), within)
        except TimeoutError:
            raise RuntimeError(f"timed out after {within:g} s waiting for {what}") from None
        if self._failure is not None:
            raise RuntimeError(f"the pod watch failed: {self._failure!r}") from self._failure


async def kubelet_pod(session: aiohttp.ClientSession, up: Up, watch: PodWatch, name: str) -> float:
    """Create one pod and wait until the watch shows it Running; the latency in seconds."""
    began = time.perf_counter()
    await create_pod(session, up, name)
    await watch.until(lambda: name in watch.running, f"pod {name} Running", RUNNING_TIMEOUT)
    return watch.running[name] - began


# -- raw Docker: the same containers, without the cluster --


class RawPods:
    """Pods done by hand with aiodocker: the ceiling of what the kubelet does per pod.

    The bodies are the kubelet's own (``sandbox_body``, ``container_body``), so Docker does
    exactly the same work; only the node label differs (``<node>-raw``).
    """

    def __init__(self, docker: aiodocker.Docker, node: str) -> None:
        self.docker = docker
        self.node = f"{node}-raw"
        self.count = 0

    async def pod(self) -> tuple[float, float]:
        """Create+start a pause container, then busybox joining it; (wall start, seconds)."""
        self.count += 1
        ref = PodRef(uid=uuid.uuid4().hex, name=f"raw-{self.count}", namespace=NAMESPACE)
        sandbox = sandbox_body(
            SandboxConfig(pod=ref, attempt=0, hostname=ref.name), image=PAUSE, node_name=self.node
        )
        config = ContainerConfig(
            pod=ref, name="busybox", attempt=0, image=BUSYBOX, command=("sleep", "3600")
        )
        wall, began = time.time(), time.perf_counter()
        pause = await self.docker.containers.create(sandbox, name=sandbox_name(ref, 0))
        await pause.start()
        body = container_body(config, sandbox_id=pause.id, node_name=self.node)
        app = await self.docker.containers.create(body, name=container_name(config))
        await app.start()
        return wall, time.perf_counter() - began

    async def remove_all(self) -> None:
        found = await self.docker.containers.list(
            all=True, filters={"label": [f"{NODE_NAME}={self.node}"]}
        )
        await asyncio.gather(*(c.delete(force=True) for c in found))


# -- where the time goes --

STAGES = (
    "until Docker creates the sandbox",
    "sandbox create+start (Docker)",
    "sandbox started -> app container created",
    "app container create+start (Docker)",
    "app started -> Running seen by the watch",
)


async def stage_times(
    docker: aiodocker.Docker, node: str, began: dict[str, float], seen: dict[str, float]
) -> list[list[float]]:
    """Per stage, its seconds for each pod, from Docker's timestamps of the pod's containers.

    ``began`` is the wall time each pod's creation began, ``seen`` when it was seen Running
    (none for raw pods: their last stage is then left out). Docker's ``Created`` is stamped
    as it begins a create and ``StartedAt`` once the process runs, so a Docker stage holds
    the create's rootfs set-up and the start, and the kubelet's stages the rest.
    """
    listed = await docker.containers.list(all=True, filters={"label": [f"{NODE_NAME}={node}"]})
    infos = await asyncio.gather(*(c.show() for c in listed))
    by_pod: dict[str, dict[str, dict[str, Any]]] = {}
    for info in infos:
        labels = info["Config"]["Labels"]
        by_pod.setdefault(labels[POD_NAME], {})[labels[CONTAINER_TYPE]] = info
    stages: list[list[float]] = [[] for _ in STAGES]
    for name, start in began.items():
        parts = by_pod.get(name, {})
        if "podsandbox" not in parts or "container" not in parts:
            continue
        sandbox, app = parts["podsandbox"], parts["container"]
        marks = [
            start,
            parse_time(sandbox["Created"]),
            parse_time(sandbox["State"]["StartedAt"]),
            parse_time(app["Created"]),
            parse_time(app["State"]["StartedAt"]),
        ]
        if name in seen:
            marks.append(seen[name])
        for index in range(len(marks) - 1):
            stages[index].append(marks[index + 1] - marks[index])
    return stages


async def redone(docker: aiodocker.Docker, node: str) -> int:
    """How many of ``node``'s containers are a second attempt (a sandbox or container redone).

    None should be: these pods never fail. Some are when something else removed containers
    meanwhile (``minikube-py down`` of another cluster on this daemon removes every
    minikube-py container): the kubelet then redoes them, and the figures are suspect.
    """
    listed = await docker.containers.list(all=True, filters={"label": [f"{NODE_NAME}={node}"]})
    count = 0
    for container in listed:
        labels = container["Labels"] or {}
        name = str((container["Names"] or ["?"])[0])
        if labels.get(RESTART_COUNT, "0") != "0" or not name.endswith("_0"):
            count += 1
    return count


def warn_redone(report: Report, count: int) -> None:
    if count:
        report.line(
            f"WARNING: {count} container(s) had to be redone: something removed containers"
            " during the run (e.g. `minikube-py down` elsewhere on this daemon); figures suspect"
        )


def print_stages(report: Report, kubelet: list[list[float]], raw: list[list[float]]) -> None:
    report.section("where a pod's time goes (median ms, from Docker's timestamps)")
    report.line(f"{'stage':<44} {'kubelet':>9} {'raw':>9}")
    for index, stage in enumerate(STAGES):
        ours = statistics.median(kubelet[index]) * 1000 if kubelet[index] else math.nan
        theirs = statistics.median(raw[index]) * 1000 if raw[index] else math.nan
        report.line(f"{stage:<44} {number(ours, 'ms'):>9} {number(theirs, 'ms'):>9}")


# -- the benchmark --


class Cpu:
    """CPU seconds the ``up`` process and dockerd spend over some spans, per pod done in them.

    On a small machine the client, ``up`` and Docker share the CPUs: this says which of them
    a figure is bound by. dockerd's share includes whatever else uses that daemon meanwhile.
    """

    def __init__(self, up_pid: int) -> None:
        self.pids = (up_pid, daemon_pid("dockerd"))
        self.spent = [0.0, 0.0]
        self.pods = 0
        self._marks = [0.0, 0.0]

    def start(self) -> None:
        self._marks = [cpu_seconds(pid) for pid in self.pids]

    def stop(self, pods: int) -> None:
        for index, pid in enumerate(self.pids):
            self.spent[index] += cpu_seconds(pid) - self._marks[index]
        self.pods += pods

    def note(self) -> str:
        up, dockerd = (seconds / max(self.pods, 1) * 1000 for seconds in self.spent)
        return f"cpu ms/pod: up {number(up, 'ms')}, dockerd {number(dockerd, 'ms')}"


async def serial_phase(
    session: aiohttp.ClientSession,
    up: Up,
    watch: PodWatch,
    raw: RawPods,
    settings: Settings,
    report: Report,
) -> tuple[list[float], list[float]]:
    """Warm-up, then raw pods and kubelet pods alternately; (kubelet, raw) latencies in s."""
    for index in range(settings.warmup):
        await raw.pod()
        await kubelet_pod(session, up, watch, f"warmup-{index}")
    kubelet_cpu, raw_cpu = Cpu(up.pid), Cpu(up.pid)
    kubelet_times: list[float] = []
    raw_times: list[float] = []
    began: dict[str, float] = {}
    raw_began: dict[str, float] = {}
    for index in range(settings.serial):
        raw_cpu.start()
        wall, seconds = await raw.pod()
        raw_cpu.stop(1)
        raw_began[f"raw-{raw.count}"] = wall
        raw_times.append(seconds)
        name = f"serial-{index}"
        began[name] = time.time()
        kubelet_cpu.start()
        kubelet_times.append(await kubelet_pod(session, up, watch, name))
        kubelet_cpu.stop(1)

    labels = Labels(settings)
    n = settings.serial
    report.section(f"{n} pods one after another (after {settings.warmup} warm-up pod(s) each)")
    report.header()
    for q in (50, 99):
        report.figure(
            labels.startup(q),
            percentile(kubelet_times, q) * 1000,
            "ms",
            labels.raw(q),
            percentile(raw_times, q) * 1000,
        )
    report.note(
        f"kubelet min {min(kubelet_times) * 1000:,.0f} ms, max {max(kubelet_times) * 1000:,.0f}"
        f" ms; raw min {min(raw_times) * 1000:,.0f} ms, max {max(raw_times) * 1000:,.0f} ms"
    )
    report.note(f"kubelet pods {kubelet_cpu.note()}; raw pods {raw_cpu.note()}")
    seen = {name: watch.running_wall[name] for name in began if name in watch.running_wall}
    ours = await stage_times(raw.docker, up.node, began, seen)
    theirs = await stage_times(raw.docker, raw.node, raw_began, {})
    print_stages(report, ours, theirs)
    warn_redone(report, await redone(raw.docker, up.node))
    return kubelet_times, raw_times


async def clear_node(
    session: aiohttp.ClientSession, up: Up, watch: PodWatch, raw: RawPods, names: list[str]
) -> None:
    """Delete the pods (grace 0) and the raw pods; wait until Docker holds none of them."""
    await asyncio.gather(*(delete_pod(session, up, name) for name in names))
    await watch.until(lambda: watch.gone.issuperset(names), "pods deleted", RUNNING_TIMEOUT)
    await raw.remove_all()
    deadline = time.perf_counter() + RUNNING_TIMEOUT
    while await raw.docker.containers.list(all=True, filters={"label": [f"{NODE_NAME}={up.node}"]}):
        if time.perf_counter() > deadline:
            raise RuntimeError("the kubelet did not remove the deleted pods' containers")
        await asyncio.sleep(0.1)


async def burst_phase(
    session: aiohttp.ClientSession,
    up: Up,
    watch: PodWatch,
    raw: RawPods,
    settings: Settings,
    report: Report,
) -> tuple[float, float]:
    """Raw pods at once, then as many kubelet pods at once; (kubelet, raw) all-done in s."""
    n = settings.burst
    raw_cpu, kubelet_cpu = Cpu(up.pid), Cpu(up.pid)
    raw_cpu.start()
    began = time.perf_counter()
    raw_results = await asyncio.gather(*(raw.pod() for _ in range(n)))
    raw_all = time.perf_counter() - began
    raw_cpu.stop(n)
    raw_times = [seconds for _, seconds in raw_results]
    await raw.remove_all()

    names = [f"burst-{index}" for index in range(n)]
    kubelet_cpu.start()
    began = time.perf_counter()
    await asyncio.gather(*(create_pod(session, up, name) for name in names))
    posted = time.perf_counter() - began
    await watch.until(
        lambda: all(name in watch.running for name in names), f"{n} pods Running", 600.0
    )
    kubelet_all = max(watch.running[name] for name in names) - began
    kubelet_cpu.stop(n)
    kubelet_times = [watch.running[name] - began for name in names]

    labels = Labels(settings)
    report.section(f"{n} pods created at once")
    report.header()
    report.figure(labels.burst_all, kubelet_all * 1000, "ms", labels.raw_burst_all, raw_all * 1000)
    for q in (50, 99):
        report.figure(
            labels.burst(q),
            percentile(kubelet_times, q) * 1000,
            "ms",
            labels.raw_burst(q),
            percentile(raw_times, q) * 1000,
        )
    report.note(f"the {n} POSTs took {posted * 1000:,.0f} ms")
    report.note(f"kubelet pods {kubelet_cpu.note()}; raw pods {raw_cpu.note()}")
    warn_redone(report, await redone(raw.docker, up.node))
    return kubelet_all, raw_all


async def bench(up: Up, settings: Settings, report: Report) -> None:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_api(session, up)
        await wait_node_ready(session, up)
        report.line(
            f"node {up.node} Ready {time.perf_counter() - up.started:.2f} s after starting"
            f" `minikube-py up` (pid {up.pid})"
        )
        docker = aiodocker.Docker()
        watch = PodWatch(session, up)
        await watch.start()
        try:
            raw = RawPods(docker, up.node)
            kubelet_times, raw_times = await serial_phase(session, up, watch, raw, settings, report)
            await clear_node(session, up, watch, raw, sorted(watch.running))
            await burst_phase(session, up, watch, raw, settings, report)
        finally:
            await watch.stop()
            await docker.close()
    labels = Labels(settings)
    p50, raw_p50 = percentile(kubelet_times, 50), percentile(raw_times, 50)
    p99 = percentile(kubelet_times, 99) * 1000
    ratio = p50 / raw_p50
    report.target(
        labels.p50_target,
        f"{ratio:.2f}x ({p50 * 1000:,.0f} vs {raw_p50 * 1000:,.0f} ms)",
        ratio <= P50_RATIO_TARGET,
    )
    report.target(labels.p99_target, f"{p99:,.0f} ms", p99 <= P99_TARGET_MS)


# -- main --


def load() -> str:
    """The 1-minute load average: other work on a shared machine skews every figure."""
    return f"{os.getloadavg()[0]:.2f}"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: up stops, containers go


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The arguments ``scripts/run-bench.sh`` passes to every bench."""
    parser.add_argument("--quick", action="store_true", help="a short smoke run (for tests)")
    parser.add_argument("--dir", help="where to put the data: a real disk, not tmpfs")
    parser.add_argument(
        "--backend",
        choices=["all", "sqlite", "etcd"],
        default="all",
        help="the store of `up`: SQLite (its default; also for `all`) or a fresh etcd member",
    )
    parser.add_argument("--etcd", help="the etcd binary for --backend etcd (default: on PATH)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kubelet_bench",
        description="Pod start-up latency of `minikube-py up` beside raw Docker, same run.",
    )
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(level="warning")
    signal.signal(signal.SIGTERM, _terminate)
    settings = QUICK if args.quick else FULL
    base = disk_dir(args.dir)
    mount, kind = filesystem(base)
    work = Path(tempfile.mkdtemp(prefix="kubelet-bench.", dir=base))
    report = Report()
    began = time.perf_counter()
    node = unique_node("bench-kubelet")
    record_nodes(work, node, f"{node}-raw")
    up: Up | None = None
    try:
        report.line(
            f"kubelet benchmark: {os.cpu_count()} CPUs (shared by this client, `up` and"
            f" Docker), Python {sys.version.split()[0]}{', quick' if args.quick else ''}"
        )
        report.line(f"data in {work} ({kind} on {mount}); load average {load()}")
        if kind in RAM_FILESYSTEMS:
            report.line("WARNING: the data is on a RAM filesystem: fsync costs nothing there")
        with docker_daemon(work, report):
            try:
                ensure_images(report)
                with store_servers(args.backend, work, args.etcd) as servers:
                    store = f"etcd {servers}" if servers else "SQLite"
                    report.line(
                        f"Docker {docker_version()}; store {store}; pod {BUSYBOX} `sleep 3600`,"
                        f" sandbox {PAUSE}"
                    )
                    up = start_up(work, node, servers)
                    try:
                        asyncio.run(bench(up, settings, report))
                    except Exception:
                        print(
                            f"kubelet_bench: up's log ends with:\n{up.log_tail()}", file=sys.stderr
                        )
                        raise
                    finally:
                        report.line()
                        report.line(f"minikube-py up (pid {up.pid}) {stop_up(up)}")
            finally:
                removed = remove_node_containers(node, f"{node}-raw")
                report.line(f"removed {removed} containers of nodes {node}, {node}-raw")
        report.print_targets()
        report.line()
        report.line(f"total {time.perf_counter() - began:.1f} s; load average {load()}")
    finally:
        if up is not None and up.process.poll() is None:
            up.process.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
