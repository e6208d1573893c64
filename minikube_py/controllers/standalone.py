"""``minikube-py controller-manager --kubeconfig FILE``: every controller, over HTTP."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from minikube_py.client.http import HttpClient, server_from_kubeconfig
from minikube_py.client.informers import SharedInformers
from minikube_py.controllers import core_component, workloads_component


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-monitor-grace-period", type=float, default=50.0)
    parser.add_argument("--terminated-pod-gc-threshold", type=int, default=12500)


async def run(args: argparse.Namespace) -> None:
    server = server_from_kubeconfig(args.kubeconfig)
    url = urlsplit(server)
    client = HttpClient(server)
    informers = SharedInformers(client)
    settings = core_component.CoreSettings(
        node_monitor_grace_period=args.node_monitor_grace_period,
        terminated_pod_gc_threshold=args.terminated_pod_gc_threshold,
    )
    apiserver = (url.hostname or "127.0.0.1", url.port or 80)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(workloads_component.run_controllers(client, informers))
            group.create_task(
                core_component.run_controllers(
                    client, informers, core_component.core_controllers(settings, apiserver)
                )
            )
            group.create_task(informers.run())
    finally:
        await client.close()
