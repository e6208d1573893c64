"""Strategic merge patch (``application/strategic-merge-patch+json``), as kube-apiserver 1.32 does.

A merge patch that knows the API types: lists with a merge key merge element by element,
primitive lists with the merge strategy merge as ordered sets, other lists replace, maps merge
and ``null`` deletes. Which is which comes from :data:`minikube_py.meta.patch.SCHEMA`; an
unknown type or field gets the defaults (maps merge, lists replace). The server side of
``k8s.io/apimachinery/pkg/util/strategicpatch`` (``StrategicMergeMapPatch``) is the reference:

- ``$patch: replace`` in a map replaces the map; in a list element it replaces the list with the
  other elements. ``$patch: delete`` in a map leaves an empty map (``{}``) where the map was; in
  a list element it deletes the elements with that merge key. ``$patch: merge`` is an error
  in kube ("unknown patch type: merge ...") and so it is here.
- ``$retainKeys: [...]`` drops the map's other keys first; a patch key missing from it is a 400.
- ``$deleteFromPrimitiveList/<f>: [...]`` removes those values from the primitive list ``f``
  (applied after the rest of the map, where kube's order is random).
- ``$setElementOrder/<f>: [...]`` orders a merged list: the listed elements in that order, the
  server-only ones kept in their relative order and slotted in where they were.
- Merged lists put patch elements the server does not have yet in front of server-only ones
  (kube's mergeSortedSlice does), e.g. finalizers ``[x, y]`` + ``[z]`` gives ``[z, x, y]``.

Values taken whole from the patch (a new key, a new list element, a replaced list or map) lose
their ``null`` members and directive keys. kube leaves some of these in the merged map and lets
decoding into Go structs drop them, which ends the same, except for a ``$patch`` element inside
such a value: kube would decode it into a plain element, we drop it. Where kube's code panics on
a malformed patch (``$setElementOrder`` for a list without merge key, null list elements) we
raise a 500 :class:`~minikube_py.meta.patch.PatchError` instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from minikube_py.meta.patch import (
    BAD_REQUEST,
    INTERNAL,
    INVALID,
    FieldStrategy,
    PatchError,
    copy_json,
    field_strategy,
    go_repr,
    go_type_name,
    json_equal,
    json_kind,
    scalar_key,
)

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM = "$deleteFromPrimitiveList"

_DROP: Any = object()
"""What :func:`_clean` returns for a value that is itself a directive and must vanish."""

Map = dict[str, Any]


def strategic_merge(original: Map, patch: Any, type_name: str | None) -> Map:
    """Apply the decoded strategic merge patch ``patch`` to ``original`` (of schema ``type_name``).

    Returns a new object; raises :class:`PatchError` with kube's status code on failure.
    """
    if not isinstance(patch, dict):
        kind = json_kind(patch)
        message = f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        raise PatchError(message, code=BAD_REQUEST)
    return _merge_map(copy_json(original), patch, type_name)


# -- maps ----------------------------------------------------------------------------------


def _merge_map(original: Map, patch: Map, type_name: str | None) -> Map:
    """Merge ``patch`` into ``original``, which is ours to modify (callers pass copies)."""
    if PATCH in patch:
        return _map_directive(patch)
    _retain_keys(original, patch)
    ordered = _apply_element_orders(original, patch, type_name)
    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key in ordered or key == RETAIN_KEYS or key.startswith(SET_ORDER):
            continue
        if key.startswith(DELETE_FROM):
            deletions.append((_target(key, DELETE_FROM), value))
            continue
        _merge_field(original, key, value, field_strategy(type_name, key), deleting=False)
    for key, value in deletions:
        _merge_field(original, key, value, field_strategy(type_name, key), deleting=True)
    return original


def _map_directive(patch: Map) -> Map:
    directive = patch[PATCH]
    if directive == "replace":
        return _clean_map({key: value for key, value in patch.items() if key != PATCH})
    if directive == "delete":
        return {}
    raise PatchError(
        f"unknown patch type: {go_repr(directive)} in map: {go_repr(patch)}", code=INTERNAL
    )


def _merge_field(
    original: Map, key: str, value: Any, field: FieldStrategy, *, deleting: bool
) -> None:
    """Merge one patch member into ``original[key]`` (``deleting``: a $deleteFromPrimitiveList)."""
    if value is None:
        original.pop(key, None)
        return
    if key not in original or go_type_name(original[key]) != go_type_name(value):
        if not deleting:
            _put(original, key, _clean(value))
        return
    current = original[key]
    if isinstance(current, dict):
        replaced = field.replaces
        _put(original, key, _clean(value) if replaced else _merge_map(current, value, field.type))
    elif isinstance(current, list):
        original[key] = _merge_list(current, value, field, deleting=deleting)
    else:
        original[key] = value


def _put(original: Map, key: str, value: Any) -> None:
    if value is _DROP:
        original.pop(key, None)
    else:
        original[key] = value


def _retain_keys(original: Map, patch: Map) -> None:
    """``$retainKeys``: keep only the listed keys of ``original``; the patch must stay inside."""
    if RETAIN_KEYS not in patch:
        return
    listed = patch[RETAIN_KEYS]
    if not isinstance(listed, list):
        raise PatchError("invalid patch format of retainKeys", code=BAD_REQUEST)
    keep = {name for name in listed if isinstance(name, str)}
    for key, value in patch.items():
        skipped = value is None or key.startswith((DELETE_FROM, SET_ORDER)) or key == RETAIN_KEYS
        if not skipped and key not in keep:
            raise PatchError("invalid patch format of retainKeys", code=BAD_REQUEST)
    for key in [key for key in original if key not in keep]:
        del original[key]


def _target(directive_key: str, prefix: str) -> str:
    """The field a ``prefix/<field>`` directive names; a malformed key is a 400."""
    head, slash, field = directive_key.partition("/")
    if head != prefix or not slash:
        which = "primitive list" if prefix == DELETE_FROM else "setElementOrder list"
        raise PatchError(f"invalid patch format of {which}", code=BAD_REQUEST)
    return field


def _clean(value: Any) -> Any:
    """A copy of a value taken whole from the patch: no null members, no directives.

    A map that carries ``$patch`` becomes :data:`_DROP` (kube's ``removeDirectives``).
    """
    if isinstance(value, dict):
        return _DROP if value.get(PATCH) is not None else _clean_map(value)
    if isinstance(value, list):
        return _clean_list(value)
    return value


def _clean_map(value: Map) -> Map:
    members = ((key, item) for key, item in value.items() if not _is_directive(key))
    cleaned = {key: _clean(item) for key, item in members if item is not None}
    return {key: item for key, item in cleaned.items() if item is not _DROP}


def _clean_list(value: list[Any]) -> list[Any]:
    return [item for item in map(_clean, value) if item is not _DROP]


def _is_directive(key: str) -> bool:
    return key == RETAIN_KEYS or key.startswith((SET_ORDER, DELETE_FROM))


# -- lists ---------------------------------------------------------------------------------


def _merge_list(
    current: list[Any], patch: list[Any], field: FieldStrategy, *, deleting: bool
) -> list[Any]:
    if not (field.merges or deleting):
        return _clean_list(patch)
    if not current and not patch:
        return current
    if _element_kind(current, patch) != "map":
        return _merge_primitives(current, patch, deleting=deleting)
    key = field.merge_key
    if not key:
        raise PatchError(
            f"cannot merge lists without merge key for {field.type or 'unknown'}", code=INTERNAL
        )
    current, patch = _special_elements(current, patch, key)
    merged = _merge_by_key(current, patch, key, field.type)
    return _ordered(merged, patch, current, key)


def _merge_primitives(current: list[Any], patch: list[Any], *, deleting: bool) -> list[Any]:
    if deleting:
        doomed = {scalar_key(item) for item in patch}
        return [item for item in current if scalar_key(item) not in doomed]
    merged = list({scalar_key(item): item for item in current + patch}.values())
    return _ordered(merged, patch, current, "")


def _element_kind(*lists: list[Any]) -> str:
    """Whether the elements are maps or scalars; like Go's ``sliceElementType``, refuse lists
    of lists and lists whose elements differ in type (``int64`` and ``float64`` included)."""
    kinds = {go_type_name(item) for items in lists for item in items}
    first = next(item for items in lists for item in items)
    if isinstance(first, list):
        raise PatchError("lists of lists are not supported", code=INVALID)
    if len(kinds) > 1 or "<nil>" in kinds:
        raise PatchError(
            f"list element types are not identical: {go_repr(list(lists))}", code=INTERNAL
        )
    return "map" if isinstance(first, dict) else "scalar"


def _special_elements(
    current: list[Any], patch: list[Any], key: str
) -> tuple[list[Any], list[Any]]:
    """Apply the ``$patch`` elements of a list patch; returns (current, plain patch elements)."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if PATCH not in item:
            plain.append(item)
        elif item[PATCH] == "delete":
            current = _without(current, key, _merge_key_of(item, key))
        elif item[PATCH] == "replace":
            replace = True
        elif item[PATCH] == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch", code=INTERNAL)
        else:
            raise PatchError(
                f"unknown patch type: {go_repr(item[PATCH])} in map: {go_repr(item)}", code=INTERNAL
            )
    return (_clean_list(plain), []) if replace else (current, plain)


def _merge_by_key(
    current: list[Any], patch: list[Any], key: str, type_name: str | None
) -> list[Any]:
    merged = list(current)
    for item in patch:
        index = _find(merged, key, _merge_key_of(item, key))
        if index is None:
            merged.append(_clean(item))
        else:
            merged[index] = _merge_map(merged[index], item, type_name)
    return merged


def _merge_key_of(item: Map, key: str) -> Any:
    if key not in item:
        raise _no_merge_key(item, key)
    return item[key]


def _no_merge_key(item: Any, key: str) -> PatchError:
    return PatchError(
        f"map: {go_repr(item)} does not contain declared merge key: {key}", code=INTERNAL
    )


def _find(items: list[Any], key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PatchError(f"value for key {index} is not a map.", code=INTERNAL)
        if key in item and json_equal(item[key], value):
            return index
    return None


def _without(items: list[Any], key: str, value: Any) -> list[Any]:
    while (index := _find(items, key, value)) is not None:
        items = items[:index] + items[index + 1 :]
    return items


# -- ordering (normalizeElementOrder and friends) --------------------------------------------


def _identity(item: Any, key: str) -> tuple[str, Any]:
    """What two elements share when they are "the same": the merge key, or the value."""
    value = item.get(key) if key and isinstance(item, dict) else item
    if isinstance(value, dict | list):
        return ("json", json.dumps(value, sort_keys=True))
    return scalar_key(value)


def _ordered(merged: list[Any], order: list[Any], server: list[Any], key: str) -> list[Any]:
    """Order ``merged``: elements named in ``order`` follow it, the rest keep ``server``'s order."""
    if key:
        _check_merge_keys(merged, order, server, key=key)
    wanted = {_identity(item, key) for item in order}
    chosen = [item for item in merged if _identity(item, key) in wanted]
    others = [item for item in merged if _identity(item, key) not in wanted]
    return _interleave(_sorted_by(others, server, key), _sorted_by(chosen, order, key), server, key)


def _check_merge_keys(*lists: list[Any], key: str) -> None:
    for item in (item for items in lists for item in items):
        _require_map(item)
        if key not in item:
            raise _no_merge_key(item, key)


def _require_map(item: Any) -> None:
    if not isinstance(item, dict):
        message = f"expected a map[string]interface {{}}, but received a {go_type_name(item)}"
        raise PatchError(message, code=INTERNAL)


def _positions(order: list[Any], key: str) -> dict[tuple[str, Any], int]:
    positions: dict[tuple[str, Any], int] = {}
    for index, item in enumerate(order):
        positions.setdefault(_identity(item, key), index)
    return positions


def _sorted_by(items: list[Any], order: list[Any], key: str) -> list[Any]:
    positions = _positions(order, key)
    return sorted(items, key=lambda item: positions.get(_identity(item, key), len(order)))


def _interleave(
    server_only: list[Any], chosen: list[Any], server: list[Any], key: str
) -> list[Any]:
    """Kube's mergeSortedSlice: a server-only element goes first only if the server had it
    before the next chosen element; chosen elements the server lacks go first."""
    positions = _positions(server, key)
    result: list[Any] = []
    left, right = list(server_only), list(chosen)
    while left and right:
        here = positions.get(_identity(left[0], key))
        there = positions.get(_identity(right[0], key))
        take_left = here is not None and there is not None and here < there
        result.append(left.pop(0) if take_left else right.pop(0))
    return result + left + right


# -- $setElementOrder ----------------------------------------------------------------------------


def _apply_element_orders(original: Map, patch: Map, type_name: str | None) -> set[str]:
    """Merge and order every list named by a ``$setElementOrder/<f>``; returns those ``f``."""
    done: set[str] = set()
    for directive, order in patch.items():
        if directive.startswith(SET_ORDER):
            name = _target(directive, SET_ORDER)
            if _apply_element_order(
                original, patch, name, _as_list(order), field_strategy(type_name, name)
            ):
                done.add(name)
    return done


def _apply_element_order(
    original: Map, patch: Map, name: str, order: list[Any], field: FieldStrategy
) -> bool:
    current = _as_list(original[name]) if name in original else None
    changes = _as_list(patch[name]) if name in patch else None
    _check_order(changes or [], order, field.merge_key)
    if changes is None:
        if current is None:
            return False
        merged = current
    elif current is None:
        merged = _clean_list(changes)
    else:
        merged = _merge_list(current, changes, field, deleting=False)
    original[name] = _ordered(merged, order, current or [], field.merge_key)
    return True


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise PatchError(
            f"expected a []interface {{}}, but received a {go_type_name(value)}", code=INTERNAL
        )
    return value


def _check_order(changes: list[Any], order: list[Any], key: str) -> None:
    """``validatePatchWithSetOrderList``: patch elements must appear in ``order``, in order."""
    if not order or not changes:
        return
    kept = changes
    if key:
        for item in changes:
            _require_map(item)
        kept = [item for item in changes if item.get(PATCH) != "delete"]
    same = _same_merge_key(key)
    index = position = 0
    while index < len(kept) and position < len(order):
        if isinstance(kept[index], dict) and PATCH in kept[index]:
            index += 1  # a list-level directive needs no place in the order
            continue
        if same(kept[index], order[position]):
            index += 1
        position += 1
    if index < len(kept):
        message = (
            f"The order in patch list:\n{go_repr(changes)}\n doesn't match "
            f"{SET_ORDER} list:\n{go_repr(order)}\n"
        )
        raise PatchError(message, code=INTERNAL)


def _same_merge_key(key: str) -> Callable[[Any, Any], bool]:
    """Go's ``mergeKeyValueEqual``: compare merge keys, or whole values for primitives."""
    if not key:
        return json_equal

    def same(left: Any, right: Any) -> bool:
        _check_merge_keys([left, right], key=key)
        return json_equal(left[key], right[key])

    return same
