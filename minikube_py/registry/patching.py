"""PATCH bodies: pick the flavour by media type and translate patch errors into API errors."""

from __future__ import annotations

from typing import Any

from minikube_py import errors
from minikube_py.meta.jsonpatch import apply_json_patch
from minikube_py.meta.mergepatch import apply_merge_patch
from minikube_py.meta.objects import Obj
from minikube_py.meta.patch import PatchError, kind_type_name
from minikube_py.meta.strategic import strategic_merge

SUPPORTED = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def apply(flavour: str, current: Obj, patch: Any, api_version: str, kind: str) -> Obj:
    """The patched object; 400/422/413/500 exactly where kube-apiserver uses them."""
    try:
        if flavour == "json":
            result = apply_json_patch(current, patch)
        elif flavour == "merge":
            result = apply_merge_patch(current, patch)
        elif flavour == "strategic":
            result = strategic_merge(current, patch, kind_type_name(api_version, kind))
        else:
            raise errors.UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types"
                " include: " + ", ".join(SUPPORTED)
            )
    except PatchError as exc:
        raise _translate(exc) from None
    if not isinstance(result, dict):
        failure = errors.APIError("the server rejected our request due to an error in our request")
        failure.code, failure.reason = 422, "Invalid"
        raise failure
    return result


class _PatchFailure(errors.APIError):
    """A patch error carrying kube's own code and reason (500 comes with an empty reason)."""

    def __init__(self, exc: PatchError) -> None:
        super().__init__(exc.status_message)
        self.code, self.reason = exc.code, exc.reason


def _translate(exc: PatchError) -> errors.APIError:
    return _PatchFailure(exc)
