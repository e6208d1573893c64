"""``pods/exec`` and ``pods/attach`` over the SPDY/3.1 upgrade, as kubectl before 1.31 uses it.

First the handshake and the stream protocol without Docker: the server's end
(:class:`SpdyExec`) against a client :class:`spdy.Session` over an in-memory wire, with a
scripted session behind it. Then one cluster for the module with a Docker node, driven by
the real kubectl 1.30 with ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`` (its WebSocket would
otherwise win): every run is ``-v=6`` so that its log proves the POST was switched (101),
and those log lines are kept apart from what the command printed. A raw SPDY client shows
what kubectl never asks for (v3's text Status, refused handshakes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import pytest_asyncio
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from minikube_py import errors
from minikube_py.apiserver import channels, spdy, spdyupgrade
from minikube_py.apiserver.channels import StreamOptions
from minikube_py.apiserver.spdyexec import PROTOCOLS, SpdyExec, Version
from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import PODS
from minikube_py.meta.objects import Obj
from tests.apiserver.test_exec import Terminal
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.requirements import missing, require_binary
from tests.support.waiting import wait_until

T = TypeVar("T")


def on_the_cluster(test: T) -> T:
    """A test on Docker, in the module's loop (the shared cluster's)."""
    return cast(T, pytest.mark.docker(pytest.mark.asyncio(loop_scope="module")(test)))


BUSYBOX = "busybox:1.35"
EXIT_3 = channels.exit_failure(3, "error executing command [sh -c exit 3], exit code 3")

# -- the protocol, without Docker --


def test_stream_counts_per_version() -> None:
    """error + each stream asked for; no stderr beside a TTY; resize from v3 only."""
    plain = StreamOptions(stdin=True, stdout=True, stderr=True)
    tty = StreamOptions(stdin=True, stdout=True, stderr=True, tty=True)
    counts = {
        name: (Version.of(name).expected_streams(plain), Version.of(name).expected_streams(tty))
        for name in PROTOCOLS
    }
    assert counts == {
        "v4.channel.k8s.io": (4, 4),
        "v3.channel.k8s.io": (4, 4),
        "v2.channel.k8s.io": (4, 3),
        "channel.k8s.io": (4, 3),
    }
    assert Version.of("v2.channel.k8s.io").stream_types == {"error", "stdin", "stdout", "stderr"}
    assert Version.of("channel.k8s.io").resets_error_stream


def upgrade_request(*protocols: str, upgrade: str = "SPDY/3.1") -> Any:
    headers = [("Connection", "Upgrade"), ("Upgrade", upgrade)]
    headers += [(spdyupgrade.PROTOCOL_HEADER, name) for name in protocols]
    return make_mocked_request("POST", "/exec", headers=CIMultiDict(headers))


def test_the_clients_order_decides_and_v5_is_websocket_only() -> None:
    kubectl_1_30 = ("v5.channel.k8s.io", *PROTOCOLS)  # one header each, as its -v=8 shows
    assert spdyupgrade.negotiate(upgrade_request(*kubectl_1_30), PROTOCOLS) == "v4.channel.k8s.io"
    offered = upgrade_request("v2.channel.k8s.io, v4.channel.k8s.io")
    assert spdyupgrade.negotiate(offered, PROTOCOLS) == "v2.channel.k8s.io"
    assert spdyupgrade.requested(upgrade_request())
    assert not spdyupgrade.requested(upgrade_request(upgrade="websocket"))


def test_handshake_refusals() -> None:
    with pytest.raises(
        errors.BadRequest, match=r"^unable to upgrade: X-Stream-Protocol-Version is required$"
    ):
        spdyupgrade.negotiate(upgrade_request(), PROTOCOLS)
    with pytest.raises(errors.Forbidden) as caught:
        spdyupgrade.negotiate(upgrade_request("v5.channel.k8s.io"), PROTOCOLS)
    assert str(caught.value) == (
        "unable to upgrade: unable to negotiate protocol: client supports [v5.channel.k8s.io],"
        " server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]"
    )
    with pytest.raises(errors.BadRequest, match="missing upgrade headers"):
        spdyupgrade.negotiate(upgrade_request("v4.channel.k8s.io", upgrade="SPDY/3"), PROTOCOLS)


class Scripted:
    """A session that prints ``output``, records input, and ends at the end of its stdin
    (or at once, without ``reads_stdin``)."""

    def __init__(
        self, *output: tuple[int, bytes], status: Obj | None = None, reads_stdin: bool = True
    ) -> None:
        self.output = deque(output)
        self.reads_stdin = reads_stdin
        self.final = status or channels.success()
        self.stdin = bytearray()
        self.sizes: list[tuple[int, int]] = []
        self.stdin_closed = asyncio.Event()
        self.reads = 0

    async def read(self) -> tuple[int, bytes] | None:
        self.reads += 1
        if self.output:
            return self.output.popleft()
        if self.reads_stdin:
            await self.stdin_closed.wait()
        return None

    async def write(self, data: bytes) -> None:
        self.stdin += data

    async def close_stdin(self) -> None:
        self.stdin_closed.set()

    async def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def status(self) -> Obj:
        return self.final

    async def close(self) -> None:
        pass


@dataclass
class Client:
    """kubectl's end of the wire: frames go to the server's queue, its bytes come back here."""

    session: spdy.Session = field(
        default_factory=lambda: spdy.Session(client=True, flow_control=False)
    )
    to_server: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    data: dict[int, bytearray] = field(default_factory=dict)
    replied: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    reset: set[int] = field(default_factory=set)
    gone_away: bool = False
    aborted: bool = False

    async def from_server(self, data: bytes) -> None:
        for event in self.session.receive(data):
            match event:
                case spdy.StreamReplied(stream_id):
                    self.replied.add(stream_id)
                case spdy.DataReceived(stream_id, chunk, fin):
                    self.data.setdefault(stream_id, bytearray()).extend(chunk)
                    if fin:
                        self.finished.add(stream_id)
                case spdy.StreamReset(stream_id):
                    self.reset.add(stream_id)
                case spdy.GoAwayReceived():
                    self.gone_away = True

    def push(self) -> None:
        if data := self.session.data_to_send():
            self.to_server.put_nowait(data)

    def open(self, kind: str) -> int:
        stream_id = self.session.open_stream({"streamType": [kind]})
        self.push()
        return stream_id

    def send(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        self.session.send_data(stream_id, data, fin=fin)
        self.push()

    def leave(self) -> None:
        self.to_server.put_nowait(None)

    def abort(self) -> None:
        self.aborted = True
        self.leave()

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.to_server.get()) is not None:
            yield chunk


def serving(
    client: Client, protocol: str, options: StreamOptions, session: Scripted, **timeouts: float
) -> tuple[SpdyExec, asyncio.Task[None]]:
    server = SpdyExec(protocol, options, client.from_server, client.abort, **timeouts)
    return server, asyncio.create_task(server.serve(client.chunks(), session))


async def test_v4_relays_every_stream_then_a_json_status() -> None:
    client = Client()
    session = Scripted((channels.STDOUT, b"out"), (channels.STDERR, b"err"), status=EXIT_3)
    options = StreamOptions(stdin=True, stdout=True, stderr=True)
    _, served = serving(client, "v4.channel.k8s.io", options, session)
    error, stdin, stdout, stderr = (
        client.open(kind) for kind in ("error", "stdin", "stdout", "stderr")
    )
    await wait_until(lambda: {error, stdin, stdout, stderr} <= client.replied, what="replies")
    client.send(stdin, b"hello ")
    client.send(stdin, b"world", fin=True)
    await wait_until(lambda: error in client.finished, what="the error stream's FIN")
    assert (bytes(session.stdin), bytes(client.data[stdout]), bytes(client.data[stderr])) == (
        b"hello world",
        b"out",
        b"err",
    )
    assert json.loads(client.data[error]) == EXIT_3
    assert {stdout, stderr} <= client.finished  # stdin is the client's to end
    assert not served.done()  # the server waits for the client to close
    client.leave()
    await asyncio.wait_for(served, 5)


async def test_v3_writes_a_failure_as_text_and_resizes() -> None:
    client = Client()
    session = Scripted(status=EXIT_3)
    _, served = serving(
        client, "v3.channel.k8s.io", StreamOptions(stdin=True, stdout=True, tty=True), session
    )
    error, stdin, _, resize = (client.open(kind) for kind in ("error", "stdin", "stdout", "resize"))
    client.send(resize, b'{"Width":80,"Height":24}\n{"Width":100,')
    client.send(resize, b'"Height":30}\n')
    await wait_until(lambda: len(session.sizes) == 2, what="two resizes")
    client.send(stdin, b"", fin=True)
    await wait_until(lambda: error in client.finished, what="the error stream's FIN")
    assert session.sizes == [(80, 24), (100, 30)]
    assert client.data[error].decode() == EXIT_3["message"]
    client.leave()
    await asyncio.wait_for(served, 5)


async def test_v3_says_nothing_for_success() -> None:
    client = Client()
    _, served = serving(
        client, "v3.channel.k8s.io", StreamOptions(stdout=True), Scripted(reads_stdin=False)
    )
    error, stdout = client.open("error"), client.open("stdout")
    await wait_until(lambda: error in client.finished, what="the error stream's FIN")
    assert stdout in client.finished
    assert not client.data.get(error)
    client.leave()
    await asyncio.wait_for(served, 5)


async def test_v1_resets_its_error_stream_and_ends_stdin() -> None:
    """The 1.0 kubelet's ways: no Status can arrive, and the server's side of stdin ends."""
    client = Client()
    session = Scripted(status=EXIT_3)
    _, served = serving(client, "channel.k8s.io", StreamOptions(stdin=True, stdout=True), session)
    error, stdin, stdout = (client.open(kind) for kind in ("error", "stdin", "stdout"))
    await wait_until(lambda: error in client.reset, what="the error stream's reset")
    assert stdin in client.finished
    client.send(stdin, b"still read", fin=True)
    await wait_until(lambda: stdout in client.finished, what="stdout's FIN")
    assert session.stdin == b"still read"
    assert not client.data.get(error)
    client.leave()
    await asyncio.wait_for(served, 5)


async def test_a_missing_stream_times_out_without_running_the_session() -> None:
    client = Client()
    session = Scripted()
    options = StreamOptions(stdin=True, stdout=True, stderr=True)
    _, served = serving(client, "v4.channel.k8s.io", options, session, creation_timeout=0.2)
    for kind in ("error", "stdout", "stderr", "bogus"):  # no stdin; an unknown type is not counted
        client.open(kind)
    await asyncio.wait_for(served, 5)
    assert session.reads == 0
    assert len(client.replied) == 4  # every stream is replied to, as spdystream does


async def test_the_client_leaving_ends_the_session_and_going_away_closes() -> None:
    client = Client()
    session = Scripted()
    _, served = serving(client, "v4.channel.k8s.io", StreamOptions(stdout=True), session)
    client.open("error")
    client.open("stdout")
    await wait_until(lambda: session.reads > 0, what="the session to run")
    client.leave()
    await asyncio.wait_for(served, 5)

    client = Client()
    server, served = serving(client, "v4.channel.k8s.io", StreamOptions(stdout=True), Scripted())
    await server.going_away()
    await asyncio.wait_for(served, 5)
    assert client.gone_away
    assert client.aborted


# -- kubectl 1.30 on Docker --


def kubectl_1_30() -> str:
    """kubectl 1.30 as its package installs it, beside the version-dispatching kubectl."""
    found = require_binary("kubectl")
    old = Path(found).resolve().parent / "kubectl.1.30"
    if not old.exists():
        missing("kubectl 1.30 beside kubectl (its package installs one)")
    return str(old)


@dataclass
class Env:
    cluster: Cluster
    node: str
    tmp: Path

    @property
    def port(self) -> int:
        return self.cluster.config.apiserver.port


def busybox(name: str, script: str = "sleep 3600", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **extra}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    """Pods ``duo`` (containers a and b), ``talk`` (a shell reading stdin) and ``half``
    (container ``up`` running, ``done`` exited)."""
    require_docker()
    node = f"sx-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("exec-spdy")
    pods: dict[str, dict[str, Any]] = {
        "duo": {
            "containers": [
                busybox("a", env=[{"name": "WHO", "value": "a"}]),
                busybox("b", env=[{"name": "WHO", "value": "b"}]),
            ]
        },
        "talk": {
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh"], "stdin": True}],
            "restartPolicy": "Never",
        },
        "half": {
            "containers": [busybox("up"), busybox("done", "exit 0")],
            "restartPolicy": "Never",
        },
    }
    try:
        async with running_cluster(tmp, simulated_nodes=0, docker_node=node) as cluster:
            for name, spec in pods.items():
                body = {"metadata": {"name": name}, "spec": {"nodeName": node, **spec}}
                await cluster.client.create(PODS, "default", body)

            async def started() -> bool:
                phases = [await phase(cluster, name) for name in pods]
                half = await cluster.client.get(PODS, "default", "half")
                statuses = (half.get("status") or {}).get("containerStatuses") or []
                done = [s for s in statuses if s["name"] == "done" and "terminated" in s["state"]]
                return phases == ["Running"] * 3 and bool(done)

            await wait_until(started, within=90, what="the pods to start")
            yield Env(cluster, node, tmp)
    finally:
        remove_node_containers(node)


async def phase(cluster: Cluster, name: str) -> str:
    pod = await cluster.client.get(PODS, "default", name)
    return str((pod.get("status") or {}).get("phase"))


SWITCHED = re.compile(r"\] POST http://\S+/pods/\w+/(exec|attach)\?\S* 101 Switching Protocols")
KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+\] ")


def kubectl_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": "/dev/null",
        "KUBECACHEDIR": str(tmp / "kubectl-cache"),
        "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
    }


@dataclass
class Run:
    code: int
    out: bytes
    err: str
    """What kubectl printed on stderr besides its own ``-v=6`` log."""
    switched: int
    """How many SPDY upgrades its log shows."""


async def kubectl(env: Env, *args: str, stdin: bytes | None = None) -> Run:
    """kubectl 1.30, forced onto SPDY, run asynchronously (the cluster lives in this loop)."""
    process = await asyncio.create_subprocess_exec(
        kubectl_1_30(),
        "-s",
        f"http://127.0.0.1:{env.port}",
        "-v=6",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl_env(env.tmp),
        cwd=env.tmp,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    lines = err.decode().splitlines(keepends=True)
    printed = "".join(line for line in lines if not KLOG.match(line))
    switched = sum(1 for line in lines if SWITCHED.search(line))
    return Run(process.returncode or 0, out, printed, switched)


@on_the_cluster
async def test_exit_code_is_kubectls_own(env: Env) -> None:
    run = await kubectl(
        env, "exec", "duo", "-c", "a", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (run.code, run.out, run.switched) == (3, b"out\n", 1)
    assert run.err == "err\ncommand terminated with exit code 3\n"
    run = await kubectl(env, "exec", "duo", "-c", "a", "--", "true")
    assert (run.code, run.out, run.err, run.switched) == (0, b"", "", 1)


@on_the_cluster
async def test_stdin_and_stdout_carry_a_megabyte_exactly(env: Env) -> None:
    """The end of stdin is the stdin stream's FIN (``cat`` then ends)."""
    data = os.urandom(2**20)
    script = "cat > /tmp/mega && sha256sum /tmp/mega"
    run = await kubectl(env, "exec", "-i", "duo", "-c", "a", "--", "sh", "-c", script, stdin=data)
    assert (run.code, run.err, run.switched) == (0, "", 1)
    assert run.out.split()[0].decode() == hashlib.sha256(data).hexdigest()
    run = await kubectl(env, "exec", "duo", "-c", "a", "--", "cat", "/tmp/mega")
    assert (run.code, run.switched) == (0, 1)
    assert hashlib.sha256(run.out).hexdigest() == hashlib.sha256(data).hexdigest()


@on_the_cluster
async def test_container_flag_picks_the_container(env: Env) -> None:
    run = await kubectl(env, "exec", "duo", "-c", "b", "--", "sh", "-c", "echo $WHO")
    assert (run.code, run.out, run.switched) == (0, b"b\n", 1)
    run = await kubectl(env, "exec", "duo", "--", "sh", "-c", "echo $WHO")
    assert (run.code, run.out, run.switched) == (0, b"a\n", 1)
    assert 'Defaulted container "a" out of: a, b' in run.err


@on_the_cluster
async def test_a_refusal_is_the_kubelets_text(env: Env) -> None:
    """Proxied, as kube-apiserver does for SPDY: the kubelet's 500 and its words."""
    run = await kubectl(env, "exec", "half", "-c", "done", "--", "true")
    assert (run.code, run.switched) == (1, 0)
    assert run.err == 'error: unable to upgrade connection: container not found ("done")\n'


@on_the_cluster
async def test_tty_gets_the_terminal_size_and_its_changes(env: Env) -> None:
    """``exec -it`` under a pseudo-terminal: the size on the resize stream, then SIGWINCH's."""
    terminal = Terminal(37, 123)
    script = 'while read a; do [ "$a" = q ] && exit 4; echo size $(stty size); done'
    try:
        process = await asyncio.create_subprocess_exec(
            kubectl_1_30(),
            "-s",
            f"http://127.0.0.1:{env.port}",
            "-v=6",
            "exec",
            "-it",
            "duo",
            "-c",
            "a",
            "--",
            "sh",
            "-c",
            script,
            stdin=terminal.slave,
            stdout=terminal.slave,
            stderr=terminal.slave,
            env=kubectl_env(env.tmp),
            start_new_session=True,
        )
        os.close(terminal.slave)
        terminal.slave = -1

        def answered(size: bytes) -> bool:
            """Ask again until the size has arrived (it travels beside stdin, not in it)."""
            if size in terminal.output:
                return True
            terminal.type(b"\r")
            return False

        await wait_until(lambda: answered(b"size 37 123"), within=30, interval=0.2, what="37x123")
        terminal.resize(50, 160)
        process.send_signal(signal.SIGWINCH)
        await wait_until(lambda: answered(b"size 50 160"), within=30, interval=0.2, what="50x160")
        terminal.type(b"q\r")
        assert await asyncio.wait_for(process.wait(), 30) == 4
    finally:
        terminal.close()
    assert SWITCHED.search(terminal.output.decode(errors="replace"))
    assert b"size 37 123\r\n" in terminal.output  # a TTY's line endings, not a pipe's


@on_the_cluster
async def test_attach_to_a_container_reading_stdin(env: Env) -> None:
    script = b"echo attached-$((6*7)); echo to-stderr >&2; exit 0\n"
    run = await kubectl(env, "attach", "-i", "talk", "-c", "c", stdin=script)
    assert (run.code, run.out, run.switched) == (0, b"attached-42\n", 1)
    assert "to-stderr" in run.err

    async def succeeded() -> bool:
        return await phase(env.cluster, "talk") == "Succeeded"

    await wait_until(succeeded, within=30, what="the attached shell's exit to end the pod")


@on_the_cluster
async def test_cp_both_ways(env: Env) -> None:
    """``kubectl cp`` is tar over exec: ``tar -xmf -`` fed by stdin, ``tar cf -`` read back."""
    source = env.tmp / "data"
    (source / "deep").mkdir(parents=True)
    files = {"one.bin": os.urandom(300_000), "deep/two.txt": b"hello from the other side\n"}
    for name, content in files.items():
        (source / name).write_bytes(content)
    run = await kubectl(env, "cp", str(source), "default/duo:/tmp/data", "-c", "a")
    assert (run.code, run.switched) == (0, 2), run.err  # ``test -d`` first, then ``tar``
    back = env.tmp / "back"
    run = await kubectl(env, "cp", "default/duo:/tmp/data", str(back), "-c", "a")
    assert (run.code, run.switched) == (0, 1), run.err
    for name, content in files.items():
        assert (back / name).read_bytes() == content


# -- a raw SPDY client: what kubectl never asks for --


async def upgrade(
    env: Env, path: str, *protocols: str
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
    offered = "".join(f"X-Stream-Protocol-Version: {name}\r\n" for name in protocols)
    writer.write(
        f"POST /api/v1/namespaces/default/pods/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n{offered}Content-Length: 0\r\n\r\n".encode()
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    return head, reader, writer


@on_the_cluster
async def test_v3_over_the_wire_and_refused_handshakes(env: Env) -> None:
    path = "duo/exec?command=sh&command=-c&command=exit+3&container=a&stdout=true"
    head, reader, writer = await upgrade(env, path, "v3.channel.k8s.io", "v2.channel.k8s.io")
    try:
        assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
        assert "X-Stream-Protocol-Version: v3.channel.k8s.io\r\n" in head
        client = Client()
        streams = [client.open(kind) for kind in ("error", "stdout", "stderr")]
        while not client.to_server.empty():
            writer.write(client.to_server.get_nowait() or b"")
        while not set(streams) <= client.finished:
            chunk = await asyncio.wait_for(reader.read(65536), 30)
            assert chunk, "the server closed before every stream ended"
            await client.from_server(chunk)
        assert client.data[streams[0]].decode() == EXIT_3["message"]
    finally:
        writer.close()
    for protocols, status in (((), 400), (("v5.channel.k8s.io",), 403)):
        head, _, writer = await upgrade(env, path, *protocols)
        writer.close()
        assert head.startswith(f"HTTP/1.1 {status} ")


@on_the_cluster
async def test_open_sessions_do_not_hold_shutdown(env: Env) -> None:
    """The API server's shutdown closes a SPDY session at once (GOAWAY, then the socket).

    client-go reads an error stream that ended without a word as success, so kubectl 1.30
    exits 0, as it does when a real API server goes away under it.
    """
    process = await asyncio.create_subprocess_exec(
        kubectl_1_30(),
        "-s",
        f"http://127.0.0.1:{env.port}",
        "exec",
        "duo",
        "-c",
        "a",
        "--",
        "sh",
        "-c",
        "echo up; sleep 300",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl_env(env.tmp),
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"up\n"
    loop = asyncio.get_running_loop()
    stopping = loop.time()
    await env.cluster.server.resources.streams.shutdown()
    _, err = await asyncio.wait_for(process.communicate(), 10)
    assert loop.time() - stopping < 3
    assert (process.returncode, err) == (0, b"")
