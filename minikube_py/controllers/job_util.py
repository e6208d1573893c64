"""Pure pieces of the Job controller: pod templates, pod states, indexes, conditions.

No I/O here, so each rule of batch/v1 Jobs can be read (and tested) on its own.
"""

from __future__ import annotations

from minikube_py.meta.objects import Obj, deep_copy, dig, metadata, parse_time

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
"""Held on every pod until the Job has counted it, so no finished pod goes uncounted."""
INDEX = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
BACKOFF_MAX = 360.0


def controller_ref(job: Obj) -> Obj:
    meta = metadata(job)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(pod: Obj, job_uid: str) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == job_uid
        for ref in metadata(pod).get("ownerReferences") or []
    )


def job_ref(pod: Obj) -> Obj | None:
    """The pod's controller reference, if a Job is its controller."""
    for ref in metadata(pod).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job":
            found: Obj = ref
            return found
    return None


def is_indexed(job: Obj) -> bool:
    return str(dig(job, "spec", "completionMode")) == "Indexed"


def _index_env(container: Obj) -> None:
    env = [e for e in container.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
    env.insert(
        0,
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX}']"}},
        },
    )
    container["env"] = env


def pod_for(job: Obj, index: int | None) -> Obj:
    """A pod from the Job's template: owned, tracked, labelled; indexed when asked."""
    template = deep_copy(dig(job, "spec", "template") or {})
    job_meta = metadata(job)
    name, uid = str(job_meta.get("name", "")), str(job_meta.get("uid", ""))
    meta = template.get("metadata") or {}
    pod_labels = dict(meta.get("labels") or {})
    # The selector the API server generates uses these; set them even if it did not.
    for key, value in (
        (CONTROLLER_UID, uid),
        (JOB_NAME, name),
        (LEGACY_CONTROLLER_UID, uid),
        (LEGACY_JOB_NAME, name),
    ):
        pod_labels.setdefault(key, value)
    annotations = dict(meta.get("annotations") or {})
    spec = template.get("spec") or {}
    prefix = f"{name}-"
    if index is not None:
        pod_labels[INDEX] = str(index)
        annotations[INDEX] = str(index)
        prefix = f"{name}-{index}-"
        spec.setdefault("hostname", f"{name}-{index}")
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                _index_env(container)
    pod_meta: Obj = {
        "generateName": prefix,
        "namespace": job_meta.get("namespace", ""),
        "labels": pod_labels,
        "ownerReferences": [controller_ref(job)],
        "finalizers": [TRACKING_FINALIZER],
    }
    if annotations:
        pod_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def pod_index(pod: Obj, completions: int) -> int | None:
    """The pod's completion index, if it has a valid one."""
    meta = metadata(pod)
    text = (meta.get("annotations") or {}).get(INDEX) or (meta.get("labels") or {}).get(INDEX)
    if not isinstance(text, str) or not text.isdigit():
        return None
    index = int(text)
    return index if index < completions else None


def parse_indexes(text: str) -> set[int]:
    """``"1,3-5"`` → {1, 3, 4, 5} (status.completedIndexes)."""
    found: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            found.update(range(int(low), int(high or low) + 1))
    return found


def format_indexes(indexes: set[int]) -> str:
    """{1, 3, 4, 5} → ``"1,3-5"``."""
    parts: list[str] = []
    ordered = sorted(indexes)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        low, high = ordered[start], ordered[end]
        parts.append(str(low) if low == high else f"{low}-{high}")
        start = end + 1
    return ",".join(parts)


# -- pod states --


def succeeded(pod: Obj) -> bool:
    return str(dig(pod, "status", "phase")) == "Succeeded"


def failed(pod: Obj, job: Obj) -> bool:
    """kube's isPodFailed: Failed, or deleted before succeeding (such a pod may never
    reach a phase), unless the Job replaces only Failed pods."""
    if dig(pod, "status", "phase") == "Failed":
        return True
    if dig(job, "spec", "podReplacementPolicy") == "Failed":
        return False
    return bool(dig(pod, "metadata", "deletionTimestamp")) and not succeeded(pod)


def active(pod: Obj) -> bool:
    """Running or about to: neither finished nor being deleted."""
    phase = dig(pod, "status", "phase")
    return phase not in ("Succeeded", "Failed") and not dig(pod, "metadata", "deletionTimestamp")


def terminating(pod: Obj) -> bool:
    phase = dig(pod, "status", "phase")
    return bool(dig(pod, "metadata", "deletionTimestamp")) and phase not in ("Succeeded", "Failed")


def ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in dig(pod, "status", "conditions") or []
    )


def restarts_of(pod: Obj) -> int:
    return sum(
        int(s.get("restartCount") or 0) for s in dig(pod, "status", "containerStatuses") or []
    )


def deletion_order(pod: Obj) -> tuple[int, int, str]:
    """Which active pods to remove first: unscheduled, then pending, then not ready."""
    scheduled = 1 if dig(pod, "spec", "nodeName") else 0
    running = 1 if dig(pod, "status", "phase") == "Running" else 0
    return (scheduled + running, 1 if ready(pod) else 0, str(dig(pod, "metadata", "name")))


# -- decisions --


def backoff_exceeded(job: Obj, failed: int, active_pods: list[Obj]) -> bool:
    """More failures than backoffLimit; under OnFailure, container restarts count too."""
    restarts = 0
    if dig(job, "spec", "template", "spec", "restartPolicy") == "OnFailure":
        restarts = sum(restarts_of(p) for p in active_pods)
    limit = dig(job, "spec", "backoffLimit")
    return failed + restarts > (limit if isinstance(limit, int) else 6)


def deadline_left(job: Obj, started: str, now: float) -> float | None:
    """Seconds until activeDeadlineSeconds runs out (None: no deadline, or suspended)."""
    deadline = dig(job, "spec", "activeDeadlineSeconds")
    if not isinstance(deadline, int) or dig(job, "spec", "suspend"):
        return None
    return parse_time(started) + deadline - now


def success_reached(job: Obj, succeeded: int, completed: set[int], any_active: bool) -> bool:
    """Every index done (Indexed), enough completions, or, with no completions set,
    one pod succeeded and none still runs."""
    completions = dig(job, "spec", "completions")
    if not isinstance(completions, int):
        return succeeded > 0 and not any_active
    if is_indexed(job):
        return len(completed) >= completions
    return succeeded >= completions


def wanted_active(completions: int | None, parallelism: int, succeeded: int) -> int:
    """NonIndexed: parallelism, but no more than the completions still missing."""
    if completions is None:
        return 0 if succeeded > 0 else parallelism
    return max(min(parallelism, completions - succeeded), 0)


def indexed_plan(
    active_pods: list[Obj], completed: set[int], completions: int, parallelism: int
) -> tuple[list[Obj], list[int]]:
    """Indexed: (pods to delete, indexes to start). Duplicates, bad or finished indexes
    and the highest indexes beyond ``parallelism`` go; pending indexes fill the room."""
    by_index: dict[int, Obj] = {}
    extra = []
    for pod in sorted(active_pods, key=deletion_order, reverse=True):
        index = pod_index(pod, completions)
        if index is None or index in completed or index in by_index:
            extra.append(pod)
        else:
            by_index[index] = pod
    extra += [by_index.pop(i) for i in sorted(by_index)[parallelism:]]
    pending = [i for i in range(completions) if i not in completed and i not in by_index]
    return extra, pending[: max(parallelism - len(by_index), 0)]


# -- status --


def set_count(status: Obj, field: str, value: int) -> None:
    """Counters are omitted at zero, as the API's omitempty int32 fields are."""
    if value:
        status[field] = value
    else:
        status.pop(field, None)


def uncounted(succeeded: set[str], failed: set[str]) -> Obj:
    """status.uncountedTerminatedPods for these uids."""
    found: Obj = {}
    if succeeded:
        found["succeeded"] = sorted(succeeded)
    if failed:
        found["failed"] = sorted(failed)
    return found


def any_uncounted(status: Obj) -> bool:
    pending = status.get("uncountedTerminatedPods") or {}
    return bool(pending.get("succeeded") or pending.get("failed"))


# -- conditions --


def condition_of(job: Obj, kind: str) -> Obj | None:
    for condition in dig(job, "status", "conditions") or []:
        if condition.get("type") == kind:
            found: Obj = condition
            return found
    return None


def has_condition(job: Obj, kind: str) -> bool:
    return (condition_of(job, kind) or {}).get("status") == "True"


def finished(job: Obj) -> str:
    """ "Complete", "Failed", or "" while the Job still runs."""
    for kind in ("Complete", "Failed"):
        if has_condition(job, kind):
            return kind
    return ""


def set_condition(status: Obj, kind: str, value: bool, reason: str, message: str, now: str) -> None:
    """Set a condition; its transition time moves only when its status does."""
    conditions = list(status.get("conditions") or [])
    text = "True" if value else "False"
    for position, condition in enumerate(conditions):
        if condition.get("type") != kind:
            continue
        moved = condition.get("status") != text
        conditions[position] = {
            **condition,
            "status": text,
            "reason": reason,
            "message": message,
            "lastProbeTime": now if moved else condition.get("lastProbeTime", now),
            "lastTransitionTime": now if moved else condition.get("lastTransitionTime", now),
        }
        status["conditions"] = conditions
        return
    conditions.append(
        {
            "type": kind,
            "status": text,
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
    )
    status["conditions"] = conditions


def backoff_delay(failures: int, base: float) -> float:
    """Delay before replacing a failed pod: base, doubled per failure, at most 6 minutes."""
    if failures <= 0:
        return 0.0
    return float(min(base * 2 ** (failures - 1), BACKOFF_MAX))
