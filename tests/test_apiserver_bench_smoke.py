"""The API server benchmark runs end to end (``--quick``) and prints every figure with a number.

Speed is the benchmark's business (``make bench``), not the tests': no value is judged here,
only that each figure, its ceiling or floor, its ratio and the target lines are there and
numeric, and that the bench leaves nothing behind (no files, no API server process).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.apiserver_bench import QUICK, Labels

REPO = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
UNIT = r" (?:/s|ms|MB)"


def processes_naming(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if text in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_quick_apiserver_bench_prints_every_figure_beside_its_bound(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.apiserver_bench", "--quick", "--backend", "sqlite"]
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
