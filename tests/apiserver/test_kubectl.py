"""The real kubectl 1.32 against the API server, on each backend."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support.apiserver import Server

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.35
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"""


def get_json(server: Server, *args: str) -> dict:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def test_version_and_discovery(server: Server) -> None:
    version = json.loads(server.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    assert version["serverVersion"]["minor"] == "32"
    resources = server.kubectl("api-resources").stdout
    for line in ("pods", "po", "deployments", "deploy", "apps/v1", "leases"):
        assert line in resources
    versions = server.kubectl("api-versions").stdout.split()
    assert {"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1"} <= set(versions)


def test_get_prints_the_real_columns(server: Server, namespace: str) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    table = server.kubectl("get", "deploy", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:2] == ["web", "0/2"]
    wide = server.kubectl("get", "deploy", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "busybox:1.35", "app=web"]
    nodes = server.kubectl("get", "namespaces").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "AGE"]
    listed = server.kubectl("get", "ns", "-A", "--show-labels").stdout
    assert f"kubernetes.io/metadata.name={namespace}" in listed


def test_apply_twice_then_remove_fields(server: Server, namespace: str) -> None:
    first = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT).stdout
    assert "created" in first
    again = server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT).stdout
    assert "unchanged" in again
    changed = (
        DEPLOYMENT.replace("tier: front", "")
        .replace(", }", "}")
        .replace('        - {name: B, value: "2"}\n', "")
        .replace("busybox:1.35", "busybox:latest")
    )
    assert "configured" in server.kubectl("apply", "-n", namespace, "-f", "-", input=changed).stdout
    deployment = get_json(server, "deploy", "web", "-n", namespace)
    assert deployment["metadata"]["labels"] == {"app": "web"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert container["image"] == "busybox:latest"
    assert deployment["metadata"]["generation"] == 2


def test_label_annotate_and_selectors(server: Server, namespace: str) -> None:
    for name in ("a", "b", "c"):
        server.request(
            "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": name}}
        )
    server.kubectl("label", "-n", namespace, "cm", "a", "b", "team=x")
    server.kubectl("annotate", "-n", namespace, "cm", "a", "note=hello")
    selected = server.kubectl(
        "get", "cm", "-n", namespace, "-l", "team=x", "-o", "name"
    ).stdout.split()
    assert selected == ["configmap/a", "configmap/b"]
    others = server.kubectl(
        "get", "cm", "-n", namespace, "-l", "team!=x", "-o", "name"
    ).stdout.split()
    assert others == ["configmap/c"]
    by_name = server.kubectl(
        "get", "cm", "-n", namespace, "--field-selector", "metadata.name=c", "-o", "name"
    ).stdout.split()
    assert by_name == ["configmap/c"]
    jsonpath = server.kubectl(
        "get", "cm", "a", "-n", namespace, "-o", "jsonpath={.metadata.annotations.note}"
    ).stdout
    assert jsonpath == "hello"


def test_patch_types(server: Server, namespace: str) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    server.kubectl(
        "patch",
        "-n",
        namespace,
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op": "replace", "path": "/spec/replicas", "value": 3}]',
    )
    server.kubectl(
        "patch",
        "-n",
        namespace,
        "deploy",
        "web",
        "--type",
        "merge",
        "-p",
        '{"metadata": {"labels": {"merged": "yes"}}}',
    )
    server.kubectl(
        "patch",
        "-n",
        namespace,
        "deploy",
        "web",
        "--type",
        "strategic",
        "-p",
        json.dumps(
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "web", "env": [{"name": "C", "value": "3"}]}]
                        }
                    }
                }
            }
        ),
    )
    deployment = get_json(server, "deploy", "web", "-n", namespace)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["labels"]["merged"] == "yes"
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["C", "A", "B"]


def test_scale(server: Server, namespace: str) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    server.kubectl("scale", "-n", namespace, "deploy/web", "--replicas=5")
    assert get_json(server, "deploy", "web", "-n", namespace)["spec"]["replicas"] == 5


def test_replace_and_delete(server: Server, namespace: str) -> None:
    server.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    live = get_json(server, "deploy", "web", "-n", namespace)
    live["spec"]["replicas"] = 4
    server.kubectl("replace", "-f", "-", input=json.dumps(live))
    assert get_json(server, "deploy", "web", "-n", namespace)["spec"]["replicas"] == 4
    stale = server.kubectl("replace", "-f", "-", input=json.dumps(live), check=False)
    assert stale.returncode != 0
    assert "the object has been modified" in stale.stderr
    server.kubectl("delete", "-n", namespace, "deploy", "web", "--wait=true", "--timeout=30s")
    gone = server.kubectl("get", "-n", namespace, "deploy", "web", check=False)
    assert gone.returncode != 0
    assert 'deployments.apps "web" not found' in gone.stderr


def test_delete_by_label(server: Server, namespace: str) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        server.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            {"metadata": {"name": name, "labels": {"team": team}}},
        )
    server.kubectl("delete", "-n", namespace, "cm", "-l", "team=x")
    left = server.kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert left == ["configmap/c"]


def test_get_watch_sees_a_later_change(server: Server, namespace: str) -> None:
    server.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "w"}}
    )
    command = [
        "kubectl",
        "-s",
        server.url,
        "get",
        "cm",
        "w",
        "-n",
        namespace,
        "-w",
        "-o",
        "name",
        "--request-timeout=30s",
    ]
    env = {
        "KUBECACHEDIR": str(server.cache_dir),
        "KUBECONFIG": "/dev/null",
        "PATH": "/usr/bin:/bin",
    }
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as watcher:
        try:
            assert watcher.stdout is not None
            assert watcher.stdout.readline().strip() == "configmap/w"
            server.kubectl("label", "-n", namespace, "cm", "w", "changed=yes")
            assert watcher.stdout.readline().strip() == "configmap/w"
        finally:
            watcher.kill()


def test_create_from_files_yaml_and_json(server: Server, namespace: str) -> None:
    server.kubectl("create", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]},
    }
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    pods = server.kubectl("get", "pods", "-n", namespace).stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:4] == ["p", "0/1", "Pending", "0"]
    again = server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert 'pods "p" already exists' in again.stderr


def test_explain_pods(server: Server) -> None:
    explained = server.kubectl("explain", "pods").stdout
    assert "KIND:" in explained
    assert "Pod" in explained


@pytest.mark.parametrize("kind", ["namespace", "configmap", "secret", "deployment", "service"])
def test_create_subcommands(server: Server, namespace: str, kind: str) -> None:
    name = f"x{int(time.time() * 1000) % 100000}"
    commands = {
        "namespace": ["create", "namespace", name],
        "configmap": ["create", "configmap", name, "-n", namespace, "--from-literal=a=b"],
        "secret": ["create", "secret", "generic", name, "-n", namespace, "--from-literal=a=b"],
        "deployment": ["create", "deployment", name, "-n", namespace, "--image=busybox:1.35"],
        "service": ["create", "service", "clusterip", name, "-n", namespace, "--tcp=80:8080"],
    }
    server.kubectl(*commands[kind])
    resource = {
        "namespace": "ns",
        "configmap": "cm",
        "secret": "secret",
        "deployment": "deploy",
        "service": "svc",
    }[kind]
    args = [resource, name] + ([] if kind == "namespace" else ["-n", namespace])
    assert get_json(server, *args)["metadata"]["name"] == name
