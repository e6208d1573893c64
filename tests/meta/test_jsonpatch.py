"""JSON patch (RFC 6902) with kube-apiserver 1.32's evanphx/json-patch v4 behaviour and texts.

Expected results and messages were checked against ``kubectl patch --local --type json`` from
kubectl 1.32, which vendors the same library (see test_patch_kubectl.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.jsonpatch import MAX_OPERATIONS, apply_json_patch
from minikube_py.meta.patch import PatchError, copy_json

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-0",
        "namespace": "default",
        "labels": {"app": "web", "tier": "frontend"},
        "finalizers": ["example.com/a", "example.com/b"],
    },
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"}],
            }
        ],
    },
}

# (name, patch, (path into the result, expected value there))
APPLIES: list[tuple[str, list[Any] | None, tuple[tuple[str | int, ...], Any]]] = [
    (
        "add a label",
        [{"op": "add", "path": "/metadata/labels/version", "value": "v2"}],
        (("metadata", "labels"), {"app": "web", "tier": "frontend", "version": "v2"}),
    ),
    (
        "add replaces an existing member",
        [{"op": "add", "path": "/metadata/labels/app", "value": "api"}],
        (("metadata", "labels", "app"), "api"),
    ),
    (
        "~1 escapes a slash in a label key",
        [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"}],
        (("metadata", "labels", "app.kubernetes.io/name"), "web"),
    ),
    (
        "~0 escapes a tilde",
        [{"op": "add", "path": "/metadata/labels/a~0b", "value": "v"}],
        (("metadata", "labels", "a~b"), "v"),
    ),
    (
        "- appends",
        [{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/c"}],
        (("metadata", "finalizers"), ["example.com/a", "example.com/b", "example.com/c"]),
    ),
    (
        "an index inserts before",
        [{"op": "add", "path": "/metadata/finalizers/1", "value": "x"}],
        (("metadata", "finalizers"), ["example.com/a", "x", "example.com/b"]),
    ),
    (
        "the index one past the end appends",
        [{"op": "add", "path": "/metadata/finalizers/2", "value": "x"}],
        (("metadata", "finalizers"), ["example.com/a", "example.com/b", "x"]),
    ),
    (
        "a negative add index counts from the end (library extension)",
        [{"op": "add", "path": "/metadata/finalizers/-1", "value": "x"}],
        (("metadata", "finalizers"), ["example.com/a", "example.com/b", "x"]),
    ),
    (
        "Atoi accepts a sign and leading zeros",
        [{"op": "add", "path": "/metadata/finalizers/+01", "value": "x"}],
        (("metadata", "finalizers"), ["example.com/a", "x", "example.com/b"]),
    ),
    (
        "add without value adds null",
        [{"op": "add", "path": "/metadata/generateName"}],
        (("metadata", "generateName"), None),
    ),
    (
        "add a whole env entry to a container",
        [
            {
                "op": "add",
                "path": "/spec/containers/0/env/-",
                "value": {"name": "DEBUG", "value": "1"},
            }
        ],
        (
            ("spec", "containers", 0, "env"),
            [{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "1"}],
        ),
    ),
    (
        "remove a label",
        [{"op": "remove", "path": "/metadata/labels/tier"}],
        (("metadata", "labels"), {"app": "web"}),
    ),
    (
        "remove by negative index",
        [{"op": "remove", "path": "/metadata/finalizers/-1"}],
        (("metadata", "finalizers"), ["example.com/a"]),
    ),
    (
        "replace an image",
        [{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.27"}],
        (("spec", "containers", 0, "image"), "nginx:1.27"),
    ),
    (
        "replace of a missing member adds it (library behaviour, not RFC)",
        [{"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}}],
        (("metadata", "annotations"), {"a": "b"}),
    ),
    (
        "move a label to an annotation",
        [
            {"op": "add", "path": "/metadata/annotations", "value": {}},
            {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/annotations/tier"},
        ],
        (
            ("metadata",),
            {**POD["metadata"], "labels": {"app": "web"}, "annotations": {"tier": "frontend"}},
        ),
    ),
    (
        "move within a list",
        [{"op": "move", "from": "/metadata/finalizers/0", "path": "/metadata/finalizers/-"}],
        (("metadata", "finalizers"), ["example.com/b", "example.com/a"]),
    ),
    (
        "copy labels to annotations",
        [{"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"}],
        (("metadata", "annotations"), {"app": "web", "tier": "frontend"}),
    ),
    (
        "copy of a missing member copies null (library behaviour)",
        [{"op": "copy", "from": "/metadata/nope", "path": "/metadata/annotations"}],
        (("metadata", "annotations"), None),
    ),
    (
        "test guards a replace (optimistic update)",
        [
            {"op": "test", "path": "/metadata/labels/tier", "value": "frontend"},
            {"op": "replace", "path": "/metadata/labels/tier", "value": "backend"},
        ],
        (("metadata", "labels", "tier"), "backend"),
    ),
    (
        "test compares whole structures",
        [
            {
                "op": "test",
                "path": "/spec/containers/0/ports",
                "value": [{"protocol": "TCP", "containerPort": 80}],
            }
        ],
        (("metadata", "name"), "web-0"),
    ),
    (
        "test of a missing member against null passes",
        [{"op": "test", "path": "/metadata/annotations", "value": None}],
        (("metadata", "name"), "web-0"),
    ),
    (
        "'/' names the member '' of the root",
        [{"op": "add", "path": "/", "value": 1}],
        (("",), 1),
    ),
    ("a null patch is an empty patch", None, (("metadata", "name"), "web-0")),
    ("an empty patch changes nothing", [], (("metadata", "labels", "tier"), "frontend")),
]


def dig(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@pytest.mark.parametrize(
    ("patch", "at"), [case[1:] for case in APPLIES], ids=[c[0] for c in APPLIES]
)
def test_applies(patch: list[Any] | None, at: tuple[tuple[str | int, ...], Any]) -> None:
    path, expected = at
    assert dig(apply_json_patch(POD, patch), path) == expected


# (name, patch, HTTP code, message)
FAILS: list[tuple[str, Any, int, str]] = [
    (
        "failed test",
        [{"op": "test", "path": "/metadata/labels/tier", "value": "backend"}],
        422,
        "testing value /metadata/labels/tier failed: test failed",
    ),
    (
        "test keeps bool and number apart",
        [{"op": "test", "path": "/spec/containers/0/ports/0/containerPort", "value": "80"}],
        422,
        "testing value /spec/containers/0/ports/0/containerPort failed: test failed",
    ),
    (
        "add under a missing parent",
        [{"op": "add", "path": "/metadata/annotations/a", "value": "b"}],
        422,
        'add operation does not apply: doc is missing path: "/metadata/annotations/a": '
        "missing value",
    ),
    (
        "add through a scalar",
        [{"op": "add", "path": "/metadata/name/x", "value": 1}],
        422,
        'add operation does not apply: doc is missing path: "/metadata/name/x": missing value',
    ),
    (
        "empty path",
        [{"op": "add", "path": "", "value": {}}],
        422,
        'add operation does not apply: doc is missing path: "": missing value',
    ),
    (
        "add past the end",
        [{"op": "add", "path": "/metadata/finalizers/5", "value": "z"}],
        422,
        "error in add for path: '/metadata/finalizers/5': "
        "Unable to access invalid index: 5: invalid index referenced",
    ),
    (
        "add with a non-numeric index",
        [{"op": "add", "path": "/metadata/finalizers/x", "value": "z"}],
        422,
        "error in add for path: '/metadata/finalizers/x': value was not a proper array index: "
        "'x': strconv.Atoi: parsing \"x\": invalid syntax",
    ),
    (
        "remove a missing member",
        [{"op": "remove", "path": "/metadata/annotations"}],
        422,
        "error in remove for path: '/metadata/annotations': "
        "Unable to remove nonexistent key: annotations: missing value",
    ),
    (
        "remove with -",
        [{"op": "remove", "path": "/metadata/finalizers/-"}],
        422,
        "error in remove for path: '/metadata/finalizers/-': "
        'strconv.Atoi: parsing "-": invalid syntax',
    ),
    (
        "remove past the end",
        [{"op": "remove", "path": "/metadata/finalizers/2"}],
        422,
        "error in remove for path: '/metadata/finalizers/2': "
        "Unable to access invalid index: 2: invalid index referenced",
    ),
    (
        "replace past the end of a list",
        [{"op": "replace", "path": "/metadata/finalizers/5", "value": "z"}],
        422,
        "replace operation does not apply: doc is missing key: /metadata/finalizers/5: "
        "missing value",
    ),
    (
        "move from a missing member",
        [{"op": "move", "from": "/metadata/nope", "path": "/metadata/x"}],
        422,
        "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value",
    ),
    (
        "move into its own child",
        [{"op": "move", "from": "/metadata", "path": "/metadata/labels/x"}],
        422,
        "move operation does not apply: doc is missing destination path: /metadata/labels/x: "
        "missing value",
    ),
    (
        "copy from past the end",
        [{"op": "copy", "from": "/metadata/finalizers/9", "path": "/metadata/x"}],
        422,
        "error in copy for from: '/metadata/finalizers/9': "
        "Unable to access invalid index: 9: invalid index referenced",
    ),
    (
        "test under a missing parent",
        [{"op": "test", "path": "/metadata/nope/x", "value": None}],
        422,
        "test operation does not apply: is missing path: /metadata/nope/x: missing value",
    ),
    ("unknown op", [{"op": "merge", "path": "/metadata"}], 422, "Unexpected kind: merge"),
    ("missing op", [{"path": "/metadata"}], 422, "Unexpected kind: unknown"),
    ("null operation", [None], 422, "Unexpected kind: unknown"),
    (
        "missing path",
        [{"op": "add", "value": 1}],
        422,
        "add operation failed to decode path: missing value",
    ),
    (
        "path not a string",
        [{"op": "replace", "path": 5, "value": 1}],
        422,
        "replace operation failed to decode path: "
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "missing from",
        [{"op": "move", "path": "/a"}],
        422,
        "move operation failed to decode from: operation, missing from field: missing value",
    ),
    (
        "patch is an object",
        {"op": "add", "path": "/a", "value": 1},
        400,
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
    ),
    (
        "operation is a number",
        [1],
        400,
        "json: cannot unmarshal number into Go value of type jsonpatch.Operation",
    ),
    (
        "too many operations",
        [{"op": "test", "path": "/kind", "value": "Pod"}] * (MAX_OPERATIONS + 1),
        413,
        f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
        f"got {MAX_OPERATIONS + 1}",
    ),
]


@pytest.mark.parametrize(
    ("patch", "code", "message"), [c[1:] for c in FAILS], ids=[c[0] for c in FAILS]
)
def test_fails(patch: Any, code: int, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_json_patch(POD, patch)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_copy_growth_is_capped() -> None:
    """Doubling copies would grow a document exponentially; kube caps their total at 3 MiB.

    The first copy nests x in itself (104 bytes), the second copies [s, [s]] (209 bytes).
    """
    doubling = [{"op": "add", "path": "/x", "value": ["0123456789" * 10]}]
    doubling += [{"op": "copy", "from": "/x", "path": "/x/-"} for _ in range(3)]
    assert len(apply_json_patch({}, doubling)["x"]) == 4
    with pytest.raises(PatchError) as caught:
        apply_json_patch({}, doubling, max_copy_bytes=250)
    assert caught.value.code == 422
    assert caught.value.message == (
        "Unable to complete the copy, the accumulated size increase of copy is 313, "
        "exceeding the limit 250"
    )
    bomb = [{"op": "add", "path": "/x", "value": ["0123456789" * 100]}]
    bomb += [
        {"op": "copy", "from": "/x", "path": "/y"},
        {"op": "move", "from": "/y", "path": "/x/-"},
    ] * 20
    with pytest.raises(PatchError, match="exceeding the limit 3145728"):
        apply_json_patch({}, bomb)


def test_failure_part_way_leaves_the_document_untouched() -> None:
    before = copy_json(POD)
    patch = [
        {"op": "replace", "path": "/metadata/labels/tier", "value": "backend"},
        {"op": "test", "path": "/metadata/labels/tier", "value": "frontend"},
    ]
    with pytest.raises(PatchError):
        apply_json_patch(POD, patch)
    assert before == POD


def test_inputs_are_never_mutated_nor_shared() -> None:
    document, patch = (
        copy_json(POD),
        [
            {"op": "add", "path": "/metadata/labels/new", "value": {"deep": ["x"]}},
            {"op": "move", "from": "/metadata/finalizers/0", "path": "/metadata/finalizers/-"},
        ],
    )
    snapshot = (copy_json(document), copy_json(patch))
    result = apply_json_patch(document, patch)
    assert (document, patch) == snapshot
    result["metadata"]["labels"]["new"]["deep"].append("y")
    result["spec"]["containers"][0]["env"].clear()
    assert (document, patch) == snapshot
