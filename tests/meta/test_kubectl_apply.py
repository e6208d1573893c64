"""Client-side ``kubectl apply``: the strategic merge patches kubectl 1.32 really sends.

Each patch below was recorded from kubectl 1.32.4 (``kubectl apply -f new.json``) talking to a
stub API server that served the ``live`` object and logged the PATCH body. kubectl diffs the
last-applied annotation (what it applied before), the new file and the live object, and sends
``$setElementOrder``, ``$patch: delete``, ``$retainKeys``, ``$deleteFromPrimitiveList`` and
nulls; the server must keep what others added to the live object (defaults, webhook
injections, controller finalizers) while dropping what the user removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from minikube_py.meta.patch import copy_json, kind_type_name
from minikube_py.meta.strategic import strategic_merge

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def last_applied(config: Obj) -> str:
    """The annotation as kubectl writes it: the file, with empty annotations and the namespace."""
    applied: Obj = copy_json(config)
    applied["metadata"]["annotations"] = {}
    applied["metadata"]["namespace"] = "default"
    return json.dumps(applied, sort_keys=True, separators=(",", ":")) + "\n"


def live_from(config: Obj, server_side: Callable[[Obj], None]) -> Obj:
    """The object as the API server holds it after an earlier apply of ``config``."""
    live: Obj = copy_json(config)
    meta = live["metadata"]
    meta.update({"namespace": "default", "uid": "u", "resourceVersion": "7"})
    meta.setdefault("annotations", {})[LAST_APPLIED] = last_applied(config)
    server_side(live)
    return live


def with_annotation(patch: Obj, config: Obj) -> Obj:
    """kubectl always sends the new last-applied annotation along with the changes."""
    merged: Obj = copy_json(patch)
    annotations = merged.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[LAST_APPLIED] = last_applied(config)
    return merged


# -- 1. a Deployment: drop a label and an env var, bump the image --------------------------------

WEB_OLD: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "frontend"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.25",
                        "env": [{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "1"}],
                        "ports": [{"containerPort": 80}],
                    },
                    {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]},
                ]
            },
        },
    },
}
WEB_NEW = copy_json(WEB_OLD)
del WEB_NEW["metadata"]["labels"]["tier"]
WEB_NEW["spec"]["template"]["spec"]["containers"][0].update(
    {"image": "nginx:1.27", "env": [{"name": "MODE", "value": "prod"}]}
)


def web_server_side(live: Obj) -> None:
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    live["metadata"]["generation"] = 1
    web = live["spec"]["template"]["spec"]["containers"][0]
    web["env"].append({"name": "INJECTED", "value": "by-webhook"})
    web["imagePullPolicy"] = "IfNotPresent"
    live["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    live["status"] = {"replicas": 2}


WEB_PATCH: Obj = {
    "metadata": {"labels": {"tier": None}},
    "spec": {
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [
                    {
                        "$setElementOrder/env": [{"name": "MODE"}],
                        "env": [{"$patch": "delete", "name": "DEBUG"}],
                        "image": "nginx:1.27",
                        "name": "web",
                    }
                ],
            }
        }
    },
}


def test_apply_removes_a_label_and_an_env_var_and_changes_the_image() -> None:
    live = live_from(WEB_OLD, web_server_side)
    result = strategic_merge(
        live, with_annotation(WEB_PATCH, WEB_NEW), kind_type_name("apps/v1", "Deployment")
    )
    assert result == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                LAST_APPLIED: last_applied(WEB_NEW),
            },
            "namespace": "default",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 1,
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            # the webhook's variable survives: it was never in the applied file
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "INJECTED", "value": "by-webhook"},
                            ],
                            "ports": [{"containerPort": 80}],
                            "imagePullPolicy": "IfNotPresent",
                        },
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]},
                    ]
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        },
        "status": {"replicas": 2},
    }


# -- 2. the other recorded flows, checked where they bite -----------------------------------------


def api_deployment(strategy: Obj, finalizers: list[str]) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "finalizers": finalizers},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "api:1"}]},
            },
        },
    }


def api_server_side(live: Obj) -> None:
    live["metadata"]["finalizers"].append("other.io/keep")
    live["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = "25%"


def service(ports: list[Obj]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": ports},
    }


def service_server_side(live: Obj) -> None:
    live["spec"].update({"clusterIP": "10.96.0.10", "type": "ClusterIP"})
    for port in live["spec"]["ports"]:
        port["protocol"] = "TCP"


SIDECAR_OLD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "p"}},
    "spec": {
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
        ],
        "containers": [
            {
                "name": "main",
                "image": "app:1",
                "volumeMounts": [
                    {"name": "cache", "mountPath": "/cache"},
                    {"name": "cfg", "mountPath": "/etc/app"},
                ],
            }
        ],
    },
}
SIDECAR_NEW: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "p"}},
    "spec": {
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg2"}}],
        "containers": [
            {"name": "log", "image": "fluent:1"},
            {
                "name": "main",
                "image": "app:1",
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}],
                "ports": [{"containerPort": 8080, "name": "http"}],
            },
        ],
    },
}
TOKEN_MOUNT = {
    "name": "kube-api-access",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}


def sidecar_server_side(live: Obj) -> None:
    live["spec"]["volumes"].append({"name": "kube-api-access", "projected": {"sources": []}})
    live["spec"]["containers"][0]["volumeMounts"].append(TOKEN_MOUNT)
    live["spec"]["nodeName"] = "node-1"


def volume_pod(volume: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "v"},
        "spec": {"volumes": [volume], "containers": [{"name": "c", "image": "x"}]},
    }


# (name, old config, new config, server-side additions, recorded patch, path, expected there)
FLOWS: list[tuple[str, Obj, Obj, Callable[[Obj], None], Obj, tuple[str, ...], Any]] = [
    (
        "finalizer removed, strategy switched to Recreate ($retainKeys)",
        api_deployment(
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            ["example.com/a", "example.com/b"],
        ),
        api_deployment({"type": "Recreate"}, ["example.com/a"]),
        api_server_side,
        {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": ["example.com/b"],
                "$setElementOrder/finalizers": ["example.com/a"],
            },
            "spec": {
                "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}
            },
        },
        ("metadata", "finalizers"),
        ["example.com/a", "other.io/keep"],
    ),
    (
        "strategy loses the server's rollingUpdate defaults too",
        api_deployment(
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            ["example.com/a", "example.com/b"],
        ),
        api_deployment({"type": "Recreate"}, ["example.com/a"]),
        api_server_side,
        {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": ["example.com/b"],
                "$setElementOrder/finalizers": ["example.com/a"],
            },
            "spec": {
                "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}
            },
        },
        ("spec", "strategy"),
        {"type": "Recreate"},
    ),
    (
        "service ports: one added, one changed, one removed, reordered",
        service(
            [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "metrics", "port": 9090}]
        ),
        service(
            [
                {"name": "https", "port": 443, "targetPort": 8443},
                {"name": "http", "port": 80, "targetPort": 8081},
            ]
        ),
        service_server_side,
        {
            "spec": {
                "$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                "ports": [
                    {"name": "https", "port": 443, "targetPort": 8443},
                    {"port": 80, "targetPort": 8081},
                    {"$patch": "delete", "port": 9090},
                ],
            }
        },
        ("spec", "ports"),
        [
            {"name": "https", "port": 443, "targetPort": 8443},
            {"name": "http", "port": 80, "targetPort": 8081, "protocol": "TCP"},
        ],
    ),
    (
        "pod: container added in front, a volume and its mount removed, a port added",
        SIDECAR_OLD,
        SIDECAR_NEW,
        sidecar_server_side,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "log"}, {"name": "main"}],
                "$setElementOrder/volumes": [{"name": "cfg"}],
                "containers": [
                    {"image": "fluent:1", "name": "log"},
                    {
                        "$setElementOrder/volumeMounts": [{"mountPath": "/etc/app"}],
                        "name": "main",
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "volumeMounts": [{"$patch": "delete", "mountPath": "/cache"}],
                    },
                ],
                "volumes": [
                    {
                        "$retainKeys": ["configMap", "name"],
                        "configMap": {"name": "cfg2"},
                        "name": "cfg",
                    },
                    {"$patch": "delete", "name": "cache"},
                ],
            }
        },
        ("spec",),
        {
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg2"}},
                {"name": "kube-api-access", "projected": {"sources": []}},
            ],
            "containers": [
                {"image": "fluent:1", "name": "log"},
                {
                    "name": "main",
                    "image": "app:1",
                    "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}, TOKEN_MOUNT],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                },
            ],
            "nodeName": "node-1",
        },
    ),
    (
        "volume source switched from emptyDir to hostPath",
        volume_pod({"name": "data", "emptyDir": {}}),
        volume_pod({"name": "data", "hostPath": {"path": "/srv"}}),
        lambda live: None,
        {
            "spec": {
                "$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [
                    {
                        "$retainKeys": ["hostPath", "name"],
                        "emptyDir": None,
                        "hostPath": {"path": "/srv"},
                        "name": "data",
                    }
                ],
            }
        },
        ("spec", "volumes"),
        [{"name": "data", "hostPath": {"path": "/srv"}}],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "server_side", "patch", "path", "expected"),
    [flow[1:] for flow in FLOWS],
    ids=[flow[0] for flow in FLOWS],
)
def test_recorded_apply(
    old: Obj,
    new: Obj,
    server_side: Callable[[Obj], None],
    patch: Obj,
    path: tuple[str, ...],
    expected: Any,
) -> None:
    live = live_from(old, server_side)
    snapshot = copy_json(live)
    result = strategic_merge(
        live, with_annotation(patch, new), kind_type_name(old["apiVersion"], old["kind"])
    )
    assert live == snapshot
    found: Any = result
    for step in path:
        found = found[step]
    assert found == expected
    assert result["metadata"]["annotations"][LAST_APPLIED] == last_applied(new)
