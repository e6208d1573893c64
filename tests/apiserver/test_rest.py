"""The REST surface with plain HTTP, as the seed's curl commands use it."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.support.apiserver import Server

SEED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  nodeName: mint-dev-vm
  containers:
  - name: nginx
    image: nginx
    ports:
    - containerPort: 80
    volumeMounts:
    - mountPath: /var/log/nginx
      name: nginx-logs
  - name: log-truncator
    image: busybox
    command:
    - /bin/sh
    args: [-c, 'while true; do cat /dev/null > /logdir/access.log; sleep 10; done']
    volumeMounts:
    - mountPath: /logdir
      name: nginx-logs
  volumes:
  - name: nginx-logs
    emptyDir: {}
"""


def test_seed_listing_nodes_and_pods(server: Server) -> None:
    for path in ("/api/v1/nodes", "/api/v1/pods"):
        status, body = server.request("GET", path)
        assert status == 200
        assert body["kind"] in ("NodeList", "PodList")
        assert isinstance(body["items"], list)
        assert int(body["metadata"]["resourceVersion"]) > 0


def test_seed_pod_posted_as_yaml(server: Server, namespace: str) -> None:
    status, pod = server.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/pods",
        SEED_POD.encode(),
        content_type="application/yaml",
    )
    assert status == 201, pod
    meta = pod["metadata"]
    assert meta["name"] == "nginx"
    assert meta["namespace"] == namespace
    assert meta["selfLink"] == f"/api/v1/namespaces/{namespace}/pods/nginx"
    assert len(meta["uid"]) == 36
    assert int(meta["resourceVersion"]) > 0
    assert meta["creationTimestamp"].endswith("Z")
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert [c["imagePullPolicy"] for c in spec["containers"]] == ["Always", "Always"]
    assert spec["containers"][0]["ports"][0]["protocol"] == "TCP"
    tolerations = {t["key"]: t["tolerationSeconds"] for t in spec["tolerations"]}
    assert tolerations == {
        "node.kubernetes.io/not-ready": 300,
        "node.kubernetes.io/unreachable": 300,
    }
    assert pod["status"]["phase"] == "Pending"
    _, listed = server.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["nginx"]
    _, again = server.request("GET", "/api/v1/pods")
    assert any(p["metadata"]["uid"] == meta["uid"] for p in again["items"])


def test_yaml_answer_when_asked(server: Server, namespace: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/api/v1/namespaces/{namespace}", headers={"Accept": "application/yaml"}
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.headers["Content-Type"].startswith("application/yaml")
        assert f"name: {namespace}" in answer.read().decode()


def test_update_with_stale_resource_version_conflicts(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, cm = server.request("POST", path, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert status == 201
    first = dict(cm)
    cm["data"] = {"a": "2"}
    status, updated = server.request("PUT", f"{path}/c", cm)
    assert status == 200
    assert int(updated["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    first["data"] = {"a": "3"}
    status, conflict = server.request("PUT", f"{path}/c", first)
    assert status == 409
    assert conflict["reason"] == "Conflict"
    assert conflict["message"] == (
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; please'
        " apply your changes to the latest version and try again"
    )
    _, current = server.request("GET", f"{path}/c")
    assert current["data"] == {"a": "2"}


def test_watch_from_resource_version_streams_changes(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, listed = server.request("GET", path)
    rv = listed["metadata"]["resourceVersion"]
    server.request("POST", path, {"metadata": {"name": "w1"}})
    server.request("DELETE", f"{path}/w1")
    url = f"{server.url}{path}?watch=true&resourceVersion={rv}&timeoutSeconds=5"
    events = []
    with urllib.request.urlopen(url, timeout=30) as stream:
        for line in stream:
            events.append(json.loads(line))
            if len(events) == 2:
                break
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"),
        ("DELETED", "w1"),
    ]


def test_consistent_list_is_never_older_than_the_store(
    server: Server, namespace: str, request: pytest.FixtureRequest
) -> None:
    """A consistent LIST reflects every write before it, even one the watch cache never
    sees (another tenant writing outside /registry/ in a shared etcd)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, created = server.request("POST", path, {"metadata": {"name": "seen"}})
    floor = int(created["metadata"]["resourceVersion"])
    if request.node.callspec.params.get("server") == "etcd":
        cluster = request.getfixturevalue("etcd")
        put = urllib.request.Request(
            cluster.members[0].client_url + "/v3/kv/put",
            data=json.dumps({"key": "b3RoZXI=", "value": "eA=="}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(put, timeout=10) as answer:
            floor = int(json.loads(answer.read())["header"]["revision"])
    status, listed = server.request("GET", path)
    assert status == 200
    assert [item["metadata"]["name"] for item in listed["items"]] == ["seen"]
    assert int(listed["metadata"]["resourceVersion"]) >= floor
