"""Differential check: our patch functions against ``kubectl patch --local`` (kubectl 1.32).

kubectl vendors the very code kube-apiserver runs (evanphx/json-patch v4 and apimachinery's
strategicpatch with the k8s.io/api struct tags), so on the same object and patch both must give
the same document or the same error text. Without kubectl these fail in CI: the other test
modules hold the same cases with literal expectations.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from minikube_py.meta.jsonpatch import apply_json_patch
from minikube_py.meta.mergepatch import apply_merge_patch
from minikube_py.meta.patch import PatchError, kind_type_name
from minikube_py.meta.strategic import strategic_merge
from tests.meta import test_jsonpatch, test_kubectl_apply, test_mergepatch, test_strategic
from tests.support.requirements import require_binary


@pytest.fixture(autouse=True)
def kubectl() -> str:
    """The real kubectl (a failure under CI=true when missing, see requirements)."""
    return require_binary("kubectl")


# Where kubectl's client-side code words an error differently from the API server.
CLIENT_ONLY = ("Object to be patched is missing field", "invalid JSON document")

Outcome = tuple[str, Any]


def kubectl_patch(tmp_path: Path, obj: Any, patch: Any, flavour: str) -> Outcome:
    source = tmp_path / "object.json"
    source.write_text(json.dumps(obj))
    command = ["kubectl", "patch", "--local", "-f", str(source), "--type", flavour]
    done = subprocess.run(
        [*command, "-p", json.dumps(patch), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode:
        return ("error", done.stderr.strip().removeprefix("error: "))
    return ("ok", json.loads(done.stdout))


def ours(obj: Any, patch: Any, flavour: str) -> Outcome:
    try:
        if flavour == "json":
            return ("ok", apply_json_patch(obj, patch))
        if flavour == "merge":
            return ("ok", apply_merge_patch(obj, patch))
        return ("ok", strategic_merge(obj, patch, kind_type_name(obj["apiVersion"], obj["kind"])))
    except PatchError as error:
        return ("error", error.message.strip())


def same_as_kubectl(tmp_path: Path, obj: Any, patch: Any, flavour: str) -> None:
    expected = kubectl_patch(tmp_path, obj, patch, flavour)
    if expected[0] == "error" and expected[1].startswith(CLIENT_ONLY):
        # kubectl words this error client-side, unlike the server: compare only the verdict.
        assert ours(obj, patch, flavour)[0] == "error"
        return
    assert ours(obj, patch, flavour) == expected


JSON_CASES = [(case[0], case[1]) for case in test_jsonpatch.APPLIES + test_jsonpatch.FAILS]
JSON_CASES = [(name, patch) for name, patch in JSON_CASES if name != "too many operations"]


@pytest.mark.parametrize("patch", [c[1] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_json_patch(tmp_path: Path, patch: Any) -> None:
    same_as_kubectl(tmp_path, test_jsonpatch.POD, patch, "json")


MERGE_CASES = [case for case in test_mergepatch.CASES if isinstance(case[1], dict)]


@pytest.mark.parametrize("patch", [c[1] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge_patch(tmp_path: Path, patch: Any) -> None:
    same_as_kubectl(tmp_path, test_mergepatch.DEPLOYMENT, patch, "merge")


STRATEGIC_CASES = [(c[0], c[1], c[2]) for c in test_strategic.CASES + test_strategic.ERRORS]
# kube keeps nulls inside a list replaced by `$patch: replace`; we prune them (see strategic.py).
STRATEGIC_CASES = [c for c in STRATEGIC_CASES if "$patch: replace in an element" not in c[0]]


@pytest.mark.parametrize(
    ("obj", "patch"), [c[1:] for c in STRATEGIC_CASES], ids=[c[0] for c in STRATEGIC_CASES]
)
def test_strategic_merge_patch(tmp_path: Path, obj: Any, patch: Any) -> None:
    same_as_kubectl(tmp_path, obj, patch, "strategic")


@pytest.mark.parametrize(
    "flow", test_kubectl_apply.FLOWS, ids=[flow[0] for flow in test_kubectl_apply.FLOWS]
)
def test_recorded_apply(tmp_path: Path, flow: tuple[Any, ...]) -> None:
    _, old, new, server_side, patch, _, _ = flow
    live = test_kubectl_apply.live_from(old, server_side)
    same_as_kubectl(tmp_path, live, test_kubectl_apply.with_annotation(patch, new), "strategic")
