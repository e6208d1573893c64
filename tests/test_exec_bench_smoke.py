"""The exec benchmark runs end to end (``--quick``) on real Docker and prints every figure.

No value is judged here (speed is ``make bench``'s business): only that each path has a
numeric p50 and p99, that both ratios are printed, and that no container is left behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker import require_docker

REPO = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9]+\.[0-9]"
PATHS = [
    "kubectl exec",
    "docker exec",
    "websocket exec (in-process client)",
    "docker API exec (aiodocker)",
]


@pytest.mark.slow
@pytest.mark.docker
def test_quick_exec_bench_prints_every_figure() -> None:
    require_docker()
    answer = subprocess.run(
        [sys.executable, "-m", "bench.exec_bench", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = answer.stdout
    assert answer.returncode == 0, f"bench failed:\n{output[-3000:]}\n{answer.stderr[-3000:]}"
    for path in PATHS:
        row = rf"^  {re.escape(path)}\s+{NUMBER}\s+{NUMBER}$"
        assert re.search(row, output, re.M), f"no p50/p99 for {path!r} in:\n{output}"
    assert len(re.findall(rf"^  p50 .+: {NUMBER}[0-9]x$", output, re.M)) == 2, output
    nodes = subprocess.run(
        ["docker", "ps", "-a", "--format", '{{.Label "io.minikube-py.node"}}'],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert not [node for node in nodes if node.startswith("exec-bench-")]
