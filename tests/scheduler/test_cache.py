"""The cache: node accounting, assume-then-bind, and pods whose node is not known yet."""

from __future__ import annotations

from minikube_py.scheduler.cache import Cache
from minikube_py.scheduler.placement import Taint
from tests.scheduler.builders import info, node


def test_assume_counts_at_once_and_confirm_does_not_double_count() -> None:
    cache = Cache()
    cache.set_node(node("n1"))
    pod = info(name="a", cpu="1", memory="1Gi", owner="rs")
    cache.assume(pod, "n1")
    n1 = cache.infos["n1"]
    assert (n1.req_cpu, n1.req_memory, len(n1.pods), n1.owners) == (1000, 1024**3, 1, {"rs": 1})
    assert cache.confirm("default/a", "n1")
    assert cache.assumed == set()
    assert n1.req_cpu == 1000
    assert not cache.forget("default/a")  # confirmed: a late failure takes nothing back


def test_forget_gives_the_room_back() -> None:
    cache = Cache()
    cache.set_node(node("n1"))
    cache.assume(info(name="a", cpu="1", host_ports=[{"hostPort": 80}]), "n1")
    assert cache.forget("default/a")
    n1 = cache.infos["n1"]
    assert (n1.req_cpu, n1.pods, n1.ports, n1.non_zero_cpu) == (0, {}, {}, 0)


def test_a_pod_bound_elsewhere_moves() -> None:
    cache = Cache()
    cache.set_node(node("n1"))
    cache.set_node(node("n2"))
    pod = info(name="a", cpu="1")
    cache.assume(pod, "n1")
    assert not cache.confirm("default/a", "n2")
    cache.add_pod(pod, "n2")
    assert (cache.infos["n1"].req_cpu, cache.infos["n2"].req_cpu) == (0, 1000)
    assert cache.node_of("default/a") == "n2"


def test_pods_before_their_node_and_after_it_is_gone() -> None:
    cache = Cache()
    cache.add_pod(info(name="a", cpu="1"), "later")
    assert cache.nodes == []  # not schedulable: no node object yet
    cache.set_node(node("later"))
    assert [n.name for n in cache.nodes] == ["later"]
    assert cache.infos["later"].req_cpu == 1000
    cache.remove_node("later")
    assert cache.nodes == []
    assert cache.infos["later"].req_cpu == 1000  # still there until the pod goes
    assert cache.remove_pod("default/a")
    assert "later" not in cache.infos


def test_set_node_says_whether_placement_could_change() -> None:
    cache = Cache()
    assert cache.set_node(node("n1"))
    heartbeat = node("n1")
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "2025-01-01T00:00:10Z"
    assert not cache.set_node(heartbeat)
    assert cache.set_node(node("n1", labels={"disk": "ssd"}))
    assert cache.set_node(node("n1", labels={"disk": "ssd"}, cpu="8"))
    assert cache.set_node(
        node(
            "n1", labels={"disk": "ssd"}, cpu="8", conditions=[{"type": "Ready", "status": "False"}]
        )
    )


def test_taints_are_split_by_effect() -> None:
    cache = Cache()
    cache.set_node(
        node(
            "n1",
            taints=[
                {"key": "a", "effect": "NoSchedule"},
                {"key": "b", "effect": "PreferNoSchedule"},
                {"key": "c", "value": "x", "effect": "NoExecute"},
            ],
        )
    )
    n1 = cache.infos["n1"]
    assert n1.hard_taints == (Taint("a", "", "NoSchedule"), Taint("c", "x", "NoExecute"))
    assert n1.soft_taints == (Taint("b", "", "PreferNoSchedule"),)


def test_allocatable_falls_back_to_capacity() -> None:
    cache = Cache()
    bare = node("n1")
    del bare["status"]["allocatable"]
    cache.set_node(bare)
    assert cache.infos["n1"].alloc_cpu == 4000
