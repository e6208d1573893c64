"""Validation shared by every kind: ObjectMeta, and field-path helpers for strategies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from minikube_py import errors
from minikube_py.errors import FieldError
from minikube_py.meta import names
from minikube_py.meta.objects import Obj, metadata

NameRule = Callable[[str, bool], list[str]]

SUBDOMAIN: NameRule = names.name_is_dns_subdomain
DNS_LABEL: NameRule = names.name_is_dns_label
DNS1035: NameRule = names.name_is_dns1035_label


def object_meta(obj: Obj, *, namespaced: bool, name_rule: NameRule = SUBDOMAIN) -> list[FieldError]:
    meta = metadata(obj)
    problems: list[FieldError] = []
    name, generate = meta.get("name"), meta.get("generateName")
    if name:
        problems += [errors.invalid("metadata.name", name, m) for m in name_rule(str(name), False)]
    elif generate:
        problems += [
            errors.invalid("metadata.generateName", generate, m)
            for m in name_rule(str(generate), True)
        ]
    if namespaced and not meta.get("namespace"):
        problems.append(errors.required("metadata.namespace"))
    problems += _labels(meta.get("labels"))
    problems += _annotations(meta.get("annotations"))
    problems += _finalizers(meta.get("finalizers"))
    return problems


def _labels(labels: Any) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [errors.invalid("metadata.labels", labels, "must be a map of strings")]
    problems = []
    for key, value in labels.items():
        problems += [errors.invalid("metadata.labels", key, m) for m in _qualified_name(key)]
        if not isinstance(value, str):
            problems.append(errors.invalid("metadata.labels", value, "must be a string"))
            continue
        problems += [errors.invalid("metadata.labels", value, m) for m in _label_value(value)]
    return problems


Verdict = Callable[[str], tuple[str, ...]]
CACHED_LENGTH = 320
"""Longest text whose verdict is remembered: any valid qualified name (253 + 1 + 63) fits."""


def _remembered(check: Callable[[str], list[str]]) -> Verdict:
    """``check`` with its verdicts cached, for texts that repeat from object to object.

    Label keys and values, annotation keys and finalizers recur (every pod of a Deployment
    carries the same ones), unlike names. Only short texts are remembered, so that a
    client cannot fill memory with long (and invalid anyway) ones.
    """
    cached = functools.lru_cache(maxsize=4096)(lambda text: tuple(check(text)))

    def verdict(text: str) -> tuple[str, ...]:
        return cached(text) if len(text) <= CACHED_LENGTH else tuple(check(text))

    return verdict


_qualified_name = _remembered(names.is_qualified_name)
_label_value = _remembered(names.is_label_value)
_annotation_key = _remembered(names.annotation_key_errors)


def _annotations(annotations: Any) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [errors.invalid("metadata.annotations", annotations, "must be a map of strings")]
    problems = []
    for key in annotations:
        problems += [errors.invalid("metadata.annotations", key, m) for m in _annotation_key(key)]
    for message in names.annotations_size_errors(annotations):
        problems.append(FieldError("FieldValueTooLong", "metadata.annotations", message))
    return problems


def _finalizers(finalizers: Any) -> list[FieldError]:
    if finalizers is None:
        return []
    if not isinstance(finalizers, list):
        return [errors.invalid("metadata.finalizers", finalizers, "must be a list of strings")]
    problems = []
    for i, item in enumerate(finalizers):
        if not isinstance(item, str):
            problems.append(errors.invalid(f"metadata.finalizers[{i}]", item, "must be a string"))
        else:
            problems += [
                errors.invalid(f"metadata.finalizers[{i}]", item, m) for m in _qualified_name(item)
            ]
    return problems


def immutable(path: str, new: Any, old: Any) -> list[FieldError]:
    """kube's ``field is immutable`` error when an update changes a fixed field."""
    if new != old:
        return [errors.invalid(path, new, "field is immutable")]
    return []


def required_string(obj: Any, path: str, *keys: str) -> list[FieldError]:
    value = obj
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if not value:
        return [errors.required(path)]
    if not isinstance(value, str):
        return [errors.invalid(path, value, "must be a string")]
    return []
