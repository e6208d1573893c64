"""JSON patch (RFC 6902, ``application/json-patch+json``) as kube-apiserver 1.32 applies it.

kube uses evanphx/json-patch v4, whose behaviour differs from the RFC in ways clients can see,
so we follow the library, not the RFC:

- ``replace`` of a missing object member adds it; ``copy`` from a missing member copies null;
  ``add`` without ``value`` adds null; ``test`` of a missing member passes when value is null
  (``test`` without ``value`` panics in Go, a 500; we compare with null).
- Array indexes go through Go's ``strconv.Atoi`` (``+1`` and ``01`` are accepted) and may be
  negative, counting from the end, for add and remove; ``-`` appends on add only.
- A path is split on ``/`` and its first segment ignored, so ``""`` is a missing path and
  ``"/"`` names the member ``""`` of the root (no whole-document replace).
- Failures leave the document untouched: we work on a copy and return it only on success.

Error texts follow the library's (``testing value /x failed: test failed``, ``add operation does
not apply: doc is missing path: "/x": missing value``). Decode errors are 400, failures to apply
422 (including ``copy`` growth past :data:`MAX_COPY_BYTES`, as kube-apiserver arms the library)
and more than :data:`MAX_OPERATIONS` operations 413 (see :mod:`minikube_py.meta.patch`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minikube_py.meta.patch import (
    BAD_REQUEST,
    TOO_LARGE,
    PatchError,
    copy_json,
    json_equal,
    json_kind,
)

MAX_OPERATIONS = 10_000
"""kube-apiserver's ``maxJSONPatchOperations``."""
MAX_COPY_BYTES = 3 * 1024 * 1024
"""kube-apiserver's default ``JSONPatchMaxCopyBytes``: how much ``copy`` may grow a document."""

_MISSING = "missing value"
_INVALID_INDEX = "invalid index referenced"
_ATOI = re.compile(r"[+-]?[0-9]+")

Container = dict[str, Any] | list[Any]
_ABSENT: Any = object()
"""What a missing object member reads as; the library reads it as a nil node (null)."""


class _OpError(Exception):
    """A failure inside one operation; the operation wraps it in its own context."""


@dataclass
class _CopyBudget:
    """The bytes ``copy`` operations may still add, so a few doubling copies cannot explode."""

    limit: int
    used: int = 0

    def spend(self, value: Any) -> None:
        if value is not None:  # the library copies a null node for free
            encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            self.used += len(encoded.encode())
        if 0 < self.limit < self.used:
            raise PatchError(
                "Unable to complete the copy, the accumulated size increase of copy is "
                f"{self.used}, exceeding the limit {self.limit}"
            )


def apply_json_patch(document: Any, patch: Any, *, max_copy_bytes: int = MAX_COPY_BYTES) -> Any:
    """Apply the decoded JSON patch ``patch`` to ``document`` and return a new document.

    ``max_copy_bytes`` caps the growth ``copy`` operations may cause (0: no cap).
    """
    operations = _decode(patch)
    result = copy_json(document)
    budget = _CopyBudget(max_copy_bytes)
    for operation in operations:
        _apply_operation(result, operation, budget)
    return result


def _decode(patch: Any) -> list[dict[str, Any]]:
    """Check the document is a list of objects (``jsonpatch.DecodePatch``), else 400."""
    if patch is None:
        return []  # Go decodes null into an empty patch.
    if not isinstance(patch, list):
        raise PatchError(_unmarshal_message(patch, "jsonpatch.Patch"), code=BAD_REQUEST)
    for operation in patch:
        if operation is not None and not isinstance(operation, dict):
            raise PatchError(_unmarshal_message(operation, "jsonpatch.Operation"), code=BAD_REQUEST)
    if len(patch) > MAX_OPERATIONS:
        message = (
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(patch)}"
        )
        raise PatchError(message, code=TOO_LARGE)
    return [operation or {} for operation in patch]


def _unmarshal_message(value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}"


def _apply_operation(document: Any, operation: dict[str, Any], budget: _CopyBudget) -> None:
    kind = operation.get("op")
    if kind == "copy":
        _op_copy(document, operation, budget)
        return
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise PatchError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    handler(document, operation)


# -- pointers --------------------------------------------------------------------------------


def _pointer(operation: dict[str, Any], field: str) -> str:
    """The ``path`` or ``from`` member as a string, or _OpError like ``Operation.Path()``."""
    value = operation.get(field)
    if value is None:
        missing = (
            "operation missing path field" if field == "path" else "operation, missing from field"
        )
        raise _OpError(f"{missing}: {_MISSING}")
    if not isinstance(value, str):
        raise _OpError(_unmarshal_message(value, "string"))
    return value


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _find_parent(document: Any, path: str) -> tuple[Container, str] | None:
    """The container holding the last token of ``path`` and that token, or None if absent."""
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    node = document
    for token in tokens[1:-1]:
        try:
            node = _get(node, _unescape(token))
        except _OpError:
            return None
        if not isinstance(node, dict | list):
            return None
    return node, _unescape(tokens[-1])


def _index(key: str) -> int:
    """Go's ``strconv.Atoi``: optional sign, decimal digits, nothing else."""
    if not _ATOI.fullmatch(key):
        raise _OpError(f'strconv.Atoi: parsing "{key}": invalid syntax')
    return int(key)


def _invalid_index(index: int) -> _OpError:
    return _OpError(f"Unable to access invalid index: {index}: {_INVALID_INDEX}")


# -- container primitives (partialDoc / partialArray) -----------------------------------------


def _get(container: Container, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key, _ABSENT)
    index = _index(key)
    if not 0 <= index < len(container):
        raise _invalid_index(index)
    return container[index]


def _add(container: Container, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    try:
        index = _index(key)
    except _OpError as exc:
        raise _OpError(f"value was not a proper array index: '{key}': {exc}") from None
    size = len(container) + 1
    if index >= size or index < -size:
        raise _invalid_index(index)
    container.insert(index + size if index < 0 else index, value)


def _remove(container: Container, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _OpError(f"Unable to remove nonexistent key: {key}: {_MISSING}")
        del container[key]
        return
    index = _index(key)
    if index >= len(container) or index < -len(container):
        raise _invalid_index(index)
    del container[index]


def _set(container: Container, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    else:
        container[_index(key)] = value


def _present(value: Any) -> Any:
    return None if value is _ABSENT else value


# -- operations ----------------------------------------------------------------------------------


def _op_add(document: Any, operation: dict[str, Any]) -> None:
    path = _decoded(operation, "path", "add operation failed to decode path", keep_cause=False)
    container, key = _require(
        document, path, f'add operation does not apply: doc is missing path: "{path}"'
    )
    value = copy_json(operation.get("value"))  # the result must not share the patch's objects
    _wrap(lambda: _add(container, key, value), f"error in add for path: '{path}'")


def _op_remove(document: Any, operation: dict[str, Any]) -> None:
    path = _decoded(operation, "path", "remove operation failed to decode path", keep_cause=False)
    where = f'remove operation does not apply: doc is missing path: "{path}"'
    container, key = _require(document, path, where)
    _wrap(lambda: _remove(container, key), f"error in remove for path: '{path}'")


def _op_replace(document: Any, operation: dict[str, Any]) -> None:
    path = _decoded(operation, "path", "replace operation failed to decode path")
    container, key = _require(
        document, path, f"replace operation does not apply: doc is missing path: {path}"
    )
    try:
        _get(container, key)
    except _OpError:
        raise PatchError(
            f"replace operation does not apply: doc is missing key: {path}: {_MISSING}"
        ) from None
    _set(container, key, copy_json(operation.get("value")))


def _op_move(document: Any, operation: dict[str, Any]) -> None:
    source = _decoded(operation, "from", "move operation failed to decode from")
    where = f"move operation does not apply: doc is missing from path: {source}"
    container, key = _require(document, source, where)
    value = _wrap(lambda: _get(container, key), f"error in move for path: '{key}'")
    _wrap(lambda: _remove(container, key), f"error in move for path: '{key}'")
    path = _decoded(operation, "path", "move operation failed to decode path")
    where = f"move operation does not apply: doc is missing destination path: {path}"
    target, target_key = _require(document, path, where)
    _wrap(lambda: _add(target, target_key, value), f"error in move for path: '{path}'")


def _op_copy(document: Any, operation: dict[str, Any], budget: _CopyBudget) -> None:
    source = _decoded(operation, "from", "copy operation failed to decode from")
    where = f"copy operation does not apply: doc is missing from path: {source}"
    container, key = _require(document, source, where)
    value = _present(_wrap(lambda: _get(container, key), f"error in copy for from: '{source}'"))
    path = _decoded(operation, "path", "copy operation failed to decode path", keep_cause=False)
    where = f"copy operation does not apply: doc is missing destination path: {path}"
    target, target_key = _require(document, path, where)
    budget.spend(value)
    copied = copy_json(value)
    _wrap(lambda: _add(target, target_key, copied), "error while adding value during copy")


def _op_test(document: Any, operation: dict[str, Any]) -> None:
    path = _decoded(operation, "path", "test operation failed to decode path")
    container, key = _require(
        document, path, f"test operation does not apply: is missing path: {path}"
    )
    actual = _present(_wrap(lambda: _get(container, key), f"error in test for path: '{path}'"))
    if not json_equal(actual, operation.get("value")):
        raise PatchError(f"testing value {path} failed: test failed")


_HANDLERS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "test": _op_test,
}


# -- error plumbing --------------------------------------------------------------------------------


def _decoded(
    operation: dict[str, Any], field: str, context: str, *, keep_cause: bool = True
) -> str:
    """Read a pointer member; the library words a few of these errors without their cause."""
    try:
        return _pointer(operation, field)
    except _OpError as exc:
        cause = str(exc) if keep_cause else _MISSING
        raise PatchError(f"{context}: {cause}") from None


def _require(document: Any, path: str, context: str) -> tuple[Container, str]:
    found = _find_parent(document, path)
    if found is None:
        raise PatchError(f"{context}: {_MISSING}")
    return found


def _wrap(action: Callable[[], Any], context: str) -> Any:
    try:
        return action()
    except _OpError as exc:
        raise PatchError(f"{context}: {exc}") from None
