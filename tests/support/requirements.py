"""Real dependencies for tests: a missing one skips locally but fails in CI (CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str) -> None:
    """Fail under CI=true (a missing dependency there is a broken setup); skip elsewhere."""
    message = f"{what} is not available (run `make test`, which sets it up)"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)  # CI=true never reaches this line: see above


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"the `{name}` binary")
        raise AssertionError("unreachable")
    return path
