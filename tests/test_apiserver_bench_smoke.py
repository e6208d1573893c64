"""The API server benchmark runs end to end (``--quick``) and prints every figure with a number.

Speed is the benchmark's business (``make bench``), not the tests': no value is judged here,
only that each figure, its ceiling or floor, its ratio and the target lines are there and
numeric, and that the bench leaves nothing behind (no files, no API server process).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.apiserver_bench import QUICK, Labels
from tests.support.benchrun import NUMBER, processes_naming, run_quick

UNIT = r" (?:/s|ms|MB)"


@pytest.mark.slow
def test_quick_apiserver_bench_prints_every_figure_beside_its_bound(tmp_path: Path) -> None:
    output = run_quick("bench.apiserver_bench", tmp_path, "--backend", "sqlite")

    labels = Labels("sqlite", QUICK)
    for label in labels.figures():
        row = rf"^{re.escape(label)}\s+{NUMBER}{UNIT}\s+\|\s+\S.*?\s{NUMBER}{UNIT}\s+{NUMBER}x"
        assert re.search(row, output, re.M), (
            f"no figure {label!r} with its bound and ratio in:\n{output}"
        )
    for label in labels.targets():
        line = rf"^\s+{re.escape(label)}\s+{NUMBER}.*\s(?:OK|BELOW)$"
        assert re.search(line, output, re.M), f"no target line {label!r} in:\n{output}"
    # The bench cleans up after itself: no data dir, no API server left behind.
    assert list(tmp_path.iterdir()) == []
    assert processes_naming(str(tmp_path)) == []
