"""The seed's story component by component: etcd, apiserver, kubelet as separate processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from tests.support.docker import containers, remove_node_containers, require_docker
from tests.support.etcd import EtcdCluster, free_port
from tests.test_up import SEED_POD

KUBELET_CONF = """\
apiVersion: v1
clusters:
- cluster:
    server: http://127.0.0.1:{port}
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
  name: default-context
current-context: default-context
kind: Config
preferences: {{}}
"""


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        raw = answer.read()
        return json.loads(raw) if raw.startswith(b"{") else {"text": raw.decode()}


def wait_for(condition, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except (OSError, KeyError, ValueError, IndexError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_seed_story_with_separate_processes(tmp_path: Path, etcd: EtcdCluster) -> None:
    require_docker()
    port, node = free_port(), f"seed-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "kubelet.conf").write_text(KUBELET_CONF.format(port=port))
    logs = [open(tmp_path / f"{n}.log", "w") for n in ("apiserver", "kubelet")]  # noqa: SIM115
    apiserver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minikube_py",
            "apiserver",
            f"--etcd-servers={etcd.endpoints}",
            "--service-cluster-ip-range=10.0.0.0/16",
            "--insecure-port",
            str(port),
        ],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    kubelet = None
    try:
        assert wait_for(lambda: get(f"{url}/api/v1/nodes")["kind"] == "NodeList", "API server")
        kubelet = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "minikube_py",
                "kubelet",
                f"--kubeconfig={tmp_path / 'kubelet.conf'}",
                "--fail-swap-on=false",
                "--node-name",
                node,
                "--root-dir",
                str(tmp_path / "kubelet"),
            ],
            stdout=logs[1],
            stderr=subprocess.STDOUT,
        )
        nodes = wait_for(
            lambda: [
                n for n in get(f"{url}/api/v1/nodes")["items"] if n["metadata"]["name"] == node
            ],
            "node",
        )
        meta = nodes[0]["metadata"]
        assert meta["selfLink"] == f"/api/v1/nodes/{node}"
        assert {"uid", "resourceVersion", "creationTimestamp", "labels"} <= meta.keys()
        request = urllib.request.Request(
            f"{url}/api/v1/namespaces/default/pods",
            data=SEED_POD.format(node=node).encode(),
            headers={"Content-Type": "application/yaml"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201

        def running() -> dict | None:
            pod = get(f"{url}/api/v1/namespaces/default/pods/nginx")
            statuses = pod["status"].get("containerStatuses") or []
            ok = pod["status"]["phase"] == "Running" and all(s["ready"] for s in statuses)
            return pod if ok and len(statuses) == 2 else None

        pod = wait_for(running, "seed pod Running")
        uid = pod["metadata"]["uid"]
        assert len(containers(f"label=io.kubernetes.pod.uid={uid}", "status=running")) == 3
        with urllib.request.urlopen(f"http://{pod['status']['podIP']}/", timeout=10) as answer:
            assert answer.read().decode().strip() == "hello-from-pod"
        env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(tmp_path / "cache")}
        pods = subprocess.run(
            ["kubectl", "-s", url, "get", "pods"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        assert pods.splitlines()[1].split()[:3] == ["nginx", "2/2", "Running"]
        listed = subprocess.run(
            ["kubectl", "-s", url, "get", "nodes", node],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        assert listed.splitlines()[1].split()[1] == "Ready"
        assert listed.splitlines()[1].split()[-1].startswith("v1.32")
    finally:
        for process in (kubelet, apiserver):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        for log in logs:
            log.close()
        remove_node_containers(node)


def test_scheduler_and_controller_manager_as_processes(tmp_path: Path) -> None:
    require_docker()
    port, node = free_port(), f"cm-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{port}"
    conf = tmp_path / "kubelet.conf"
    conf.write_text(KUBELET_CONF.format(port=port))
    env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(tmp_path / "cache")}
    commands = {
        "apiserver": ["apiserver", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
        "kubelet": [
            "kubelet",
            f"--kubeconfig={conf}",
            "--node-name",
            node,
            "--root-dir",
            str(tmp_path / "k"),
            "--port",
            "0",
        ],
        "scheduler": ["scheduler", f"--kubeconfig={conf}"],
        "controller-manager": ["controller-manager", f"--kubeconfig={conf}"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for name, args in commands.items():
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "minikube_py", *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            if name == "apiserver":
                wait_for(lambda: get(f"{url}/readyz") is not None, "API server")
        kubectl = ["kubectl", "-s", url]
        wait_for(
            lambda: (
                subprocess.run(
                    [*kubectl, "get", "node", node], capture_output=True, env=env
                ).returncode
                == 0
            ),
            "node",
        )
        subprocess.run(
            [
                *kubectl,
                "create",
                "deployment",
                "web",
                "--image=busybox:1.35",
                "--replicas=2",
                "--",
                "sleep",
                "3600",
            ],
            check=True,
            capture_output=True,
            env=env,
        )

        def running() -> bool:
            pods = get(f"{url}/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")["items"]
            return len(pods) == 2 and all(
                p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == node
                for p in pods
            )

        wait_for(running, "2 deployment pods Running on the node", timeout=90)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        for log in logs:
            log.close()
        remove_node_containers(node)
