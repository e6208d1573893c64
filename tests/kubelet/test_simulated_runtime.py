"""SimulatedRuntime's listings agree with each other: the relist's cheap ``states``, a
sync's ``snapshot`` and ``container_status``, and the full ``sandboxes``/``containers``."""

from __future__ import annotations

from minikube_py.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ItemState,
    PodRef,
    PodSnapshot,
    SandboxConfig,
)
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime


async def test_listings_agree_and_follow_the_clock() -> None:
    now = [1000.0]
    runtime = SimulatedRuntime("sim", clock=lambda: now[0])
    pod, other = PodRef("u1", "p", "ns"), PodRef("u2", "q", "ns")
    sandbox = await runtime.run_sandbox(SandboxConfig(pod=pod, attempt=0, hostname="p"))
    assert sandbox == (await runtime.sandboxes(pod.uid))[0]
    assert sandbox.ready
    assert sandbox.ip

    def config(name: str, *command: str) -> ContainerConfig:
        return ContainerConfig(pod=pod, name=name, attempt=0, image="img", command=command)

    forever = await runtime.create_container(sandbox.id, config("a", "sleep", "infinity"))
    brief = await runtime.create_container(sandbox.id, config("b", "sleep", "5"))
    for container_id in (forever, brief):
        await runtime.start_container(container_id)
    waiting = await runtime.create_container(sandbox.id, config("c", "true"))
    other_sandbox = await runtime.run_sandbox(SandboxConfig(pod=other, attempt=0, hostname="q"))

    assert await runtime.snapshot(pod.uid) == PodSnapshot(
        await runtime.sandboxes(pod.uid), await runtime.containers(pod.uid)
    )
    assert sorted(await runtime.states(), key=lambda s: s.id) == sorted(
        [
            ItemState(sandbox.id, pod.uid, True, ContainerState.RUNNING, sandbox.ip),
            ItemState(forever, pod.uid, False, ContainerState.RUNNING),
            ItemState(brief, pod.uid, False, ContainerState.RUNNING),
            ItemState(waiting, pod.uid, False, ContainerState.CREATED),
            ItemState(other_sandbox.id, other.uid, True, ContainerState.RUNNING, other_sandbox.ip),
        ],
        key=lambda s: s.id,
    )

    now[0] += 5  # ``sleep 5`` is over: every listing says so, the cheap one too
    states = {s.id: s.state for s in await runtime.states()}
    assert states[brief] is ContainerState.EXITED
    assert states[forever] is ContainerState.RUNNING
    done = await runtime.container_status(brief)
    assert done is not None
    assert (done.state, done.exit_code) == (ContainerState.EXITED, 0)

    await runtime.stop_sandbox(sandbox.id, 0)
    (stopped,) = [s for s in await runtime.states() if s.id == sandbox.id]
    assert (stopped.state, stopped.ip) == (ContainerState.EXITED, "")
    await runtime.remove_container(forever)
    assert await runtime.container_status(forever) is None
    assert forever not in {s.id for s in await runtime.states()}
    assert await runtime.snapshot("nobody") == PodSnapshot([], [])
