"""Resource arithmetic as kube-scheduler does it: quantities as integers, pod requests.

CPU is counted in millicores and everything else in whole units, each rounded up as
``resource.Quantity.MilliValue``/``Value`` do, so ``0.5m`` of CPU is 1m and ``1.5Ki`` of
memory is 1536 bytes. Integers keep sums exact however many pods land on a node.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"

DEFAULT_MILLI_CPU_REQUEST = 100
"""What scoring assumes for a container without a CPU request (kube's 0.1 core)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""What scoring assumes for a container without a memory request (kube's 200 MB)."""

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Fraction | None:
    match = _QUANTITY.match(text.strip())
    if match is None:
        return None
    number, suffix = Fraction(match.group(1)), match.group(2)
    scale = _SUFFIXES.get(suffix)
    if scale is None:
        exponent = _EXPONENT.match(suffix)
        if exponent is None:
            return None
        scale = Fraction(10) ** int(exponent.group(1))
    return number * scale


def amount(resource: str, value: Any) -> int:
    """A quantity as the integer the scheduler compares: millicores for CPU, else units.

    Unparsable values count as 0: the API server validates quantities, and a scheduler
    that crashed on one bad pod would stop scheduling every other pod.
    """
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        parsed: Fraction | None = Fraction(value)
    else:
        parsed = _parse(str(value))
    if parsed is None:
        return 0
    return math.ceil(parsed * 1000) if resource == CPU else math.ceil(parsed)


def amounts(resources: Mapping[str, Any] | None) -> dict[str, int]:
    return {name: amount(name, value) for name, value in (resources or {}).items()}


@dataclass(frozen=True, slots=True)
class Requests:
    """What a pod asks of a node: the pod count is implicit (always one)."""

    cpu: int = 0
    memory: int = 0
    ephemeral: int = 0
    scalar: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, totals: Mapping[str, int]) -> Requests:
        scalar = tuple(
            sorted((k, v) for k, v in totals.items() if k not in (CPU, MEMORY, EPHEMERAL, PODS))
        )
        return cls(totals.get(CPU, 0), totals.get(MEMORY, 0), totals.get(EPHEMERAL, 0), scalar)

    def is_zero(self) -> bool:
        return not (self.cpu or self.memory or self.ephemeral or any(v for _, v in self.scalar))


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        into[name] = into.get(name, 0) + value


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > into.get(name, 0):
            into[name] = value


def _container_requests(
    container: Mapping[str, Any], defaults: Mapping[str, int]
) -> dict[str, int]:
    """Requests, else limits (the API server's defaulting copies limits into requests)."""
    resources = container.get("resources") or {}
    found = amounts(resources.get("limits"))
    found.update(amounts(resources.get("requests")))
    for name, value in defaults.items():
        found.setdefault(name, value)
    return found


def pod_requests(spec: Mapping[str, Any], defaults: Mapping[str, int] | None = None) -> Requests:
    """kube's ``PodRequests``: the sum of containers, at least each init container's
    need (restartable sidecars keep running, so they add up), plus the pod overhead.

    ``defaults`` fills in requests a container leaves out (scoring's non-zero view).
    """
    missing = defaults or {}
    totals: dict[str, int] = {}
    for container in _containers(spec.get("containers")):
        _add(totals, _container_requests(container, missing))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in _containers(spec.get("initContainers")):
        wanted = _container_requests(container, missing)
        if container.get("restartPolicy") == "Always":
            _add(totals, wanted)
            _add(sidecars, wanted)
            _max(init_peak, sidecars)
        else:
            running = dict(sidecars)
            _add(running, wanted)
            _max(init_peak, running)
    _max(totals, init_peak)
    _add(totals, amounts(spec.get("overhead")))
    return Requests.of(totals)


def _containers(value: Any) -> Iterable[Mapping[str, Any]]:
    return [c for c in value or () if isinstance(c, dict)]


NON_ZERO_DEFAULTS = {CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST}
