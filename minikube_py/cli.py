"""Command line: ``minikube-py <command>``. Commands are added as components land."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from minikube_py import __version__
from minikube_py import logging as mlogging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minikube-py", description="A whole Kubernetes cluster in one Python process."
    )
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    parser.add_argument("--log-level", choices=mlogging.LEVELS, default="info")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    mlogging.configure(fmt=args.log_format, level=args.log_level)
    if args.command == "version":
        print(f"minikube-py {__version__}")
        return 0
    parser.print_help(sys.stderr)
    return 2
