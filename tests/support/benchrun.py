"""Running a benchmark's ``--quick`` mode as a smoke test: the shared plumbing.

Speed is the benchmark's business (``make bench``); a smoke test only checks that the bench
ran, printed its figures with numbers, and left nothing behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def run_quick(module: str, tmp_path: Path, *extra: str, timeout: float = 280) -> str:
    """Run ``python -m <module> --quick ... --dir <tmp_path>``; its stdout, if it succeeded."""
    answer = subprocess.run(
        [sys.executable, "-m", module, "--quick", *extra, "--dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = answer.stdout
    assert answer.returncode == 0, f"bench failed:\n{output[-3000:]}\n{answer.stderr[-3000:]}"
    return output


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
