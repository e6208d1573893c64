"""The kubelet benchmark runs end to end (``--quick``) on real Docker and prints every figure.

Speed is the benchmark's business (``make bench``), not the tests': no value is judged here,
only that each figure, its raw ceiling, its ratio and the target lines are there and numeric,
and that the bench leaves nothing behind (no files, no ``up`` process, no container).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.kubelet_bench import QUICK, Labels
from tests.support.benchrun import NUMBER, processes_naming, run_quick
from tests.support.docker import containers, require_docker

UNIT = r" ms"


@pytest.mark.slow
@pytest.mark.docker
def test_quick_kubelet_bench_prints_every_figure_beside_its_ceiling(tmp_path: Path) -> None:
    require_docker()
    output = run_quick("bench.kubelet_bench", tmp_path)

    labels = Labels(QUICK)
    for label in labels.figures():
        row = rf"^{re.escape(label)}\s+{NUMBER}{UNIT}\s+\|\s+\S.*?\s{NUMBER}{UNIT}\s+{NUMBER}x"
        assert re.search(row, output, re.M), (
            f"no figure {label!r} with its ceiling and ratio in:\n{output}"
        )
    for label in labels.targets():
        line = rf"^\s+{re.escape(label)}\s+{NUMBER}.*\s(?:OK|BELOW)$"
        assert re.search(line, output, re.M), f"no target line {label!r} in:\n{output}"
    assert re.search(rf"^sandbox create\+start \(Docker\)\s+{NUMBER}\s+{NUMBER}$", output, re.M)

    # It cleans up after itself: no files, no `up` process, no container of its nodes.
    assert list(tmp_path.iterdir()) == []
    assert processes_naming(str(tmp_path)) == []
    removed = re.search(r"^\s*removed \d+ containers of nodes (\S+), (\S+)$", output, re.M)
    assert removed, f"no clean-up line in:\n{output}"
    for node in removed.groups():
        assert containers(f"label=io.minikube-py.node={node}") == []
