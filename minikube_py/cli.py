"""Command line: ``minikube-py <command>``. Each command builds a config and runs a component.

Start-up failures a user can fix (port taken, store unreachable, data dir locked) are
reported as one clear line and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from minikube_py import __version__
from minikube_py import logging as mlogging
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.signals import until_signalled
from minikube_py.storage.factory import default_data_dir
from minikube_py.storage.interface import StoreError


def _add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="embedded SQLite store directory"
    )
    parser.add_argument(
        "--etcd-servers", default="", help="etcd members, e.g. http://127.0.0.1:2379[,...]"
    )


def _add_apiserver_flags(parser: argparse.ArgumentParser) -> None:
    _add_store_flags(parser)
    parser.add_argument("--insecure-port", "--port", dest="port", type=int, default=8080)
    parser.add_argument("--bind-address", "--insecure-bind-address", default="127.0.0.1")
    parser.add_argument("--allow-insecure-remote", action="store_true")
    parser.add_argument("--service-cluster-ip-range", default="10.0.0.0/16")
    parser.add_argument("--service-node-port-range", default="30000-32767")
    # Accepted for compatibility with the seed's kube-apiserver invocation.
    parser.add_argument("--disable-admission-plugins", default="", help=argparse.SUPPRESS)


def _add_kubelet_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-name", default=socket.gethostname().lower())
    parser.add_argument(
        "--docker-host", default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    )
    parser.add_argument("--pod-infra-container-image", default="registry.k8s.io/pause:3.10")
    parser.add_argument("--pod-manifest-path", type=Path, default=None)
    parser.add_argument("--root-dir", type=Path, default=None)
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--node-labels", default="", help="key=value[,key=value]")
    parser.add_argument("--register-with-taints", default="", help="key=value:Effect[,...]")
    parser.add_argument("--node-status-update-frequency", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=10250, help="the kubelet's log endpoint")
    parser.add_argument("--address", default="", help="where it listens (default: node IP)")
    # Accepted for compatibility with the seed's kubelet invocation.
    parser.add_argument("--fail-swap-on", default="false", help=argparse.SUPPRESS)


def _add_up_flags(parser: argparse.ArgumentParser) -> None:
    _add_store_flags(parser)
    parser.add_argument(
        "--docker-host", default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    )
    parser.add_argument("--node-name", default=socket.gethostname().lower())
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bind-address", default="127.0.0.1")
    parser.add_argument("--service-cluster-ip-range", default="10.0.0.0/16")
    parser.add_argument("--pod-manifest-path", type=Path, default=None)
    parser.add_argument("--simulated-nodes", type=int, default=0)
    parser.add_argument("--no-update-kubeconfig", action="store_true")


MANAGE = {
    "status": "say whether a cluster is up",
    "down": "stop a running cluster and remove its containers",
    "kubeconfig": "print the cluster's kubeconfig",
}
"""Commands about a cluster that ``up`` runs (minikube_py.manage)."""


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; the scheduler's and controller-manager's flags only when
    ``argv`` may name them (their modules cost most of a second to import, which
    ``version``, ``status`` and ``up`` should not pay)."""
    words = set(sys.argv[1:] if argv is None else argv)
    everything = not words & {*COMMANDS, *MANAGE, "version"} or bool(words & {"-h", "--help"})
    parser = argparse.ArgumentParser(
        prog="minikube-py", description="A whole Kubernetes cluster in one Python process."
    )
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    parser.add_argument("--log-level", choices=mlogging.LEVELS, default="info")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("version", help="print the version")
    _add_apiserver_flags(commands.add_parser("apiserver", help="run the API server"))
    _add_kubelet_flags(commands.add_parser("kubelet", help="run a kubelet for this machine"))
    _add_up_flags(commands.add_parser("up", help="run the whole cluster in this process"))
    scheduler_parser = commands.add_parser("scheduler", help="run the scheduler")
    if everything or "scheduler" in words:
        from minikube_py.scheduler import standalone as scheduler

        scheduler.add_flags(scheduler_parser)
    controllers_parser = commands.add_parser("controller-manager", help="run the controllers")
    if everything or "controller-manager" in words:
        from minikube_py.controllers import standalone as controllers

        controllers.add_flags(controllers_parser)
    for name, text in MANAGE.items():
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--data-dir", type=Path, default=None)
        if name == "down":
            sub.add_argument("--purge", action="store_true", help="also delete the data dir")
    return parser


def _apiserver_config(args: argparse.Namespace) -> APIServerConfig:
    config = APIServerConfig(
        store=StoreConfig(args.data_dir or default_data_dir(), args.etcd_servers),
        bind_address=args.bind_address,
        port=args.port,
        allow_insecure_remote=args.allow_insecure_remote,
        service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=args.service_node_port_range,
    )
    config.check()
    return config


def _fail(message: str) -> int:
    print(f"minikube-py: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(argv)
    args = parser.parse_args(argv)
    mlogging.configure(fmt=args.log_format, level=args.log_level)
    if args.command == "version":
        print(f"minikube-py {__version__}")
        return 0
    if args.command in MANAGE:
        from minikube_py import manage

        return manage.main(args)
    component = COMMANDS.get(args.command)
    if component is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return component(args)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        return _fail(_start_failure(_root(exc), args))


def _serve(main: Coroutine[Any, Any, None]) -> int:
    """Run a long-lived component until SIGINT/SIGTERM."""
    asyncio.run(until_signalled(main))
    return 0


def _up(args: argparse.Namespace) -> int:
    from minikube_py import up

    return up.main(args)


def _apiserver(args: argparse.Namespace) -> int:
    from minikube_py.apiserver import server

    return _serve(server.run(_apiserver_config(args)))


def _kubelet(args: argparse.Namespace) -> int:
    from minikube_py.kubelet import standalone

    return _serve(standalone.run(standalone.config_from(args)))


def _scheduler(args: argparse.Namespace) -> int:
    from minikube_py.scheduler import standalone as scheduler

    return _serve(scheduler.run(scheduler.config_from(args)))


def _controller_manager(args: argparse.Namespace) -> int:
    from minikube_py.controllers import standalone as controllers

    return _serve(controllers.run(args))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": _up,
    "apiserver": _apiserver,
    "kubelet": _kubelet,
    "scheduler": _scheduler,
    "controller-manager": _controller_manager,
}


def _root(exc: BaseException) -> BaseException:
    """The first real cause inside (nested) TaskGroup exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _start_failure(exc: BaseException, args: argparse.Namespace) -> str:
    """One line a person can act on; unexpected errors re-raise with their traceback."""
    if isinstance(exc, OSError) and exc.errno == 98:
        return (
            f"port {args.port} on {args.bind_address} is already in use; stop what uses it"
            " or pass --port"
        )
    if isinstance(exc, StoreError | ValueError | OSError):
        return str(exc)
    raise exc
