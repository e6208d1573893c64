"""The pure half of DockerRuntime: create bodies from configs, statuses from inspect JSON.

No daemon needed. The real-Docker suite (test_docker_runtime.py) checks that the daemon
accepts these bodies and behaves as promised; this one pins each rule down on its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.kubelet.runtime import docker_config as dc
from minikube_py.kubelet.runtime.interface import (
    CONTAINER_NAME,
    CONTAINER_TYPE,
    MANAGED_BY,
    NODE_NAME,
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    RESTART_COUNT,
    SANDBOX_ID,
    ContainerConfig,
    ContainerState,
    Mount,
    PodRef,
    PortMapping,
    SandboxConfig,
    SecurityContext,
)

POD = PodRef(uid="0b1c-uid", name="web-7d4", namespace="shop")
ZERO_TIME = "0001-01-01T00:00:00Z"


def container(**options: Any) -> ContainerConfig:
    fields: dict[str, Any] = {"attempt": 3, "image": "busybox:1.35", **options}
    return ContainerConfig(pod=POD, name="app", **fields)


def body(**options: Any) -> dict[str, Any]:
    return dc.container_body(container(**options), sandbox_id="sb1", node_name="n1")


# -- names and labels --


def test_names_follow_the_docker_shim() -> None:
    assert dc.sandbox_name(POD, 2) == "k8s_POD_web-7d4_shop_0b1c-uid_2"
    assert dc.container_name(container()) == "k8s_app_web-7d4_shop_0b1c-uid_3"


def test_identity_labels_win_over_pod_labels() -> None:
    config = SandboxConfig(
        pod=POD,
        attempt=0,
        hostname="web",
        labels={"app": "web", POD_UID: "forged"},
        annotations={"note": "x"},
    )
    labels = dc.sandbox_labels(config, "n1")
    assert labels[POD_UID] == "0b1c-uid"
    assert (labels["app"], labels["annotation.note"]) == ("web", "x")
    assert (labels[CONTAINER_TYPE], labels[MANAGED_BY], labels[NODE_NAME]) == (
        "podsandbox",
        "true",
        "n1",
    )
    labels = dc.container_labels(container(labels={RESTART_COUNT: "99"}), "sb1", "n1")
    assert labels[RESTART_COUNT] == "3"
    assert (labels[CONTAINER_NAME], labels[SANDBOX_ID], labels[CONTAINER_TYPE]) == (
        "app",
        "sb1",
        "container",
    )
    assert (labels[POD_NAME], labels[POD_NAMESPACE]) == ("web-7d4", "shop")
    assert labels[dc.TERMINATION_MESSAGE_PATH] == "/dev/termination-log"


def test_label_filters() -> None:
    assert dc.label_filters("n1", "container", pod_uid=None, sandbox_id="sb1") == {
        "label": [
            f"{MANAGED_BY}=true",
            f"{NODE_NAME}=n1",
            f"{CONTAINER_TYPE}=container",
            f"{SANDBOX_ID}=sb1",
        ]
    }


# -- sandbox --


def test_sandbox_on_the_bridge_publishes_host_ports() -> None:
    config = SandboxConfig(
        pod=POD,
        attempt=0,
        hostname="web",
        ports=(
            PortMapping(8080, 30080),
            PortMapping(53, 30053, "UDP", "127.0.0.1"),
            PortMapping(9090),  # no host port: exposed only
        ),
        dns_servers=("10.96.0.10",),
        dns_searches=("shop.svc.cluster.local", "svc.cluster.local"),
    )
    created = dc.sandbox_body(config, image="pause:x", node_name="n1")
    host = created["HostConfig"]
    assert (created["Image"], created["Hostname"]) == ("pause:x", "web")
    assert (host["NetworkMode"], host["IpcMode"], host["RestartPolicy"]) == (
        "bridge",
        "shareable",
        {"Name": "no"},
    )
    assert host["Dns"] == ["10.96.0.10"]
    assert host["DnsSearch"] == ["shop.svc.cluster.local", "svc.cluster.local"]
    assert set(created["ExposedPorts"]) == {"8080/tcp", "53/udp", "9090/tcp"}
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": "30080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "30053"}],
    }


def test_sandbox_on_the_host_network_sets_no_hostname_dns_or_ports() -> None:
    config = SandboxConfig(
        pod=POD,
        attempt=0,
        hostname="web",
        host_network=True,
        ports=(PortMapping(80, 80),),
        dns_servers=("10.96.0.10",),
    )
    created = dc.sandbox_body(config, image="pause:x", node_name="n1")
    assert created["HostConfig"]["NetworkMode"] == "host"
    assert not {"Hostname", "ExposedPorts"} & set(created)
    assert not {"Dns", "PortBindings"} & set(created["HostConfig"])


# -- container --


@pytest.mark.parametrize(
    ("command", "args", "entrypoint", "cmd"),
    [
        ((), (), None, None),  # the image's ENTRYPOINT and CMD
        (("echo",), (), ["echo"], None),  # Docker then drops the image's CMD
        ((), ("-v",), None, ["-v"]),  # the image's ENTRYPOINT, our CMD
        (("echo",), ("a", "b"), ["echo"], ["a", "b"]),
    ],
)
def test_command_and_args(
    command: tuple[str, ...], args: tuple[str, ...], entrypoint: Any, cmd: Any
) -> None:
    created = body(command=command, args=args)
    assert (created.get("Entrypoint"), created.get("Cmd")) == (entrypoint, cmd)


def test_container_joins_the_sandbox() -> None:
    created = body(env=(("A", "1"), ("B", "x=y")), working_dir="/srv", tty=True, stdin=True)
    host = created["HostConfig"]
    assert (host["NetworkMode"], host["IpcMode"]) == ("container:sb1", "container:sb1")
    assert "PidMode" not in host
    assert (host["RestartPolicy"], host["Init"]) == ({"Name": "no"}, False)
    assert created["Env"] == ["A=1", "B=x=y"]
    assert (created["WorkingDir"], created["Tty"], created["OpenStdin"]) == ("/srv", True, True)
    assert created["StdinOnce"] is False
    assert "User" not in created
    assert not {"Memory", "CpuQuota", "CpuShares", "Binds", "Tmpfs"} & set(host)


def test_mounts() -> None:
    mounts = (
        Mount("/var/lib/k/pods/u/volumes/cfg", "/etc/cfg", read_only=True),
        Mount("/data/sub", "/data", sub_path="sub"),  # host_path already holds sub_path
        Mount("", "/cache", tmpfs=True),
    )
    host = body(mounts=mounts)["HostConfig"]
    assert host["Binds"] == ["/var/lib/k/pods/u/volumes/cfg:/etc/cfg:ro", "/data/sub:/data"]
    assert host["Tmpfs"] == {"/cache": "rw"}


def test_resources() -> None:
    host = body(memory_limit=128 * 2**20, cpu_limit_millis=250, cpu_shares=256)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (128 * 2**20, 128 * 2**20)
    assert (host["CpuPeriod"], host["CpuQuota"], host["CpuShares"]) == (100_000, 25_000, 256)
    tiny = body(cpu_limit_millis=1, cpu_shares=1)["HostConfig"]
    assert (tiny["CpuQuota"], tiny["CpuShares"]) == (dc.MIN_CPU_QUOTA, dc.MIN_CPU_SHARES)


@pytest.mark.parametrize(
    ("user", "group", "expected"),
    [(1000, 2000, "1000:2000"), (0, None, "0"), (None, 2000, None)],
)
def test_user(user: int | None, group: int | None, expected: str | None) -> None:
    security = SecurityContext(run_as_user=user, run_as_group=group)
    assert body(security=security).get("User") == expected


def test_security() -> None:
    security = SecurityContext(
        privileged=True,
        read_only_root=True,
        add_capabilities=("NET_ADMIN",),
        drop_capabilities=("ALL",),
    )
    host = body(security=security)["HostConfig"]
    assert (host["Privileged"], host["ReadonlyRootfs"]) == (True, True)
    assert (host["CapAdd"], host["CapDrop"]) == (["NET_ADMIN"], ["ALL"])


# -- inspect results --


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", 1714557600.0),
        ("2024-05-01T10:00:00.5Z", 1714557600.5),
        ("2024-05-01T10:00:00.123456789Z", 1714557600.123456789),
        ("2024-05-01T12:00:00.25+02:00", 1714557600.25),
        (ZERO_TIME, 0.0),
        ("", 0.0),
        (None, 0.0),
        ("yesterday", 0.0),
    ],
)
def test_parse_time(text: str | None, expected: float) -> None:
    assert dc.parse_time(text) == pytest.approx(expected, abs=1e-6)


def inspected(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    labels = dc.container_labels(container(), "sb1", "n1")
    info = {
        "Id": "c1",
        "Name": "/k8s_app_web-7d4_shop_0b1c-uid_3",
        "Created": "2024-05-01T10:00:00Z",
        "Image": "sha256:abc",
        "Config": {"Image": "busybox:1.35", "Labels": labels},
        "State": {"StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "ExitCode": 0, **state},
    }
    return {**info, **extra}


@pytest.mark.parametrize(
    ("state", "expected", "reason"),
    [
        ({"Status": "created"}, ContainerState.CREATED, ""),
        ({"Status": "running"}, ContainerState.RUNNING, ""),
        ({"Status": "exited", "ExitCode": 0}, ContainerState.EXITED, "Completed"),
        ({"Status": "exited", "ExitCode": 3}, ContainerState.EXITED, "Error"),
        (
            {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
            ContainerState.EXITED,
            "OOMKilled",
        ),
        (
            {"Status": "created", "ExitCode": 127, "Error": "exec: no such file"},
            ContainerState.EXITED,
            "ContainerCannotRun",
        ),
        ({"Status": "weird"}, ContainerState.UNKNOWN, ""),
    ],
)
def test_parse_container_state(
    state: dict[str, Any], expected: ContainerState, reason: str
) -> None:
    status = dc.parse_container(inspected(state))
    assert (status.state, status.reason) == (expected, reason)
    assert status.exit_code == state.get("ExitCode", 0)
    assert status.message == state.get("Error", "")


def test_parse_container_identity_and_times() -> None:
    status = dc.parse_container(
        inspected(
            {
                "Status": "exited",
                "ExitCode": 3,
                "StartedAt": "2024-05-01T10:00:01.000500Z",
                "FinishedAt": "2024-05-01T10:00:01.0002Z",  # Docker's race: "before" start
            }
        )
    )
    assert (status.id, status.pod, status.name, status.attempt) == ("c1", POD, "app", 3)
    assert (status.image, status.image_id) == ("busybox:1.35", "sha256:abc")
    assert status.created_at == 1714557600.0
    assert status.started_at == status.finished_at == pytest.approx(1714557601.0005)


def test_parse_sandbox() -> None:
    config = SandboxConfig(pod=POD, attempt=4, hostname="web")
    info = {
        "Id": "s1",
        "Name": "/" + dc.sandbox_name(POD, 4),
        "Created": "2024-05-01T10:00:00Z",
        "Config": {"Labels": dc.sandbox_labels(config, "n1")},
        "State": {"Status": "running"},
        "NetworkSettings": {"IPAddress": "", "Networks": {"bridge": {"IPAddress": "172.17.0.5"}}},
    }
    status = dc.parse_sandbox(info)
    assert (status.id, status.pod, status.attempt, status.ready, status.ip) == (
        "s1",
        POD,
        4,
        True,
        "172.17.0.5",
    )
    stopped = dc.parse_sandbox({**info, "State": {"Status": "exited"}})
    assert (stopped.ready, stopped.ip) == (False, "")
