"""``minikube-py up``: the whole cluster in this process, with progress a person can follow.

Start-up checks what a user can fix before anything runs (the data dir is free, the port
is free, Docker answers) and reports each as one line. Once up, it writes the kubeconfig,
says how to use the cluster, and runs until SIGINT/SIGTERM; pods keep running after and
are re-adopted by the next ``up``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from minikube_py import components, kubeconfig
from minikube_py.cluster import Cluster, ClusterConfig
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.kubelet.runtime.interface import ContainerRuntime, RuntimeUnavailable
from minikube_py.storage.factory import open_store


class StartupError(Exception):
    """A condition the user can fix; the message is the one line they see."""


@dataclass(frozen=True)
class UpConfig:
    data_dir: Path
    etcd_servers: str
    docker_host: str
    node_name: str
    port: int
    bind_address: str
    service_cluster_ip_range: str
    pod_manifest_path: Path
    simulated_nodes: int
    update_kubeconfig: bool

    @property
    def server(self) -> str:
        return f"http://{self.bind_address}:{self.port}"


def config_from(args: argparse.Namespace) -> UpConfig:
    data_dir = Path(os.path.expanduser(str(args.data_dir or "~/.minikube-py")))
    return UpConfig(
        data_dir=data_dir,
        etcd_servers=args.etcd_servers,
        docker_host=args.docker_host,
        node_name=args.node_name,
        port=args.port,
        bind_address=args.bind_address,
        service_cluster_ip_range=args.service_cluster_ip_range,
        pod_manifest_path=args.pod_manifest_path or data_dir / "manifests",
        simulated_nodes=args.simulated_nodes,
        update_kubeconfig=not args.no_update_kubeconfig,
    )


def say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def pid_lock(data_dir: Path) -> Iterator[Path]:
    """One ``up`` per data dir: an flock'd pid file that ``status`` and ``down`` read."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "up.pid"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StartupError(
            f"minikube-py is already running on {data_dir} (pid {holder}); stop it with"
            " `minikube-py down` or use another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    try:
        yield path
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)


def check_port(address: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            raise StartupError(
                f"port {port} on {address} is already in use; stop what uses it or pass --port"
            ) from None


async def docker_runtime(config: UpConfig) -> ContainerRuntime:
    from minikube_py.kubelet.runtime.docker import DockerRuntime

    runtime = DockerRuntime(node_name=config.node_name, docker_host=config.docker_host)
    try:
        await runtime.ping()
    except RuntimeUnavailable as exc:
        await runtime.close()
        raise StartupError(
            f"cannot reach Docker at {config.docker_host}: {exc}; start it (as root:"
            " scripts/docker-daemon.sh start) or pass --docker-host"
        ) from None
    return runtime


async def _report_progress(cluster: Cluster, config: UpConfig) -> None:
    from minikube_py.kubelet.node import NODES

    await cluster.serving.wait()
    say(f"[ok] API serving on {config.server}")
    await cluster.ready.wait()
    for kubelet in cluster.kubelets:
        await kubelet.node.registered.wait()
        say(f"[ok] node {kubelet.config.node.name} registered")
        await kubelet.node.ready.wait()
        say(f"[ok] node {kubelet.config.node.name} Ready")
    kubeconfig.write(config.data_dir / "kubeconfig", config.server)
    names = [k.config.node.name for k in cluster.kubelets]
    (config.data_dir / "nodes").write_text("".join(f"{name}\n" for name in names))
    if config.update_kubeconfig:
        kubeconfig.merge(kubeconfig.user_path(), config.server)
        say(f"[ok] kubectl context 'minikube-py' set in {kubeconfig.user_path()}")
    nodes = await cluster.client.list(NODES)
    say(f"minikube-py is up: {len(nodes.items)} node(s). Try:")
    say("  kubectl get nodes")
    say(f"  curl {config.server}/api/v1/nodes")
    say("Stop with Ctrl-C (pods keep running) or `minikube-py down`.")


async def run(config: UpConfig) -> None:
    check_port(config.bind_address, config.port)
    runtime = await docker_runtime(config)
    try:
        store = await open_store(data_dir=config.data_dir, etcd_servers=config.etcd_servers or None)
    except BaseException:
        await runtime.close()
        raise
    say(f"[ok] store opened ({store.name})")
    cluster_config = ClusterConfig(
        apiserver=APIServerConfig(
            store=StoreConfig(config.data_dir, config.etcd_servers),
            bind_address=config.bind_address,
            port=config.port,
            service_cluster_ip_range=config.service_cluster_ip_range,
        ),
        node_name=config.node_name,
        runtime_factory=lambda _name: runtime,
        simulated_nodes=config.simulated_nodes,
        kubelet_root=config.data_dir / "kubelet",
        pod_manifest_path=config.pod_manifest_path,
        components=components.ALL,
    )
    cluster = Cluster(store, cluster_config)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(cluster.run(), name="cluster")
            group.create_task(_report_progress(cluster, config), name="progress")
    finally:
        await runtime.close()
        await store.close()


def main(args: argparse.Namespace) -> int:
    from minikube_py.signals import until_signalled

    config = config_from(args)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        with pid_lock(config.data_dir):
            asyncio.run(until_signalled(run(config)))
    except StartupError as exc:
        print(f"minikube-py: {exc}", file=sys.stderr)
        return 1
    return 0
