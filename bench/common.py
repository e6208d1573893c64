"""What every benchmark in ``bench/`` shares: arguments, the scratch dir, rows and targets,
processes, etcd and Docker.

Each bench measures something else, but they are run alike (``scripts/run-bench.sh`` gives
them all the same arguments, a scratch dir on a real disk and SIGTERM to stop) and print
alike (``figure value unit | bound value unit ratio`` rows, then the targets, OK or BELOW),
so that a reader and the smoke tests find the same shape in every one. Speed is reported,
never judged by the exit status: it is non-zero only when a bench itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

import aiodocker
import aiohttp

from minikube_py.cluster import Cluster
from minikube_py.kubelet.runtime.docker_config import DEFAULT_PAUSE_IMAGE
from minikube_py.kubelet.runtime.interface import NODE_NAME
from minikube_py.logging import configure as configure_logging
from tests.support.cluster import running_cluster
from tests.support.etcd import EtcdCluster, etcd_cluster, free_port

REPO = Path(__file__).resolve().parent.parent
RAM_FILESYSTEMS = {"tmpfs", "ramfs"}
BUSYBOX = "busybox:1.35"
PAUSE = DEFAULT_PAUSE_IMAGE
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


# -- arguments --


def argument_parser(bench: str, description: str) -> argparse.ArgumentParser:
    """A bench's parser with the arguments ``scripts/run-bench.sh`` passes to every bench.

    A bench that has no use for one (``--backend`` where it runs no store of its choice)
    still accepts it, so that the script can give all of them the same command line.
    """
    parser = argparse.ArgumentParser(prog=f"python -m bench.{bench}", description=description)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (for tests)")
    parser.add_argument("--dir", help="where to put the data: a real disk, not tmpfs")
    parser.add_argument(
        "--backend",
        choices=["all", "sqlite", "etcd"],
        default="all",
        help="the store: SQLite, a fresh etcd member or both (`all`); where a bench runs one"
        " store, `all` is SQLite; benches with no store of their choice ignore it",
    )
    parser.add_argument("--etcd", help="the etcd binary (default: etcd on PATH)")
    return parser


def stores(args: argparse.Namespace, bench: str) -> tuple[list[str], str]:
    """The stores ``--backend`` names, in the order they are measured, and the etcd binary.

    The binary is empty when etcd is not one of them.
    """
    names = ["sqlite", "etcd"] if args.backend == "all" else [args.backend]
    return names, etcd_binary(args, bench) if "etcd" in names else ""


def etcd_binary(args: argparse.Namespace, bench: str) -> str:
    """``--etcd``, else etcd on PATH; without one the bench cannot run (exit status 2)."""
    binary = args.etcd or shutil.which("etcd")
    if binary is None:
        print(f"{bench}: no etcd binary (`make system` installs it)", file=sys.stderr)
        raise SystemExit(2)
    return str(binary)


# -- output --


def number(value: float, unit: str) -> str:
    """A value as a row shows it: as many decimals as its unit and size deserve."""
    if math.isnan(value):
        return "n/a"
    if unit in ("ms", "MB") and abs(value) >= 100:
        return f"{value:,.0f}"
    if unit == "MB":
        return f"{value:,.1f}"
    return f"{value:,.2f}" if unit in ("ms", "s", "%") else f"{value:,.0f}"


@dataclass
class Report:
    """Prints rows as they are measured; keeps the values, and the targets for the end.

    A figure row is ``figure value unit | bound value unit ratio note``, where the bound is a
    ceiling or floor measured in the same run, a fixed target or an anchor; a ceiling row is
    ``label value unit note``. The label columns are as wide as a bench's labels need.
    """

    out: TextIO = sys.stdout
    width: int = 36
    bound_width: int = 22
    values: dict[str, float] = field(default_factory=dict)
    targets: list[tuple[str, str, bool]] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def section(self, title: str) -> None:
        self.line()
        self.line(title)
        self.line("-" * len(title))

    def note(self, text: str) -> None:
        self.line(f"  {text}")

    def header(self, bound: str = "ceiling (same run)") -> None:
        self.line(
            f"{'figure':<{self.width}} {'value':>9} {'':<3}  | {bound:<{self.bound_width}}"
            f" {'value':>9} {'':<3} {'ratio':>7}"
        )

    def ceiling(self, label: str, value: float, unit: str, note: str = "") -> None:
        self.values[label] = value
        self.line(f"{label:<{self.width}} {number(value, unit):>9} {unit:<3}  {note}".rstrip())

    def figure(
        self, label: str, value: float, unit: str, bound_label: str, bound: float, note: str = ""
    ) -> None:
        self.values[label] = value
        self.bound(label, value, unit, bound_label, bound, note)

    def bound(
        self, label: str, value: float, unit: str, bound_label: str, bound: float, note: str = ""
    ) -> None:
        """A row; with ``label`` empty, one more bound for the figure of the row above."""
        ratio = value / bound if bound else math.nan
        shown = number(value, unit) if label else ""
        self.line(
            f"{label:<{self.width}} {shown:>9} {unit if label else '':<3}  |"
            f" {bound_label:<{self.bound_width}} {number(bound, unit):>9} {unit:<3}"
            f" {ratio:>6.2f}x  {note}".rstrip()
        )

    def target(self, label: str, shown: str, ok: bool) -> None:
        self.targets.append((label, shown, ok))

    def print_targets(self) -> None:
        self.section("targets")
        label_width = max((len(label) for label, _, _ in self.targets), default=0)
        shown_width = max((len(shown) for _, shown, _ in self.targets), default=0)
        for label, shown, ok in self.targets:
            self.line(f"  {label:<{label_width}} {shown:<{shown_width}} {'OK' if ok else 'BELOW'}")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no samples."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- one run: logging, SIGTERM, the scratch dir --


def machine(shared: str = "") -> str:
    """CPUs (and who shares them) and Python, for a bench's first line."""
    cpus = f"{os.cpu_count()} CPUs" + (f" (shared by {shared})" if shared else "")
    return f"{cpus}, Python {sys.version.split()[0]}"


def load_average() -> str:
    """The 1-minute load average: other work on a shared machine skews every figure."""
    return f"{os.getloadavg()[0]:.2f}"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: processes stop, files go


def filesystem(path: Path) -> tuple[str, str]:
    """The mount point holding ``path`` and its filesystem type (from /proc/self/mounts)."""
    real = str(path.resolve())
    best, kind = "/", "?"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return best, kind
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return best, kind


def disk_dir(explicit: str | None) -> Path:
    """``explicit``, else the first of $BENCH_DIR, the temp dir, /var/tmp not on tmpfs."""
    if explicit:
        return Path(explicit)
    candidates = [os.environ.get("BENCH_DIR") or "", tempfile.gettempdir(), "/var/tmp"]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if path.is_dir() and filesystem(path)[1] not in RAM_FILESYSTEMS:
            return path
    fallback = REPO / ".run"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


@contextmanager
def bench_run(report: Report, args: argparse.Namespace, prefix: str, title: str) -> Iterator[Path]:
    """One run of a bench in a fresh scratch dir on a real disk, removed however it ends.

    Logging is quiet (the rows are the output) and SIGTERM, which run-bench.sh forwards,
    unwinds through every ``finally``. The run starts with ``title`` and where the data is,
    and ends with how long it took; both lines give the load average.
    """
    configure_logging(level="warning")
    signal.signal(signal.SIGTERM, _terminate)
    base = disk_dir(args.dir)
    mount, kind = filesystem(base)
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}.", dir=base))
    began = time.perf_counter()
    try:
        report.line(f"{title}{', quick' if args.quick else ''}")
        report.line(f"data in {work} ({kind} on {mount}); load average {load_average()}")
        if kind in RAM_FILESYSTEMS:
            report.line("WARNING: the data is on a RAM filesystem: fsync costs nothing there")
        yield work
        report.line()
        report.line(f"total {time.perf_counter() - began:.1f} s; load average {load_average()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- processes --


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds ``pid`` used so far; NaN when unknown or gone."""
    if pid is None:
        return math.nan
    try:
        return process_cpu(pid)
    except (OSError, IndexError, ValueError):
        return math.nan


def proc_status(pid: int, key: str) -> float:
    """A ``kB`` (or count) field of ``/proc/<pid>/status``, e.g. VmRSS; NaN when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return float(line.split()[1])
    return math.nan


def daemon_pid(name: str) -> int | None:
    """The pid of the one process whose comm is ``name`` (dockerd), None if not exactly one."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found[0] if len(found) == 1 else None


@dataclass
class ServerProcess:
    """A ``minikube-py`` command serving on a free loopback port, as a subprocess."""

    name: str
    """How the report and errors call it, e.g. ``minikube-py up``."""
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float
    """``time.perf_counter()`` just before the process was started."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self, timeout: float) -> str:
        """SIGTERM, as a supervisor or Ctrl-C would; SIGKILL if not gone within ``timeout``.

        Returns how it stopped, for the report: a slow shutdown is a finding too.
        """
        if self.process.poll() is not None:
            return f"had already exited ({self.process.returncode})"
        began = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return f"still running {timeout:g} s after SIGTERM: killed"
        return f"exited ({status}) {time.perf_counter() - began:.2f} s after SIGTERM"

    async def until(
        self, probe: Callable[[], Awaitable[bool]], what: str, within: float, interval: float
    ) -> float:
        """Call ``probe`` until it is true; the ``perf_counter`` time it first was.

        Fails at once, with the log, if the process exits meanwhile; a connection the
        server refuses (not listening yet) counts as false.
        """
        deadline = time.perf_counter() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            try:
                if await probe():
                    return time.perf_counter()
            except aiohttp.ClientError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"timed out after {within:g} s waiting for {what}:\n{self.log_tail()}"
                )
            await asyncio.sleep(interval)

    async def answering(
        self, session: aiohttp.ClientSession, within: float, interval: float
    ) -> float:
        """Poll ``/readyz`` until 200; the ``perf_counter`` time it first answered so."""

        async def ready() -> bool:
            async with session.get(f"{self.url}/readyz") as answer:
                return answer.status == 200

        return await self.until(ready, f"{self.name}: /readyz 200", within, interval)


@contextmanager
def log_on_failure(server: ServerProcess, bench: str) -> Iterator[None]:
    """Should the block fail, the end of the server's log goes to stderr: it often says why."""
    try:
        yield
    except Exception:
        print(f"{bench}: {server.name}'s log ends with:\n{server.log_tail()}", file=sys.stderr)
        raise


def start_minikube_py(
    name: str,
    command: Sequence[str],
    data_dir: Path,
    etcd_servers: str,
    log: Path,
    pidfile: Path,
    env: Mapping[str, str] | None = None,
) -> ServerProcess:
    """``python -m minikube_py <command> --data-dir --port [--etcd-servers]`` on a free port.

    Its output goes to ``log`` and its pid to ``pidfile`` in the bench's scratch dir, for
    run-bench.sh's cleanup; ``--data-dir`` names that dir on the command line, which is how
    the script recognises a process it may stop.
    """
    port = free_port()
    args = [sys.executable, "-m", "minikube_py", *command]
    args += ["--data-dir", str(data_dir), "--port", str(port)]
    if etcd_servers:
        args += ["--etcd-servers", etcd_servers]
    with open(log, "wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    with open(pidfile, "a") as pids:
        pids.write(f"{process.pid}\n")
    return ServerProcess(name, process, f"http://127.0.0.1:{port}", log, began)


# -- etcd --


def etcd_version(binary: str) -> str:
    answer = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    first = (answer.stdout.splitlines() or ["?"])[0]
    return first.removeprefix("etcd Version: ").strip()


def etcd_pid(cluster: EtcdCluster) -> int:
    process = cluster.members[0].process
    assert process is not None
    return process.pid


@contextmanager
def etcd_member(binary: str, work: Path) -> Iterator[EtcdCluster]:
    """A single etcd member on free loopback ports, its data in ``work/etcd``.

    Its pid goes to ``work/etcd.pid``, so that run-bench.sh can stop it should the bench be
    killed outright.
    """
    (work / "etcd").mkdir()
    with etcd_cluster(binary, work / "etcd", size=1) as cluster:
        (work / "etcd.pid").write_text(f"{etcd_pid(cluster)}\n")
        yield cluster


# -- Docker: the one that answers, or one started here and stopped here --


def docker_answers() -> bool:
    status = subprocess.run(
        [str(REPO / "scripts/docker-daemon.sh"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return status.returncode == 0


@contextmanager
def docker_daemon(work: Path, report: Report) -> Iterator[bool]:
    """A Docker daemon for the block; yields whether it was started here.

    A daemon that already answers is left alone whoever started it (a system service, the
    test suite, another session). One started here is stopped when the block ends; a marker
    in ``work`` tells ``scripts/run-bench.sh`` to stop it should this process be killed.
    """
    if docker_answers():
        yield False
        return
    script = str(REPO / "scripts/docker-daemon.sh")
    started = subprocess.run([script, "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        raise RuntimeError(
            f"no Docker daemon answers and none could be started:\n{started.stdout}{started.stderr}"
        )
    marker = work / "dockerd.started"
    marker.write_text("started by this bench\n")
    report.line(f"Docker: {started.stdout.strip()} (stopped again at the end)")
    try:
        yield True
    finally:
        stopped = subprocess.run([script, "stop"], capture_output=True, text=True, check=False)
        marker.unlink(missing_ok=True)
        report.line(f"Docker: {stopped.stdout.strip() or stopped.stderr.strip()}")


async def missing_images(images: Sequence[str]) -> list[str]:
    docker = aiodocker.Docker()
    try:
        missing = []
        for image in images:
            try:
                await docker.images.inspect(image)
            except aiodocker.DockerError:
                missing.append(image)
        return missing
    finally:
        await docker.close()


def ensure_images(report: Report) -> None:
    """The pause and busybox images, made by ``scripts/images.sh`` (pull or offline build)."""
    missing = asyncio.run(missing_images([PAUSE, BUSYBOX]))
    if not missing:
        return
    report.line(f"images missing ({', '.join(missing)}): running scripts/images.sh")
    done = subprocess.run(
        [str(REPO / "scripts/images.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/images.sh failed:\n{done.stdout}\n{done.stderr}")


def docker_version() -> str:
    done = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() or "?"


def unique_node(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def record_nodes(work: Path, *nodes: str) -> None:
    """Node names whose containers ``scripts/run-bench.sh`` removes if this process is killed."""
    with open(work / "docker-nodes", "a") as out:
        out.writelines(f"{node}\n" for node in nodes)


def remove_node_containers(*nodes: str) -> int:
    """Remove (forced) every container labelled with one of ``nodes``; how many there were."""
    ids: list[str] = []
    for node in nodes:
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={NODE_NAME}={node}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        ids += listed.stdout.split()
    for start in range(0, len(ids), 50):
        subprocess.run(
            ["docker", "rm", "-f", *ids[start : start + 50]],
            capture_output=True,
            timeout=300,
            check=False,
        )
    return len(ids)


@asynccontextmanager
async def docker_cluster(work: Path, prefix: str) -> AsyncIterator[Cluster]:
    """A cluster in this process (SQLite in ``work``) whose one node is a real Docker kubelet.

    The node has a name of its own, recorded for run-bench.sh should this process be killed;
    its containers are removed when the block ends, however it ends.
    """
    node = unique_node(prefix)
    record_nodes(work, node)
    try:
        async with running_cluster(work, simulated_nodes=0, docker_node=node) as cluster:
            yield cluster
    finally:
        remove_node_containers(node)
