"""JSON merge patch (RFC 7386) with kube-apiserver 1.32's evanphx/json-patch v4 details."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.mergepatch import apply_merge_patch
from minikube_py.meta.patch import PatchError, copy_json

DEPLOYMENT: dict[str, Any] = {
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
                    {"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox"},
                ]
            },
        },
    },
}

# (name, patch, (path, expected value there)) — RFC 7386 section 3 examples, on a Deployment
CASES: list[tuple[str, Any, tuple[tuple[str, ...], Any]]] = [
    (
        "maps merge recursively",
        {"metadata": {"labels": {"version": "v2"}}},
        (("metadata", "labels"), {"app": "web", "tier": "frontend", "version": "v2"}),
    ),
    (
        "null deletes a member",
        {"metadata": {"labels": {"tier": None}}},
        (("metadata", "labels"), {"app": "web"}),
    ),
    (
        "null for a missing member is a no-op",
        {"metadata": {"annotations": None}},
        (("metadata",), DEPLOYMENT["metadata"]),
    ),
    ("scalars replace", {"spec": {"replicas": 5}}, (("spec", "replicas"), 5)),
    (
        "lists replace whole (no merge by name, unlike strategic)",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        (("spec", "template", "spec", "containers"), [{"name": "web", "image": "nginx:1.27"}]),
    ),
    (
        "a map replaces a scalar, and loses its nulls",
        {"spec": {"replicas": {"a": "b", "c": None}}},
        (("spec", "replicas"), {"a": "b"}),
    ),
    (
        "a new value loses null members at any depth, also inside lists",
        {
            "spec": {
                "strategy": {"type": "Recreate", "rollingUpdate": None, "x": [{"y": None, "z": 1}]}
            }
        },
        (("spec", "strategy"), {"type": "Recreate", "x": [{"z": 1}]}),
    ),
    (
        "a replacing list loses null members of its objects, not null elements",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": None}, None]}}}},
        (("spec", "template", "spec", "containers"), [{"name": "web"}, None]),
    ),
    ("an empty patch changes nothing", {}, ((), DEPLOYMENT)),
    ("a list patch replaces the whole document", [{"a": None, "b": 1}], ((), [{"b": 1}])),
]


def dig(value: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@pytest.mark.parametrize(("patch", "at"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_merge_patch(patch: Any, at: tuple[tuple[str, ...], Any]) -> None:
    path, expected = at
    assert dig(apply_merge_patch(DEPLOYMENT, patch), path) == expected


def test_existing_members_keep_their_order() -> None:
    result = apply_merge_patch({"a": 1, "b": 2, "c": 3}, {"a": 9, "d": 4, "b": None})
    assert list(result.items()) == [("a", 9), ("c", 3), ("d", 4)]


@pytest.mark.parametrize("patch", [None, "x", 5, True], ids=["null", "string", "number", "bool"])
def test_null_or_scalar_patch_is_a_bad_request(patch: Any) -> None:
    with pytest.raises(PatchError) as caught:
        apply_merge_patch(DEPLOYMENT, patch)
    assert (caught.value.code, caught.value.message) == (400, "Invalid JSON Patch")


def test_inputs_are_never_mutated_nor_shared() -> None:
    document = copy_json(DEPLOYMENT)
    patch = {"metadata": {"labels": {"tier": None, "x": "y"}}, "spec": {"strategy": {"a": {}}}}
    snapshot = (copy_json(document), copy_json(patch))
    result = apply_merge_patch(document, patch)
    result["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B"})
    result["spec"]["strategy"]["a"]["b"] = 1
    result["spec"]["selector"]["matchLabels"]["z"] = "z"
    assert (document, patch) == snapshot
