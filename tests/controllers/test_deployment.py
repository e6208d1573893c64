"""The Deployment controller on a cluster: rollouts, their bounds, history, pause, rollback.

Bounds are checked on every pod event the cluster's own informer applies, so a rollout
that went over maxSurge or under maxUnavailable for a single event is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers import deployment_util as du
from minikube_py.controllers.podtemplate import is_pod_active, is_pod_ready
from minikube_py.meta.objects import Obj
from tests.controllers import (
    DEPLOYMENTS,
    REPLICASETS,
    Kubectl,
    condition,
    deployment,
    live_pods,
    owner_uid,
    watch_pods,
    workload_cluster,
)
from tests.support.waiting import wait_until

REVISION = "deployment.kubernetes.io/revision"


async def _get(cluster: Cluster, name: str = "web") -> Obj:
    return await cluster.client.get(DEPLOYMENTS, "default", name)


async def _sets(cluster: Cluster, name: str = "web") -> list[Obj]:
    d = await _get(cluster, name)
    listed = await cluster.client.list(REPLICASETS, Selection("default"))
    return [rs for rs in listed.items if owner_uid(rs) == d["metadata"]["uid"]]


async def _rolled_out(cluster: Cluster, name: str = "web", within: float = 20) -> Obj:
    """Wait for what ``kubectl rollout status`` waits for, and the Progressing reason."""

    async def done() -> bool:
        d = await _get(cluster, name)
        status, wanted = d.get("status") or {}, d["spec"]["replicas"]
        progressing = condition(d, "Progressing")
        return (
            status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == wanted
            and status.get("replicas", 0) == wanted
            and status.get("availableReplicas", 0) == wanted
            and progressing.get("reason") == "NewReplicaSetAvailable"
        )

    await wait_until(done, within=within, what=f"deployment {name} rolled out")
    return await _get(cluster, name)


async def _set_image(cluster: Cluster, image: str, name: str = "web") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    await cluster.client.patch(DEPLOYMENTS, "default", name, patch, flavour="strategic")


def _by_revision(sets: list[Obj]) -> dict[str, Obj]:
    return {rs["metadata"]["annotations"][REVISION]: rs for rs in sets}


# --- pure arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),
        (3, "25%", "25%", (1, 0)),
        (4, 1, 0, (1, 0)),
        (1, "0%", "10%", (0, 1)),  # both zero would deadlock: unavailable becomes 1
        (5, "0%", 0, (0, 1)),
    ],
)
def test_surge_rounds_up_and_unavailable_down(
    replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]
) -> None:
    d = deployment("web", replicas)
    d["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    assert (du.max_surge(d), du.max_unavailable(d)) == expected


def test_a_resize_mid_rollout_is_shared_in_proportion() -> None:
    d = deployment("web", 20)
    d["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    d["status"] = {"replicas": 13}
    old = {"spec": {"replicas": 8}, "metadata": {"annotations": {du.MAX_REPLICAS: "13"}}}
    new = {"spec": {"replicas": 5}, "metadata": {"annotations": {du.MAX_REPLICAS: "13"}}}
    to_add = 20 + 3 - 13
    shares = [du.proportion(old, d, to_add, 0)]
    shares.append(du.proportion(new, d, to_add, shares[0]))
    assert shares == [6, 4]


# --- rollouts on a cluster -----------------------------------------------------------------


async def test_create_becomes_available_with_hash_labels_and_revision(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(DEPLOYMENTS, "default", deployment("web", 3))
        d = await _rolled_out(cluster)
        assert d["metadata"]["annotations"][REVISION] == "1"
        assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
        assert condition(d, "Progressing")["status"] == "True"
        assert {k: v for k, v in d["status"].items() if k != "conditions"} == {
            "observedGeneration": 1,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
        }
        [rs] = await _sets(cluster)
        digest = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{digest}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": digest}
        assert rs["metadata"]["annotations"][REVISION] == "1"
        pods = await live_pods(cluster, f"pod-template-hash={digest}")
        assert len(pods) == 3
        assert {owner_uid(p) for p in pods} == {rs["metadata"]["uid"]}


def _rolling_bounds(replicas: int, surge: int, unavailable: int) -> tuple[dict[str, int], Any]:
    """A pod-event check that records the extremes of a rollout for the pods themselves."""
    seen = {"most": 0, "fewest_ready": replicas}

    def check(pods: dict[str, Obj]) -> None:
        mine = [p for p in pods.values() if p["metadata"].get("labels", {}).get("app") == "web"]
        live = [p for p in mine if is_pod_active(p)]
        seen["most"] = max(seen["most"], len(live))
        seen["fewest_ready"] = min(seen["fewest_ready"], sum(1 for p in live if is_pod_ready(p)))

    return seen, check


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "bounds"),
    [(4, 1, 1, (1, 1)), (10, "25%", "25%", (3, 2)), (3, 1, 0, (1, 0))],
)
async def test_image_change_rolls_within_surge_and_unavailability(
    tmp_path: Path, replicas: int, surge: Any, unavailable: Any, bounds: tuple[int, int]
) -> None:
    rolling = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }
    async with workload_cluster(tmp_path, nodes=3) as cluster:
        manifest = deployment("web", replicas, strategy=rolling)
        await cluster.client.create(DEPLOYMENTS, "default", manifest)
        await _rolled_out(cluster)
        seen, check = _rolling_bounds(replicas, *bounds)
        watch_pods(cluster, check)
        await _set_image(cluster, "busybox:1.36")
        d = await _rolled_out(cluster)
        assert d["metadata"]["annotations"][REVISION] == "2"
        assert seen["most"] >= replicas  # the watch saw the rollout
        assert seen["most"] <= replicas + bounds[0]
        assert seen["fewest_ready"] >= replicas - bounds[1]
        sets = _by_revision(await _sets(cluster))
        assert sets["1"]["spec"]["replicas"] == 0
        assert sets["2"]["spec"]["replicas"] == replicas
        images = {p["spec"]["containers"][0]["image"] for p in await live_pods(cluster, "app=web")}
        assert images == {"busybox:1.36"}


async def test_recreate_removes_every_old_pod_before_starting_new_ones(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        manifest = deployment("web", 3, strategy={"type": "Recreate"})
        await cluster.client.create(DEPLOYMENTS, "default", manifest)
        await _rolled_out(cluster)
        overlaps: list[int] = []

        def check(pods: dict[str, Obj]) -> None:
            images = [p["spec"]["containers"][0]["image"] for p in pods.values()]
            if "busybox:1.36" in images:
                overlaps.append(images.count("busybox:1.35"))

        watch_pods(cluster, check)
        await _set_image(cluster, "busybox:1.36")
        await _rolled_out(cluster)
        assert overlaps
        assert set(overlaps) == {0}


async def test_pause_holds_the_rollout_and_resume_runs_it(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(DEPLOYMENTS, "default", deployment("web", 2))
        await _rolled_out(cluster)
        await cluster.client.patch(DEPLOYMENTS, "default", "web", {"spec": {"paused": True}})
        await _set_image(cluster, "busybox:1.36")
        await cluster.client.patch(DEPLOYMENTS, "default", "web", {"spec": {"replicas": 3}})

        async def observed() -> bool:
            d = await _get(cluster)
            scaled = {rs["spec"]["replicas"] for rs in await _sets(cluster)} == {3}
            return d["status"].get("observedGeneration") == d["metadata"]["generation"] and scaled

        await wait_until(observed, what="paused deployment observed and scaled")
        d = await _get(cluster)
        assert condition(d, "Progressing")["reason"] == "DeploymentPaused"
        assert condition(d, "Progressing")["status"] == "Unknown"
        assert len(await _sets(cluster)) == 1
        await cluster.client.patch(DEPLOYMENTS, "default", "web", {"spec": {"paused": False}})
        d = await _rolled_out(cluster)
        assert d["metadata"]["annotations"][REVISION] == "2"
        sets = _by_revision(await _sets(cluster))
        assert (sets["1"]["spec"]["replicas"], sets["2"]["spec"]["replicas"]) == (0, 3)


async def test_rollback_by_patching_the_old_template_back_reuses_its_set(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        created = deployment("web", 2)
        created["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
        await cluster.client.create(DEPLOYMENTS, "default", created)
        await _rolled_out(cluster)
        await _set_image(cluster, "busybox:1.36")
        await _rolled_out(cluster)
        first = _by_revision(await _sets(cluster))["1"]
        template = first["spec"]["template"]
        del template["metadata"]["labels"]["pod-template-hash"]
        annotations = {
            k: v
            for k, v in first["metadata"]["annotations"].items()
            if k not in du.ANNOTATIONS_TO_SKIP
        }
        undo = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]
        await cluster.client.patch(DEPLOYMENTS, "default", "web", undo, flavour="json")
        d = await _rolled_out(cluster)
        assert d["metadata"]["annotations"][REVISION] == "3"
        sets = await _sets(cluster)
        assert len(sets) == 2
        reused = next(rs for rs in sets if rs["metadata"]["uid"] == first["metadata"]["uid"])
        assert reused["metadata"]["annotations"][REVISION] == "3"
        assert reused["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
        assert reused["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"
        assert reused["spec"]["replicas"] == 2


async def test_revision_history_limit_deletes_the_oldest_empty_sets(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        manifest = deployment("web", 1, revisionHistoryLimit=1)
        await cluster.client.create(DEPLOYMENTS, "default", manifest)
        await _rolled_out(cluster)
        for tag in ("1.36", "1.37", "1.38"):
            await _set_image(cluster, f"busybox:{tag}")
            await _rolled_out(cluster)

        async def trimmed() -> bool:
            return sorted(_by_revision(await _sets(cluster))) == ["3", "4"]

        await wait_until(trimmed, what="only revisions 3 and 4 kept")


async def test_scale_subresource_resizes_the_deployment(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(DEPLOYMENTS, "default", deployment("web", 1))
        await _rolled_out(cluster)
        patch = {"spec": {"replicas": 5}}
        await cluster.client.patch(DEPLOYMENTS, "default", "web", patch, subresource="scale")
        d = await _rolled_out(cluster)
        assert d["status"]["availableReplicas"] == 5
        [rs] = await _sets(cluster)
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "5"


async def test_scaling_a_stuck_rollout_shares_the_change_in_proportion(tmp_path: Path) -> None:
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(DEPLOYMENTS, "default", deployment("web", 4, strategy=rolling))
        await _rolled_out(cluster)
        stuck = {"spec": {"template": {"spec": {"nodeSelector": {"disk": "none-has-this"}}}}}
        await cluster.client.patch(DEPLOYMENTS, "default", "web", stuck, flavour="strategic")

        async def sizes() -> dict[str, int]:
            sets = _by_revision(await _sets(cluster))
            return {revision: rs["spec"]["replicas"] for revision, rs in sets.items()}

        async def surged() -> bool:
            return await sizes() == {"1": 4, "2": 1}

        await wait_until(surged, what="one new pod surged, old set untouched")
        patch = {"spec": {"replicas": 8}}
        await cluster.client.patch(DEPLOYMENTS, "default", "web", patch, subresource="scale")

        async def shared() -> bool:
            return await sizes() == {"1": 7, "2": 2}

        await wait_until(shared, what="9 = 8 + maxSurge shared 7:2 by proportion")


async def test_no_progress_within_the_deadline_is_reported(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        manifest = deployment("web", 1, progressDeadlineSeconds=1)
        manifest["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "none-has-this"}
        await cluster.client.create(DEPLOYMENTS, "default", manifest)

        async def timed_out() -> bool:
            return condition(await _get(cluster), "Progressing").get("reason") == du.TIMED_OUT

        await wait_until(timed_out, within=10, what="ProgressDeadlineExceeded")
        d = await _get(cluster)
        assert condition(d, "Progressing")["status"] == "False"
        assert condition(d, "Available")["status"] == "False"
        assert d["status"]["unavailableReplicas"] == 1


# --- the real kubectl ----------------------------------------------------------------------


async def test_kubectl_rollout_commands(tmp_path: Path) -> None:
    """kubectl 1.32 end to end: create, scale, set image, status, history, undo, restart, pause."""
    async with workload_cluster(tmp_path, nodes=3) as cluster:
        kubectl = Kubectl(cluster, tmp_path / "kubectl-cache")
        await kubectl("create", "deployment", "web", "--image=busybox:1.35", "--replicas=2")
        status = await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in status
        assert "scaled" in await kubectl("scale", "deployment/web", "--replicas=4")
        await _rolled_out(cluster)
        await kubectl("set", "image", "deployment/web", "busybox=busybox:1.36")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        history = await kubectl("rollout", "history", "deployment/web")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
        assert "rolled back" in await kubectl("rollout", "undo", "deployment/web")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        d = await _get(cluster)
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.35"
        assert d["metadata"]["annotations"][REVISION] == "3"
        revision = await kubectl("rollout", "history", "deployment/web", "--revision=3")
        assert "busybox:1.35" in revision

        assert "paused" in await kubectl("rollout", "pause", "deployment/web")
        await kubectl("set", "image", "deployment/web", "busybox=busybox:1.37")
        refused = await kubectl("rollout", "undo", "deployment/web", check=False)
        assert "cannot rollback a paused deployment" in refused
        assert "resumed" in await kubectl("rollout", "resume", "deployment/web")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        assert (await _get(cluster))["metadata"]["annotations"][REVISION] == "4"

        assert "restarted" in await kubectl("rollout", "restart", "deployment/web")
        await kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        d = await _rolled_out(cluster)
        assert (
            "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
        )
        assert d["metadata"]["annotations"][REVISION] == "5"
        table = await kubectl("get", "deployment", "web")
        assert table.splitlines()[1].split()[:4] == ["web", "4/4", "4", "4"]
