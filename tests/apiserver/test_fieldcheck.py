"""Server-side field validation: what kube-apiserver 1.32 reports, in its order and words.

The long cases are kube's own integration expectations (test/integration/apiserver
field_validation_test.go) replayed against our checker.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from minikube_py import errors
from minikube_py.apiserver import fieldcheck
from minikube_py.apiserver.fieldcheck import (
    FieldValidationError,
    PatchFieldValidationError,
    check_fields,
    parse_mode,
    warning_header,
)
from minikube_py.meta.jsonpatch import apply_json_patch
from minikube_py.meta.mergepatch import apply_merge_patch
from minikube_py.meta.strategic import strategic_merge

DEPLOYMENT_WITH_PROBLEMS = b"""{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {
    "name": "dupename",
    "name": "web",
    "labels": {"app": "nginx"},
    "unknownMeta": "metaVal"
  },
  "spec": {
    "unknown1": "val1",
    "unknownDupe": "valDupe",
    "unknownDupe": "valDupe2",
    "paused": true,
    "paused": false,
    "selector": {"matchLabels": {"app": "nginx"}},
    "template": {
      "metadata": {"labels": {"app": "nginx"}},
      "spec": {
        "containers": [{
          "name": "nginx",
          "image": "nginx:latest",
          "unknownNested": "val1",
          "imagePullPolicy": "Always",
          "imagePullPolicy": "Never"
        }]
      }
    }
  }
}"""

CREATE_PROBLEMS = [
    'duplicate field "metadata.name"',
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
]

PATCH_WITH_PROBLEMS = b"""{
  "spec": {
    "unknown1": "val1",
    "unknownDupe": "valDupe",
    "unknownDupe": "valDupe2",
    "paused": true,
    "paused": false,
    "template": {"spec": {"containers": [{
      "name": "nginx",
      "image": "nginx:latest",
      "unknownNested": "val1",
      "imagePullPolicy": "Always",
      "imagePullPolicy": "Never"
    }]}}
  }
}"""

PATCH_PROBLEMS = [
    'duplicate field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]

STORED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
    "spec": {
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
        },
    },
}


def check(body: dict[str, Any] | bytes, mode: str = "Warn", **kwargs: Any) -> tuple[Any, list[str]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    obj = orjson.loads(raw)
    return check_fields(obj, obj["apiVersion"], obj["kind"], raw=raw, mode=mode, **kwargs)


def pod(**spec: Any) -> dict[str, Any]:
    containers = [{"name": "c", "image": "busybox"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": containers, **spec},
    }


# -- create and update --


def test_kube_create_case_in_document_order() -> None:
    _, problems = check(DEPLOYMENT_WITH_PROBLEMS)
    assert problems == CREATE_PROBLEMS


def test_strict_message_is_kubes() -> None:
    with pytest.raises(FieldValidationError) as raised:
        check(DEPLOYMENT_WITH_PROBLEMS, "Strict")
    expected = (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        + ", ".join(CREATE_PROBLEMS)
    )
    assert raised.value.message == expected
    assert raised.value.code == 400
    assert raised.value.status()["reason"] == "BadRequest"


def test_unknown_fields_are_dropped_and_duplicates_keep_the_last_value() -> None:
    obj, _ = check(DEPLOYMENT_WITH_PROBLEMS, "Ignore")
    assert obj["metadata"] == {"name": "web", "labels": {"app": "nginx"}}
    assert "unknown1" not in obj["spec"]
    assert obj["spec"]["paused"] is False
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never"}


def test_ignore_reports_nothing_warn_reports_strict_raises() -> None:
    body = pod(foo=1)
    assert check(body, "Ignore")[1] == []
    assert check(body, "Warn")[1] == ['unknown field "spec.foo"']
    with pytest.raises(FieldValidationError, match=r'Pod in version "v1" cannot be handled'):
        check(body, "Strict")


def test_strict_failure_leaves_the_object_alone() -> None:
    body = pod(foo=1)
    obj = copy.deepcopy(body)
    with pytest.raises(FieldValidationError):
        check_fields(obj, "v1", "Pod", raw=None, mode="Strict")
    assert obj == body


def test_unknown_nested_in_containers_and_init_containers() -> None:
    body = pod(initContainers=[{"name": "i", "image": "x", "bogus": True}])
    body["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}, "limts": {}}
    _, problems = check(body)
    assert problems == [
        'unknown field "spec.containers[0].resources.limts"',
        'unknown field "spec.initContainers[0].bogus"',
    ]


def test_map_keys_are_free_but_map_values_are_typed() -> None:
    body = pod(nodeSelector={"anything/at.all": "x"})
    body["metadata"]["labels"] = {"any-key": "v"}
    body["metadata"]["annotations"] = {"example.com/whatever": "v"}
    assert check(body)[1] == []
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"k": "dg=="}, "stringData": {"x": ""}}
    assert check(secret)[1] == []


def test_duplicate_map_keys_are_reported() -> None:
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","a":"2"}}'
    obj, problems = check(raw)
    assert problems == ['duplicate field "data.a"']
    assert obj["data"] == {"a": "2"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"1","\\u0061":"2"}}',
        b'{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1", "a": "2"}}',
        b'{"apiVersion":"v1","kind":"ConfigMap","data":{"a":1.0e0,"a":"2"}}',
    ],
    ids=["escaped-key", "spaced", "float-spelling"],
)
def test_duplicates_are_found_in_any_spelling(raw: bytes) -> None:
    """Only a body that is exactly the compact encoding of what it decodes to skips the
    duplicate scan; escapes, spaces and other spellings still go through it."""
    assert check(raw, "Ignore")[0]["data"] == {"a": "2"}
    assert check(raw)[1] == ['duplicate field "data.a"']


def test_a_compact_body_without_duplicates_has_no_problems() -> None:
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"1","b":"\xc3\xa9"}}'
    assert orjson.dumps(orjson.loads(raw)) == raw  # the case the scan is skipped for
    assert check(raw, "Strict") == (
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1", "b": "\u00e9"}},
        [],
    )


def test_a_key_unknown_and_repeated_is_reported_once() -> None:
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","zz":1,"zz":2}'
    assert check(raw)[1] == ['unknown field "zz"']


def test_inline_members_are_fields_of_their_parent() -> None:
    body = pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "configMap": {"name": "c"}}])
    body["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 80}, "periodSeconds": 1}
    assert check(body)[1] == []
    body["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = "1Gi"
    body["spec"]["volumes"][0]["emptyDir"]["size"] = "1Gi"
    assert check(body)[1] == ['unknown field "spec.volumes[0].emptyDir.size"']


def test_opaque_values_are_not_looked_into() -> None:
    deployment = json.loads(DEPLOYMENT_WITH_PROBLEMS.replace(b'"unknown1": "val1",', b""))
    deployment["spec"] = {"strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}}
    deployment["metadata"] = {
        "name": "web",
        "creationTimestamp": None,
        "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:anything": {}}}}],
    }
    assert check(deployment)[1] == []


def test_status_metadata_and_type_fields_are_checked() -> None:
    body = pod()
    body["status"] = {"phase": "Running", "podIP": "10.0.0.1", "bogus": 1}
    body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "X", "name": "n", "u": 1}]
    assert check(body)[1] == [
        'unknown field "metadata.ownerReferences[0].u"',
        'unknown field "status.bogus"',
    ]


def test_without_raw_the_order_is_sorted_keys() -> None:
    obj = json.loads(DEPLOYMENT_WITH_PROBLEMS)
    _, problems = check_fields(obj, "apps/v1", "Deployment", raw=None, mode="Warn")
    assert problems == [
        'unknown field "metadata.unknownMeta"',
        'unknown field "spec.template.spec.containers[0].unknownNested"',
        'unknown field "spec.unknown1"',
        'unknown field "spec.unknownDupe"',
    ]


def test_list_indexes_sort_as_numbers_in_walk_order() -> None:
    containers = [{"name": f"c{i}", "image": "x", "z": 1} for i in range(12)]
    obj = pod()
    obj["spec"]["containers"] = containers
    _, problems = check_fields(obj, "v1", "Pod", raw=None, mode="Warn")
    assert problems[:3] == [f'unknown field "spec.containers[{i}].z"' for i in range(3)]


def test_kinds_we_do_not_describe_pass_unchanged() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": 1}}
    assert check(obj, "Strict") == (obj, [])


def test_subresource_kinds_are_known() -> None:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 2, "x": 1}}
    assert check(scale)[1] == ['unknown field "spec.x"']
    binding = {"apiVersion": "v1", "kind": "Binding", "target": {"kind": "Node", "name": "n"}}
    assert check(binding)[1] == []


def test_problems_are_capped_at_one_hundred() -> None:
    body = pod(**{f"x{i:03}": i for i in range(150)})
    assert len(check(body)[1]) == fieldcheck.MAX_PROBLEMS


def test_raw_that_is_not_json_falls_back_to_the_object() -> None:
    obj = pod(foo=1)
    _, problems = check_fields(obj, "v1", "Pod", raw=b"kind: Pod\n", mode="Warn")
    assert problems == ['unknown field "spec.foo"']


# -- patches --


@pytest.mark.parametrize("flavour", ["merge", "strategic"])
def test_kube_patch_case(flavour: str) -> None:
    patch = orjson.loads(PATCH_WITH_PROBLEMS)
    if flavour == "merge":
        patched = apply_merge_patch(STORED, patch)
    else:
        patched = strategic_merge(STORED, patch, "io.k8s.api.apps.v1.Deployment")
    obj, problems = check_fields(
        patched,
        "apps/v1",
        "Deployment",
        raw=None,
        mode="Warn",
        patch=PATCH_WITH_PROBLEMS,
        patch_type=flavour,
    )
    assert problems == PATCH_PROBLEMS
    assert "unknown1" not in obj["spec"]


def test_strict_patch_is_an_invalid_patch_field() -> None:
    patched = strategic_merge(STORED, {"spec": {"foo": 1}}, "io.k8s.api.apps.v1.Deployment")
    with pytest.raises(PatchFieldValidationError) as raised:
        check_fields(
            patched,
            "apps/v1",
            "Deployment",
            raw=None,
            mode="Strict",
            patch=b'{"spec":{"foo":1}}',
            patch_type="strategic",
        )
    status = raised.value.status()
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    detail = (
        'Invalid value: "map[spec:map[foo:1]]": strict decoding error: unknown field "spec.foo"'
    )
    assert status["message"] == ' "" is invalid: patch: ' + detail
    assert status["details"] == {
        "causes": [{"reason": "FieldValueInvalid", "message": detail, "field": "patch"}]
    }


def test_json_patch_operations_are_checked_as_structs() -> None:
    patch = b"""[
      {"op": "add", "path": "/spec/unknown1", "value": "val1", "foo": "bar"},
      {"op": "add", "path": "/spec/unknown2", "path": "/spec/unknown3", "value": "val1"},
      {"op": "add", "path": "/spec/paused", "value": true}
    ]"""
    patched = apply_json_patch(STORED, orjson.loads(patch))
    _, problems = check_fields(
        patched, "apps/v1", "Deployment", raw=None, mode="Warn", patch=patch, patch_type="json"
    )
    assert problems == [
        'json patch unknown field "[0].foo"',
        'json patch duplicate field "[1].path"',
        'unknown field "spec.unknown1"',
        'unknown field "spec.unknown3"',
    ]


# -- parameters and headers --


def test_parse_mode() -> None:
    assert parse_mode(None) == parse_mode("") == "Warn"
    assert parse_mode("Strict") == "Strict"
    with pytest.raises(errors.Invalid) as raised:
        parse_mode("strict", "PatchOptions")
    assert raised.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict":'
        ' supported values: "", "Ignore", "Strict", "Warn"'
    )


def test_warning_header_escapes_quotes_and_backslashes() -> None:
    assert warning_header('unknown field "spec.foo"') == '299 - "unknown field \\"spec.foo\\""'
    assert warning_header("a\\b") == '299 - "a\\\\b"'
