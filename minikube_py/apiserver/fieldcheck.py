"""Server-side field validation: ``?fieldValidation=Strict|Warn|Ignore`` on create, update, patch.

Why: kube-apiserver decodes every write into Go structs, so a field the kind does not have can
never be stored; kubectl (``--validate=strict``, its default) relies on that and sends
``fieldValidation=Strict`` instead of checking manifests itself. We keep objects as dicts, so
this module plays the typed decoder: it walks a body against the field tables of
``protobuf_schema`` (the full structure of every kind), drops what the kind does not have,
and reports it the way kube does.

Facts carried over from kube-apiserver 1.32 (``endpoints/handlers`` create/update/patch and
rest.go, ``sigs.k8s.io/json`` strict decoding, ``runtime.FromUnstructuredWithValidation``):

- No parameter means ``Warn`` (since 1.27, when the feature went GA); any value other than
  "", Ignore, Warn, Strict is a 422 on ``CreateOptions``/``UpdateOptions``/``PatchOptions``.
- Strict and Warn report unknown fields of typed objects, and duplicate keys: of known struct
  fields and of map keys. A key both unknown and repeated is reported once, as unknown.
  Inside an unknown field, and inside opaque values (RawExtension, IntOrString, Quantity,
  times), nothing is checked. Messages: ``unknown field "spec.containers[0].foo"``,
  ``duplicate field "metadata.name"``; identical ones are kept once, at most 100.
- Create and update report in document order. Strict fails with 400 BadRequest:
  ``<Kind> in version "<version>" cannot be handled as a <Kind>: strict decoding error: <a>,
  <b>``. Warn answers each as a ``Warning: 299 - "<text>"`` header. Ignore says nothing.
  Every mode drops the unknown fields; a duplicate keeps its last value.
- Patches report the patch document's duplicates first (every object in it is a map), then
  the patched object's unknown fields: sorted by message for strategic merge patches, in
  sorted-key walk order for JSON and merge patches. Strict fails with 422 Invalid on the
  field ``patch``. A JSON patch's own operations are checked as structs ("json patch
  unknown field \"[0].foo\"").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import orjson

from minikube_py import errors
from minikube_py.apiserver.protobuf_schema import KINDS, MESSAGES
from minikube_py.meta.objects import Obj
from minikube_py.meta.patch import go_repr

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
DEFAULT_MODE = WARN
MODES = ("", IGNORE, STRICT, WARN)
MAX_PROBLEMS = 100

Path = tuple[str | int, ...]


class FieldValidationError(errors.BadRequest):
    """Strict mode on create or update: kube's decode failure, a 400."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class PatchFieldValidationError(errors.Invalid):
    """Strict mode on a patch: kube reports it as an invalid ``patch`` field, a 422."""

    def __init__(self, rendered: str, problems: list[str]) -> None:
        detail = strict_message(problems)
        super().__init__(errors.Target(), [errors.invalid("patch", rendered, detail)])
        self.problems = problems

    def status(self) -> Obj:
        body = super().status()
        body["details"].pop("kind", None)  # kube names no kind here (an empty GroupKind)
        return body


def parse_mode(value: str | None, options_kind: str = "CreateOptions") -> str:
    """The directive of ``?fieldValidation=``; absent or empty is kube's default, Warn."""
    if not value:
        return DEFAULT_MODE
    if value not in MODES:
        target = errors.Target(group="meta.k8s.io", kind=options_kind)
        raise errors.Invalid(target, [errors.not_supported("fieldValidation", value, list(MODES))])
    return value


def strict_message(problems: list[str]) -> str:
    return "strict decoding error: " + ", ".join(problems)


def warning_header(text: str) -> str:
    """One ``Warning`` header value, as kube's warning recorder writes it (RFC 7234)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


# -- the field tables, compiled for walking ----------------------------------------------------


class _Struct:
    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, _Node | None] = {}


class _List:
    __slots__ = ("item",)

    def __init__(self, item: _Node) -> None:
        self.item = item


class _Map:
    __slots__ = ("value",)

    def __init__(self, value: _Node | None) -> None:
        self.value = value


class _Any:
    """An untyped value (``interface{}``): only its duplicate keys are checked."""

    __slots__ = ()


_Node = _Struct | _List | _Map | _Any
_STRUCTS: dict[str, _Struct] = {}


def _compile(type_: str) -> _Node | None:
    """None for what needs no walking: scalars, opaque types, lists of those."""
    if type_.startswith("[]"):
        item = _compile(type_[2:])
        return _List(item) if item is not None else None
    if type_.startswith("map[string]"):
        return _Map(_compile(type_[11:]))
    if type_ not in MESSAGES:
        return None
    struct = _STRUCTS.get(type_)
    if struct is None:
        struct = _STRUCTS[type_] = _Struct()  # registered first: messages may recurse
        _fill(struct, type_)
    return struct


def _fill(struct: _Struct, message: str) -> None:
    for name, type_, flags in MESSAGES[message].values():
        if "i" in flags:  # json:",inline": the member's fields are the parent's
            _fill(struct, type_)
        else:
            struct.fields[name] = _compile(type_)


@functools.cache
def _root(api_version: str, kind: str) -> _Struct | None:
    package = KINDS.get(api_version, ("", ()))[0]
    message = f"{package}.{kind}"
    if message not in MESSAGES:
        return None
    root = _Struct()
    root.fields = {"apiVersion": None, "kind": None}
    _fill(root, message)
    return root


_OPERATION = _Struct()
_OPERATION.fields = {"op": None, "path": None, "from": None, "value": _Any()}
_OPERATIONS = _List(_OPERATION)
"""A JSON patch as kube decodes it for checking: a list of {op, path, from, value}."""


# -- walking -----------------------------------------------------------------------------------


def render(path: Path) -> str:
    """``spec.containers[0].name``: keys joined by dots, list indexes in brackets."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Report:
    """Problems in the order found, each once, at most :data:`MAX_PROBLEMS`."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.items: list[str] = []
        self.seen: set[str] = set()

    def add(self, what: str, path: Path) -> None:
        text = f"{self.prefix}{what} field {_quote(render(path))}"
        if text not in self.seen and len(self.items) < MAX_PROBLEMS:
            self.seen.add(text)
            self.items.append(text)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its pairs in document order, duplicates kept."""


def _pairs(raw: bytes) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None


class _Duplicate(Exception):
    """Raised from inside the decoder to stop at the first repeated key."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
        raise _Duplicate


_DUPLICATE_FINDER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)
"""Built once: ``json.loads`` with a hook builds a decoder per call (every create pays it)."""


def _has_duplicates(raw: bytes, decoded: Any) -> bool:
    """Whether any object in ``raw`` (which decodes to ``decoded``) repeats a key.

    A body that is, byte for byte, orjson's encoding of what it decodes to cannot: an
    encoded dict has unique keys. Compact JSON (client-go's, orjson's) usually is, so
    only other bodies pay for the decoder that sees every key (cheaper than decoding into
    pairs). ``raw`` is UTF-8: it is a JSON body that orjson, which reads nothing else,
    already decoded.
    """
    if orjson.dumps(decoded) == raw:
        return False
    try:
        _DUPLICATE_FINDER.decode(raw.decode())
    except _Duplicate:
        return True
    except (ValueError, RecursionError):
        return False  # as _pairs: what the decoder rejects is not this check's to report
    return False


def _scan(node: _Node, value: Any, path: Path, report: _Report) -> None:
    """Walk the raw document (pairs) as the strict decoder does, in document order."""
    if type(node) is _List:
        if type(value) is list:
            for index, item in enumerate(value):
                _scan(node.item, item, (*path, index), report)
        return
    if type(node) is _Any:
        _scan_any(value, path, report)
        return
    if type(value) is not _Pairs:
        return
    seen: set[str] = set()
    if type(node) is _Struct:
        fields = node.fields
        for key, item in value:
            if key not in fields:
                report.add("unknown", (*path, key))
                continue
            if key in seen:
                report.add("duplicate", (*path, key))
            seen.add(key)
            child = fields[key]
            if child is not None:
                _scan(child, item, (*path, key), report)
        return
    assert type(node) is _Map
    for key, item in value:
        if key in seen:
            report.add("duplicate", (*path, key))
        seen.add(key)
        if node.value is not None:
            _scan(node.value, item, (*path, key), report)


def _scan_any(value: Any, path: Path, report: _Report) -> None:
    """Duplicates anywhere in an untyped document (a patch decoded into a map)."""
    if type(value) is list:
        for index, item in enumerate(value):
            _scan_any(item, (*path, index), report)
    elif type(value) is _Pairs:
        seen: set[str] = set()
        for key, item in value:
            if key in seen:
                report.add("duplicate", (*path, key))
            seen.add(key)
            _scan_any(item, (*path, key), report)


Unknown = tuple[dict[str, Any], str, Path]


def _find(node: _Node, value: Any, path: Path, found: list[Unknown]) -> None:
    """Unknown fields of a decoded object, as (container, key, path); nothing is changed."""
    if type(node) is _Struct:
        if type(value) is not dict:
            return
        fields = node.fields
        for key, item in value.items():
            if key not in fields:
                found.append((value, key, (*path, key)))
                continue
            child = fields[key]
            if child is not None and type(item) in (dict, list):
                _find(child, item, (*path, key), found)
    elif type(node) is _List:
        if type(value) is list:
            for index, item in enumerate(value):
                _find(node.item, item, (*path, index), found)
    elif type(node) is _Map and node.value is not None and type(value) is dict:
        for key, item in value.items():
            _find(node.value, item, (*path, key), found)


def _drop(found: list[Unknown]) -> None:
    for container, key, _path in found:
        container.pop(key, None)


# -- the entry point ---------------------------------------------------------------------------


def check_fields(
    obj: Obj,
    api_version: str,
    kind: str,
    *,
    raw: bytes | None,
    mode: str,
    patch: bytes | None = None,
    patch_type: str = "",
) -> tuple[Obj, list[str]]:
    """Drop the fields ``kind`` does not have from ``obj`` (in place) and report problems.

    ``raw`` is the JSON request body ``obj`` was decoded from (create, update): its
    duplicates are found there, and problems come in document order. Leave it None for
    YAML and protobuf bodies. For a patch, ``obj`` is the patched object and ``patch`` the
    raw patch body with ``patch_type`` "json", "merge" or "strategic". Strict mode raises
    (leaving ``obj`` untouched); Warn returns the warning texts; Ignore returns none.
    Kinds the tables do not describe pass unchanged.
    """
    root = _root(api_version, kind)
    if root is None:
        return obj, []
    found: list[Unknown] = []
    _find(root, obj, (), found)
    if mode == IGNORE:
        _drop(found)
        return obj, []
    if patch is not None:
        problems = _patch_problems(found, patch, patch_type)
    elif raw is not None and not found and not _has_duplicates(raw, obj):
        problems = []  # the usual body: nothing to report, no need to walk it in order
    elif raw is not None and (document := _pairs(raw)) is not None:
        report = _Report()
        _scan(root, document, (), report)
        problems = report.items
    else:
        problems = _ordered(found, by_message=False)
    if problems and mode == STRICT:
        if patch is not None:
            raise PatchFieldValidationError(_rendered(obj, patch, patch_type), problems)
        version = api_version.rpartition("/")[2]
        raise FieldValidationError(
            f'{kind} in version "{version}" cannot be handled as a {kind}: '
            + strict_message(problems),
            problems,
        )
    _drop(found)
    return obj, problems


def _ordered(found: list[Unknown], *, by_message: bool) -> list[str]:
    """Unknown fields in kube's order for re-encoded objects (keys sorted at every level)."""
    report = _Report()
    key: Callable[[Unknown], Any] = _by_message if by_message else _by_walk
    for _container, _key, path in sorted(found, key=key):
        report.add("unknown", path)
    return report.items


def _by_message(item: Unknown) -> str:
    return _quote(render(item[2]))


def _by_walk(item: Unknown) -> list[tuple[bool, str | int]]:
    """Path order with keys sorted; the flag keeps indexes and keys from being compared."""
    return [(type(part) is str, part) for part in item[2]]


def _patch_problems(found: list[Unknown], patch: bytes, patch_type: str) -> list[str]:
    document = _pairs(patch)
    report = _Report("json patch " if patch_type == "json" else "")
    try:
        if patch_type == "json":
            _scan(_OPERATIONS, document, (), report)
        else:
            _scan_any(document, (), report)
    except RecursionError:  # deeper than Python walks; the decoder already accepted it
        pass
    unknown = _ordered(found, by_message=patch_type == "strategic")
    merged = [*report.items, *(text for text in unknown if text not in report.seen)]
    return merged[:MAX_PROBLEMS]


def _rendered(obj: Obj, patch: bytes, patch_type: str) -> str:
    """The ``Invalid value`` kube quotes: the decoded patch (strategic) or the patched JSON."""
    if patch_type == "strategic":
        try:
            return go_repr(orjson.loads(patch))
        except orjson.JSONDecodeError:
            return patch.decode(errors="replace")
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
