"""The command line: version, logging formats, one-line start-up failures."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from minikube_py import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minikube_py", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith("minikube-py ")


def test_version_skips_the_component_modules() -> None:
    """Cheap commands do not import the scheduler and controllers (most of a second)."""
    probe = (
        "import sys; from minikube_py import cli; cli.main(['version']);"
        " heavy = [m for m in sys.modules if m.startswith(('minikube_py.scheduler',"
        " 'minikube_py.controllers'))]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"minikube-py {__version__}", "[]"]


def test_component_flags_in_help() -> None:
    assert "--percentage-of-nodes-to-score" in run("scheduler", "--help").stdout
    assert "--node-monitor-grace-period" in run("controller-manager", "--help").stdout
    assert "controller-manager" in run("--help").stdout


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            "--log-format", "json", "apiserver", "--data-dir", str(tmp_path), "--port", str(port)
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"minikube-py: port {port} on 127.0.0.1 is already in use; stop what uses it or pass --port"
    )
    logs = [json.loads(line) for line in result.stderr.splitlines()[:-1]]
    assert any(entry["event"] == "sqlite store opened" for entry in logs)
    assert all({"event", "level", "timestamp"} <= entry.keys() for entry in logs)


def test_non_loopback_address_is_refused(tmp_path: Path) -> None:
    result = run("apiserver", "--data-dir", str(tmp_path), "--bind-address", "0.0.0.0")
    assert result.returncode == 1
    assert "--allow-insecure-remote" in result.stderr
    assert "Traceback" not in result.stderr


def test_locked_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    lock = tmp_path / "state.db.lock"
    hold = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('ok', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ok"
        result = run("apiserver", "--data-dir", str(tmp_path), "--port", "0")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert result.returncode == 1
    assert "is in use by another minikube-py process" in result.stderr.splitlines()[-1]
