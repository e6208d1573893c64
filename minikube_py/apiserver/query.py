"""Query-string parameters → typed options, with kube-apiserver's messages for bad values."""

from __future__ import annotations

from collections.abc import Mapping

from minikube_py import errors
from minikube_py.registry.options import PROPAGATION, DeleteOptions, ListOptions, Preconditions

Query = Mapping[str, str]


def _int(query: Query, key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(f'invalid value for {key}: "{raw}"') from None


def _bool(query: Query, key: str) -> bool:
    return query.get(key, "").lower() in ("true", "1")


def list_options(query: Query) -> ListOptions:
    limit = _int(query, "limit") or 0
    return ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=max(limit, 0),
        continue_token=query.get("continue", ""),
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get("resourceVersionMatch", ""),
        timeout_seconds=_int(query, "timeoutSeconds"),
        allow_bookmarks=_bool(query, "allowWatchBookmarks"),
    )


def is_watch(query: Query) -> bool:
    return _bool(query, "watch")


def dry_run(query: Query) -> bool:
    values = query.get("dryRun", "")
    if values and values != "All":
        raise errors.BadRequest(f'dryRun: Unsupported value: "{values}": supported values: "All"')
    return values == "All"


def delete_options(query: Query, body: object) -> DeleteOptions:
    """DeleteOptions from the body (kubectl sends one) overlaid by query parameters."""
    data = body if isinstance(body, dict) else {}
    grace = data.get("gracePeriodSeconds")
    query_grace = _int(query, "gracePeriodSeconds")
    if query_grace is not None:
        grace = query_grace
    policy = query.get("propagationPolicy") or data.get("propagationPolicy")
    orphan = data.get("orphanDependents")
    if "orphanDependents" in query:
        orphan = _bool(query, "orphanDependents")
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    if policy is not None and policy not in PROPAGATION:
        raise errors.Invalid(
            errors.Target(kind="DeleteOptions"),
            [errors.not_supported("propagationPolicy", policy, list(PROPAGATION))],
        )
    pre = data.get("preconditions") or {}
    dry = data.get("dryRun") == ["All"] or dry_run(query)
    return DeleteOptions(
        grace_period_seconds=int(grace) if grace is not None else None,
        propagation_policy=policy,
        preconditions=Preconditions(pre.get("uid"), pre.get("resourceVersion")),
        dry_run=dry,
    )
