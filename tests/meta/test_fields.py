"""Field selectors: parsing, escaping, per-kind support, values and upstream's messages."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.fields import (
    FIELD_LABELS,
    FieldRequirement,
    FieldSelector,
    SelectorError,
    check_supported,
    escape_value,
    field_set,
    kubectl_list_error,
    parse_field_selector,
    parse_for_resource,
    unescape_value,
)

DEFAULT_ONLY = '"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", (), ""),
        (",", (), ""),
        ("=", (), ""),  # no field and no value: upstream drops the term
        ("a=b", (("a", "=", "b"),), "a=b"),
        ("a==b", (("a", "=", "b"),), "a=b"),
        ("a!=b", (("a", "!=", "b"),), "a!=b"),
        ("a=", (("a", "=", ""),), "a="),
        ("b=1,a!=2", (("a", "!=", "2"), ("b", "=", "1")), "a!=2,b=1"),
        ("a=b,,c=d", (("a", "=", "b"), ("c", "=", "d")), "a=b,c=d"),
        ("a=x\\,y", (("a", "=", "x,y"),), "a=x\\,y"),
        ("a=x\\=y\\\\", (("a", "=", "x=y\\"),), "a=x\\=y\\\\"),
        ("a=b!c", (("a", "=", "b!c"),), "a=b!c"),
        (" a = b ", ((" a ", "=", " b "),), " a = b "),  # no trimming upstream
        (
            "involvedObject.name=web,involvedObject.kind=Pod",
            (("involvedObject.kind", "=", "Pod"), ("involvedObject.name", "=", "web")),
            "involvedObject.kind=Pod,involvedObject.name=web",
        ),
    ],
)
def test_parse(text: str, requirements: tuple[tuple[str, str, str], ...], canonical: str) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == tuple(FieldRequirement(*r) for r in requirements)  # type: ignore[arg-type]
    assert str(selector) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
        ("x=y,abc", "invalid selector: 'x=y,abc'; can't understand 'abc'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a!=b!=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        # Terms are sorted before parsing: "a..." fails before "z..." wherever it appears.
        ("z=1=1,abc", "invalid selector: 'z=1=1,abc'; can't understand 'abc'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("literal", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        ("a\\b", "a\\\\b"),
        ("\\,=", "\\\\\\,\\="),
        ("", ""),
    ],
)
def test_escape_round_trip(literal: str, escaped: str) -> None:
    assert escape_value(literal) == escaped
    assert unescape_value(escaped) == literal
    assert parse_field_selector("f=" + escaped).requires_exact_match("f") == literal


@pytest.mark.parametrize(
    ("group", "resource", "text", "canonical"),
    [
        (
            "",
            "pods",
            "spec.nodeName=n1,status.phase!=Running",
            "spec.nodeName=n1,status.phase!=Running",
        ),
        ("", "pods", "spec.host=n1", "spec.nodeName=n1"),
        (
            "",
            "pods",
            "status.podIPs=10.0.0.1,spec.hostNetwork=true",
            "spec.hostNetwork=true,status.podIPs=10.0.0.1",
        ),
        ("", "pods", "metadata.namespace=default", "metadata.namespace=default"),
        ("", "nodes", "spec.unschedulable=false", "spec.unschedulable=false"),
        ("", "namespaces", "status.phase=Active", "status.phase=Active"),
        ("", "secrets", "type=kubernetes.io/tls", "type=kubernetes.io/tls"),
        (
            "",
            "services",
            "spec.type=NodePort,spec.clusterIP=None",
            "spec.clusterIP=None,spec.type=NodePort",
        ),
        ("", "replicationcontrollers", "status.replicas=0", "status.replicas=0"),
        (
            "",
            "events",
            "involvedObject.uid=u,reportingComponent=kubelet,source=kubelet",
            "involvedObject.uid=u,reportingComponent=kubelet,source=kubelet",
        ),
        (
            "events.k8s.io",
            "events",
            "regarding.name=web,reportingController=k",
            "involvedObject.name=web,reportingComponent=k",
        ),
        ("batch", "jobs", "status.successful=1", "status.successful=1"),
        ("", "configmaps", "metadata.name=x", "metadata.name=x"),
        ("", "persistentvolumes", "metadata.namespace=", "metadata.namespace="),
        ("apps", "deployments", "metadata.name=web", "metadata.name=web"),
        ("", "pods", "", ""),
    ],
)
def test_supported_labels_become_canonical(
    group: str, resource: str, text: str, canonical: str
) -> None:
    assert str(parse_for_resource(text, group, resource)) == canonical


@pytest.mark.parametrize(
    ("group", "resource", "text", "message"),
    [
        ("", "pods", "spec.foo=x", "field label not supported: spec.foo"),
        ("", "pods", "status.hostIP=1.2.3.4", "field label not supported: status.hostIP"),
        ("", "nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("", "namespaces", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("", "events", "message=whatever", "field label not supported: message"),
        (
            "events.k8s.io",
            "events",
            "involvedObject.name=x",
            "field label not supported: involvedObject.name",
        ),
        ("", "secrets", "data=x", "field label not supported: data"),
        (
            "batch",
            "jobs",
            "status.succeeded=1",
            'field label "status.succeeded" not supported for batchv1.Job',
        ),
        # apps/v1 registers no conversion: ReplicaSets refuse status.replicas (kubernetes#135136).
        ("apps", "replicasets", "status.replicas=0", DEFAULT_ONLY.format(label="status.replicas")),
        ("networking.k8s.io", "ingresses", "foo.bar=baz", DEFAULT_ONLY.format(label="foo.bar")),
        ("example.com", "widgets", "spec.size=1", DEFAULT_ONLY.format(label="spec.size")),
        # The first unsupported term in sorted order is reported.
        ("", "pods", "zzz=1,aaa=2", "field label not supported: aaa"),
    ],
)
def test_unsupported_labels_are_refused(group: str, resource: str, text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_for_resource(text, group, resource)
    assert str(caught.value) == message


def test_check_supported_keeps_operators_and_values() -> None:
    selector = parse_field_selector("spec.host!=a\\,b")
    assert check_supported(selector, "", "pods") == FieldSelector(
        (FieldRequirement("spec.nodeName", "!=", "a,b"),)
    )


POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": True},
    "status": {"phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}]},
}


@pytest.mark.parametrize(
    ("group", "resource", "obj", "expected"),
    [
        (
            "",
            "pods",
            POD,
            {
                "metadata.name": "web-1",
                "metadata.namespace": "default",
                "spec.nodeName": "n1",
                "spec.restartPolicy": "Always",
                "spec.schedulerName": "",
                "spec.serviceAccountName": "",
                "spec.hostNetwork": "true",
                "status.phase": "Running",
                "status.podIP": "10.0.0.7",
                "status.podIPs": "",
                "status.nominatedNodeName": "",
            },
        ),
        (
            "",
            "nodes",
            {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}},
            {"metadata.name": "n1", "spec.unschedulable": "true"},
        ),
        (
            "",
            "nodes",
            {"metadata": {"name": "n1"}},
            {"metadata.name": "n1", "spec.unschedulable": "false"},
        ),
        (
            "batch",
            "jobs",
            {"status": {"succeeded": 2}},
            {"metadata.name": "", "metadata.namespace": "", "status.successful": "2"},
        ),
        (
            "batch",
            "jobs",
            {},
            {"metadata.name": "", "metadata.namespace": "", "status.successful": "0"},
        ),
        (
            "",
            "replicationcontrollers",
            {"status": {}},
            {"metadata.name": "", "metadata.namespace": "", "status.replicas": "0"},
        ),
        (
            "",
            "configmaps",
            {"metadata": {"name": "c", "namespace": "ns"}},
            {"metadata.name": "c", "metadata.namespace": "ns"},
        ),
        (
            "",
            "persistentvolumes",
            {"metadata": {"name": "pv"}},
            {"metadata.name": "pv", "metadata.namespace": ""},
        ),
    ],
)
def test_field_set(
    group: str, resource: str, obj: dict[str, Any], expected: dict[str, str]
) -> None:
    assert field_set(group, resource, obj) == expected


CORE_EVENT: dict[str, Any] = {
    "metadata": {"name": "web.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
    "reason": "Pulled",
    "type": "Normal",
    "reportingComponent": "kubelet",
    "source": {},
}
NEW_EVENT: dict[str, Any] = {
    "metadata": {"name": "web.2", "namespace": "default"},
    "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
    "reason": "Started",
    "type": "Normal",
    "reportingController": "kubelet",
    "deprecatedSource": {"component": "old-kubelet"},
}


@pytest.mark.parametrize(
    ("group", "obj", "label", "value"),
    [
        ("", CORE_EVENT, "involvedObject.kind", "Pod"),
        ("", CORE_EVENT, "source", "kubelet"),  # falls back to reportingComponent
        ("", {**CORE_EVENT, "source": {"component": "sched"}}, "source", "sched"),
        ("", CORE_EVENT, "involvedObject.fieldPath", ""),
        ("events.k8s.io", NEW_EVENT, "involvedObject.name", "web"),
        ("events.k8s.io", NEW_EVENT, "reportingComponent", "kubelet"),
        ("events.k8s.io", NEW_EVENT, "source", "old-kubelet"),
    ],
)
def test_event_fields(group: str, obj: dict[str, Any], label: str, value: str) -> None:
    assert field_set(group, "events", obj)[label] == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec.nodeName=n1", True),
        ("spec.host=n1", True),
        ("spec.nodeName=n2", False),
        ("spec.nodeName!=n2,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.schedulerName=", True),
        ("spec.hostNetwork=true", True),
        ("metadata.name=web-1,metadata.namespace=default", True),
        # Accepted but never set upstream: it only ever equals "".
        ("status.podIPs=10.0.0.7", False),
        ("status.podIPs=", True),
    ],
)
def test_matching_a_pod(text: str, expected: bool) -> None:
    selector = parse_for_resource(text, "", "pods")
    assert selector.matches(field_set("", "pods", POD)) is expected


def test_describe_event_query_matches() -> None:
    text = (
        "involvedObject.name=web,involvedObject.namespace=default,"
        "involvedObject.kind=Pod,involvedObject.uid=u1"
    )
    assert parse_for_resource(text, "", "events").matches(field_set("", "events", CORE_EVENT))


@pytest.mark.parametrize(
    ("text", "name", "value"),
    [
        ("metadata.name=web", "metadata.name", "web"),
        ("metadata.name==web,spec.nodeName=n", "metadata.name", "web"),
        ("metadata.name!=web", "metadata.name", None),
        ("spec.nodeName=n", "metadata.name", None),
    ],
)
def test_requires_exact_match(text: str, name: str, value: str | None) -> None:
    assert parse_field_selector(text).requires_exact_match(name) == value


@pytest.mark.parametrize(
    ("gvr", "labels", "fields", "message", "printed"),
    [
        (
            ("", "v1", "pods"),
            "",
            "spec.foo=x",
            "field label not supported: spec.foo",
            'Unable to find "/v1, Resource=pods" that match label selector "", '
            'field selector "spec.foo=x": field label not supported: spec.foo',
        ),
        (
            ("apps", "v1", "replicasets"),
            "",
            "status.replicas=0",
            DEFAULT_ONLY.format(label="status.replicas"),
            'Unable to find "apps/v1, Resource=replicasets" that match label selector "", '
            'field selector "status.replicas=0": "status.replicas" is not a known field '
            'selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            ("", "v1", "pods"),
            "component not in (kube-apiserver)",
            "",
            "unable to parse requirement: found 'not', expected: in, notin, =, ==, !=, gt, lt",
            'Unable to find "/v1, Resource=pods" that match label selector '
            '"component not in (kube-apiserver)", field selector "": unable to parse '
            "requirement: found 'not', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (("", "v1", "pods"), "", "", "boom", 'Unable to list "/v1, Resource=pods": boom'),
    ],
)
def test_kubectl_list_error(
    gvr: tuple[str, str, str], labels: str, fields: str, message: str, printed: str
) -> None:
    assert kubectl_list_error(*gvr, labels, fields, message) == printed


def test_every_table_entry_accepts_metadata_name() -> None:
    for (group, resource), kind in FIELD_LABELS.items():
        assert kind.accepts["metadata.name"] == "metadata.name", (group, resource)
        assert set(kind.accepts.values()) <= set(kind.sources), (group, resource)
