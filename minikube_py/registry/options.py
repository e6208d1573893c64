"""Request options the registry understands, already parsed from the query string."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

import orjson

from minikube_py.errors import BadRequest

BAD_CONTINUE = (
    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
)


@dataclass(frozen=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    timeout_seconds: int | None = None
    allow_bookmarks: bool = False
    send_initial_events: bool = False
    """A watch that first streams the current state (``sendInitialEvents=true``)."""


@dataclass(frozen=True)
class Preconditions:
    uid: str | None = None
    resource_version: str | None = None


@dataclass(frozen=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    preconditions: Preconditions = field(default_factory=Preconditions)
    dry_run: bool = False


PROPAGATION = ("Orphan", "Background", "Foreground")


@dataclass(frozen=True)
class Continue:
    """The opaque ``continue`` token: the list's revision and the last key returned."""

    revision: int
    start_after: str

    def encode(self) -> str:
        raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": self.revision, "start": self.start_after})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Continue:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = orjson.loads(base64.urlsafe_b64decode(padded))
            revision, start = int(data["rv"]), str(data["start"])
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise BadRequest(BAD_CONTINUE) from None
        if revision <= 0:
            raise BadRequest(BAD_CONTINUE)
        return cls(revision, start)
