"""``minikube-py kubelet --kubeconfig FILE``: a kubelet process talking HTTP to an API server."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from minikube_py.client.http import HttpClient, server_from_kubeconfig
from minikube_py.kubelet.kubelet import Kubelet, KubeletConfig
from minikube_py.kubelet.node import NodeConfig
from minikube_py.meta.objects import Obj


@dataclass(frozen=True)
class StandaloneConfig:
    server: str
    docker_host: str
    pause_image: str
    kubelet: KubeletConfig


def _pairs(text: str) -> dict[str, str]:
    found = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        found[key] = value
    return found


def _taints(text: str) -> tuple[Obj, ...]:
    taints = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        key_value, _, effect = item.partition(":")
        key, _, value = key_value.partition("=")
        taint: Obj = {"key": key, "effect": effect or "NoSchedule"}
        if value:
            taint["value"] = value
        taints.append(taint)
    return tuple(taints)


def config_from(args: argparse.Namespace) -> StandaloneConfig:
    root = args.root_dir or Path("/var/lib/minikube-py/kubelet")
    node = NodeConfig(
        name=args.node_name,
        labels=_pairs(args.node_labels),
        taints=_taints(args.register_with_taints),
        max_pods=args.max_pods,
        status_interval=args.node_status_update_frequency,
        root_dir=root,
        kubelet_port=args.port,
    )
    return StandaloneConfig(
        server=server_from_kubeconfig(args.kubeconfig),
        docker_host=args.docker_host,
        pause_image=args.pod_infra_container_image,
        kubelet=KubeletConfig(
            node=node,
            port=args.port,
            address=args.address,
            pod_manifest_path=args.pod_manifest_path,
        ),
    )


async def run(config: StandaloneConfig) -> None:
    from minikube_py.kubelet.runtime.docker import DockerRuntime

    client = HttpClient(config.server)
    runtime = DockerRuntime(
        docker_host=config.docker_host,
        node_name=config.kubelet.node.name,
        pause_image=config.pause_image,
    )
    try:
        await Kubelet(client, runtime, config.kubelet).run()
    finally:
        await runtime.close()
        await client.close()
