"""``minikube-py up`` as users run it: the seed's walkthrough, restart safety, ``down``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.docker import containers, remove_node_containers, require_docker
from tests.support.etcd import EtcdCluster, etcd_cluster, free_port
from tests.support.requirements import require_binary

SEED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  nodeName: {node}
  containers:
  - name: nginx
    image: busybox:1.35
    command:
    - sh
    - -c
    - mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 80 -h /www
    ports:
    - containerPort: 80
    volumeMounts:
    - mountPath: /var/log/nginx
      name: nginx-logs
  - name: log-truncator
    image: busybox
    command:
    - /bin/sh
    args: [-c, 'while true; do cat /dev/null > /logdir/access.log; sleep 10; done']
    volumeMounts:
    - mountPath: /logdir
      name: nginx-logs
  volumes:
  - name: nginx-logs
    emptyDir: {{}}
"""


@dataclass
class Up:
    process: subprocess.Popen[str]
    url: str
    node: str
    data_dir: Path
    env: dict[str, str]

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def kubectl(self, *args: str) -> str:
        return subprocess.run(
            ["kubectl", *args], capture_output=True, text=True, env=self.env, timeout=60, check=True
        ).stdout


def wait_for(condition, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except (OSError, KeyError, ValueError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def start(data_dir: Path, node: str, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minikube_py",
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--node-name",
            node,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    require_docker()
    node = f"up-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "KUBECACHEDIR": str(tmp_path / "cache"),
    }
    data_dir = tmp_path / "data"
    process = start(data_dir, node, port, env)
    running = Up(process, f"http://127.0.0.1:{port}", node, data_dir, env)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            running.process.wait(30)
        if running.process.stdout is not None:
            running.process.stdout.close()
        remove_node_containers(node)


def node_ready(up: Up) -> bool:
    nodes = up.get("/api/v1/nodes")["items"]
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for n in nodes
        if n["metadata"]["name"] == up.node
        for c in n["status"]["conditions"]
    )


def post_seed_pod(up: Up) -> None:
    request = urllib.request.Request(
        up.url + "/api/v1/namespaces/default/pods",
        data=SEED_POD.format(node=up.node).encode(),
        headers={"Content-Type": "application/yaml"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201


def running_pod(up: Up) -> dict | None:
    pod = up.get("/api/v1/namespaces/default/pods/nginx")
    statuses = pod.get("status", {}).get("containerStatuses") or []
    if (
        pod["status"].get("phase") == "Running"
        and len(statuses) == 2
        and all(s["ready"] for s in statuses)
    ):
        return pod
    return None


def test_seed_walkthrough_and_restart_safety(up: Up) -> None:
    wait_for(lambda: node_ready(up), "node Ready")
    assert up.get("/api/v1/pods")["items"] == []
    post_seed_pod(up)
    pod = wait_for(lambda: running_pod(up), "seed pod 2/2 Running")
    uid = pod["metadata"]["uid"]
    names = sorted(line.split()[1] for line in containers(f"label=io.kubernetes.pod.uid={uid}"))
    assert names == sorted(
        f"k8s_{c}_nginx_default_{uid}_0" for c in ("POD", "nginx", "log-truncator")
    )
    ip = pod["status"]["podIP"]
    with urllib.request.urlopen(f"http://{ip}/", timeout=10) as answer:
        assert answer.read().decode().strip() == "hello-from-pod"
    table = up.kubectl("get", "pods").splitlines()
    assert table[1].split()[:3] == ["nginx", "2/2", "Running"]
    nodes = up.kubectl("get", "nodes").splitlines()
    assert nodes[1].split()[:2] == [up.node, "Ready"]
    before = sorted(containers(f"label=io.kubernetes.pod.uid={uid}"))

    # SIGKILL the whole cluster; the next `up` re-adopts: no container restarted or duplicated.
    up.process.send_signal(signal.SIGKILL)
    up.process.wait(30)
    if up.process.stdout is not None:
        up.process.stdout.close()
    port = int(up.url.rsplit(":", 1)[1])
    up.process = start(up.data_dir, up.node, port, up.env)
    wait_for(lambda: node_ready(up) and running_pod(up), "cluster back with the pod")
    assert sorted(containers(f"label=io.kubernetes.pod.uid={uid}")) == before


def test_down_removes_every_container(up: Up) -> None:
    wait_for(lambda: node_ready(up), "node Ready")
    post_seed_pod(up)
    wait_for(lambda: running_pod(up), "seed pod Running")
    done = subprocess.run(
        [sys.executable, "-m", "minikube_py", "down", "--data-dir", str(up.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "stopped minikube-py" in done.stdout
    assert up.process.wait(30) == 0
    assert containers(f"label=io.minikube-py.node={up.node}") == []


def test_second_up_on_the_same_data_dir_is_refused(up: Up, tmp_path: Path) -> None:
    wait_for(lambda: node_ready(up), "node Ready")
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "minikube_py",
            "up",
            "--data-dir",
            str(up.data_dir),
            "--port",
            str(free_port()),
            "--node-name",
            up.node,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=up.env,
    )
    assert second.returncode == 1
    assert "minikube-py is already running on" in second.stderr
    assert "Traceback" not in second.stderr


def run_up(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minikube_py", "up", "--no-update-kubeconfig", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_unreachable_docker_is_one_clear_line(tmp_path: Path) -> None:
    result = run_up(
        "--data-dir",
        str(tmp_path),
        "--port",
        str(free_port()),
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("minikube-py: cannot reach Docker at unix:///nonexistent/docker.sock")


def test_unreachable_etcd_is_one_clear_line(tmp_path: Path) -> None:
    require_docker()
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_up("--data-dir", str(tmp_path), "--port", str(free_port()), "--etcd-servers", dead)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot reach etcd at {dead}" in result.stderr.strip().splitlines()[-1]


def test_up_on_etcd_runs_the_seed_pod(tmp_path: Path) -> None:
    """On its own fresh etcd: what other tests left in the shared one must not run here."""
    require_docker()
    (tmp_path / "etcd").mkdir()
    with etcd_cluster(require_binary("etcd"), tmp_path / "etcd") as etcd:
        _seed_pod_on(etcd, tmp_path)


def _seed_pod_on(etcd: EtcdCluster, tmp_path: Path) -> None:
    node = f"upe-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "KUBECACHEDIR": str(tmp_path / "cache"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minikube_py",
            "up",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            str(port),
            "--node-name",
            node,
            "--etcd-servers",
            etcd.endpoints,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    running = Up(process, f"http://127.0.0.1:{port}", node, tmp_path / "data", env)
    try:
        wait_for(lambda: node_ready(running), "node Ready")
        post_seed_pod(running)
        pod = wait_for(lambda: running_pod(running), "seed pod Running on etcd")
        assert pod["metadata"]["selfLink"] == "/api/v1/namespaces/default/pods/nginx"
        assert running.kubectl("get", "pods").splitlines()[1].split()[:3] == [
            "nginx",
            "2/2",
            "Running",
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
        remove_node_containers(node)


def test_status_kubeconfig_merge_and_purge(tmp_path: Path) -> None:
    require_docker()
    import yaml

    node = f"ups-{uuid.uuid4().hex[:8]}"
    port = free_port()
    user_config = tmp_path / "kubeconfig"
    other = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "work",
        "clusters": [{"name": "work", "cluster": {"server": "https://work.example:6443"}}],
        "users": [{"name": "work", "user": {"token": "t"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
    }
    user_config.write_text(yaml.safe_dump(other))
    env = {**os.environ, "KUBECONFIG": str(user_config), "KUBECACHEDIR": str(tmp_path / "cache")}
    data_dir = tmp_path / "data"
    process = start(data_dir, node, port, env)
    running = Up(process, f"http://127.0.0.1:{port}", node, data_dir, env)
    try:
        wait_for(lambda: node_ready(running) and (data_dir / "nodes").exists(), "node Ready")
        merged = yaml.safe_load(user_config.read_text())
        assert merged["current-context"] == "minikube-py"
        assert {c["name"] for c in merged["contexts"]} == {"work", "minikube-py"}
        assert running.kubectl("get", "nodes").splitlines()[1].split()[0] == node
        printed = subprocess.run(
            [sys.executable, "-m", "minikube_py", "kubeconfig", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert f"server: http://127.0.0.1:{port}" in printed
        status = subprocess.run(
            [sys.executable, "-m", "minikube_py", "status", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0
        assert f"node {node}: Ready=True" in status.stdout
        subprocess.run(
            [sys.executable, "-m", "minikube_py", "down", "--purge", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert process.wait(30) == 0
        assert not data_dir.exists()
        stopped = subprocess.run(
            [sys.executable, "-m", "minikube_py", "status", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stopped.returncode == 1
        assert "not running" in stopped.stdout
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
        remove_node_containers(node)
