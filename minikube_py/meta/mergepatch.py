"""JSON merge patch (RFC 7386, ``application/merge-patch+json``) as kube-apiserver 1.32 applies it.

Objects merge member by member, ``null`` deletes a member, anything else (lists included)
replaces. kube uses evanphx/json-patch v4 ``MergePatch``, which adds two visible details:

- a patch that is ``null`` or a scalar is rejected with "Invalid JSON Patch" (400 BadRequest);
  a list patch replaces the whole document (the API server then fails to decode it: 422);
- every value taken from the patch has its ``null`` object members pruned, also inside lists
  (``[{"a": null}]`` becomes ``[{}]``), since a null cannot mean "delete" in a new value.
"""

from __future__ import annotations

from typing import Any

from minikube_py.meta.patch import BAD_REQUEST, PatchError, copy_json


def apply_merge_patch(document: Any, patch: Any) -> Any:
    """Apply the decoded merge patch ``patch`` to ``document`` and return a new document."""
    if not isinstance(patch, dict | list):
        raise PatchError("Invalid JSON Patch", code=BAD_REQUEST)
    return _merge(document, patch)


def _merge(current: Any, patch: Any) -> Any:
    if not isinstance(current, dict) or not isinstance(patch, dict):
        return _pruned(patch)
    merged: dict[str, Any] = {}
    for key, value in current.items():  # Existing members keep their place.
        if key not in patch:
            merged[key] = copy_json(value)
        elif patch[key] is not None:
            merged[key] = _merge(value, patch[key])
    for key, value in patch.items():
        if key not in current and value is not None:
            merged[key] = _pruned(value)
    return merged


def _pruned(value: Any) -> Any:
    """A copy of ``value`` without null object members, at any depth."""
    if isinstance(value, dict):
        return {key: _pruned(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value
