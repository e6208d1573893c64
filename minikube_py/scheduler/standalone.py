"""``minikube-py scheduler --kubeconfig FILE``: the scheduler as its own process, over HTTP."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

from minikube_py.client.http import HttpClient, server_from_kubeconfig
from minikube_py.client.informers import SharedInformers
from minikube_py.scheduler.scheduler import Scheduler, SchedulerConfig


@dataclass(frozen=True)
class StandaloneConfig:
    server: str
    scheduler: SchedulerConfig


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument(
        "--percentage-of-nodes-to-score",
        type=int,
        default=0,
        help="share of feasible nodes to find before scoring (0: kube's adaptive default)",
    )
    # Accepted for compatibility with kube-scheduler invocations; one instance runs.
    parser.add_argument("--leader-elect", default="false", help=argparse.SUPPRESS)


def config_from(args: argparse.Namespace) -> StandaloneConfig:
    return StandaloneConfig(
        server=server_from_kubeconfig(args.kubeconfig),
        scheduler=SchedulerConfig(percentage_of_nodes_to_score=args.percentage_of_nodes_to_score),
    )


async def run(config: StandaloneConfig) -> None:
    client = HttpClient(config.server)
    try:
        informers = SharedInformers(client)
        scheduler = Scheduler(client, informers, config.scheduler)
        async with asyncio.TaskGroup() as group:
            group.create_task(informers.run(), name="informers")
            group.create_task(scheduler.run(), name="scheduler")
    finally:
        await client.close()
