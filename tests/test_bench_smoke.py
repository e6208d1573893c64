"""The storage benchmark runs end to end (``--quick``) and prints every figure with a number.

Speed is the benchmark's business (``make bench``), not the tests': no value is judged here,
only that each figure, its ceiling and the target lines are there and numeric.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.requirements import require_binary

REPO = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
UNIT = r" (?:/s|ms)"

CEILINGS = [
    "raw sqlite commits/s 1 row/commit",
    "raw sqlite rows/s 32 rows/commit",
    "raw sqlite selects/s 1 conn",
    "raw aetcd put/s 1 writer",
    "raw aetcd put/s 32 writers",
    "raw aetcd put/s 2000 writers",
    "raw etcd txn/s 32 writers",
    "raw aetcd get/s 1 reader",
    "raw aetcd get/s 32 readers",
]
FIGURES = [
    f"{backend} {figure}"
    for backend in ("sqlite", "etcd")
    for figure in (
        "creates/s 1 writer",
        "creates/s 32 writers",
        "gets/s 1 reader",
        "gets/s 32 readers",
        "watch p50 ms 250/s",
        "watch p99 ms 250/s",
        "watch p50 ms burst",
        "watch p99 ms burst",
    )
]
TARGETS = [
    "sqlite creates/s 32 writers >= 2,000/s",
    "etcd creates/s 32 >= 0.8x raw put/s 32",
    "sqlite watch p99 at 250/s <= 20 ms",
    "etcd watch p99 at 250/s <= 20 ms",
]


@pytest.mark.slow
@pytest.mark.etcd
def test_quick_bench_prints_every_figure_beside_its_ceiling(tmp_path: Path) -> None:
    etcd = require_binary("etcd")
    command = [sys.executable, "-m", "bench.storage_bench", "--quick", "--etcd", etcd]
    answer = subprocess.run(
        [*command, "--dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = answer.stdout
    assert answer.returncode == 0, f"bench failed:\n{output[-3000:]}\n{answer.stderr[-3000:]}"

    for label in CEILINGS:
        assert re.search(rf"^{re.escape(label)}\s+{NUMBER} /s", output, re.M), (
            f"no numeric ceiling {label!r} in:\n{output}"
        )
    for label in FIGURES:
        row = rf"^{re.escape(label)}\s+{NUMBER}{UNIT}\s+\|\s+\S.*?\s{NUMBER}{UNIT}\s+{NUMBER}x"
        assert re.search(row, output, re.M), (
            f"no figure {label!r} with its ceiling and ratio in:\n{output}"
        )
    for label in TARGETS:
        line = rf"^\s+{re.escape(label)}\s+{NUMBER}.*\s(?:OK|BELOW)$"
        assert re.search(line, output, re.M), f"no target line {label!r} in:\n{output}"
    # The bench cleans up after itself: no data dir, no etcd left behind in tmp_path.
    assert list(tmp_path.iterdir()) == []
