"""Where a pod may go: taints and tolerations, nodeSelector and node affinity terms.

Parsed once per pod (and once per node for taints) into small frozen values, so that the
filters, which run for every pod against every node they look at, only compare.
Semantics follow ``k8s.io/api/core/v1`` helpers (``ToleratesTaint``) and
``component-helpers/scheduling/corev1/nodeaffinity``: a term with an invalid requirement,
or with no requirement at all, matches no node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from minikube_py.meta.labels import Operator, Requirement, SelectorError, new_requirement

NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE = "NoSchedule", "NoExecute", "PreferNoSchedule"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}
_FIELD_OPERATORS = {"In": Operator.IN, "NotIn": Operator.NOT_IN}


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Taint:
        return cls(str(raw.get("key") or ""), str(raw.get("value") or ""), str(raw.get("effect")))


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Toleration:
        return cls(
            str(raw.get("key") or ""),
            str(raw.get("operator") or "Equal"),
            str(raw.get("value") or ""),
            str(raw.get("effect") or ""),
        )

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator == "Equal" and self.value == taint.value


def tolerated(taint: Taint, tolerations: Sequence[Toleration]) -> bool:
    return any(toleration.tolerates(taint) for toleration in tolerations)


def first_untolerated(
    taints: Sequence[Taint], tolerations: Sequence[Toleration], effects: frozenset[str]
) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration covers, in node order."""
    for taint in taints:
        if taint.effect in effects and not tolerated(taint, tolerations):
            return taint
    return None


@dataclass(frozen=True, slots=True)
class Term:
    """One nodeSelectorTerm: every label and field requirement must hold."""

    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]
    valid: bool = True

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if not self.valid or not (self.labels or self.fields):
            return False
        if not all(requirement.matches(labels) for requirement in self.labels):
            return False
        fields = {"metadata.name": name}
        return all(requirement.matches(fields) for requirement in self.fields)


def _requirements(
    expressions: Any, operators: Mapping[str, Operator], *, field: bool
) -> tuple[Requirement, ...]:
    found = []
    for expression in expressions or ():
        operator = operators.get(str(expression.get("operator")))
        key = str(expression.get("key") or "")
        if operator is None or (field and key != "metadata.name"):
            raise SelectorError(f"invalid node selector requirement {expression!r}")
        values = [str(v) for v in expression.get("values") or ()]
        if field:
            if len(values) != 1:
                raise SelectorError("metadata.name requirements take exactly one value")
            found.append(Requirement(key, operator, tuple(values)))
        else:
            found.append(new_requirement(key, operator, values))
    return tuple(found)


def term(raw: Mapping[str, Any] | None) -> Term:
    raw = raw or {}
    try:
        labels = _requirements(raw.get("matchExpressions"), _OPERATORS, field=False)
        fields = _requirements(raw.get("matchFields"), _FIELD_OPERATORS, field=True)
    except SelectorError:
        return Term((), (), valid=False)
    return Term(labels, fields)


@dataclass(frozen=True, slots=True)
class NodeSelection:
    """The pod's hard placement: its nodeSelector AND any of its required affinity terms."""

    selector: tuple[tuple[str, str], ...] = ()
    terms: tuple[Term, ...] | None = None

    def is_empty(self) -> bool:
        return not self.selector and self.terms is None

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        for key, value in self.selector:
            if labels.get(key) != value:
                return False
        if self.terms is None:
            return True
        return any(t.matches(labels, name) for t in self.terms)


@dataclass(frozen=True, slots=True)
class Preference:
    weight: int
    term: Term


def node_affinity(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((spec.get("affinity") or {}).get("nodeAffinity")) or {}


def selection(spec: Mapping[str, Any]) -> NodeSelection:
    selector = tuple(sorted((str(k), str(v)) for k, v in (spec.get("nodeSelector") or {}).items()))
    required = node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None
    if required is not None:
        terms = tuple(term(t) for t in required.get("nodeSelectorTerms") or ())
    return NodeSelection(selector, terms)


def preferences(spec: Mapping[str, Any]) -> tuple[Preference, ...]:
    preferred = node_affinity(spec).get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    return tuple(
        Preference(int(p.get("weight") or 0), term(p.get("preference"))) for p in preferred
    )
