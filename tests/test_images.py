"""The test images that scripts/images.sh provides, checked on a real Docker daemon.

``registry.k8s.io/pause:3.10`` is our own pause (scripts/pause/pause.c) when offline: it must stop
promptly with status 0 on SIGTERM/SIGINT and reap the orphans of its PID namespace.
``busybox:1.35`` is Debian's static busybox when offline: test pods use its shell, tar (what
``kubectl cp`` runs), httpd, wget and nc. Every wait below polls a condition under a deadline.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.requirements import missing, require_binary

pytestmark = pytest.mark.docker

PAUSE = "registry.k8s.io/pause:3.10"
BUSYBOX = "busybox:1.35"
LABEL = "io.minikube-py.test=test_images"  # `docker ps -af label=...` finds any leftovers


def docker(
    *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Run the docker CLI; fail with its stderr if it fails."""
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}",
            pytrace=False,
        )
    return result


def inspect(name: str, template: str) -> str:
    return docker("inspect", "--format", template, name).stdout.decode().strip()


@pytest.fixture(scope="module", autouse=True)
def _docker_and_images() -> None:
    require_binary("docker")
    answer = subprocess.run(["docker", "version"], capture_output=True, timeout=30, check=False)
    if answer.returncode != 0:
        missing("a Docker daemon")
    for image in (PAUSE, BUSYBOX, "busybox:latest"):
        found = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
        )
        if found.returncode != 0:
            missing(f"the image {image} (scripts/images.sh makes it)")


@pytest.fixture
def detached() -> Iterator[Callable[..., str]]:
    """``detached(*run_args)`` starts a named, labelled container; all are removed afterwards."""
    names: list[str] = []

    def run(*args: str) -> str:
        name = f"mkpy-test-{uuid.uuid4().hex[:12]}"
        names.append(name)
        docker("run", "--detach", "--name", name, "--label", LABEL, *args)
        return name

    yield run
    if names:
        subprocess.run(
            ["docker", "rm", "--force", "--volumes", *names],
            capture_output=True,
            timeout=60,
            check=False,
        )


def busybox(script: str, *run_args: str, stdin: bytes | None = None) -> bytes:
    """Run ``sh -c script`` in a throwaway busybox container; its stdout."""
    interactive = ("--interactive",) if stdin is not None else ()
    args = ("run", "--rm", "--label", LABEL, *interactive, *run_args, BUSYBOX, "sh", "-c", script)
    return docker(*args, stdin=stdin).stdout


# --- pause ------------------------------------------------------------------------------------


def test_pause_runs_as_pid_1_and_stops_promptly_on_sigterm(
    detached: Callable[..., str],
) -> None:
    pod = detached(PAUSE)
    assert inspect(pod, "{{.State.Running}}") == "true"
    assert "/pause" in docker("top", pod).stdout.decode()

    started = time.monotonic()
    docker("stop", "--time", "10", pod)  # SIGTERM; SIGKILL (exit 137) after 10 s if ignored
    elapsed = time.monotonic() - started

    assert inspect(pod, "{{.State.ExitCode}}") == "0"
    assert elapsed < 5, f"docker stop took {elapsed:.1f}s: SIGTERM was not handled"
    logs = docker("logs", pod)
    assert logs.stdout + logs.stderr == b"", "pause warns when it is not PID 1"


def test_pause_exits_0_on_sigint(detached: Callable[..., str]) -> None:
    pod = detached(PAUSE)
    docker("kill", "--signal", "INT", pod)
    assert docker("wait", pod, timeout=10).stdout.strip() == b"0"


# Run in a busybox container that shares the pause container's PID namespace. The inner shell
# exits at once and leaves `sleep 1` an orphan, which the kernel hands to PID 1 of the namespace:
# pause. Once sleep exits, /proc/<pid> stays (state Z) until pause reaps it.
ORPHAN_SCRIPT = r"""
set -eu
pid=$(sh -c 'sleep 1 >/dev/null 2>&1 & echo $!')
set -- $(sed 's/.*) //' /proc/$pid/stat)
echo "orphan=$pid ppid=$2 init=$(tr '\0' ' ' </proc/1/cmdline)"
tries=0
while [ -e /proc/$pid ]; do
    tries=$((tries + 1))
    if [ $tries -gt 100 ]; then
        set -- $(sed 's/.*) //' /proc/$pid/stat)
        echo "not reaped: state=$1"
        exit 1
    fi
    sleep 0.1
done
echo reaped
"""


def test_pause_reaps_orphans_of_its_pid_namespace(detached: Callable[..., str]) -> None:
    pod = detached(PAUSE)
    out = busybox(ORPHAN_SCRIPT, "--pid", f"container:{pod}").decode()
    assert "ppid=1 init=/pause" in out, out  # the orphan really went to pause...
    assert out.rstrip().endswith("reaped"), out  # ...and pause reaped it


# --- busybox ----------------------------------------------------------------------------------


def test_busybox_runs_sh() -> None:
    assert busybox("echo hi") == b"hi\n"
    latest = docker("run", "--rm", "--label", LABEL, "busybox:latest", "sh", "-c", "echo hi")
    assert latest.stdout == b"hi\n"
    # The image's default command is an interactive shell, as upstream's.
    default = docker("run", "--rm", "--interactive", "--label", LABEL, BUSYBOX, stdin=b"echo hi")
    assert default.stdout == b"hi\n"


def test_busybox_tar_round_trips_with_the_host() -> None:
    payload = bytes(range(256)) * 64
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data, mode in [
            ("d/blob.bin", payload, 0o644),
            ("d/sub/run.sh", b"#!/bin/sh\n", 0o755),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

    # Host tar -> busybox `tar -x`, then busybox `tar -c` -> host tar (what kubectl cp does).
    out = busybox(
        "mkdir /tmp/in && tar -x -C /tmp/in && tar -c -C /tmp/in d",
        stdin=archive.getvalue(),
    )

    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        blob, script = tar.extractfile("d/blob.bin"), tar.getmember("d/sub/run.sh")
        assert blob is not None
        assert blob.read() == payload
        assert script.mode & 0o777 == 0o755


def test_busybox_httpd_serves_wget_and_nc_from_another_container(
    detached: Callable[..., str],
) -> None:
    server = detached(
        BUSYBOX, "sh", "-c",
        "echo served-by-busybox > /var/www/index.html && exec httpd -f -p 80 -h /var/www",
    )  # fmt: skip
    ip = inspect(server, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    assert ip, "the server container has no IP address"

    # Poll until httpd listens (a few tries at most). Not `wget -T`: Debian's busybox 1.35 is
    # built without FEATURE_WGET_TIMEOUT and segfaults on it; `timeout` bounds each try instead.
    out = busybox(
        f"""
        tries=0
        until timeout 5 wget -q -O - http://{ip}/index.html; do
            tries=$((tries + 1)); [ $tries -lt 100 ] || exit 1; sleep 0.1
        done
        printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc {ip} 80
        """
    ).decode()

    assert out.startswith("served-by-busybox\n"), out  # wget
    assert "HTTP/1.1 200 OK" in out, out  # nc, raw HTTP
    assert out.rstrip().endswith("served-by-busybox"), out
