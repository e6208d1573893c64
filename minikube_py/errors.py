"""API errors, and their one translation into a v1 Status (what every client parses).

Handlers raise these; the API server's error middleware turns them into a Status body
with the HTTP code. Messages follow kube-apiserver's wording, because kubectl prints
them verbatim and users search for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class FieldError:
    """One invalid field, as in k8s.io/apimachinery/pkg/util/validation/field."""

    type: str  # FieldValueRequired, FieldValueInvalid, FieldValueDuplicate, ...
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    _BODIES = {
        "FieldValueRequired": "Required value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueNotFound": "Not found",
        "InternalError": "Internal error",
    }

    def body(self) -> str:
        """The message without the field path: ``Invalid value: "x": must be ...``."""
        text = self._BODIES.get(self.type, self.type)
        if self.has_value:
            text += f": {_render(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> JSON:
        return {"reason": self.type, "message": self.body(), "field": self.field}


def _render(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, detail, value, True)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, "", value, True)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError("FieldValueNotSupported", path, detail, value, True)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, detail)


def too_long(path: str, value: Any, limit: int) -> FieldError:
    return FieldError("FieldValueTooLong", path, f"must have at most {limit} bytes", value, False)


@dataclass(frozen=True)
class Target:
    """What an error is about: the qualified resource (``deployments.apps``) and name."""

    resource: str = ""
    group: str = ""
    name: str = ""
    kind: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


class APIError(Exception):
    """An error with an HTTP code, a Status reason and kube-apiserver's message."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        target: Target | None = None,
        causes: list[JSON] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.target = target or Target()
        self.causes = causes or []
        self.retry_after = retry_after

    def status(self) -> JSON:
        details: JSON = {}
        if self.target.name:
            details["name"] = self.target.name
        if self.target.group:
            details["group"] = self.target.group
        if self.target.resource:
            details["kind"] = self.target.resource
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if details:
            body["details"] = details
        body["code"] = self.code
        return body


class BadRequest(APIError):
    code, reason = 400, "BadRequest"


class Unauthorized(APIError):
    code, reason = 401, "Unauthorized"


class Forbidden(APIError):
    code, reason = 403, "Forbidden"


class NotFound(APIError):
    code, reason = 404, "NotFound"

    @classmethod
    def of(cls, target: Target) -> NotFound:
        return cls(f'{target.qualified} "{target.name}" not found', target=target)


class MethodNotAllowed(APIError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(APIError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(APIError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def of(cls, target: Target) -> AlreadyExists:
        return cls(f'{target.qualified} "{target.name}" already exists', target=target)


class Conflict(APIError):
    code, reason = 409, "Conflict"

    @classmethod
    def modified(cls, target: Target) -> Conflict:
        return cls(
            f'Operation cannot be fulfilled on {target.qualified} "{target.name}": the object'
            " has been modified; please apply your changes to the latest version and try again",
            target=target,
        )


class Gone(APIError):
    code, reason = 410, "Gone"


class Expired(APIError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(APIError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(APIError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(APIError):
    code, reason = 422, "Invalid"

    def __init__(self, target: Target, errors: list[FieldError]) -> None:
        if len(errors) == 1:
            summary = str(errors[0])
        else:
            summary = "[" + ", ".join(str(e) for e in errors) + "]"
        kind = target.kind or target.resource
        if target.group:
            kind = f"{kind}.{target.group}"
        super().__init__(
            f'{kind} "{target.name}" is invalid: {summary}',
            target=Target(target.resource, target.group, target.name, target.kind),
            causes=[e.cause() for e in errors],
        )
        self.errors = errors

    def status(self) -> JSON:
        body = super().status()
        body["details"]["kind"] = self.target.kind or self.target.resource
        return body


class TooManyRequests(APIError):
    code, reason = 429, "TooManyRequests"


class InternalError(APIError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(APIError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(APIError):
    code, reason = 504, "Timeout"


def success_status(target: Target | None = None, uid: str = "") -> JSON:
    """The Status a delete answers with for kinds that do not return the object."""
    details: JSON = {}
    if target is not None:
        details = {"name": target.name, "kind": target.resource}
        if target.group:
            details["group"] = target.group
    if uid:
        details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


__all__ = [
    "APIError",
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Expired",
    "FieldError",
    "Forbidden",
    "Gone",
    "InternalError",
    "Invalid",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "RequestEntityTooLarge",
    "ServiceUnavailable",
    "Target",
    "Timeout",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
]


def _classes() -> dict[str, type[APIError]]:
    found: dict[str, type[APIError]] = {}
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        AlreadyExists,
        Conflict,
        Gone,
        Expired,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        Invalid,
        TooManyRequests,
        InternalError,
        ServiceUnavailable,
        Timeout,
    ):
        found[cls.reason] = cls
    return found


def from_status(status: JSON, code: int) -> APIError:
    """Rebuild the API error a Status describes (the HTTP client's side of ``status()``)."""
    reason = str(status.get("reason") or "")
    cls = _classes().get(reason)
    if cls is None:
        cls = {404: NotFound, 409: Conflict, 410: Gone, 422: Invalid}.get(code, APIError)
    error = APIError.__new__(cls)
    details = status.get("details") or {}
    target = Target(
        str(details.get("kind", "")), str(details.get("group", "")), str(details.get("name", ""))
    )
    APIError.__init__(
        error, str(status.get("message", "")), target=target, causes=details.get("causes") or []
    )
    error.code, error.reason = code, reason or error.reason
    return error
