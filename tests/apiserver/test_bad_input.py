"""Bad requests get the Status kube-apiserver would give, and nothing stored is harmed."""

from __future__ import annotations

import json

import pytest

from tests.support.apiserver import Server

GOOD = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"a": "1"}}
BOMB = b"""\
a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""


def cases(ns: str) -> list[tuple[str, str, str, object, str, int, str]]:
    """(id, method, path, body, content type, expected code, expected reason)."""
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    pods = f"/api/v1/namespaces/{ns}/pods"
    return [
        ("malformed json", "POST", cms, b'{"metadata": ', "application/json", 400, "BadRequest"),
        (
            "malformed yaml",
            "POST",
            cms,
            b"metadata: [unclosed",
            "application/yaml",
            400,
            "BadRequest",
        ),
        ("yaml bomb", "POST", cms, BOMB, "application/yaml", 400, "BadRequest"),
        (
            "deep nesting",
            "POST",
            cms,
            b"[" * 5000 + b"]" * 5000,
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "other kind",
            "POST",
            cms,
            {**GOOD, "kind": "Secret"},
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "other apiVersion",
            "POST",
            cms,
            {**GOOD, "apiVersion": "apps/v1"},
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "namespace mismatch",
            "POST",
            cms,
            {**GOOD, "metadata": {"name": "x", "namespace": "other"}},
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "invalid name",
            "POST",
            cms,
            {**GOOD, "metadata": {"name": "Not_Valid"}},
            "application/json",
            422,
            "Invalid",
        ),
        ("missing name", "POST", cms, {**GOOD, "metadata": {}}, "application/json", 422, "Invalid"),
        (
            "missing image",
            "POST",
            pods,
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}},
            "application/json",
            422,
            "Invalid",
        ),
        (
            "duplicate container",
            "POST",
            pods,
            {
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "i"}]},
            },
            "application/json",
            422,
            "Invalid",
        ),
        (
            "unsupported type",
            "POST",
            cms,
            b"<xml/>",
            "application/xml",
            415,
            "UnsupportedMediaType",
        ),
        (
            "too large",
            "POST",
            cms,
            b"{" + b" " * (3 * 1024 * 1024 + 10) + b"}",
            "application/json",
            413,
            "RequestEntityTooLarge",
        ),
        (
            "unknown resource",
            "GET",
            f"/api/v1/namespaces/{ns}/widgets",
            None,
            "application/json",
            404,
            "NotFound",
        ),
        ("missing object", "GET", f"{cms}/nope", None, "application/json", 404, "NotFound"),
        ("wrong verb", "POST", f"{cms}/keep", GOOD, "application/json", 405, "MethodNotAllowed"),
        (
            "bad label selector",
            "GET",
            f"{cms}?labelSelector=a%20in%20(",
            None,
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "bad field selector",
            "GET",
            f"{pods}?fieldSelector=spec.foo%3Dx",
            None,
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "bad patch",
            "PATCH",
            f"{cms}/keep",
            b'{"a": 1}',
            "application/json-patch+json",
            400,
            "BadRequest",
        ),
        (
            "unsupported patch",
            "PATCH",
            f"{cms}/keep",
            b"{}",
            "text/plain",
            415,
            "UnsupportedMediaType",
        ),
    ]


CASE_IDS = [c[0] for c in cases("x")]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_request_gets_its_status(server: Server, namespace: str, case_id: str) -> None:
    cms = f"/api/v1/namespaces/{namespace}/configmaps"
    status, stored = server.request("POST", cms, GOOD)
    assert status == 201
    case = next(c for c in cases(namespace) if c[0] == case_id)
    _, method, path, body, content_type, code, reason = case
    raw = body if isinstance(body, bytes | type(None)) else json.dumps(body).encode()
    status, answer = server.request(method, path, raw, content_type=content_type)
    assert status == code, answer
    assert answer["kind"] == "Status"
    assert answer["status"] == "Failure"
    assert answer["reason"] == reason
    assert answer["code"] == code
    assert answer["message"]
    # The server still answers, and what was stored is intact.
    status, kept = server.request("GET", f"{cms}/keep")
    assert status == 200
    assert kept["data"] == {"a": "1"}
    assert kept["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def test_invalid_causes_name_the_fields(server: Server, namespace: str) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}], "restartPolicy": "Sometimes"},
    }
    status, answer = server.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    assert status == 422
    fields = {cause["field"]: cause["reason"] for cause in answer["details"]["causes"]}
    assert fields["spec.containers[0].image"] == "FieldValueRequired"
    assert fields["spec.restartPolicy"] == "FieldValueNotSupported"
    assert answer["details"]["kind"] == "Pod"
    assert answer["message"].startswith('Pod "p" is invalid: [')


def test_dry_run_stores_nothing(server: Server, namespace: str) -> None:
    cms = f"/api/v1/namespaces/{namespace}/configmaps"
    status, answer = server.request(
        "POST", f"{cms}?dryRun=All", {**GOOD, "metadata": {"name": "dry"}}
    )
    assert status == 201
    assert answer["metadata"]["name"] == "dry"
    status, _ = server.request("GET", f"{cms}/dry")
    assert status == 404


def test_unacceptable_output_is_406(server: Server, namespace: str) -> None:
    status, answer = server.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps", accept="application/xml"
    )
    assert status == 406
    assert answer["reason"] == "NotAcceptable"


def test_bad_continue_token_is_400(server: Server, namespace: str) -> None:
    status, answer = server.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps?limit=1&continue=not-a-token"
    )
    assert status == 400
    assert answer["reason"] == "BadRequest"
    assert "continue key is not valid" in answer["message"]
