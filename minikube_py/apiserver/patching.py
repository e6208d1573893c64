"""PATCH bodies: pick the flavour by media type and translate patch errors into API errors."""

from __future__ import annotations

from typing import Any

from minikube_py import errors
from minikube_py.meta.jsonpatch import apply_json_patch
from minikube_py.meta.mergepatch import apply_merge_patch
from minikube_py.meta.objects import Obj
from minikube_py.meta.patch import PatchError
from minikube_py.registry.resource import ResourceInfo

SUPPORTED = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _strategic(current: Obj, patch: Any, info: ResourceInfo) -> Any:
    from minikube_py.meta import strategic

    return strategic.strategic_merge(current, patch, strategic.type_name(info.group, info.kind))


def apply(flavour: str, current: Obj, patch: Any, info: ResourceInfo) -> Obj:
    """The patched object; 400/422/413/500 exactly where kube-apiserver uses them."""
    try:
        if flavour == "json":
            result = apply_json_patch(current, patch)
        elif flavour == "merge":
            result = apply_merge_patch(current, patch)
        elif flavour == "strategic":
            result = _strategic(current, patch, info)
        else:
            raise errors.UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types"
                " include: " + ", ".join(SUPPORTED)
            )
    except PatchError as exc:
        raise _translate(exc) from None
    if not isinstance(result, dict):
        raise errors.BadRequest("the patch did not produce an object")
    return result


def _translate(exc: PatchError) -> errors.APIError:
    classes: dict[int, type[errors.APIError]] = {
        400: errors.BadRequest,
        413: errors.RequestEntityTooLarge,
    }
    if exc.code == 422:
        error: errors.APIError = errors.APIError(exc.status_message)
        error.code, error.reason = 422, "Invalid"
        return error
    return classes.get(exc.code, errors.InternalError)(exc.status_message)
