"""ObjectMeta validation: verdicts on label keys and values, annotation keys and finalizers
are remembered between objects, which must never change what an object is told."""

from __future__ import annotations

from typing import Any

from minikube_py.errors import FieldError
from minikube_py.registry import validation


def problems(**meta: Any) -> list[tuple[str, str, object, str]]:
    obj = {"metadata": {"name": "ok", "namespace": "ns", **meta}}
    found: list[FieldError] = validation.object_meta(obj, namespaced=True)
    return [(p.type, p.field, p.value, p.detail) for p in found]


def test_repeated_texts_get_the_same_verdict_each_time() -> None:
    bad = {"-bad": "x", "app": "-no-", "example.com/tier": "web"}
    first = problems(labels=bad, annotations={"a b": ""}, finalizers=["x/y/z"])
    assert [field for _, field, _, _ in first] == [
        "metadata.labels",
        "metadata.labels",
        "metadata.annotations",
        "metadata.finalizers[0]",
    ]
    assert problems(labels=bad, annotations={"a b": ""}, finalizers=["x/y/z"]) == first
    assert problems(labels={"example.com/tier": "web"}, finalizers=["example.com/f"]) == []


def test_long_texts_are_judged_every_time() -> None:
    key = "a" * (validation.CACHED_LENGTH + 1)
    for _ in range(2):
        (problem,) = problems(labels={key: "v"})
        assert problem[2] == key
        assert problem[3].startswith("name part must be no more than 63 characters")
