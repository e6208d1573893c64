"""Object lifecycle over HTTP on each backend: system objects, defaults, generation and
generated names, immutable fields, concurrency, dry runs, deletion in all its forms."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from tests.support.apiserver import Server

MERGE = "application/merge-patch+json"


def patch(server: Server, path: str, body: Any, query: str = "") -> tuple[int, Any]:
    return server.request("PATCH", f"{path}{query}", json.dumps(body).encode(), content_type=MERGE)


def deployment(name: str, image: str = "busybox:1.35") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def test_system_namespaces_and_the_kubernetes_service_exist(server: Server) -> None:
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        status, ns = server.request("GET", f"/api/v1/namespaces/{name}")
        assert status == 200, ns
        assert ns["status"]["phase"] == "Active"
    status, svc = server.request("GET", "/api/v1/namespaces/default/services/kubernetes")
    assert status == 200
    assert svc["spec"]["clusterIP"] == "10.0.0.1"


def test_create_in_a_missing_namespace_is_404(server: Server) -> None:
    status, answer = server.request(
        "POST", "/api/v1/namespaces/no-such-ns/configmaps", {"metadata": {"name": "c"}}
    )
    assert status == 404
    assert answer["reason"] == "NotFound"
    assert answer["message"] == 'namespaces "no-such-ns" not found'


def test_create_in_a_terminating_namespace_is_403(server: Server, namespace: str) -> None:
    status, deleted = server.request("DELETE", f"/api/v1/namespaces/{namespace}")
    assert status == 200, deleted
    # No namespace controller runs beside a bare API server: it stays Terminating.
    _, ns = server.request("GET", f"/api/v1/namespaces/{namespace}")
    assert ns["status"]["phase"] == "Terminating"
    status, answer = server.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "c"}}
    )
    assert status == 403, answer
    assert answer["reason"] == "Forbidden"
    assert answer["message"] == (
        f'configmaps "c" is forbidden: unable to create new content in namespace {namespace}'
        " because it is being terminated"
    )
    assert answer["details"]["causes"] == [
        {
            "reason": "NamespaceTerminating",
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]


def test_service_defaults_and_allocations(server: Server, namespace: str) -> None:
    services = f"/api/v1/namespaces/{namespace}/services"
    ports = [{"port": 80, "targetPort": 8080}]
    status, plain = server.request(
        "POST", services, {"metadata": {"name": "a"}, "spec": {"ports": ports}}
    )
    assert status == 201, plain
    status, nodeport = server.request(
        "POST",
        services,
        {"metadata": {"name": "b"}, "spec": {"type": "NodePort", "ports": ports}},
    )
    assert status == 201, nodeport
    spec = plain["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0]["protocol"] == "TCP"
    ips = {plain["spec"]["clusterIP"], nodeport["spec"]["clusterIP"]}
    assert len(ips) == 2
    assert "10.0.0.1" not in ips
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/16") for ip in ips)
    assert plain["spec"]["clusterIPs"] == [plain["spec"]["clusterIP"]]
    assert 30000 <= nodeport["spec"]["ports"][0]["nodePort"] <= 32767
    assert "nodePort" not in spec["ports"][0]


def test_workload_defaults(server: Server, namespace: str) -> None:
    status, deploy = server.request(
        "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("d")
    )
    assert status == 201, deploy
    spec = deploy["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    job = {
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox:1.35"}],
                }
            }
        },
    }
    status, created = server.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
    assert status == 201, created
    spec = created["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["template"]["metadata"]["labels"]["job-name"] == "j"


def test_pod_defaults_follow_the_image_tag(server: Server, namespace: str) -> None:
    images = {
        "tagged": ("busybox:1.35", "IfNotPresent"),
        "untagged": ("busybox", "Always"),
        "latest": ("busybox:latest", "Always"),
        "digest": ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
    }
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": n, "image": i} for n, (i, _) in images.items()]},
    }
    status, created = server.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    assert status == 201, created
    for container in created["spec"]["containers"]:
        assert container["imagePullPolicy"] == images[container["name"]][1]
        assert container["terminationMessagePath"] == "/dev/termination-log"
        assert container["terminationMessagePolicy"] == "File"
    assert created["status"]["phase"] == "Pending"


def test_generation_counts_spec_changes_only(server: Server, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    _, created = server.request("POST", path, deployment("g"))
    assert created["metadata"]["generation"] == 1
    _, labelled = patch(server, f"{path}/g", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    _, scaled = patch(server, f"{path}/g", {"spec": {"replicas": 3}})
    assert scaled["metadata"]["generation"] == 2
    scaled["status"] = {"replicas": 3, "observedGeneration": 2}
    status, with_status = server.request("PUT", f"{path}/g/status", scaled)
    assert status == 200, with_status
    assert with_status["metadata"]["generation"] == 2
    assert with_status["status"]["observedGeneration"] == 2


def test_generate_name(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    names = set()
    for _ in range(3):
        status, created = server.request("POST", path, {"metadata": {"generateName": "web-"}})
        assert status == 201, created
        assert created["metadata"]["generateName"] == "web-"
        names.add(created["metadata"]["name"])
    assert len(names) == 3
    assert all(re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in names)


def test_metadata_round_trips(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, owner = server.request("POST", path, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    meta = {
        "name": "c",
        "labels": {"app": "x"},
        "annotations": {"note": "hello"},
        "ownerReferences": [reference],
        "finalizers": ["example.com/keep"],
    }
    status, created = server.request("POST", path, {"metadata": meta})
    assert status == 201, created
    _, read = server.request("GET", f"{path}/c")
    for key in ("labels", "annotations", "ownerReferences", "finalizers"):
        assert read["metadata"][key] == meta[key]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", read["metadata"]["creationTimestamp"])
    assert "deletionTimestamp" not in read["metadata"]
    patch(server, f"{path}/c", {"metadata": {"finalizers": None}})


def test_port_out_of_range_is_invalid(server: Server, namespace: str) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]},
    }
    status, answer = server.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    assert status == 422
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 70000: must be between 1 and 65535, inclusive",
            "field": "spec.containers[0].ports[0].containerPort",
        }
    ]


def test_immutable_fields(server: Server, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    server.request("POST", pods, pod)
    status, answer = patch(server, f"{pods}/p", {"spec": {"restartPolicy": "Never"}})
    assert status == 422, answer
    assert answer["details"]["causes"][0]["field"] == "spec"
    assert "pod updates may not change fields other than" in answer["message"]
    status, image = patch(
        server, f"{pods}/p", {"spec": {"containers": [{"name": "c", "image": "j"}]}}
    )
    assert status == 200, image  # the image is one of the few mutable fields

    deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    server.request("POST", deployments, deployment("d"))
    status, answer = patch(
        server, f"{deployments}/d", {"spec": {"selector": {"matchLabels": {"app": "e"}}}}
    )
    assert status == 422, answer
    assert "spec.selector" in [c["field"] for c in answer["details"]["causes"]]
    assert "field is immutable" in answer["message"]

    services = f"/api/v1/namespaces/{namespace}/services"
    _, svc = server.request(
        "POST", services, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    moved = str(ipaddress.ip_address(svc["spec"]["clusterIP"]) + 1)
    status, answer = patch(server, f"{services}/s", {"spec": {"clusterIP": moved}})
    assert status == 422, answer
    assert any("clusterIP" in c["field"] for c in answer["details"]["causes"])
    _, kept = server.request("GET", f"{services}/s")
    assert kept["spec"]["clusterIP"] == svc["spec"]["clusterIP"]


def test_patch_with_a_stale_resource_version_conflicts(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, cm = server.request("POST", path, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    stale = cm["metadata"]["resourceVersion"]
    patch(server, f"{path}/c", {"data": {"a": "2"}})
    status, answer = patch(
        server, f"{path}/c", {"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}
    )
    assert status == 409, answer
    assert answer["reason"] == "Conflict"
    _, current = server.request("GET", f"{path}/c")
    assert current["data"] == {"a": "2"}


def test_dry_run_update_patch_and_delete_change_nothing(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, cm = server.request("POST", path, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    changed = {**cm, "data": {"a": "put"}}
    status, answer = server.request("PUT", f"{path}/c?dryRun=All", changed)
    assert status == 200, answer
    assert answer["data"] == {"a": "put"}
    status, answer = patch(server, f"{path}/c", {"data": {"a": "patched"}}, "?dryRun=All")
    assert status == 200, answer
    assert answer["data"] == {"a": "patched"}
    status, answer = server.request("DELETE", f"{path}/c?dryRun=All")
    assert status == 200, answer
    status, kept = server.request("GET", f"{path}/c")
    assert status == 200
    assert kept["data"] == {"a": "1"}
    assert kept["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    status, answer = server.request("PUT", f"{path}/c?dryRun=Some", changed)
    assert status == 400


def test_delete_collection_with_a_selector(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        server.request("POST", path, {"metadata": {"name": name, "labels": {"team": team}}})
    status, answer = server.request("DELETE", f"{path}?labelSelector=team%3Dx")
    assert status == 200, answer
    assert answer["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in answer["items"]) == ["a", "b"]
    _, left = server.request("GET", path)
    assert [i["metadata"]["name"] for i in left["items"]] == ["c"]


def test_delete_preconditions(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, cm = server.request("POST", path, {"metadata": {"name": "c"}})
    uid, rv = cm["metadata"]["uid"], cm["metadata"]["resourceVersion"]
    status, answer = server.request(
        "DELETE", f"{path}/c", {"preconditions": {"uid": "not-the-uid"}}
    )
    assert status == 409, answer
    assert answer["message"] == (
        'Operation cannot be fulfilled on configmaps "c": Precondition failed: UID in'
        f" precondition: not-the-uid, UID in object meta: {uid}"
    )
    status, answer = server.request(
        "DELETE", f"{path}/c", {"preconditions": {"resourceVersion": "1"}}
    )
    assert status == 409, answer
    assert answer["message"] == (
        'Operation cannot be fulfilled on configmaps "c": Precondition failed:'
        f" ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}"
    )
    status, _ = server.request(
        "DELETE", f"{path}/c", {"preconditions": {"uid": uid, "resourceVersion": rv}}
    )
    assert status == 200
    assert server.request("GET", f"{path}/c")[0] == 404


def test_finalizers_hold_an_object_until_cleared(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    server.request("POST", path, {"metadata": {"name": "c", "finalizers": ["example.com/x"]}})
    status, deleting = server.request("DELETE", f"{path}/c")
    assert status == 200
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    status, held = server.request("GET", f"{path}/c")
    assert status == 200
    assert held["metadata"]["finalizers"] == ["example.com/x"]
    status, _ = patch(server, f"{path}/c", {"metadata": {"finalizers": None}})
    assert status == 200
    assert server.request("GET", f"{path}/c")[0] == 404


def test_propagation_policies_mark_the_owner(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    expected = {"Orphan": ["orphan"], "Foreground": ["foregroundDeletion"]}
    for policy, finalizers in expected.items():
        name = policy.lower()
        server.request("POST", path, {"metadata": {"name": name}})
        status, answer = server.request("DELETE", f"{path}/{name}", {"propagationPolicy": policy})
        assert status == 200, answer
        # The garbage collector (not running here) would finish these deletions.
        _, held = server.request("GET", f"{path}/{name}")
        assert held["metadata"]["finalizers"] == finalizers
        assert held["metadata"]["deletionTimestamp"]
    server.request("POST", path, {"metadata": {"name": "background"}})
    status, _ = server.request("DELETE", f"{path}/background?propagationPolicy=Background")
    assert status == 200
    assert server.request("GET", f"{path}/background")[0] == 404
    status, answer = server.request("DELETE", f"{path}/orphan?propagationPolicy=Sometimes")
    assert status == 422


def test_pod_deletion_is_graceful_only_on_a_node(server: Server, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    containers = [{"name": "c", "image": "busybox:1.35"}]
    server.request(
        "POST", pods, {"metadata": {"name": "loose"}, "spec": {"containers": containers}}
    )
    status, _ = server.request("DELETE", f"{pods}/loose")
    assert status == 200
    assert server.request("GET", f"{pods}/loose")[0] == 404  # unscheduled: gone at once

    for name in ("placed", "short", "forced"):
        spec = {"containers": containers, "nodeName": "some-node"}
        server.request("POST", pods, {"metadata": {"name": name}, "spec": spec})
    status, marked = server.request("DELETE", f"{pods}/placed")
    assert status == 200
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert marked["metadata"]["deletionTimestamp"]
    assert server.request("GET", f"{pods}/placed")[0] == 200  # the kubelet removes it
    _, short = server.request("DELETE", f"{pods}/short", {"gracePeriodSeconds": 5})
    assert short["metadata"]["deletionGracePeriodSeconds"] == 5
    status, _ = server.request("DELETE", f"{pods}/forced?gracePeriodSeconds=0")
    assert status == 200
    assert server.request("GET", f"{pods}/forced")[0] == 404
