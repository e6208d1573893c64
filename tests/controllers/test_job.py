"""The Job controller: completions, parallelism, failures, deadlines, indexes, TTL.

Most tests play the kubelet, so that a pod ends exactly when the test says: pods stay
unbound (no kubelet touches them) and a test finishes one by writing ``status.phase``
Succeeded or Failed through the status subresource, as a kubelet would. The last tests
run the real scheduler and simulated kubelets, whose containers end by their command
(``true``, ``false``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import minikube_py.scheduler.component as scheduler_component
from minikube_py import errors
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers.base import resource
from minikube_py.controllers.job_util import INDEX, TRACKING_FINALIZER
from minikube_py.meta.objects import Obj
from tests.controllers.corecluster import condition, core_cluster
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

JOBS = resource("batch", "Job")
PODS = resource("", "Pod")
EVENTS = resource("", "Event")
NS = "default"


def job(name: str, **spec: Any) -> Obj:
    container = {"name": "work", "image": "busybox", "command": ["true"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [container]}}, **spec},
    }


async def pods_of(cluster: Cluster, name: str) -> list[Obj]:
    listed = await cluster.client.list(PODS, Selection(NS))
    return [
        p
        for p in listed.items
        if any(r.get("name") == name for r in p["metadata"].get("ownerReferences") or [])
    ]


async def running(cluster: Cluster, name: str) -> list[Obj]:
    found = await pods_of(cluster, name)
    return [
        p
        for p in found
        if p["status"].get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    ]


async def finish(cluster: Cluster, pod: Obj, phase: str = "Succeeded") -> None:
    """Act as the kubelet: the pod's containers ended (0 for Succeeded, 1 for Failed)."""
    fresh = await cluster.client.get(PODS, NS, pod["metadata"]["name"])
    fresh["status"]["phase"] = phase
    await cluster.client.update(PODS, NS, fresh, subresource="status")


def active_count(cluster: Cluster, name: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(await running(cluster, name)) == count

    return check


def has(cluster: Cluster, name: str, kind: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await cluster.client.get(JOBS, NS, name)
        return condition(found, kind).get("status") == "True"

    return check


async def test_completions_with_parallelism_then_complete(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await cluster.client.create(JOBS, NS, job("batch", completions=3, parallelism=2))
        await wait_until(active_count(cluster, "batch", 2), what="two pods")
        first = await running(cluster, "batch")
        assert all(TRACKING_FINALIZER in p["metadata"]["finalizers"] for p in first)
        assert all(p["metadata"]["labels"]["job-name"] == "batch" for p in first)
        for pod in first:
            await finish(cluster, pod)
        await wait_until(active_count(cluster, "batch", 1), what="the third pod")
        await wait_until(
            lambda: _status(cluster, "batch", "succeeded", 2), what="two succeeded counted"
        )
        await finish(cluster, (await running(cluster, "batch"))[0])
        await wait_until(has(cluster, "batch", "Complete"), what="Complete")
        done = await cluster.client.get(JOBS, NS, "batch")
        status = done["status"]
        assert status["succeeded"] == 3
        assert "active" not in status
        assert "failed" not in status
        assert status["startTime"] <= status["completionTime"]
        assert status["uncountedTerminatedPods"] == {}
        assert condition(done, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
        assert condition(done, "Complete")["reason"] == "CompletionsReached"
        for pod in await pods_of(cluster, "batch"):
            assert TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or [])


async def _status(cluster: Cluster, name: str, field: str, value: object) -> bool:
    found = await cluster.client.get(JOBS, NS, name)
    return bool(found["status"].get(field) == value)


async def test_backoff_limit_fails_the_job(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, job_backoff_base=0.05) as cluster:
        await cluster.client.create(JOBS, NS, job("flaky", backoffLimit=1))
        for attempt in range(2):
            await wait_until(active_count(cluster, "flaky", 1), what=f"attempt {attempt}")
            await finish(cluster, (await running(cluster, "flaky"))[0], "Failed")
        await wait_until(has(cluster, "flaky", "Failed"), what="Failed")
        failed = await cluster.client.get(JOBS, NS, "flaky")
        assert failed["status"]["failed"] == 2
        assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"
        assert condition(failed, "Failed")["message"] == (
            "Job has reached the specified backoff limit"
        )
        assert condition(failed, "FailureTarget")["status"] == "True"
        assert "completionTime" not in failed["status"]
        assert not await running(cluster, "flaky")


async def test_a_deleted_pod_counts_as_failed_and_is_replaced(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, job_backoff_base=0.01) as cluster:
        await cluster.client.create(JOBS, NS, job("resilient"))
        await wait_until(active_count(cluster, "resilient", 1), what="first pod")
        victim = (await running(cluster, "resilient"))[0]
        await cluster.client.delete(PODS, NS, victim["metadata"]["name"])

        async def replaced() -> bool:
            now = await running(cluster, "resilient")
            return len(now) == 1 and now[0]["metadata"]["uid"] != victim["metadata"]["uid"]

        await wait_until(replaced, what="replacement pod")
        await wait_until(lambda: _status(cluster, "resilient", "failed", 1), what="failed=1")

        async def victim_gone() -> bool:
            try:
                await cluster.client.get(PODS, NS, victim["metadata"]["name"])
            except errors.NotFound:
                return True
            return False

        await wait_until(victim_gone, what="deleted pod released by the job")


async def test_active_deadline_fails_the_job_and_stops_its_pods(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        # startTime has second precision (as upstream), so the deadline is 1-2 s away.
        await cluster.client.create(
            JOBS, NS, job("slow", activeDeadlineSeconds=2, parallelism=2, completions=4)
        )
        await wait_until(has(cluster, "slow", "Failed"), within=15, what="Failed by deadline")
        failed = await cluster.client.get(JOBS, NS, "slow")
        assert condition(failed, "Failed")["reason"] == "DeadlineExceeded"
        assert condition(failed, "Failed")["message"] == (
            "Job was active longer than specified deadline"
        )
        assert not await running(cluster, "slow")
        assert failed["status"]["failed"] == 2  # both pods ran, were stopped and counted


async def test_indexed_job_runs_one_pod_per_index(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, job_backoff_base=0.01) as cluster:
        await cluster.client.create(
            JOBS, NS, job("idx", completionMode="Indexed", completions=3, parallelism=3)
        )
        await wait_until(active_count(cluster, "idx", 3), what="three indexed pods")
        pods = {int(p["metadata"]["annotations"][INDEX]): p for p in await running(cluster, "idx")}
        assert sorted(pods) == [0, 1, 2]
        for index, pod in pods.items():
            assert pod["metadata"]["labels"][INDEX] == str(index)
            assert pod["metadata"]["name"].startswith(f"idx-{index}-")
            assert pod["spec"]["hostname"] == f"idx-{index}"
            env = pod["spec"]["containers"][0]["env"]
            assert env[0]["name"] == "JOB_COMPLETION_INDEX"
            field = env[0]["valueFrom"]["fieldRef"]["fieldPath"]
            assert field == f"metadata.annotations['{INDEX}']"
        await finish(cluster, pods[1])
        await wait_until(lambda: _status(cluster, "idx", "completedIndexes", "1"), what="1 done")
        await finish(cluster, pods[0], "Failed")

        async def index_zero_again() -> bool:
            now = await running(cluster, "idx")
            return sorted(p["metadata"]["annotations"][INDEX] for p in now) == ["0", "2"]

        await wait_until(index_zero_again, what="index 0 retried")
        for pod in await running(cluster, "idx"):
            await finish(cluster, pod)
        await wait_until(has(cluster, "idx", "Complete"), what="Complete")
        done = await cluster.client.get(JOBS, NS, "idx")
        assert done["status"]["completedIndexes"] == "0-2"
        assert done["status"]["succeeded"] == 3
        assert done["status"]["failed"] == 1


async def test_ttl_after_finished_deletes_job_and_pods(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await cluster.client.create(JOBS, NS, job("brief", ttlSecondsAfterFinished=0))
        await wait_until(active_count(cluster, "brief", 1), what="pod")
        await finish(cluster, (await running(cluster, "brief"))[0])

        async def all_gone() -> bool:
            try:
                await cluster.client.get(JOBS, NS, "brief")
            except errors.NotFound:
                return not await pods_of(cluster, "brief")
            return False

        await wait_until(all_gone, what="job and its pods deleted")


async def test_suspended_job_runs_nothing_until_resumed(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await cluster.client.create(JOBS, NS, job("later", suspend=True))
        await wait_until(has(cluster, "later", "Suspended"), what="Suspended")
        assert not await pods_of(cluster, "later")
        suspended = await cluster.client.get(JOBS, NS, "later")
        assert "startTime" not in suspended["status"]
        await cluster.client.patch(JOBS, NS, "later", {"spec": {"suspend": False}})
        await wait_until(active_count(cluster, "later", 1), what="pod after resume")
        resumed = await cluster.client.get(JOBS, NS, "later")
        assert condition(resumed, "Suspended")["reason"] == "JobResumed"


async def test_events_name_the_pods_created(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await cluster.client.create(JOBS, NS, job("noted"))
        await wait_until(active_count(cluster, "noted", 1), what="pod")
        name = (await running(cluster, "noted"))[0]["metadata"]["name"]

        async def recorded() -> bool:
            listed = await cluster.client.list(
                EVENTS, Selection(NS, field_selector="involvedObject.name=noted")
            )
            return any(e["message"] == f"Created pod: {name}" for e in listed.items)

        await wait_until(recorded, what="SuccessfulCreate event")


async def test_kubectl_wait_for_complete(tmp_path: Path) -> None:
    kubectl = require_binary("kubectl")
    async with core_cluster(tmp_path) as cluster:
        await cluster.client.create(JOBS, NS, job("awaited"))
        url = f"http://127.0.0.1:{cluster.config.apiserver.port}"
        waiting = await asyncio.create_subprocess_exec(
            kubectl,
            "-s",
            url,
            "wait",
            "--for=condition=complete",
            "job/awaited",
            "--timeout=60s",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={"KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(tmp_path / "kubectl-cache")},
        )
        await wait_until(active_count(cluster, "awaited", 1), what="pod")
        await finish(cluster, (await running(cluster, "awaited"))[0])
        out, _ = await asyncio.wait_for(waiting.communicate(), 60)
        assert waiting.returncode == 0, out.decode()
        assert out.decode().strip() == "job.batch/awaited condition met"


async def test_jobs_on_simulated_nodes_complete_and_fail_by_their_command(
    tmp_path: Path,
) -> None:
    async with core_cluster(
        tmp_path, simulated_nodes=2, also=(scheduler_component.NAME,), job_backoff_base=0.05
    ) as cluster:
        succeeding = job("ok", completions=2, parallelism=2)
        failing = job("bad", backoffLimit=1)
        failing["spec"]["template"]["spec"]["containers"][0]["command"] = ["false"]
        await cluster.client.create(JOBS, NS, succeeding)
        await cluster.client.create(JOBS, NS, failing)
        await wait_until(has(cluster, "ok", "Complete"), within=30, what="ok Complete")
        await wait_until(has(cluster, "bad", "Failed"), within=30, what="bad Failed")
        done = await cluster.client.get(JOBS, NS, "ok")
        assert done["status"]["succeeded"] == 2
        assert all(p["spec"].get("nodeName") for p in await pods_of(cluster, "ok"))
        failed = await cluster.client.get(JOBS, NS, "bad")
        assert failed["status"]["failed"] == 2
        assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"


async def test_pods_of_a_deleted_job_are_released_and_collected(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await cluster.client.create(JOBS, NS, job("dropped", parallelism=2, completions=2))
        await wait_until(active_count(cluster, "dropped", 2), what="two pods")
        await cluster.client.delete(JOBS, NS, "dropped")

        async def none_left() -> bool:
            return not await pods_of(cluster, "dropped")

        await wait_until(none_left, what="pods released from the finalizer and collected")
