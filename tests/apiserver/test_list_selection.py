"""LIST selection over HTTP on each backend: every label selector operator, the field
selectors each kind supports, and kube-apiserver's refusal of the others."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.support.apiserver import Server

LABELS = {
    "a": {"tier": "front", "env": "prod"},
    "b": {"tier": "back", "env": "prod"},
    "c": {"tier": "back"},
    "d": {},
}


def selected(server: Server, path: str, **query: str) -> list[str]:
    status, listed = server.request("GET", f"{path}?{urllib.parse.urlencode(query)}")
    assert status == 200, listed
    return [item["metadata"]["name"] for item in listed["items"]]


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("tier=front", ["a"]),
        ("tier==back", ["b", "c"]),
        ("tier!=back", ["a", "d"]),
        ("tier in (front,back)", ["a", "b", "c"]),
        ("tier notin (front)", ["b", "c", "d"]),
        ("env", ["a", "b"]),
        ("!env", ["c", "d"]),
        ("tier=back,env", ["b"]),
    ],
)
def test_label_selector_operators(
    server: Server, namespace: str, selector: str, names: list[str]
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name, labels in LABELS.items():
        server.request("POST", path, {"metadata": {"name": name, "labels": labels}})
    assert selected(server, path, labelSelector=selector) == names


def test_field_selectors_per_kind(server: Server, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    containers = [{"name": "c", "image": "i"}]
    server.request("POST", pods, {"metadata": {"name": "free"}, "spec": {"containers": containers}})
    server.request(
        "POST",
        pods,
        {
            "metadata": {"name": "placed"},
            "spec": {"containers": containers, "nodeName": "n1", "restartPolicy": "Never"},
        },
    )
    assert selected(server, pods, fieldSelector="spec.nodeName=n1") == ["placed"]
    assert selected(server, pods, fieldSelector="spec.nodeName=") == ["free"]
    assert selected(server, pods, fieldSelector="spec.restartPolicy!=Never") == ["free"]
    assert selected(server, pods, fieldSelector="status.phase=Pending") == ["free", "placed"]
    assert selected(server, pods, fieldSelector="spec.schedulerName=default-scheduler") == [
        "free",
        "placed",
    ]
    assert selected(server, pods, fieldSelector="metadata.name=free") == ["free"]
    assert selected(server, "/api/v1/pods", fieldSelector=f"metadata.namespace={namespace}") == [
        "free",
        "placed",
    ]

    events = f"/api/v1/namespaces/{namespace}/events"
    for name, reason, kind in (("e1", "Started", "Normal"), ("e2", "Failed", "Warning")):
        server.request(
            "POST",
            events,
            {
                "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": name[-1], "namespace": namespace},
                "reason": reason,
                "type": kind,
            },
        )
    assert selected(server, events, fieldSelector="involvedObject.name=2") == ["e2"]
    assert selected(server, events, fieldSelector="reason=Started") == ["e1"]
    assert selected(server, events, fieldSelector="type=Warning") == ["e2"]

    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    server.request("POST", secrets, {"metadata": {"name": "o"}})
    server.request(
        "POST",
        secrets,
        {
            "metadata": {"name": "t"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""},
        },
    )
    assert selected(server, secrets, fieldSelector="type=Opaque") == ["o"]


def test_field_selector_on_nodes(server: Server, namespace: str) -> None:
    cordoned = f"{namespace}-cordoned"
    server.request(
        "POST", "/api/v1/nodes", {"metadata": {"name": cordoned}, "spec": {"unschedulable": True}}
    )
    assert cordoned in selected(server, "/api/v1/nodes", fieldSelector="spec.unschedulable=true")
    assert cordoned not in selected(
        server, "/api/v1/nodes", fieldSelector="spec.unschedulable=false"
    )


@pytest.mark.parametrize(
    ("resource", "selector", "message"),
    [
        (
            "configmaps",
            "data.a=b",
            '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        ("pods", "spec.foo=b", "field label not supported: spec.foo"),
    ],
)
def test_unsupported_field_selector_is_400(
    server: Server, namespace: str, resource: str, selector: str, message: str
) -> None:
    query = urllib.parse.urlencode({"fieldSelector": selector})
    status, answer = server.request("GET", f"/api/v1/namespaces/{namespace}/{resource}?{query}")
    assert status == 400
    assert answer["reason"] == "BadRequest"
    assert answer["message"] == message
