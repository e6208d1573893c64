"""The kubelet on real Docker: restarts and back-off, config as env and files, init
containers, graceful termination."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from minikube_py import errors
from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import KINDS, PODS
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.waiting import wait_until


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require_docker()
    node = f"kd-{uuid.uuid4().hex[:8]}"
    try:
        async with running_cluster(
            tmp_path, simulated_nodes=0, docker_node=node, crash_backoff=1.0
        ) as running:
            yield running
    finally:
        remove_node_containers(node)


def node_of(cluster: Cluster) -> str:
    return cluster.config.node_name


async def pod_status(cluster: Cluster, name: str) -> dict[str, Any]:
    pod = await cluster.client.get(PODS, "default", name)
    return pod.get("status") or {}


def busybox(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.35", "command": ["sh", "-c", script], **extra}


async def create(cluster: Cluster, name: str, spec: dict[str, Any]) -> None:
    pod = {"metadata": {"name": name}, "spec": {"nodeName": node_of(cluster), **spec}}
    await cluster.client.create(PODS, "default", pod)


async def test_crash_loop_backs_off_and_counts_restarts(cluster: Cluster) -> None:
    await create(cluster, "crash", {"containers": [busybox("c", "echo boom; exit 3")]})

    async def restarted_twice() -> bool:
        statuses = (await pod_status(cluster, "crash")).get("containerStatuses") or []
        return bool(statuses) and statuses[0]["restartCount"] >= 2

    await wait_until(restarted_twice, within=60, what="two restarts")
    status = (await pod_status(cluster, "crash"))["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"

    async def backing_off() -> bool:
        statuses = (await pod_status(cluster, "crash")).get("containerStatuses") or []
        waiting = statuses[0]["state"].get("waiting", {}) if statuses else {}
        return waiting.get("reason") == "CrashLoopBackOff"

    await wait_until(backing_off, within=60, what="CrashLoopBackOff")


async def test_never_restarting_pod_fails_and_stays(cluster: Cluster) -> None:
    await create(
        cluster, "once", {"restartPolicy": "Never", "containers": [busybox("c", "exit 4")]}
    )

    async def failed() -> bool:
        return (await pod_status(cluster, "once")).get("phase") == "Failed"

    await wait_until(failed, within=60, what="phase Failed")
    state = (await pod_status(cluster, "once"))["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 4


async def test_config_map_and_secret_as_env_and_files(cluster: Cluster) -> None:
    await cluster.client.create(
        KINDS["ConfigMap"], "default", {"metadata": {"name": "cfg"}, "data": {"color": "blue"}}
    )
    secret = base64.b64encode(b"s3cret").decode()
    await cluster.client.create(
        KINDS["Secret"], "default", {"metadata": {"name": "sec"}, "data": {"token": secret}}
    )
    script = (
        'echo "$COLOR $TOKEN $(cat /cfg/color) $(cat /sec/token)" > /dev/termination-log;'
        " sleep 3600"
    )
    container = busybox(
        "c",
        script,
        env=[
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
        ],
        volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"}],
    )
    await create(
        cluster,
        "cfg",
        {
            "containers": [container],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec"}},
            ],
        },
    )

    async def running() -> bool:
        return (await pod_status(cluster, "cfg")).get("phase") == "Running"

    await wait_until(running, within=60, what="pod Running")
    kubelet = cluster.kubelets[0]
    uid = (await cluster.client.get(PODS, "default", "cfg"))["metadata"]["uid"]
    (container_status,) = [c for c in await kubelet.runtime.containers(uid) if c.name == "c"]

    async def output() -> str:
        result = await kubelet.runtime.exec(
            container_status.id, ["cat", "/dev/termination-log"], 10
        )
        return result.output.decode().strip()

    async def written() -> bool:
        return await output() == "blue s3cret blue s3cret"

    await wait_until(written, within=30, what="env and files")
    await cluster.client.patch(KINDS["ConfigMap"], "default", "cfg", {"data": {"color": "green"}})

    async def propagated() -> bool:
        result = await kubelet.runtime.exec(container_status.id, ["cat", "/cfg/color"], 10)
        return result.output.decode().strip() == "green"

    await wait_until(propagated, within=60, what="configMap update in the volume")


async def test_init_containers_run_first_in_order(cluster: Cluster) -> None:
    await create(
        cluster,
        "init",
        {
            "initContainers": [
                busybox(
                    "first",
                    "echo one > /work/log",
                    volumeMounts=[{"name": "w", "mountPath": "/work"}],
                ),
                busybox(
                    "second",
                    "echo two >> /work/log",
                    volumeMounts=[{"name": "w", "mountPath": "/work"}],
                ),
            ],
            "containers": [
                busybox(
                    "main",
                    "cat /work/log > /dev/termination-log; sleep 3600",
                    volumeMounts=[{"name": "w", "mountPath": "/work"}],
                )
            ],
            "volumes": [{"name": "w", "emptyDir": {}}],
        },
    )

    async def running() -> bool:
        status = await pod_status(cluster, "init")
        inits = status.get("initContainerStatuses") or []
        return status.get("phase") == "Running" and all(
            s["state"].get("terminated", {}).get("exitCode") == 0 for s in inits
        )

    await wait_until(running, within=60, what="init done, main running")
    kubelet = cluster.kubelets[0]
    uid = (await cluster.client.get(PODS, "default", "init"))["metadata"]["uid"]
    (main,) = [c for c in await kubelet.runtime.containers(uid) if c.name == "main"]
    result = await kubelet.runtime.exec(main.id, ["cat", "/work/log"], 10)
    assert result.output.decode().split() == ["one", "two"]


async def test_graceful_termination_sends_sigterm_then_removes(cluster: Cluster) -> None:
    script = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
    await create(
        cluster,
        "graceful",
        {"terminationGracePeriodSeconds": 20, "containers": [busybox("c", script)]},
    )

    async def running() -> bool:
        return (await pod_status(cluster, "graceful")).get("phase") == "Running"

    await wait_until(running, within=60, what="pod Running")
    kubelet = cluster.kubelets[0]
    uid = (await cluster.client.get(PODS, "default", "graceful"))["metadata"]["uid"]
    await cluster.client.delete(PODS, "default", "graceful")

    async def gone() -> bool:
        try:
            await cluster.client.get(PODS, "default", "graceful")
        except errors.NotFound:
            return not await kubelet.runtime.containers(uid)
        return False

    # The trap exits at once on SIGTERM: far sooner than the 20 s grace period.
    await wait_until(gone, within=10, what="pod removed after SIGTERM")


async def test_failing_liveness_probe_restarts_the_container(cluster: Cluster) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 1}
    script = "touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 3600"
    spec = {
        "terminationGracePeriodSeconds": 1,
        "containers": [busybox("c", script, livenessProbe=probe)],
    }
    await create(cluster, "live", spec)

    async def restarted() -> bool:
        statuses = (await pod_status(cluster, "live")).get("containerStatuses") or []
        return bool(statuses) and statuses[0]["restartCount"] >= 1

    await wait_until(restarted, within=60, what="a liveness restart")


async def test_readiness_probe_drives_ready(cluster: Cluster) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}
    script = "sleep 2; touch /tmp/ready; sleep 3600"
    await create(cluster, "ready", {"containers": [busybox("c", script, readinessProbe=probe)]})

    async def condition(value: str) -> bool:
        conditions = (await pod_status(cluster, "ready")).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == value for c in conditions)

    async def running_not_ready() -> bool:
        status = await pod_status(cluster, "ready")
        return status.get("phase") == "Running" and await condition("False")

    await wait_until(running_not_ready, within=60, what="Running but not Ready")
    await wait_until(lambda: condition("True"), within=60, what="Ready once the probe passes")


async def kubectl(cluster: Cluster, tmp: Path, *args: str) -> tuple[int, str, str]:
    import asyncio
    import os

    env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(tmp / "kubectl-cache")}
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "-s",
        f"http://127.0.0.1:{cluster.config.apiserver.port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_kubectl_logs_on_docker(cluster: Cluster, tmp_path: Path) -> None:
    script = "for i in 1 2 3 4 5; do echo line $i; done; sleep 3600"
    await create(cluster, "talk", {"containers": [busybox("c", script)]})

    async def all_lines() -> bool:
        code, out, _ = await kubectl(cluster, tmp_path, "logs", "talk")
        return code == 0 and out.split("\n")[:5] == [f"line {i}" for i in range(1, 6)]

    await wait_until(all_lines, within=60, what="kubectl logs")
    code, out, _ = await kubectl(cluster, tmp_path, "logs", "talk", "--tail=2")
    assert code == 0
    assert out.splitlines() == ["line 4", "line 5"]
    code, out, _ = await kubectl(cluster, tmp_path, "logs", "talk", "--timestamps", "--tail=1")
    assert out.split(" ", 1)[1].strip() == "line 5"
    assert out.split(" ", 1)[0].endswith("Z")
    code, _, err = await kubectl(cluster, tmp_path, "logs", "talk", "-p")
    assert code != 0
    assert 'previous terminated container "c" in pod "talk" not found' in err


async def test_termination_message_and_fallback_to_logs(cluster: Cluster) -> None:
    await create(
        cluster,
        "msg",
        {
            "restartPolicy": "Never",
            "containers": [
                busybox("file", "echo goodbye from the file > /dev/termination-log; exit 2"),
                busybox(
                    "logs",
                    "echo last words in the log; exit 5",
                    terminationMessagePolicy="FallbackToLogsOnError",
                ),
            ],
        },
    )

    async def failed() -> bool:
        return (await pod_status(cluster, "msg")).get("phase") == "Failed"

    await wait_until(failed, within=60, what="pod Failed")
    statuses = {
        s["name"]: s["state"]["terminated"]
        for s in (await pod_status(cluster, "msg"))["containerStatuses"]
    }
    assert statuses["file"]["message"].strip() == "goodbye from the file"
    assert statuses["file"]["exitCode"] == 2
    assert statuses["logs"]["message"].strip() == "last words in the log"


async def test_active_deadline_fails_the_pod(cluster: Cluster) -> None:
    await create(
        cluster,
        "deadline",
        {
            "activeDeadlineSeconds": 2,
            "terminationGracePeriodSeconds": 1,
            "containers": [busybox("c", "sleep 3600")],
        },
    )

    async def exceeded() -> bool:
        status = await pod_status(cluster, "deadline")
        return status.get("phase") == "Failed" and status.get("reason") == "DeadlineExceeded"

    await wait_until(exceeded, within=60, what="DeadlineExceeded")


async def test_pre_stop_hook_runs_before_sigterm(cluster: Cluster, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    hook = {"preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /out/pre-stop"]}}}
    container = busybox(
        "c", "sleep 3600", lifecycle=hook, volumeMounts=[{"name": "out", "mountPath": "/out"}]
    )
    await create(
        cluster,
        "hooked",
        {
            "terminationGracePeriodSeconds": 2,
            "containers": [container],
            "volumes": [{"name": "out", "hostPath": {"path": str(shared)}}],
        },
    )

    async def running() -> bool:
        return (await pod_status(cluster, "hooked")).get("phase") == "Running"

    await wait_until(running, within=60, what="pod Running")
    await cluster.client.delete(PODS, "default", "hooked")

    async def gone() -> bool:
        try:
            await cluster.client.get(PODS, "default", "hooked")
        except errors.NotFound:
            return True
        return False

    await wait_until(gone, within=30, what="pod removed")
    assert (shared / "pre-stop").read_text().strip() == "stopping"
