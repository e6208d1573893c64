"""Pure arithmetic of Deployments (``pkg/controller/deployment/util``): no I/O here.

Surge and unavailability from ints or percentages, revisions and the annotations that
carry them, which ReplicaSet is "new", how a resize is shared among ReplicaSets, the
status and its conditions. Kept apart so the rollout code reads as decisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from minikube_py.controllers.podtemplate import equal_ignore_hash, uid_of
from minikube_py.meta.objects import Obj, annotations_of, dig, format_time, parse_time

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
MAX_REVISION_HISTORY_CHARS = 2000
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
"""Deployment annotations never copied to its ReplicaSets (nor back by a rollback)."""

# Progressing reasons
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
# Available reasons
MINIMUM_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_UNAVAILABLE = "MinimumReplicasUnavailable"
NO_DEADLINE = 2**31 - 1
"""progressDeadlineSeconds of MaxInt32 means "never time out" (HasProgressDeadline)."""


# --- numbers ---------------------------------------------------------------------------------


def replicas_of(obj: Obj | None) -> int:
    return int(dig(obj, "spec", "replicas") or 0) if obj is not None else 0


def status_count(obj: Obj | None, name: str) -> int:
    return int(dig(obj, "status", name) or 0) if obj is not None else 0


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: "25%" of ``total``, rounded up or down."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    percent = int(text[:-1])
    return -(-percent * total // 100) if round_up else percent * total // 100


def is_rolling(d: Obj) -> bool:
    return (dig(d, "spec", "strategy", "type") or "RollingUpdate") == "RollingUpdate"


def fenceposts(d: Obj) -> tuple[int, int]:
    """ResolveFenceposts: (surge, unavailable); both zero would deadlock, so 0/0 is 0/1."""
    rolling = dig(d, "spec", "strategy", "rollingUpdate") or {}
    desired = replicas_of(d)
    surge = scaled_value(rolling.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 0), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas_of(d))


def total_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(replicas_of(rs) for rs in rss if rs is not None)


def total_status(rss: Iterable[Obj | None], name: str) -> int:
    return sum(status_count(rs, name) for rs in rss if rs is not None)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    """FilterActiveReplicaSets: those asked to run at least one pod."""
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


# --- surge and availability as pods really are ---------------------------------------------


def pods_at_most(rs: Obj) -> int:
    """Pods an RS may have right now: its spec, or more while deletions are still pending.

    Kubernetes sums ``spec.replicas``; while a scaled-down set still runs the pods its
    controller is about to delete, that undercounts, and a surge computed from it can
    briefly put more than replicas+maxSurge pods on the cluster. The larger of spec and
    status keeps the bound true for the pods themselves.
    """
    return max(replicas_of(rs), status_count(rs, "replicas"))


def available_at_least(rs: Obj) -> int:
    """Available pods an RS is sure to keep: a set being scaled down keeps at most its spec."""
    return min(replicas_of(rs), status_count(rs, "availableReplicas"))


def new_rs_new_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> int:
    """NewRSNewReplicas: how far the new set may grow now (surge-bounded when rolling)."""
    if not is_rolling(d):
        return replicas_of(d)
    surge = scaled_value(
        (dig(d, "spec", "strategy", "rollingUpdate") or {}).get("maxSurge", 0),
        replicas_of(d),
        True,
    )
    current = sum(pods_at_most(rs) for rs in all_rss if rs is not None)
    ceiling = replicas_of(d) + surge
    if current >= ceiling:
        return replicas_of(new_rs)
    grow = min(ceiling - current, replicas_of(d) - replicas_of(new_rs))
    return replicas_of(new_rs) + grow


# --- revisions and annotations ---------------------------------------------------------------


def int_annotation(obj: Obj, key: str) -> int | None:
    """An annotation holding an integer, or None when absent or not a number."""
    value = annotations_of(obj).get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def revision_of(obj: Obj) -> int:
    return int_annotation(obj, REVISION) or 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def creation_key(rs: Obj) -> tuple[float, str]:
    """ReplicaSetsByCreationTimestamp: oldest first, ties by name."""
    stamp = dig(rs, "metadata", "creationTimestamp")
    return (parse_time(stamp) if stamp else 0.0, str(dig(rs, "metadata", "name") or ""))


def revision_key(rs: Obj) -> tuple[int, float, str]:
    return (revision_of(rs), *creation_key(rs))


def find_new(d: Obj, rss: list[Obj]) -> Obj | None:
    """FindNewReplicaSet: the oldest set whose template is the deployment's (hash aside)."""
    template = dig(d, "spec", "template") or {}
    for rs in sorted(rss, key=creation_key):
        if equal_ignore_hash(dig(rs, "spec", "template") or {}, template):
            return rs
    return None


def find_old(d: Obj, rss: list[Obj]) -> list[Obj]:
    new = find_new(d, rss)
    return [rs for rs in rss if new is None or uid_of(rs) != uid_of(new)]


def copy_annotations(d: Obj, rs: Obj) -> bool:
    """copyDeploymentAnnotationsToReplicaSet: everything but the skipped keys; True if changed."""
    target = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in annotations_of(d).items():
        if key not in ANNOTATIONS_TO_SKIP and target.get(key) != value:
            target[key] = value
            changed = True
    return changed


def _append_history(annotations: dict[str, str], old_revision: str) -> None:
    history = annotations.get(REVISION_HISTORY, "")
    if not history:
        annotations[REVISION_HISTORY] = old_revision
        return
    kept = history.split(",")
    total = len(history) + len(old_revision) + 1
    while total > MAX_REVISION_HISTORY_CHARS and kept:
        total -= len(kept.pop(0)) + 1
    if total <= MAX_REVISION_HISTORY_CHARS:
        annotations[REVISION_HISTORY] = ",".join([*kept, old_revision])


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)}
    changed = any(annotations.get(k) != v for k, v in wanted.items())
    annotations.update(wanted)
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)}
    return any(annotations_of(rs).get(k) != v for k, v in wanted.items())


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copy annotations, raise the revision, keep its history.

    A set that had a revision and gets a higher one is being rolled back to; its former
    revisions go into ``revision-history`` so ``rollout history`` can still name them.
    """
    changed = copy_annotations(d, rs)
    annotations = rs["metadata"]["annotations"]
    old = annotations.get(REVISION)
    try:
        old_number = int(old) if old else 0
    except ValueError:
        return False
    if old_number < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old:
            _append_history(annotations, old)
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The new set runs every desired pod, all available: old sets can go to zero."""
    if rs is None:
        return False
    wanted = replicas_of(d)
    return (
        replicas_of(rs) == wanted
        and int_annotation(rs, DESIRED_REPLICAS) == wanted
        and status_count(rs, "availableReplicas") == wanted
    )


# --- proportional scaling --------------------------------------------------------------------


def _round_half_away(value: float) -> int:
    """integer.RoundToInt32 (math.Round): halves away from zero, unlike Python's round."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def rs_fraction(rs: Obj, d: Obj) -> int:
    """getReplicaSetFraction: this set's share of a resize, from the size it was made for."""
    if replicas_of(d) == 0:
        return -replicas_of(rs)
    new_max = replicas_of(d) + max_surge(d)
    old_max = int_annotation(rs, MAX_REPLICAS) or status_count(d, "replicas")
    if old_max == 0:
        return 0
    return _round_half_away(replicas_of(rs) * new_max / old_max) - replicas_of(rs)


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """GetProportion: the fraction, clipped to what is still left to add or remove."""
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction, allowed = rs_fraction(rs, d), to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# --- conditions and status -------------------------------------------------------------------


def get_condition(status: Obj, kind: str) -> Obj | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None


def new_condition(kind: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = format_time(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, condition: Obj) -> None:
    """SetDeploymentCondition: same status and reason is no change.

    A change of reason under the same status keeps lastTransitionTime.
    """
    current = get_condition(status, condition["type"])
    if current is not None and (current["status"], current.get("reason")) == (
        condition["status"],
        condition.get("reason"),
    ):
        return
    if current is not None and current["status"] == condition["status"]:
        condition["lastTransitionTime"] = current.get("lastTransitionTime")
    remove_condition(status, condition["type"])
    status.setdefault("conditions", []).append(condition)


def remove_condition(status: Obj, kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    deadline = dig(d, "spec", "progressDeadlineSeconds")
    return deadline is not None and deadline != NO_DEADLINE


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float) -> Obj:
    """calculateStatus: counts from the sets' statuses, and the Available condition."""
    available = total_status(all_rss, "availableReplicas")
    values = {
        "observedGeneration": int(dig(d, "metadata", "generation") or 0),
        "replicas": total_status(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": total_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(total_replicas(all_rss) - available, 0),
    }
    status: Obj = {name: value for name, value in values.items() if value}
    old = d.get("status") or {}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= replicas_of(d) - max_unavailable(d):
        message = "Deployment has minimum availability."
        set_condition(status, new_condition("Available", "True", MINIMUM_AVAILABLE, message, now))
    else:
        message = "Deployment does not have minimum availability."
        condition = new_condition("Available", "False", MINIMUM_UNAVAILABLE, message, now)
        set_condition(status, condition)
    return status


def complete(d: Obj, status: Obj) -> bool:
    """DeploymentComplete: every desired pod updated and available, latest spec observed."""
    counts = ("updatedReplicas", "replicas", "availableReplicas")
    if any(int(status.get(name) or 0) != replicas_of(d) for name in counts):
        return False
    return int(status.get("observedGeneration") or 0) >= int(dig(d, "metadata", "generation") or 0)


def progressing(d: Obj, status: Obj) -> bool:
    """DeploymentProgressing: more updated/ready/available pods, or fewer old ones, than before."""
    old = d.get("status") or {}

    def count(source: Obj, name: str) -> int:
        return int(source.get(name) or 0)

    def outdated(source: Obj) -> int:
        return count(source, "replicas") - count(source, "updatedReplicas")

    grown = ("updatedReplicas", "readyReplicas", "availableReplicas")
    return outdated(status) < outdated(old) or any(count(status, n) > count(old, n) for n in grown)


def timed_out(d: Obj, status: Obj, now: float) -> bool:
    """DeploymentTimedOut: no progress reported for progressDeadlineSeconds."""
    if not has_progress_deadline(d):
        return False
    condition = get_condition(status, "Progressing")
    if condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    since = parse_time(str(condition.get("lastUpdateTime")))
    return bool(since + int(dig(d, "spec", "progressDeadlineSeconds")) < now)
