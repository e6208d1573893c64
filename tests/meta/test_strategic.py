"""Strategic merge patch: merge keys from the schema table, directives, kube's ordering and errors.

Every expected value here matches ``kubectl patch --local --type strategic`` from kubectl 1.32
(same apimachinery code as kube-apiserver 1.32); test_patch_kubectl.py re-checks that.
"""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.patch import PatchError, copy_json, kind_type_name
from minikube_py.meta.strategic import strategic_merge

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-0",
        "namespace": "default",
        "labels": {"app": "web", "tier": "frontend"},
        "finalizers": ["example.com/a", "example.com/b"],
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6d4", "uid": "uid-rs"}
        ],
    },
    "spec": {
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "config", "configMap": {"name": "web-config"}},
        ],
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "DEBUG", "value": "0"},
                    {"name": "REGION", "value": "eu"},
                ],
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            },
            {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]},
        ],
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
    },
    "status": {
        "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "podIPs": [{"ip": "10.244.0.5"}],
    },
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
        },
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"app": "web"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
        ],
    },
}

NODE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "node-1"},
    "spec": {"podCIDRs": ["10.244.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
    "status": {
        "addresses": [
            {"type": "InternalIP", "address": "172.18.0.2"},
            {"type": "Hostname", "address": "node-1"},
        ],
        "conditions": [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True"},
        ],
    },
}

CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web-config", "namespace": "default"},
    "data": {"a": "1", "b": "2"},
}

WEB = ("spec", "containers", 0)

# (name, object, patch, path into the result, expected value there)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], tuple[str | int, ...], Any]] = [
    # -- maps
    (
        "labels merge and null deletes",
        POD,
        {"metadata": {"labels": {"tier": None, "version": "v2"}}},
        ("metadata", "labels"),
        {"app": "web", "version": "v2"},
    ),
    (
        "ConfigMap data is a plain map",
        CONFIGMAP,
        {"data": {"a": None, "c": "3"}},
        ("data",),
        {"b": "2", "c": "3"},
    ),
    (
        "$patch: replace replaces a map",
        POD,
        {"metadata": {"labels": {"$patch": "replace", "app": "api"}}},
        ("metadata", "labels"),
        {"app": "api"},
    ),
    (
        "$patch: delete leaves an empty map",
        POD,
        {"metadata": {"labels": {"$patch": "delete"}}},
        ("metadata", "labels"),
        {},
    ),
    (
        "a new map loses its nulls",
        POD,
        {"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": None}}},
        ("spec", "securityContext"),
        {"runAsUser": 1000},
    ),
    (
        "a new map that is a directive is dropped",
        POD,
        {"spec": {"securityContext": {"$patch": "replace", "runAsUser": 1000}}},
        ("spec",),
        POD["spec"],
    ),
    (
        "a list replacing a scalar is taken whole",
        POD,
        {"metadata": {"name": ["x"]}},
        ("metadata", "name"),
        ["x"],
    ),
    # -- lists with a merge key
    (
        "change one container's image by name",
        POD,
        {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
        (*WEB, "image"),
        "nginx:1.27",
    ),
    (
        "a new container goes in front of server-only ones",
        POD,
        {"spec": {"containers": [{"name": "log", "image": "fluent-bit:3"}]}},
        ("spec", "containers"),
        [
            {"name": "log", "image": "fluent-bit:3"},
            POD["spec"]["containers"][0],
            POD["spec"]["containers"][1],
        ],
    ),
    (
        "$patch: delete removes an element by merge key",
        POD,
        {"spec": {"containers": [{"$patch": "delete", "name": "sidecar"}]}},
        ("spec", "containers"),
        [POD["spec"]["containers"][0]],
    ),
    (
        "$patch: replace in an element replaces the list with the other elements",
        POD,
        {
            "spec": {
                "containers": [{"$patch": "replace"}, {"name": "only", "image": "x", "tty": None}]
            }
        },
        ("spec", "containers"),
        [{"name": "only", "image": "x"}],
    ),
    (
        "env merges by name; an element's null deletes its member",
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "env": [
                            {
                                "name": "MODE",
                                "value": None,
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            }
                        ],
                    }
                ]
            }
        },
        (*WEB, "env", 0),
        {"name": "MODE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ),
    (
        "ports merge by containerPort",
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "ports": [
                            {"containerPort": 8080},
                            {"containerPort": 80, "protocol": "TCP"},
                        ],
                    }
                ]
            }
        },
        (*WEB, "ports"),
        [
            {"containerPort": 8080},
            {"containerPort": 80, "name": "http", "protocol": "TCP"},
            {"containerPort": 443},
        ],
    ),
    (
        "volumeMounts merge by mountPath",
        POD,
        {
            "spec": {
                "containers": [
                    {"name": "web", "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}]}
                ]
            }
        },
        (*WEB, "volumeMounts"),
        [{"name": "config", "mountPath": "/etc/web"}, {"name": "cache", "mountPath": "/cache"}],
    ),
    (
        "ownerReferences merge by uid",
        POD,
        {"metadata": {"ownerReferences": [{"uid": "uid-rs", "controller": True}]}},
        ("metadata", "ownerReferences"),
        [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-6d4",
                "uid": "uid-rs",
                "controller": True,
            }
        ],
    ),
    (
        "pod conditions merge by type (status patches from the kubelet)",
        POD,
        {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                ]
            }
        },
        ("status", "conditions"),
        [
            {"type": "Ready", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "PodScheduled", "status": "True"},
        ],
    ),
    (
        "podIPs merge by ip",
        POD,
        {"status": {"podIPs": [{"ip": "fd00::5"}]}},
        ("status", "podIPs"),
        [{"ip": "fd00::5"}, {"ip": "10.244.0.5"}],
    ),
    (
        "service ports merge by port",
        SERVICE,
        {"spec": {"ports": [{"port": 443, "targetPort": 9443}]}},
        ("spec", "ports"),
        [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 9443, "protocol": "TCP"},
        ],
    ),
    (
        "node addresses merge by type",
        NODE,
        {"status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.9"}]}},
        ("status", "addresses"),
        [
            {"type": "InternalIP", "address": "172.18.0.9"},
            {"type": "Hostname", "address": "node-1"},
        ],
    ),
    (
        "node conditions merge by type (heartbeats)",
        NODE,
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]
            }
        },
        ("status", "conditions"),
        [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady"},
        ],
    ),
    (
        "a merge key of another JSON type is another key (Go compares int64 and float64 apart)",
        SERVICE,
        {"spec": {"ports": [{"port": 80.0, "name": "float"}]}},
        ("spec", "ports"),
        [{"port": 80.0, "name": "float"}, *SERVICE["spec"]["ports"]],
    ),
    (
        "delete one volume and add another in one patch",
        POD,
        {
            "spec": {
                "volumes": [
                    {"$patch": "delete", "name": "cache"},
                    {"name": "tmp", "emptyDir": {"medium": "Memory"}},
                ]
            }
        },
        ("spec", "volumes"),
        [
            {"name": "tmp", "emptyDir": {"medium": "Memory"}},
            {"name": "config", "configMap": {"name": "web-config"}},
        ],
    ),
    (
        "known and new conditions interleave with server-only ones by server order",
        NODE,
        {
            "status": {
                "conditions": [
                    {"type": "DiskPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                    {"type": "PIDPressure", "status": "False"},
                ]
            }
        },
        ("status", "conditions"),
        [
            {"type": "DiskPressure", "status": "False"},
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True"},
            {"type": "PIDPressure", "status": "False"},
        ],
    ),
    # -- lists without a merge key replace
    (
        "tolerations replace",
        POD,
        {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}},
        ("spec", "tolerations"),
        [{"key": "gpu", "operator": "Exists"}],
    ),
    (
        "container args replace",
        POD,
        {"spec": {"containers": [{"name": "sidecar", "args": ["sleep", "60"]}]}},
        ("spec", "containers", 1, "args"),
        ["sleep", "60"],
    ),
    (
        "node taints replace",
        NODE,
        {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}},
        ("spec", "taints"),
        [{"key": "b", "effect": "NoExecute"}],
    ),
    # -- primitive lists with the merge strategy are ordered sets
    (
        "finalizers merge as a set, a new one goes first",
        POD,
        {"metadata": {"finalizers": ["example.com/c"]}},
        ("metadata", "finalizers"),
        ["example.com/c", "example.com/a", "example.com/b"],
    ),
    (
        "a server-only finalizer keeps its place before known ones",
        POD,
        {"metadata": {"finalizers": ["example.com/b", "example.com/c"]}},
        ("metadata", "finalizers"),
        ["example.com/a", "example.com/b", "example.com/c"],
    ),
    (
        "$deleteFromPrimitiveList removes values",
        POD,
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "absent"]}},
        ("metadata", "finalizers"),
        ["example.com/b"],
    ),
    (
        "node podCIDRs merge as a set",
        NODE,
        {"spec": {"podCIDRs": ["fd00:10:244::/64"]}},
        ("spec", "podCIDRs"),
        ["fd00:10:244::/64", "10.244.0.0/24"],
    ),
    (
        "duplicate primitives collapse",
        POD,
        {"metadata": {"finalizers": ["example.com/z", "example.com/z", "example.com/a"]}},
        ("metadata", "finalizers"),
        ["example.com/z", "example.com/a", "example.com/b"],
    ),
    (
        "$deleteFromPrimitiveList: null deletes the whole list",
        POD,
        {"metadata": {"$deleteFromPrimitiveList/finalizers": None}},
        ("metadata",),
        {key: value for key, value in POD["metadata"].items() if key != "finalizers"},
    ),
    # -- $setElementOrder
    (
        "$setElementOrder reorders without changes",
        POD,
        {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}},
        ("spec", "containers"),
        [POD["spec"]["containers"][1], POD["spec"]["containers"][0]],
    ),
    (
        "$setElementOrder places an added element",
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "$setElementOrder/env": [
                            {"name": "MODE"},
                            {"name": "NEW"},
                            {"name": "DEBUG"},
                            {"name": "REGION"},
                        ],
                        "env": [{"name": "NEW", "value": "1"}],
                    }
                ]
            }
        },
        (*WEB, "env"),
        [
            {"name": "MODE", "value": "prod"},
            {"name": "NEW", "value": "1"},
            {"name": "DEBUG", "value": "0"},
            {"name": "REGION", "value": "eu"},
        ],
    ),
    (
        "$setElementOrder keeps server-only elements where they were",
        POD,
        {
            "spec": {
                "containers": [
                    {"name": "web", "$setElementOrder/env": [{"name": "REGION"}, {"name": "MODE"}]}
                ]
            }
        },
        (*WEB, "env"),
        [
            {"name": "DEBUG", "value": "0"},
            {"name": "REGION", "value": "eu"},
            {"name": "MODE", "value": "prod"},
        ],
    ),
    (
        "$setElementOrder with a deletion (kubectl removing a container)",
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"$patch": "delete", "name": "sidecar"}],
            }
        },
        ("spec", "containers"),
        [POD["spec"]["containers"][0]],
    ),
    (
        "$setElementOrder on finalizers",
        POD,
        {
            "metadata": {
                "$setElementOrder/finalizers": [
                    "example.com/b",
                    "example.com/new",
                    "example.com/a",
                ],
                "finalizers": ["example.com/new"],
            }
        },
        ("metadata", "finalizers"),
        ["example.com/b", "example.com/new", "example.com/a"],
    ),
    (
        "$setElementOrder for a list the object lacks",
        POD,
        {
            "spec": {
                "$setElementOrder/initContainers": [{"name": "init"}],
                "initContainers": [{"name": "init", "image": "x"}],
            }
        },
        ("spec", "initContainers"),
        [{"name": "init", "image": "x"}],
    ),
    # -- $retainKeys
    (
        "$retainKeys clears the other keys (RollingUpdate -> Recreate)",
        DEPLOYMENT,
        {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}
            }
        },
        ("spec", "strategy"),
        {"type": "Recreate"},
    ),
    (
        "$retainKeys in a volume switches its source",
        POD,
        {
            "spec": {
                "volumes": [
                    {
                        "name": "cache",
                        "$retainKeys": ["hostPath", "name"],
                        "hostPath": {"path": "/srv"},
                    }
                ]
            }
        },
        ("spec", "volumes"),
        [
            {"name": "cache", "hostPath": {"path": "/srv"}},
            {"name": "config", "configMap": {"name": "web-config"}},
        ],
    ),
    # -- templates reached through the schema
    (
        "deployment template containers merge by name",
        DEPLOYMENT,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        ("spec", "template", "spec", "containers"),
        [{"name": "web", "image": "nginx:1.27"}],
    ),
    (
        "the whole object can be replaced",
        CONFIGMAP,
        {"$patch": "replace", "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        (),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
    ),
]


def dig(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def type_of(obj: dict[str, Any]) -> str:
    return kind_type_name(obj["apiVersion"], obj["kind"])


@pytest.mark.parametrize(
    ("obj", "patch", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_strategic_merge(
    obj: dict[str, Any], patch: dict[str, Any], path: tuple[str | int, ...], expected: Any
) -> None:
    assert dig(strategic_merge(obj, patch, type_of(obj)), path) == expected


def test_unknown_types_merge_maps_and_replace_lists() -> None:
    obj = {"spec": {"items": [{"name": "a"}], "settings": {"x": 1, "y": 2}}, "finalizers": ["a"]}
    patch = {"spec": {"items": [{"name": "b"}], "settings": {"x": None}}, "finalizers": ["b"]}
    result = strategic_merge(obj, patch, "example.com.v1.Widget")
    assert result == {"spec": {"items": [{"name": "b"}], "settings": {"y": 2}}, "finalizers": ["b"]}


# (name, object, patch, HTTP code, message)
ERRORS: list[tuple[str, dict[str, Any], Any, int, str]] = [
    (
        "$patch: merge in a map",
        POD,
        {"metadata": {"labels": {"$patch": "merge"}}},
        500,
        "unknown patch type: merge in map: map[$patch:merge]",
    ),
    (
        "$patch: merge in a list",
        POD,
        {"spec": {"containers": [{"$patch": "merge", "name": "web"}]}},
        500,
        "merging lists cannot yet be specified in the patch",
    ),
    (
        "unknown $patch in a list",
        POD,
        {"spec": {"containers": [{"$patch": "bogus", "name": "web"}]}},
        500,
        "unknown patch type: bogus in map: map[$patch:bogus name:web]",
    ),
    (
        "element without its merge key",
        POD,
        {"spec": {"containers": [{"image": "x"}]}},
        500,
        "map: map[image:x] does not contain declared merge key: name",
    ),
    (
        "delete directive without the merge key",
        POD,
        {"spec": {"containers": [{"$patch": "delete"}]}},
        500,
        "map: map[$patch:delete] does not contain declared merge key: name",
    ),
    (
        "list of lists",
        {**CONFIGMAP, "metadata": {"name": "c", "finalizers": []}},
        {"metadata": {"finalizers": [["example.com/a"]]}},
        422,
        "lists of lists are not supported",
    ),
    (
        "a list into a list of maps",
        POD,
        {"spec": {"containers": [{"name": "web", "ports": [[80]]}]}},
        500,
        "list element types are not identical: "
        "[[map[containerPort:80 name:http] map[containerPort:443]] [[80]]]",
    ),
    (
        "mixed element types",
        POD,
        {"metadata": {"finalizers": [1]}},
        500,
        "list element types are not identical: [[example.com/a example.com/b] [1]]",
    ),
    (
        "patch element outside $setElementOrder",
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"name": "new", "image": "x"}],
            }
        },
        500,
        "The order in patch list:\n[map[image:x name:new]]\n"
        " doesn't match $setElementOrder list:\n[map[name:web]]\n",
    ),
    (
        "$setElementOrder not a list",
        POD,
        {"spec": {"$setElementOrder/containers": "web"}},
        500,
        "expected a []interface {}, but received a string",
    ),
    (
        "$setElementOrder without the field name",
        POD,
        {"metadata": {"$setElementOrderfinalizers": ["x"]}},
        400,
        "invalid patch format of setElementOrder list",
    ),
    (
        "$deleteFromPrimitiveList without the field name",
        POD,
        {"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}},
        400,
        "invalid patch format of primitive list",
    ),
    (
        "$retainKeys not a list",
        DEPLOYMENT,
        {"spec": {"strategy": {"$retainKeys": "type"}}},
        400,
        "invalid patch format of retainKeys",
    ),
    (
        "patch key missing from $retainKeys",
        DEPLOYMENT,
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}},
        400,
        "invalid patch format of retainKeys",
    ),
    (
        "patch is not an object",
        POD,
        [{"op": "add"}],
        400,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    ),
]


@pytest.mark.parametrize(
    ("obj", "patch", "code", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_errors(obj: dict[str, Any], patch: Any, code: int, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        strategic_merge(obj, patch, type_of(obj))
    assert (caught.value.code, caught.value.message) == (code, message)


def test_inputs_are_never_mutated_nor_shared() -> None:
    obj = copy_json(POD)
    patch = {
        "metadata": {"labels": {"tier": None}, "annotations": {"new": "x"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "log"}, {"name": "sidecar"}],
            "containers": [
                {
                    "name": "web",
                    "env": [{"$patch": "delete", "name": "DEBUG"}],
                    "resources": {"limits": {"cpu": "1"}},
                },
                {"name": "log", "image": "fluent-bit:3", "args": ["-c", "/etc/fb.conf"]},
            ],
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
        },
    }
    snapshot = (copy_json(obj), copy_json(patch))
    result = strategic_merge(obj, patch, type_of(obj))
    assert (obj, patch) == snapshot
    for container in result["spec"]["containers"]:
        container.setdefault("args", []).append("mutated")
        container["resources"] = {"limits": {"cpu": "9"}}
    result["spec"]["tolerations"][0]["key"] = "mutated"
    result["metadata"]["annotations"]["new"] = "mutated"
    result["metadata"]["finalizers"].clear()
    assert (obj, patch) == snapshot
