"""The shared pieces of the patch modules: PatchError's HTTP mapping, JSON helpers, the schema."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.patch import (
    OBJECT_META,
    SCHEMA,
    PatchError,
    copy_json,
    go_repr,
    json_equal,
    kind_type_name,
)


@pytest.mark.parametrize(
    ("code", "reason", "status_message"),
    [
        (400, "BadRequest", "invalid patch format of retainKeys"),
        (
            413,
            "RequestEntityTooLarge",
            "Request entity too large: invalid patch format of retainKeys",
        ),
        # kube-apiserver hides the cause of a 422 behind NewGenericServerResponse's text.
        (422, "Invalid", "the server rejected our request due to an error in our request"),
        (500, "", "invalid patch format of retainKeys"),
    ],
)
def test_patch_error_maps_to_kube_status(code: int, reason: str, status_message: str) -> None:
    error = PatchError("invalid patch format of retainKeys", code=code)
    assert (error.code, error.reason, error.status_message) == (code, reason, status_message)
    assert error.message == str(error) == "invalid patch format of retainKeys"


def test_patch_error_defaults_to_invalid() -> None:
    assert PatchError("testing value /x failed: test failed").code == 422


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ({"a": [1, "x", None]}, {"a": [1, "x", None]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        (True, 1, False),  # Go's decoded JSON keeps bool and number apart
        (1, 1.0, False),  # ... and int64 and float64
        ([1, 2], [2, 1], False),
        ({}, [], False),
        ("1", 1, False),
    ],
)
def test_json_equal_follows_go_typing(left: Any, right: Any, equal: bool) -> None:
    assert json_equal(left, right) is equal


def test_copy_json_shares_nothing() -> None:
    original = {"a": [{"b": 1}], "c": {"d": [1]}}
    copied = copy_json(original)
    copied["a"][0]["b"] = 2
    copied["c"]["d"].append(2)
    assert original == {"a": [{"b": 1}], "c": {"d": [1]}}


def test_go_repr_reads_like_fmt_v() -> None:
    value = {"name": "a", "ports": [80, True, None], "env": {"b": 1.5}}
    assert go_repr(value) == "map[env:map[b:1.5] name:a ports:[80 true <nil>]]"


@pytest.mark.parametrize(
    ("api_version", "kind", "type_name"),
    [
        ("v1", "Pod", "io.k8s.api.core.v1.Pod"),
        ("apps/v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
        ("batch/v1", "CronJob", "io.k8s.api.batch.v1.CronJob"),
        ("coordination.k8s.io/v1", "Lease", "io.k8s.api.coordination.v1.Lease"),
        ("rbac.authorization.k8s.io/v1", "Role", "io.k8s.api.rbac.v1.Role"),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
    ],
)
def test_kind_type_name(api_version: str, kind: str, type_name: str) -> None:
    assert kind_type_name(api_version, kind) == type_name


def test_schema_field_types_are_defined() -> None:
    """A field type the table names but does not define would silently fall back to the
    defaults one level down; only types with nothing special in them may be left out."""
    plain = {"io.k8s.api.core.v1.Volume", "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"}
    for type_name, fields in SCHEMA.items():
        for field, strategy in fields.items():
            if strategy.type:
                assert strategy.type in SCHEMA or strategy.type in plain, f"{type_name}.{field}"


def test_schema_merge_lists_of_maps_have_merge_keys() -> None:
    primitive_sets = {"finalizers", "podCIDRs"}
    for type_name, fields in SCHEMA.items():
        for field, strategy in fields.items():
            if strategy.merges and field not in primitive_sets:
                assert strategy.merge_key, f"{type_name}.{field}"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Pod"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "Node"),
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("v1", "Endpoints"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("coordination.k8s.io/v1", "Lease"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
    ],
)
def test_served_kinds_merge_their_metadata(api_version: str, kind: str) -> None:
    """Finalizers and ownerReferences merge on every kind kubectl may patch."""
    fields = SCHEMA[kind_type_name(api_version, kind)]
    assert fields["metadata"].type == OBJECT_META
