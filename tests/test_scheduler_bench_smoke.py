"""The scheduler benchmark runs end to end (``--quick``) and prints its figures and targets.

Speed is the benchmark's business (``make bench``), not the tests': no value is judged here,
only that the figure, its same-run ceiling, the ratio and the target lines are there and
numeric, and that the run cleans up after itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


@pytest.mark.slow
def test_quick_scheduler_bench_prints_pods_bound_beside_raw_writes(tmp_path: Path) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "bench.scheduler_bench", "--quick", "--dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = answer.stdout
    assert answer.returncode == 0, f"bench failed:\n{output[-3000:]}\n{answer.stderr[-3000:]}"
    assert re.search(r"^scheduler benchmark: 100 nodes, 1,000 pods;", output, re.M), output
    assert re.search(r"^all 1,000 pods bound on \d+ nodes, none over allocatable$", output, re.M)
    assert re.search(rf"^raw store writes/s \d+ writers\s+{NUMBER} /s", output, re.M), output
    assert re.search(rf"^API binds/s \d+ callers\s+{NUMBER} /s", output, re.M), output
    row = rf"^pods bound/s\s+{NUMBER} /s\s+\|\s+raw store writes/s\s+{NUMBER} /s\s+{NUMBER}x"
    assert re.search(row, output, re.M), f"no figure row in:\n{output}"
    row = rf"^pods bound/s\s+{NUMBER} /s\s+\|\s+API binds/s\s+{NUMBER} /s\s+{NUMBER}x"
    assert re.search(row, output, re.M), f"no figure row beside API binds in:\n{output}"
    for label in ("pods bound/s >= 500/s", "pods bound/s >= 0.5x raw store writes/s"):
        line = rf"^\s+{re.escape(label)}\s+{NUMBER}(?:/s|x)\s+(?:OK|BELOW)$"
        assert re.search(line, output, re.M), f"no target line {label!r} in:\n{output}"
    assert list(tmp_path.iterdir()) == []
