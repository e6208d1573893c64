"""Field selectors: parsing ``?fieldSelector=``, the per-kind label table, and matching.

kube-apiserver handles a field selector in two independent steps, and so do we:

1. ``parse_field_selector`` is k8s.io/apimachinery/pkg/fields/selector.go: terms split on
   unescaped commas, ``!=`` / ``==`` / ``=`` (first occurrence wins), values unescaped
   (``\\\\``, ``\\,``, ``\\=``). Field names are not validated here.
2. ``check_supported`` is the per-kind field-label conversion (``Scheme.ConvertFieldLabel``)
   that the list/watch handler runs over every term; a refusal becomes a 400 BadRequest
   whose message is the conversion's error text. It also rewrites aliases (pods'
   ``spec.host``, events.k8s.io's ``regarding.*``) to the canonical label.

``field_set`` is the strategy's ToSelectableFields: the values a canonical selector is
matched against. The accepted labels and the set values differ on purpose, as upstream:
pods accept ``status.podIPs`` but never set it, so it only ever matches "".

kubectl wraps the server's message; ``kubectl_list_error`` reproduces that wrapping for
tests and docs, but the API server itself sends only the inner message.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from minikube_py.meta.labels import SelectorError as SelectorError  # re-exported for callers
from minikube_py.meta.names import go_quote

FieldOperator = Literal["=", "!="]


# --- escaping (fields.EscapeValue / UnescapeValue) ---------------------------------------


def escape_value(value: str) -> str:
    """Escape a literal for use as a field selector value: backslash, comma, equals."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(text: str) -> str:
    """Undo ``escape_value``; reject unknown escapes and bare ',' or '=' as upstream does."""
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            if ch not in "\\,=":
                msg = f"invalid field selector: invalid escape sequence: \\{ch}"
                raise SelectorError(msg)
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Go prints the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


# --- the selector ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field=value`` or ``field!=value``; '==' is stored as '=' (they are the same)."""

    field: str
    operator: FieldOperator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An immutable AND of field requirements; empty matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(requirement.matches(fields) for requirement in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, name: str) -> str | None:
        """The value ``name`` must equal, if pinned (``metadata.name=x`` for get/watch)."""
        for requirement in self.requirements:
            if requirement.field == name and requirement.operator == "=":
                return requirement.value
        return None

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not backslash-escaped; escapes stay in the terms."""
    if not text:
        return []
    terms: list[str] = []
    start = 0
    escaped = False
    for index, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


_TERM_OPERATORS = ("!=", "==", "=")  # '==' before '=' so no '=' is left on the value


def _split_term(term: str) -> tuple[str, str, str] | None:
    """The first operator occurrence splits; the field part supports no escaping."""
    for index in range(len(term)):
        for op in _TERM_OPERATORS:
            if term.startswith(op, index):
                return term[:index], op, term[index + len(op) :]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a ``fieldSelector`` query string, raising upstream's exact parse errors.

    Terms are sorted as raw strings before parsing, as upstream does; that order decides
    which error wins and the order of ``str(selector)``.
    """
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        parts = _split_term(term)
        if parts is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        lhs, op, rhs = parts
        value = unescape_value(rhs)
        if not lhs and not value:
            continue  # upstream's Transform drops a term with no field and no value
        operator: FieldOperator = "!=" if op == "!=" else "="
        requirements.append(FieldRequirement(lhs, operator, value))
    return FieldSelector(tuple(requirements))


# --- which labels each kind supports, and where their values live ------------------------


class ValueKind(enum.Enum):
    """How a field's JSON value becomes the string a selector compares against."""

    STRING = "string"  # missing -> ""
    BOOL = "bool"  # strconv.FormatBool; missing -> "false"
    INT = "int"  # strconv.Itoa; missing -> "0"
    UNSET = "unset"  # accepted by the conversion but never set upstream: always ""


@dataclass(frozen=True, slots=True)
class FieldSource:
    """Where a canonical field label reads its value in the object as served."""

    path: str
    kind: ValueKind = ValueKind.STRING
    fallback: str = ""  # read when ``path`` gives "" (core Event "source")


@dataclass(frozen=True)
class KindFields:
    """One kind's field-label contract.

    ``accepts`` maps each label a client may send to the canonical label it becomes;
    ``sources`` says how to read each canonical label; ``rejection`` is the conversion's
    error text, formatted with ``label`` (raw) and ``quoted`` (Go %q).
    """

    accepts: Mapping[str, str]
    sources: Mapping[str, FieldSource]
    rejection: str = "field label not supported: {label}"

    def reject(self, label: str) -> SelectorError:
        return SelectorError(self.rejection.format(label=label, quoted=go_quote(label)))


_NAME = {"metadata.name": FieldSource("metadata.name")}
_NAMESPACED = {**_NAME, "metadata.namespace": FieldSource("metadata.namespace")}
_EVENT_LABELS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
)


def _kind(
    sources: Mapping[str, FieldSource],
    aliases: Mapping[str, str] | None = None,
    rejection: str = "field label not supported: {label}",
) -> KindFields:
    """A kind whose every canonical label is also accepted verbatim, plus any aliases."""
    accepts = {label: label for label in sources} | dict(aliases or {})
    return KindFields(accepts, sources, rejection)


# runtime.DefaultMetaV1FieldSelectorConversion: kinds without their own conversion func
# (ConfigMaps, Deployments, ReplicaSets, CRDs, ...). It accepts metadata.namespace even
# for cluster-scoped kinds, where the value is "".
DEFAULT_FIELDS = _kind(
    _NAMESPACED,
    rejection='{quoted} is not a known field selector: only "metadata.name", "metadata.namespace"',
)

# Sources: pkg/apis/{core,batch,events}/v1/conversion.go (accepted labels and their
# messages) and pkg/registry/*/strategy.go ToSelectableFields (values).
FIELD_LABELS: Mapping[tuple[str, str], KindFields] = {
    ("", "pods"): _kind(
        {
            **_NAMESPACED,
            "spec.nodeName": FieldSource("spec.nodeName"),
            "spec.restartPolicy": FieldSource("spec.restartPolicy"),
            "spec.schedulerName": FieldSource("spec.schedulerName"),
            "spec.serviceAccountName": FieldSource("spec.serviceAccountName"),
            "spec.hostNetwork": FieldSource("spec.hostNetwork", ValueKind.BOOL),
            "status.phase": FieldSource("status.phase"),
            "status.podIP": FieldSource("status.podIP"),
            "status.podIPs": FieldSource("status.podIPs", ValueKind.UNSET),
            "status.nominatedNodeName": FieldSource("status.nominatedNodeName"),
        },
        aliases={"spec.host": "spec.nodeName"},  # for very old v1 clients
    ),
    ("", "nodes"): _kind(
        {**_NAME, "spec.unschedulable": FieldSource("spec.unschedulable", ValueKind.BOOL)}
    ),
    ("", "namespaces"): _kind({**_NAME, "status.phase": FieldSource("status.phase")}),
    ("", "secrets"): _kind({**_NAMESPACED, "type": FieldSource("type")}),
    ("", "services"): _kind(
        {
            **_NAMESPACED,
            "spec.clusterIP": FieldSource("spec.clusterIP"),
            "spec.type": FieldSource("spec.type"),
        }
    ),
    ("", "replicationcontrollers"): _kind(
        {**_NAMESPACED, "status.replicas": FieldSource("status.replicas", ValueKind.INT)}
    ),
    ("", "events"): _kind(
        {
            **_NAMESPACED,
            **{label: FieldSource(label) for label in _EVENT_LABELS},
            "reason": FieldSource("reason"),
            "reportingComponent": FieldSource("reportingComponent"),
            "source": FieldSource("source.component", fallback="reportingComponent"),
            "type": FieldSource("type"),
        }
    ),
    # Same storage as core events; the wire shape says regarding.* / reportingController,
    # and only those spellings are accepted, mapped onto the core labels.
    ("events.k8s.io", "events"): KindFields(
        accepts={
            "metadata.name": "metadata.name",
            "metadata.namespace": "metadata.namespace",
            **{"regarding." + label.split(".")[1]: label for label in _EVENT_LABELS},
            "reason": "reason",
            "reportingController": "reportingComponent",
            "source": "source",
            "type": "type",
        },
        sources={
            **_NAMESPACED,
            **{label: FieldSource("regarding." + label.split(".")[1]) for label in _EVENT_LABELS},
            "reason": FieldSource("reason"),
            "reportingComponent": FieldSource("reportingController"),
            "source": FieldSource("deprecatedSource.component", fallback="reportingController"),
            "type": FieldSource("type"),
        },
    ),
    ("batch", "jobs"): _kind(
        {**_NAMESPACED, "status.successful": FieldSource("status.succeeded", ValueKind.INT)},
        rejection="field label {quoted} not supported for batchv1.Job",
    ),
}


def field_labels(group: str, resource: str) -> KindFields:
    """The contract for a group/plural resource; unknown ones get the metadata-only one."""
    return FIELD_LABELS.get((group, resource), DEFAULT_FIELDS)


def check_supported(selector: FieldSelector, group: str, resource: str) -> FieldSelector:
    """Reject labels the kind does not support and return the canonical selector.

    Terms are checked in the selector's order, so the first unsupported one (in sorted
    term order) is the one reported, as upstream.
    """
    kind = field_labels(group, resource)
    converted: list[FieldRequirement] = []
    for requirement in selector.requirements:
        canonical = kind.accepts.get(requirement.field)
        if canonical is None:
            raise kind.reject(requirement.field)
        converted.append(FieldRequirement(canonical, requirement.operator, requirement.value))
    return FieldSelector(tuple(converted))


def parse_for_resource(text: str, group: str, resource: str) -> FieldSelector:
    """Parse a ``fieldSelector`` and check it for one resource: what a list handler needs."""
    return check_supported(parse_field_selector(text), group, resource)


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _as_string(value: Any, kind: ValueKind) -> str:
    if kind is ValueKind.BOOL:
        return "true" if value is True else "false"
    if kind is ValueKind.INT:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"
    if kind is ValueKind.UNSET or value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _read(obj: Mapping[str, Any], source: FieldSource) -> str:
    value = _as_string(_lookup(obj, source.path), source.kind)
    if not value and source.fallback:
        return _as_string(_lookup(obj, source.fallback), ValueKind.STRING)
    return value


def field_set(group: str, resource: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The canonical field values of ``obj`` (as served in ``group``) for matching."""
    sources = field_labels(group, resource).sources
    return {label: _read(obj, source) for label, source in sources.items()}


# --- kubectl's wrapping of the server's message ------------------------------------------


def _gvr(group: str, version: str, resource: str) -> str:
    """schema.GroupVersionResource.String(): "/v1, Resource=pods" for the core group."""
    return f"{group}/{version}, Resource={resource}"


def kubectl_list_error(
    group: str,
    version: str,
    resource: str,
    label_selector: str,
    field_selector: str,
    message: str,
) -> str:
    """What kubectl prints after "Error from server (BadRequest): " for a failed list.

    kubectl (cli-runtime's resource helper) adds this prefix to the server's Status
    message; the API server sends ``message`` alone.
    """
    gvr = go_quote(_gvr(group, version, resource))
    if not label_selector and not field_selector:
        return f"Unable to list {gvr}: {message}"
    return (
        f"Unable to find {gvr} that match label selector {go_quote(label_selector)}, "
        f"field selector {go_quote(field_selector)}: {message}"
    )
