"""Discovery, health, Table output and kubectl's columns per kind, and field validation
headers, against the API server on each backend."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.support.apiserver import Server

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def raw(server: Server, path: str, accept: str = "application/json") -> tuple[Any, Any]:
    request = urllib.request.Request(server.url + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.headers, answer.read()


def test_legacy_discovery_documents(server: Server) -> None:
    _, api = server.request("GET", "/api")
    assert api["kind"] == "APIVersions"
    assert api["versions"] == ["v1"]
    _, apis = server.request("GET", "/apis")
    assert apis["kind"] == "APIGroupList"
    groups = {g["name"]: g["preferredVersion"]["groupVersion"] for g in apis["groups"]}
    for group in ("apps", "batch", "coordination.k8s.io", "discovery.k8s.io"):
        assert groups[group] == f"{group}/v1"
    _, core = server.request("GET", "/api/v1")
    assert core["kind"] == "APIResourceList"
    resources = {r["name"]: r for r in core["resources"]}
    pods = resources["pods"]
    assert pods["shortNames"] == ["po"]
    assert pods["categories"] == ["all"]
    assert pods["namespaced"] is True
    assert {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    } <= set(pods["verbs"])
    for sub in ("status", "binding", "log", "exec", "attach", "portforward"):
        assert f"pods/{sub}" in resources
    assert resources["nodes"]["namespaced"] is False
    short = {r["name"]: r.get("shortNames", []) for r in core["resources"]}
    for name, abbreviation in {
        "nodes": "no",
        "services": "svc",
        "namespaces": "ns",
        "configmaps": "cm",
        "endpoints": "ep",
        "serviceaccounts": "sa",
        "events": "ev",
    }.items():
        assert abbreviation in short[name]
    _, apps = server.request("GET", "/apis/apps/v1")
    names = {r["name"] for r in apps["resources"]}
    assert {"deployments", "deployments/scale", "replicasets", "replicasets/scale"} <= names
    _, group = server.request("GET", "/apis/apps")
    assert group["kind"] == "APIGroup"


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
def test_aggregated_discovery_by_accept(server: Server, version: str) -> None:
    accept = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    for path, first_group in (("/api", ""), ("/apis", "apps")):
        headers, body = raw(server, path, accept + ",application/json;q=0.9")
        assert headers["Content-Type"] == accept
        document = json.loads(body)
        assert document["kind"] == "APIGroupDiscoveryList"
        assert document["apiVersion"] == f"apidiscovery.k8s.io/{version}"
        assert document["items"][0]["metadata"]["name"] == first_group
    core = json.loads(raw(server, "/api", accept)[1])["items"][0]["versions"][0]["resources"]
    pods = next(r for r in core if r["resource"] == "pods")
    assert {s["subresource"] for s in pods["subresources"]} >= {"status", "log", "exec"}


def test_health_and_version(server: Server) -> None:
    for probe in ("/healthz", "/livez", "/readyz"):
        _, body = raw(server, probe, "*/*")
        assert body == b"ok"
    _, version = server.request("GET", "/version")
    assert version["gitVersion"].startswith("v1.32.")
    assert (version["major"], version["minor"]) == ("1", "32")


def test_table_output_for_a_list(server: Server, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = {
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    server.request("POST", pods, pod)
    headers, body = raw(server, pods, TABLE)
    assert headers["Content-Type"].startswith("application/json")
    table = json.loads(body)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    row = table["rows"][0]
    assert row["cells"][:4] == ["p", "0/1", "Pending", "0"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["labels"] == {"a": "b"}
    full = json.loads(raw(server, pods + "?includeObject=Object", TABLE)[1])
    assert full["rows"][0]["object"]["kind"] == "Pod"
    assert full["rows"][0]["object"]["spec"]["containers"][0]["image"] == "i"
    _, one = raw(server, f"{pods}/p", TABLE)
    assert json.loads(one)["rows"][0]["cells"][0] == "p"


def objects(ns: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """One object of each printed kind: (collection path, body)."""
    core, apps = f"/api/v1/namespaces/{ns}", f"/apis/apps/v1/namespaces/{ns}"
    batch = f"/apis/batch/v1/namespaces/{ns}"
    containers = [{"name": "c", "image": "busybox:1.35"}]
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}}
    return {
        "svc": (f"{core}/services", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
        "rs": (
            f"{apps}/replicasets",
            {
                "metadata": {"name": "r"},
                "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template},
            },
        ),
        "jobs": (
            f"{batch}/jobs",
            {
                "metadata": {"name": "j"},
                "spec": {
                    "template": {
                        "spec": {"containers": containers, "restartPolicy": "Never"},
                    }
                },
            },
        ),
        "cm": (f"{core}/configmaps", {"metadata": {"name": "c"}, "data": {"a": "b"}}),
        "secrets": (f"{core}/secrets", {"metadata": {"name": "s"}, "stringData": {"a": "b"}}),
        "ev": (
            f"{core}/events",
            {
                "metadata": {"name": "e"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
                "reason": "Tested",
                "message": "hello",
                "type": "Normal",
            },
        ),
        "ep": (f"{core}/endpoints", {"metadata": {"name": "e"}}),
        "leases": (
            f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}},
        ),
        "sa": (f"{core}/serviceaccounts", {"metadata": {"name": "a"}}),
        "endpointslices": (
            f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            {"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []},
        ),
    }


HEADERS = {
    "svc": "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
    "rs": "NAME DESIRED CURRENT READY AGE",
    "jobs": "NAME STATUS COMPLETIONS DURATION AGE",
    "cm": "NAME DATA AGE",
    "secrets": "NAME TYPE DATA AGE",
    "ev": "LAST SEEN TYPE REASON OBJECT MESSAGE",
    "ep": "NAME ENDPOINTS AGE",
    "leases": "NAME HOLDER AGE",
    "sa": "NAME SECRETS AGE",
    "endpointslices": "NAME ADDRESSTYPE PORTS ENDPOINTS AGE",
}


def test_kubectl_prints_each_kinds_columns(server: Server, namespace: str) -> None:
    for path, body in objects(namespace).values():
        status, created = server.request("POST", path, body)
        assert status == 201, created
    for kind, header in HEADERS.items():
        lines = server.kubectl("get", kind, "-n", namespace).stdout.splitlines()
        assert " ".join(lines[0].split()) == header, kind
        assert len(lines) == 2, lines


def test_kubectl_wide_pods_and_nodes(server: Server, namespace: str) -> None:
    node = f"node-{namespace}"
    server.request("POST", "/api/v1/nodes", {"metadata": {"name": node}})
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": node},
    }
    server.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    pods = server.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert pods[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    assert pods[1].split()[6] == node
    nodes = server.kubectl("get", "node", node, "-o", "wide").stdout.splitlines()
    assert nodes[0].split() == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]


def test_kubectl_get_all_and_yaml(server: Server, namespace: str) -> None:
    for kind in ("svc", "rs"):
        path, body = objects(namespace)[kind]
        server.request("POST", path, body)
    listed = server.kubectl("get", "all", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(listed) == ["replicaset.apps/r", "service/s"]
    text = server.kubectl("get", "svc", "s", "-n", namespace, "-o", "yaml").stdout
    assert text.startswith("apiVersion: v1\nkind: Service\n")
    assert "  name: s\n" in text


def test_field_validation_warn_and_strict_duplicates(server: Server, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = b'{"metadata": {"name": "w"}, "data": {"a": "1"}, "dataa": {}}'
    request = urllib.request.Request(
        f"{server.url}{path}?fieldValidation=Warn",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201
        warning = answer.headers["Warning"]
    assert warning == '299 - "unknown field \\"dataa\\""'
    duplicate = b'{"metadata": {"name": "d"}, "data": {"a": "1"}, "data": {"a": "2"}}'
    status, answer = server.request("POST", f"{path}?fieldValidation=Strict", duplicate)
    assert status == 400, answer
    assert answer["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error:'
        ' duplicate field "data"'
    )
    assert server.request("GET", f"{path}/d")[0] == 404
