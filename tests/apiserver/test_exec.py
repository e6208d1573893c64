"""``pods/exec`` and ``pods/attach``: the channel protocol, then the real clients on real Docker.

The wire rules (subprotocol choice, options, the Status wording of each path, resize
messages) are tested as pure functions. Then a cluster with a Docker node serves the real
kubectl 1.32 (WebSocket v5; under a pseudo-terminal for ``-it``) and the official Python
client (v5 by default, v4 when asked), through the API server to the in-process kubelet.
The kubelet reached over HTTP is in ``tests/kubelet/test_exec_docker.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import pty
import signal
import struct
import termios
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import MultiDict

from minikube_py.apiserver import channels
from minikube_py.apiserver.channels import StreamOptions
from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import PODS
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

BUSYBOX = "busybox:1.35"
WEBSOCKET = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}

# -- the wire, as pure functions --


def test_v5_wins_wherever_it_is_offered() -> None:
    """kube-apiserver 1.32 sends every request offering v5 to its stream translator."""
    assert channels.negotiate("v5.channel.k8s.io") == "v5.channel.k8s.io"
    assert channels.negotiate("v4.channel.k8s.io, v5.channel.k8s.io") == "v5.channel.k8s.io"


def test_otherwise_the_clients_first_supported_choice() -> None:
    assert channels.negotiate("v3.channel.k8s.io,v4.channel.k8s.io") == "v4.channel.k8s.io"
    assert channels.negotiate("base64.channel.k8s.io, channel.k8s.io") == "base64.channel.k8s.io"
    assert channels.negotiate("") == ""  # no header: v1 without a name


def test_unsupported_subprotocols_are_named() -> None:
    with pytest.raises(channels.UnsupportedProtocol) as caught:
        channels.negotiate("v3.channel.k8s.io, SPDY/3.1+portforward.k8s.io")
    assert str(caught.value).startswith(
        "requested protocol(s) are not supported: [v3.channel.k8s.io SPDY/3.1+portforward.k8s.io];"
    )


def test_api_options_and_the_kubelets_query() -> None:
    """What kubectl sends for ``exec -i -c app box -- sh -c 'x'``, and the kubelet's view."""
    query = MultiDict(
        [
            ("command", "sh"),
            ("command", "-c"),
            ("command", "x"),
            ("container", "app"),
            ("stdin", "true"),
            ("stdout", "true"),
            ("stderr", "true"),
        ]
    )
    options = channels.api_options(query)
    assert options == StreamOptions(("sh", "-c", "x"), "app", True, True, True, False)
    kubelet = options.kubelet_query()
    assert kubelet == [
        ("input", "1"),
        ("output", "1"),
        ("error", "1"),
        ("command", "sh"),
        ("command", "-c"),
        ("command", "x"),
    ]
    assert channels.kubelet_options(MultiDict(kubelet)) == StreamOptions(
        ("sh", "-c", "x"), "", True, True, True, False
    )


def test_no_stderr_beside_a_tty_and_stdout_stderr_always_asked() -> None:
    query = MultiDict([("tty", "1"), ("error", "1"), ("output", "true"), ("input", "1")])
    assert channels.kubelet_options(query) == StreamOptions((), "", True, False, False, True)
    assert channels.api_options(MultiDict([("stdout", "false"), ("tty", "False")])) == (
        StreamOptions(stdout=True, stderr=True)  # kube's defaults win over the query
    )


def test_statuses_as_the_kubelet_writes_them() -> None:
    detail = "error executing command [sh -c exit 3], exit code 3"
    assert json.dumps(channels.exit_failure(3, detail), separators=(",", ":")) == (
        '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit'
        ' code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",'
        '"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}'
    )
    assert channels.success() == {"metadata": {}, "status": "Success"}
    assert channels.internal_error("boom") == {
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: boom",
        "reason": "InternalError",
        "details": {"causes": [{"message": "boom"}]},
        "code": 500,
    }


def test_v5_clients_get_the_stream_translators_words() -> None:
    kubelet = channels.exit_failure(3, "error executing command [sh -c exit 3], exit code 3")
    assert channels.translated_for_v5(kubelet)["message"] == (
        "command terminated with non-zero exit code: command terminated with exit code 3"
    )
    assert channels.translated_for_v5(kubelet)["details"]["causes"] == [
        {"reason": "ExitCode", "message": "3"}
    ]
    refused = channels.internal_error("error executing command in container: no")
    assert channels.translated_for_v5(refused)["message"] == (
        "Internal error occurred: Internal error occurred: error executing command in container: no"
    )
    assert channels.translated_for_v5(channels.success()) == channels.success()
    odd = channels.exit_failure(3, "x")
    odd["details"]["causes"][0]["message"] = "300"
    assert channels.translated_for_v5(odd)["message"] == (
        'Internal error occurred: error stream protocol error: invalid exit code value "300"'
    )


def test_resize_messages_however_they_are_cut() -> None:
    sizes = channels.ResizeDecoder()
    assert sizes.feed(b'{"Width":80,"Hei') == []
    assert sizes.feed(b'ght":24}{"Width":100,"Height":30}\n') == [(80, 24), (100, 30)]
    assert sizes.feed(b'{"width":1,"height":2}') == [(1, 2)]


# -- a cluster with a Docker node --


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require_docker()
    require_binary("kubectl")
    node = f"ex-{uuid.uuid4().hex[:8]}"
    try:
        async with running_cluster(tmp_path, simulated_nodes=0, docker_node=node) as running:
            yield running
    finally:
        remove_node_containers(node)


def busybox(name: str, script: str = "sleep 3600", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **extra}


async def run_pod(
    cluster: Cluster, name: str, *containers: dict[str, Any], node: str = "", **spec: Any
) -> None:
    """Create a pod on the Docker node (or ``node``) and wait until it is Running."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node or cluster.config.node_name,
            "containers": list(containers) or [busybox("c")],
            **spec,
        },
    }
    await cluster.client.create(PODS, "default", body)

    async def running() -> bool:
        pod = await cluster.client.get(PODS, "default", name)
        return (pod.get("status") or {}).get("phase") == "Running"

    await wait_until(running, within=60, what=f"pod {name} Running")


def kubectl_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(tmp / "kubectl-cache")}


async def kubectl(
    cluster: Cluster, tmp: Path, *args: str, stdin: bytes | None = None
) -> tuple[int, bytes, str]:
    """The real kubectl, run asynchronously (the cluster lives in this event loop)."""
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "-s",
        f"http://127.0.0.1:{cluster.config.apiserver.port}",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl_env(tmp),
        cwd=tmp,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    return process.returncode or 0, out, err.decode()


async def test_exit_code_is_kubectls_own(cluster: Cluster, tmp_path: Path) -> None:
    await run_pod(cluster, "box")
    code, out, err = await kubectl(
        cluster, tmp_path, "exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (code, out) == (3, b"out\n")
    assert err == "err\ncommand terminated with exit code 3\n"
    code, out, err = await kubectl(cluster, tmp_path, "exec", "box", "--", "true")
    assert (code, out, err) == (0, b"", "")


async def test_a_missing_binary_is_dockers_126(cluster: Cluster, tmp_path: Path) -> None:
    await run_pod(cluster, "box")
    code, out, err = await kubectl(cluster, tmp_path, "exec", "box", "--", "no-such-binary")
    assert code == 126
    assert b'exec: "no-such-binary": executable file not found in $PATH' in out
    assert err.endswith("command terminated with exit code 126\n")


async def test_stdin_and_stdout_carry_a_megabyte_exactly(cluster: Cluster, tmp_path: Path) -> None:
    """The end of kubectl's stdin travels as v5's close of channel 0 (``cat`` then ends)."""
    await run_pod(cluster, "box")
    data = os.urandom(2**20)
    code, out, err = await kubectl(
        cluster, tmp_path, "exec", "-i", "box", "--", "sh", "-c", "cat > /x", stdin=data
    )
    assert (code, out, err) == (0, b"", "")
    code, out, _ = await kubectl(cluster, tmp_path, "exec", "box", "--", "sha256sum", "/x")
    assert (code, out.split()[0].decode()) == (0, hashlib.sha256(data).hexdigest())
    code, out, _ = await kubectl(cluster, tmp_path, "exec", "box", "--", "cat", "/x")
    assert code == 0
    assert out == data


async def test_container_flag_picks_the_container(cluster: Cluster, tmp_path: Path) -> None:
    await run_pod(
        cluster,
        "duo",
        busybox("a", env=[{"name": "WHO", "value": "a"}]),
        busybox("b", env=[{"name": "WHO", "value": "b"}]),
    )
    code, out, _ = await kubectl(
        cluster, tmp_path, "exec", "duo", "-c", "b", "--", "sh", "-c", "echo $WHO"
    )
    assert (code, out) == (0, b"b\n")
    code, out, err = await kubectl(cluster, tmp_path, "exec", "duo", "--", "sh", "-c", "echo $WHO")
    assert (code, out) == (0, b"a\n")
    assert 'Defaulted container "a" out of: a, b' in err
    code, _, err = await kubectl(cluster, tmp_path, "exec", "duo", "-c", "z", "--", "true")
    assert code == 1
    assert err == "Error from server (BadRequest): container z is not valid for pod duo\n"


class Terminal:
    """kubectl under a pseudo-terminal, so that ``-it`` really gets a TTY (and SIGWINCH)."""

    def __init__(self, rows: int, columns: int) -> None:
        self.master, self.slave = pty.openpty()
        self.resize(rows, columns)
        self.output = bytearray()
        self.closed = asyncio.Event()
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave end is closed
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.master)
            self.closed.set()
        self.output += chunk

    async def until(self, text: bytes, within: float = 30) -> None:
        await wait_until(lambda: text in self.output, within=within, what=repr(text))

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            asyncio.get_running_loop().remove_reader(self.master)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


async def test_tty_gets_the_terminal_size_and_its_changes(cluster: Cluster, tmp_path: Path) -> None:
    """``kubectl exec -it``: raw terminal, the size first, then a resize on SIGWINCH."""
    await run_pod(cluster, "box")
    terminal = Terminal(37, 123)
    script = "read a; echo size $(stty size); read b; echo size $(stty size); exit 4"
    try:
        process = await asyncio.create_subprocess_exec(
            "kubectl",
            "-s",
            f"http://127.0.0.1:{cluster.config.apiserver.port}",
            "exec",
            "-it",
            "box",
            "--",
            "sh",
            "-c",
            script,
            stdin=terminal.slave,
            stdout=terminal.slave,
            stderr=terminal.slave,
            env=kubectl_env(tmp_path),
            start_new_session=True,
        )
        os.close(terminal.slave)
        terminal.slave = -1
        await asyncio.sleep(1.0)  # the session is up and kubectl's first size has gone
        terminal.type(b"\r")
        await terminal.until(b"size 37 123")
        terminal.resize(50, 160)
        process.send_signal(signal.SIGWINCH)
        await asyncio.sleep(0.5)
        terminal.type(b"\r")
        await terminal.until(b"size 50 160")
        assert await asyncio.wait_for(process.wait(), 30) == 4
    finally:
        terminal.close()
    assert b"\r\n" in terminal.output  # a TTY's line endings, not a pipe's


async def test_attach_to_a_container_reading_stdin(cluster: Cluster, tmp_path: Path) -> None:
    await run_pod(
        cluster,
        "talk",
        {"name": "c", "image": BUSYBOX, "command": ["sh"], "stdin": True},
        restartPolicy="Never",
    )
    script = b"echo attached-$((6*7)); echo to-stderr >&2; exit 0\n"
    code, out, err = await kubectl(
        cluster, tmp_path, "attach", "-i", "talk", "-c", "c", stdin=script
    )
    assert (code, out) == (0, b"attached-42\n")
    assert "to-stderr" in err

    async def succeeded() -> bool:
        pod = await cluster.client.get(PODS, "default", "talk")
        return (pod.get("status") or {}).get("phase") == "Succeeded"

    await wait_until(succeeded, within=30, what="the attached shell's exit to end the pod")


async def test_cp_both_ways(cluster: Cluster, tmp_path: Path) -> None:
    """``kubectl cp`` is tar over exec: ``tar -xmf -`` fed by stdin, ``tar cf -`` read back."""
    await run_pod(cluster, "box")
    source = tmp_path / "data"
    (source / "deep").mkdir(parents=True)
    files = {"one.bin": os.urandom(300_000), "deep/two.txt": b"hello from the other side\n"}
    for name, content in files.items():
        (source / name).write_bytes(content)
    code, _, err = await kubectl(cluster, tmp_path, "cp", str(source), "default/box:/tmp/data")
    assert code == 0, err
    code, out, _ = await kubectl(cluster, tmp_path, "exec", "box", "--", "cat", "/tmp/data/one.bin")
    assert out == files["one.bin"]
    back = tmp_path / "back"
    code, _, err = await kubectl(cluster, tmp_path, "cp", "default/box:/tmp/data", str(back))
    assert code == 0, err
    for name, content in files.items():
        assert (back / name).read_bytes() == content
    code, _, err = await kubectl(
        cluster, tmp_path, "cp", "default/box:/tmp/data/one.bin", str(tmp_path / "one")
    )
    assert code == 0, err
    assert (tmp_path / "one").read_bytes() == files["one.bin"]


async def test_refusals_read_as_on_a_real_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """kubectl 1.32's words for each refusal: a Status before the upgrade, or after it."""
    await run_pod(
        cluster,
        "half",
        busybox("up"),
        busybox("done", "exit 0"),
        restartPolicy="Never",
    )

    async def done_exited() -> bool:
        pod = await cluster.client.get(PODS, "default", "half")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return any(s["name"] == "done" and "terminated" in s["state"] for s in statuses)

    await wait_until(done_exited, within=30, what="container done to exit")
    code, _, err = await kubectl(cluster, tmp_path, "exec", "half", "-c", "done", "--", "true")
    assert code == 1
    assert err == (
        "error: Internal error occurred: unable to upgrade connection:"
        ' container not found ("done")\n'
    )
    # v4 and older are proxied: the kubelet's own status and text come back
    url = (
        f"http://127.0.0.1:{cluster.config.apiserver.port}/api/v1/namespaces/default/pods/half/"
        "exec?command=true&container=done"
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(url, protocols=(channels.V4,))
        assert caught.value.status == 500
        async with session.get(
            url, headers={**WEBSOCKET, "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}
        ) as answer:
            assert (answer.status, await answer.text()) == (500, 'container not found ("done")')
    unscheduled = {"metadata": {"name": "nowhere"}, "spec": {"containers": [busybox("c")]}}
    await cluster.client.create(PODS, "default", unscheduled)
    code, _, err = await kubectl(cluster, tmp_path, "exec", "nowhere", "--", "true")
    assert code == 1
    assert err == "Error from server (BadRequest): pod nowhere does not have a host assigned\n"


async def test_simulated_nodes_run_no_commands(tmp_path: Path) -> None:
    require_binary("kubectl")
    async with running_cluster(tmp_path, simulated_nodes=1) as cluster:
        await run_pod(cluster, "sim", node="sim-0")
        code, _, err = await kubectl(cluster, tmp_path, "exec", "sim", "--", "true")
    assert code == 1
    assert err == (
        "error: Internal error occurred: Internal error occurred: error executing command in"
        " container: exec is not supported on simulated node sim-0\n"
    )


async def test_open_sessions_do_not_hold_shutdown(tmp_path: Path) -> None:
    """An exec still running when the API server stops is closed (1001), not waited for."""
    require_docker()
    node = f"ex-{uuid.uuid4().hex[:8]}"
    try:
        async with running_cluster(tmp_path, simulated_nodes=0, docker_node=node) as cluster:
            await run_pod(cluster, "box")
            process = await asyncio.create_subprocess_exec(
                "kubectl",
                "-s",
                f"http://127.0.0.1:{cluster.config.apiserver.port}",
                "exec",
                "box",
                "--",
                "sleep",
                "300",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=kubectl_env(tmp_path),
            )
            await asyncio.sleep(1.5)
            stopping = asyncio.get_running_loop().time()
        assert asyncio.get_running_loop().time() - stopping < 3
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 1
        assert "going away" in err.decode()
    finally:
        remove_node_containers(node)


# -- the HTTP answers before an upgrade --


async def test_what_is_answered_before_any_upgrade(cluster: Cluster) -> None:
    await run_pod(cluster, "box")
    base = f"http://127.0.0.1:{cluster.config.apiserver.port}/api/v1/namespaces/default/pods"
    websocket = WEBSOCKET
    cases = [
        ("GET", "nosuch/exec?command=true&stdout=true", websocket, 404, 'pods "nosuch" not found'),
        ("GET", "box/exec?command=true&stdout=true", {}, 400, "Upgrade request required"),
        ("PUT", "box/exec?command=true", {}, 405, None),
        (
            "POST",
            "box/exec?command=true&stdout=true",
            {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"},
            400,
            "unable to upgrade: X-Stream-Protocol-Version is required",
        ),
        (
            "GET",
            "box/exec?command=true&stdout=true",
            {**websocket, "Sec-WebSocket-Protocol": "v3.channel.k8s.io"},
            400,
            "requested protocol(s) are not supported: [v3.channel.k8s.io]",
        ),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path, headers, code, message in cases:
            async with session.request(method, f"{base}/{path}", headers=headers) as answer:
                body = await answer.json()
            assert (answer.status, body["kind"], body["code"]) == (code, "Status", code), path
            if message is not None:
                assert body["message"].startswith(message), body


# -- the official Python client --


def python_client(cluster: Cluster) -> Any:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{cluster.config.apiserver.port}"
    return client.CoreV1Api(client.ApiClient(configuration))


def release(answer: Any) -> None:
    """Close a client stream: websocket-client leaves the socket open when the server closed
    first (its ``close()`` returns early), which would be a ResourceWarning later."""
    answer.close()
    answer.sock.shutdown()


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
async def test_python_client_stream(cluster: Cluster, protocol: str) -> None:
    """``stream()`` offers v5 then v4 by default; older clients (and ours, asked) speak v4."""
    from kubernetes.stream import stream

    await run_pod(cluster, "box")
    core = python_client(cluster)
    script = "echo out; echo err >&2; exit 7"

    def run() -> tuple[str, str, str, int, str]:
        answer = stream(
            core.connect_get_namespaced_pod_exec,
            "box",
            "default",
            command=["sh", "-c", script],
            stdin=False,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
            _headers={"sec-websocket-protocol": protocol},
        )
        answer.run_forever(timeout=30)
        status = answer.peek_channel(channels.ERROR)
        found = answer.subprotocol, answer.read_stdout(), answer.read_stderr()
        code = answer.returncode
        release(answer)
        return (*found, code, status)

    subprotocol, out, err, code, status = await asyncio.to_thread(run)
    assert (subprotocol, out, err, code) == (protocol, "out\n", "err\n", 7)
    detail = (
        "command terminated with exit code 7"
        if protocol == channels.V5
        else f"error executing command [sh -c {script}], exit code 7"
    )
    assert json.loads(status)["message"] == f"command terminated with non-zero exit code: {detail}"

    def without_stdout() -> str:
        """No stdout asked for: kube's defaults give it anyway."""
        answer = stream(
            core.connect_get_namespaced_pod_exec,
            "box",
            "default",
            command=["echo", "hi"],
            _preload_content=False,
        )
        answer.run_forever(timeout=30)
        output = str(answer.read_all())
        release(answer)
        return output

    assert await asyncio.to_thread(without_stdout) == "hi\n"


async def test_python_client_tty_and_resize(cluster: Cluster) -> None:
    from kubernetes.stream import stream

    await run_pod(cluster, "box")
    core = python_client(cluster)

    def run() -> tuple[str, int]:
        answer = stream(
            core.connect_get_namespaced_pod_exec,
            "box",
            "default",
            command=["sh", "-c", "read a; stty size; tty"],
            stdin=True,
            stdout=True,
            stderr=False,
            tty=True,
            _preload_content=False,
        )
        answer.write_channel(channels.RESIZE, json.dumps({"Width": 101, "Height": 29}))
        answer.write_stdin("go\n")
        answer.run_forever(timeout=30)
        code = answer.returncode  # read_all() would drop the error channel
        output = answer.read_all()
        release(answer)
        return output, code

    output, code = await asyncio.to_thread(run)
    assert code == 0
    lines = output.split("\r\n")
    assert "29 101" in lines
    assert any(line.startswith("/dev/pts/") for line in lines)
