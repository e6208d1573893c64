"""The OpenAPI v3 documents: their schema shapes, and what the real kubectl does with them."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from minikube_py.apiserver import fieldcheck, schemas
from minikube_py.apiserver.openapi import OpenAPI
from minikube_py.apiserver.protobuf_schema import MESSAGES
from minikube_py.registry.kinds import catalog
from tests.support.apiserver import Server

CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    served = OpenAPI(catalog())
    return {path: json.loads(body) for path, body in served.documents.items()}


def components(documents: dict[str, dict[str, Any]], path: str) -> dict[str, Any]:
    schemas_: dict[str, Any] = documents[path]["components"]["schemas"]
    return schemas_


# -- shapes --


def test_every_served_kind_has_its_schema(documents: dict[str, dict[str, Any]]) -> None:
    for info in catalog().infos():
        path = f"apis/{info.group}/{info.version}" if info.group else f"api/{info.version}"
        schema = components(documents, path)[schemas.type_name(info)]
        gvk = {"group": info.group, "version": info.version, "kind": info.kind}
        assert schema["x-kubernetes-group-version-kind"] == [gvk]
        assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])
        assert schema["description"]
        assert schema["properties"]["metadata"]["allOf"] == [
            {"$ref": f"#/components/schemas/{META}ObjectMeta"}
        ]


def test_every_ref_resolves_inside_its_document(documents: dict[str, dict[str, Any]]) -> None:
    for path, document in documents.items():
        names = set(document["components"]["schemas"])
        missing = set(schemas.refs(document)) - names
        assert not missing, (path, missing)


def test_every_field_of_the_tables_is_a_property() -> None:
    library = schemas.library()
    for message in MESSAGES:
        properties = library[schemas.package(message)]["properties"]
        expected = {name for name, _type, _flags in schemas._fields(message)}
        assert expected <= set(properties), message


def test_list_fields_carry_patch_and_list_markers(documents: dict[str, dict[str, Any]]) -> None:
    core = components(documents, "api/v1")
    pod_spec = core[CORE + "PodSpec"]["properties"]
    assert pod_spec["containers"] == {
        "type": "array",
        "items": {"$ref": f"#/components/schemas/{CORE}Container"},
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-patch-merge-key": "name",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }
    assert pod_spec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert "x-kubernetes-patch-strategy" not in pod_spec["tolerations"]
    ports = core[CORE + "Container"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    finalizers = core[META + "ObjectMeta"]["properties"]["finalizers"]
    assert finalizers["x-kubernetes-patch-strategy"] == "merge"
    assert finalizers["x-kubernetes-list-type"] == "set"
    apps = components(documents, "apis/apps/v1")
    strategy = apps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}
    ]


def test_scalar_and_special_types(documents: dict[str, dict[str, Any]]) -> None:
    core = components(documents, "api/v1")
    assert core[META + "Time"] == {"type": "string", "format": "date-time"}
    assert core["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    }
    assert core["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [
        {"type": "string"},
        {"type": "number"},
    ]
    assert core[META + "FieldsV1"] == {"type": "object"}
    secret = core[CORE + "Secret"]["properties"]
    assert secret["data"] == {
        "type": "object",
        "additionalProperties": {"type": "string", "format": "byte"},
    }
    assert secret["immutable"] == {"type": "boolean"}
    container = core[CORE + "Container"]
    assert container["required"] == ["name"]
    assert container["properties"]["resources"] == {
        "$ref": f"#/components/schemas/{CORE}ResourceRequirements"
    }
    assert core[CORE + "ContainerPort"]["properties"]["containerPort"] == {
        "type": "integer",
        "format": "int32",
    }
    volume = core[CORE + "Volume"]["properties"]
    assert {"name", "emptyDir", "hostPath", "configMap"} <= set(volume)
    probe = core[CORE + "Probe"]["properties"]
    assert {"httpGet", "exec", "tcpSocket", "grpc", "periodSeconds"} <= set(probe)


def test_operations_hand_validation_to_the_server(documents: dict[str, dict[str, Any]]) -> None:
    paths = documents["api/v1"]["paths"]
    patch = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert "fieldValidation" in {parameter["name"] for parameter in patch["parameters"]}
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    listing = paths["/api/v1/namespaces/{namespace}/pods"]["get"]
    assert listing["x-kubernetes-action"] == "list"
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{CORE}PodList"}


def test_spec_and_status_have_our_descriptions(documents: dict[str, dict[str, Any]]) -> None:
    deployment = components(documents, "apis/apps/v1")["io.k8s.api.apps.v1.Deployment"]
    for field in ("apiVersion", "kind", "metadata", "spec", "status"):
        assert deployment["properties"][field]["description"]


# -- the real kubectl --

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {team: blue}
  labels: {app: web}
  finalizers: [example.com/keep]
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      volumes: [{name: v, emptyDir: {}}]
      containers:
      - name: web
        image: busybox:1.35
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        resources: {limits: {cpu: 100m}}
"""


def apply(server: Server, namespace: str, manifest: str) -> subprocess.CompletedProcess[str]:
    done = server.kubectl("apply", "-n", namespace, "-f", "-", "-v=6", input=manifest)
    assert "openapi/v2" not in done.stderr, "kubectl fell back to OpenAPI v2"
    noise = [line for line in done.stderr.splitlines() if "] " not in line]
    assert noise == [], noise  # no "warning: error calculating patch from openapi v3 spec"
    return done


def test_apply_computes_its_patch_from_our_schemas(server: Server, namespace: str) -> None:
    assert "created" in apply(server, namespace, DEPLOYMENT).stdout
    changed = DEPLOYMENT.replace("replicas: 1", "replicas: 2").replace(
        '{name: B, value: "2"}', '{name: B, value: "3"}, {name: C, value: "4"}'
    )
    assert "configured" in apply(server, namespace, changed).stdout
    removed = (
        changed.replace("  annotations: {team: blue}\n", "")
        .replace('{name: A, value: "1"}, ', "")
        .replace("{type: RollingUpdate, rollingUpdate: {maxSurge: 1}}", "{type: Recreate}")
        .replace("emptyDir: {}", "hostPath: {path: /tmp}")
    )
    assert "configured" in apply(server, namespace, removed).stdout
    got = json.loads(server.kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    assert set(got["metadata"]["annotations"]) == {
        "kubectl.kubernetes.io/last-applied-configuration"
    }
    assert got["metadata"]["finalizers"] == ["example.com/keep"]
    spec = got["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "Recreate"}  # retainKeys dropped rollingUpdate
    pod = spec["template"]["spec"]
    assert pod["volumes"] == [{"name": "v", "hostPath": {"path": "/tmp"}}]
    assert pod["containers"][0]["env"] == [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    server.kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )


def test_what_the_server_stores_matches_the_schemas(server: Server, namespace: str) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT.replace("web", "keep"))
    server.kubectl("create", "service", "clusterip", "svc", "--tcp=80:8080", "-n", namespace)
    server.kubectl("create", "configmap", "cm", "--from-literal=a=b", "-n", namespace)
    for resource in ("deployments", "services", "configmaps", "serviceaccounts", "pods"):
        listed = json.loads(server.kubectl("get", resource, "-n", namespace, "-o", "json").stdout)
        for item in listed["items"]:
            _, problems = fieldcheck.check_fields(
                item, item["apiVersion"], item["kind"], raw=None, mode="Warn"
            )
            assert problems == [], (resource, problems)


def test_explain(server: Server) -> None:
    pods = server.kubectl("explain", "pods").stdout
    assert pods.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "DESCRIPTION:" in pods
    assert "FIELDS:" in pods
    for line in ("metadata\t<ObjectMeta>", "spec\t<PodSpec>", "status\t<PodStatus>"):
        assert line in pods
    containers = server.kubectl("explain", "pods.spec.containers").stdout
    assert "FIELD: containers <[]Container>" in containers
    for line in (
        "name\t<string> -required-",
        "env\t<[]EnvVar>",
        "resources\t<ResourceRequirements>",
    ):
        assert line in containers
    spec = server.kubectl("explain", "deploy.spec").stdout
    assert spec.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    for line in (
        "replicas\t<integer>",
        "selector\t<LabelSelector> -required-",
        "template\t<PodTemplateSpec> -required-",
        "strategy\t<DeploymentStrategy>",
    ):
        assert line in spec
    surge = server.kubectl("explain", "deploy.spec.strategy.rollingUpdate").stdout
    assert "maxSurge\t<IntOrString>" in surge


UNKNOWN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: typo}
data: {a: b}
dataa: {a: b}
"""


def test_apply_with_an_unknown_field_fails_strictly(server: Server, namespace: str) -> None:
    done = server.kubectl("apply", "-n", namespace, "-f", "-", input=UNKNOWN, check=False)
    assert done.returncode != 0
    assert (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error:'
        ' unknown field "dataa"'
    ) in done.stderr
    missing = server.kubectl("get", "configmap", "typo", "-n", namespace, check=False)
    assert missing.returncode != 0


def test_openapi_v2_json(server: Server) -> None:
    status, document = server.request("GET", "/openapi/v2")
    assert status == 200
    assert document["swagger"] == "2.0"
    pod = document["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"][0]["kind"] == "Pod"
    assert "#/components/" not in json.dumps(document)
