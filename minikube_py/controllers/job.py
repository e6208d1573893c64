"""Job controller: runs pods to completion, as kube-controller-manager's does (1.32).

Each pass over a Job:

1. counts finished pods the kube way: every pod carries the ``job-tracking`` finalizer;
   a finished one (Succeeded, Failed, or deleted before succeeding) is first recorded
   by uid in ``status.uncountedTerminatedPods``, then its finalizer goes, then it moves
   into ``succeeded``/``failed``. A pod removed by anyone (pod GC, a user) is therefore
   counted exactly once;
2. decides: more failures than ``backoffLimit`` (plus container restarts under
   OnFailure) or ``activeDeadlineSeconds`` passed → FailureTarget, then Failed once no
   pod is left terminating; enough completions (or every index, for Indexed) →
   SuccessCriteriaMet, then Complete with ``completionTime``;
3. otherwise keeps ``parallelism`` pods active (fewer as completions near), replacing
   failed ones after an exponential back-off (``job-backoff-base``, 10 s upstream), in
   slow-start batches; Indexed Jobs run one pod per pending index, with the index in
   an annotation, a label, ``JOB_COMPLETION_INDEX`` and the hostname;
4. a finished Job with ``ttlSecondsAfterFinished`` is deleted (Foreground) when due.

Creations and deletions are remembered until the pod informer shows them
("expectations"), so a pass on a lagging cache never creates a pod twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.controllers import job_util as ju
from minikube_py.controllers.base import Controller, KeysFor, own_key, owner_keys, resource
from minikube_py.meta.objects import (
    Clock,
    Obj,
    deep_copy,
    dig,
    format_time,
    metadata,
    parse_time,
    resource_version,
)
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)

JOBS = resource("batch", "Job")
PODS = resource("", "Pod")
EXPECTATION_SECONDS = 60.0
"""How long an unobserved creation or deletion holds a Job's syncs back, at most."""
BACKOFF_LIMIT = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")
_job_of = owner_keys("Job")
ORPHAN = "orphan:"
"""Queue keys of pods holding the tracking finalizer of a Job that no longer exists."""


class JobController(Controller):
    name = "job"
    workers = 4

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        events: EventRecorder,
        *,
        backoff_base: float = 10.0,
        clock: Clock = time.time,
    ) -> None:
        self.owned: dict[str, set[str]] = {}
        self.expected: dict[str, dict[str, float]] = {}
        super().__init__(client, informers, events)
        self.backoff_base = backoff_base
        self.clock = clock
        self.failures: dict[str, tuple[set[str], float]] = {}
        self.written: dict[str, Obj] = {}
        self.jobs = informers.get(JOBS)
        self.pods = informers.get(PODS)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(JOBS, self._job_changed), (PODS, self._pod_changed)]

    def _job_changed(self, kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        """A deleted Job's pods may still hold its finalizer: they are released."""
        keys = list(own_key(kind, obj, previous))
        if kind == "DELETED":
            keys += [ORPHAN + k for k in self.owned.get(str(metadata(obj).get("uid")), ())]
        return keys

    def _pod_changed(self, kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        """Index pods by owning Job uid and tick off the expectations they satisfy."""
        meta = metadata(obj)
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        for candidate in (previous, obj):
            for ref in metadata(candidate or {}).get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == "Job":
                    self._index(str(ref.get("uid")), key, kind != "DELETED" and candidate is obj)
        jobs = list(_job_of(kind, obj, previous))
        for job in jobs:
            pending = self.expected.get(job)
            if pending:
                pending.pop(f"+{meta.get('name')}", None)
                if kind == "DELETED" or meta.get("deletionTimestamp"):
                    pending.pop(f"-{meta.get('uid')}", None)
        if kind != "DELETED" and _tracked(obj) and not self._owner_known(obj):
            jobs.append(ORPHAN + key)
        return jobs

    def _index(self, job_uid: str, pod_key: str, present: bool) -> None:
        owned = self.owned.setdefault(job_uid, set())
        if present:
            owned.add(pod_key)
            return
        owned.discard(pod_key)
        if not owned:
            del self.owned[job_uid]

    def _owner_known(self, pod: Obj) -> bool:
        ref = ju.job_ref(pod)
        job = self.jobs.get(f"{metadata(pod).get('namespace')}/{ref.get('name')}") if ref else None
        return job is not None and metadata(job).get("uid") == (ref or {}).get("uid")

    async def _release_orphan(self, pod_key: str) -> None:
        """Drop the tracking finalizer of a pod whose Job is gone (confirmed live: the
        Job informer may simply not have seen a new Job yet)."""
        pod = self.pods.get(pod_key)
        ref = ju.job_ref(pod) if pod is not None else None
        if pod is None or ref is None or not _tracked(pod):
            return
        try:
            job = await self.client.get(JOBS, str(metadata(pod)["namespace"]), str(ref["name"]))
            if metadata(job).get("uid") == ref.get("uid"):
                return
        except errors.NotFound:
            pass
        await self.remove_finalizers([pod])

    def _expect(self, job: str, token: str) -> None:
        self.expected.setdefault(job, {})[token] = time.monotonic() + EXPECTATION_SECONDS

    def _satisfied(self, job: str) -> bool:
        now = time.monotonic()
        pending = {t: d for t, d in self.expected.get(job, {}).items() if d > now}
        self.expected[job] = pending
        return not pending

    def _owned_pods(self, job: Obj) -> list[Obj]:
        uid = str(metadata(job).get("uid"))
        found = (self.pods.get(k) for k in list(self.owned.get(uid, ())))
        return [p for p in found if p is not None and ju.owned_by(p, uid)]

    def _current(self, key: str) -> Obj | None:
        """The informer's Job, or the one this controller last wrote if that is newer:
        a pass right after a status write must not start from (and conflict on) the
        version it replaced."""
        job, written = self.jobs.get(key), self.written.get(key)
        if job is None or written is None:
            return job
        same = metadata(written).get("uid") == metadata(job).get("uid")
        newer = int(resource_version(written) or 0) > int(resource_version(job) or 0)
        return written if same and newer else job

    async def reconcile(self, key: str) -> float | None:
        if key.startswith(ORPHAN):
            await self._release_orphan(key.removeprefix(ORPHAN))
            return None
        job = self._current(key)
        if job is None:
            self.expected.pop(key, None)
            self.failures.pop(key, None)
            self.written.pop(key, None)
            return None
        pods = self._owned_pods(job)
        if ju.finished(job):
            await self.remove_finalizers([p for p in pods if _tracked(p)])
            return await self._expire(job)
        if not self._satisfied(key):
            return None
        return await JobSync(self, key, job, pods).run()

    async def _expire(self, job: Obj) -> float | None:
        """ttlSecondsAfterFinished: delete the finished Job (and its pods) when due."""
        ttl = dig(job, "spec", "ttlSecondsAfterFinished")
        if not isinstance(ttl, int):
            return None
        failed_at = (ju.condition_of(job, "Failed") or {}).get("lastTransitionTime")
        ended = dig(job, "status", "completionTime") or failed_at
        due = (parse_time(ended) if ended else self.clock()) + ttl
        if due > self.clock():
            return due - self.clock()
        meta = metadata(job)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.client.delete(
                JOBS,
                str(meta["namespace"]),
                str(meta["name"]),
                propagation="Foreground",
                uid=str(meta["uid"]),
            )
        return None

    async def remove_finalizers(self, pods: list[Obj]) -> set[str]:
        """Drop the tracking finalizer; the uids of pods that no longer carry it."""
        done = set()
        for pod in pods:
            meta = metadata(pod)
            kept = [f for f in meta.get("finalizers") or [] if f != ju.TRACKING_FINALIZER]
            patch = {"metadata": {"finalizers": kept, "resourceVersion": meta["resourceVersion"]}}
            try:
                await self.client.patch(PODS, str(meta["namespace"]), str(meta["name"]), patch)
            except errors.Conflict:
                continue  # changed meanwhile; its next event brings it back
            except errors.NotFound:
                pass
            done.add(str(meta["uid"]))
        return done

    async def create_pods(self, key: str, job: Obj, indexes: list[int | None]) -> int:
        """Create in slow-start batches (1, 2, 4, ...); stops at the first failure."""
        created, batch = 0, 1
        namespace = str(metadata(job)["namespace"])
        while created < len(indexes):
            chunk = indexes[created : created + batch]
            results = await asyncio.gather(
                *(self.client.create(PODS, namespace, ju.pod_for(job, i)) for i in chunk),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            for result in results:
                if not isinstance(result, BaseException):
                    self._created(key, job, metadata(result)["name"])
                elif not namespace_terminating(result):
                    self.events.record(job, "Warning", "FailedCreate", f"Error creating: {result}")
            created += len(chunk) - len(failures)
            if any(not namespace_terminating(f) for f in failures):
                raise failures[0]
            if failures:
                break  # the namespace is going away, and the Job with it
            batch *= 2
        return created

    def _created(self, key: str, job: Obj, name: str) -> None:
        if self.pods.get(f"{metadata(job)['namespace']}/{name}") is None:
            self._expect(key, f"+{name}")
        self.events.record(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def delete_pods(self, key: str, job: Obj, pods: list[Obj]) -> int:
        deleted = 0
        for pod in pods:
            meta = metadata(pod)
            try:
                await self.client.delete(
                    PODS, str(meta["namespace"]), str(meta["name"]), uid=str(meta["uid"])
                )
            except (errors.NotFound, errors.Conflict):
                continue
            seen = self.pods.get(f"{meta['namespace']}/{meta['name']}")
            if seen is not None and not metadata(seen).get("deletionTimestamp"):
                self._expect(key, f"-{meta['uid']}")
            self.events.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")
            deleted += 1
        return deleted

    def note_results(self, key: str, succeeded: set[str], failed: set[str]) -> float:
        """Back-off bookkeeping (failures since the last success, by pod uid, so a pass
        that is retried counts nothing twice); seconds before a replacement may start."""
        now = self.clock()
        seen, last = self.failures.get(key, (set(), now))
        if succeeded:
            seen = set()
        if failed - seen:
            seen, last = seen | failed, now
        self.failures[key] = (seen, last)
        return max(last + ju.backoff_delay(len(seen), self.backoff_base) - now, 0.0)


def namespace_terminating(exc: BaseException) -> bool:
    """A create refused because the namespace is being deleted: not worth a retry."""
    return isinstance(exc, errors.Forbidden) and any(
        c.get("reason") == "NamespaceTerminating" for c in exc.causes
    )


def _tracked(pod: Obj) -> bool:
    return ju.TRACKING_FINALIZER in (metadata(pod).get("finalizers") or [])


class JobSync:
    """One pass over one unfinished Job (the steps in the module docstring)."""

    def __init__(self, controller: JobController, key: str, job: Obj, pods: list[Obj]) -> None:
        self.c = controller
        self.key = key
        self.job = job
        self.pods = pods
        self.now = controller.clock()
        self.stamp = format_time(self.now)
        self.spec: Obj = job.get("spec") or {}
        self.status: Obj = deep_copy(job.get("status") or {})
        self.indexed = ju.is_indexed(job)
        completions = self.spec.get("completions")
        self.completions: int | None = completions if isinstance(completions, int) else None
        self.active = [p for p in pods if ju.active(p)]
        self.terminating = sum(1 for p in pods if ju.terminating(p))
        self.created = 0
        self.requeue: list[float] = []

    async def run(self) -> float | None:
        new_succeeded, new_failed, completed = self._newly_finished()
        wait = self.c.note_results(self.key, new_succeeded, new_failed)
        uncounted = self.status.get("uncountedTerminatedPods") or {}
        succeeded_uids = set(uncounted.get("succeeded") or []) | new_succeeded
        failed_uids = set(uncounted.get("failed") or []) | new_failed
        succeeded = (
            len(completed) if self.indexed else self._count("succeeded") + len(succeeded_uids)
        )
        failed = self._count("failed") + len(failed_uids)
        failure = self._failure(failed)
        success = failure is None and (
            ju.has_condition(self.job, "SuccessCriteriaMet")
            or ju.success_reached(self.job, succeeded, completed, bool(self.active))
        )
        if failure is not None or success:
            self.terminating += await self.c.delete_pods(self.key, self.job, self.active)
            self.active = []
        else:
            await self._manage(succeeded, completed, wait)
        if new_succeeded or new_failed:
            self.status["uncountedTerminatedPods"] = ju.uncounted(succeeded_uids, failed_uids)
            if self.indexed and completed:
                self.status["completedIndexes"] = ju.format_indexes(completed)
            self.job = await self._write(self.status)
            self.status = deep_copy(self.job.get("status") or {})
        await self._count_released(succeeded_uids, failed_uids, completed)
        self._conclude(failure, success)
        self.job = await self._write(self.status)
        return min(self.requeue) if self.requeue else None

    def _count(self, field: str) -> int:
        return int(self.status.get(field) or 0)

    def _newly_finished(self) -> tuple[set[str], set[str], set[int]]:
        uncounted = self.status.get("uncountedTerminatedPods") or {}
        known = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
        completed = ju.parse_indexes(str(self.status.get("completedIndexes") or ""))
        succeeded, failed = set(), set()
        for pod in self.pods:
            uid = str(metadata(pod)["uid"])
            if not _tracked(pod) or uid in known:
                continue
            if ju.succeeded(pod):
                succeeded.add(uid)
                index = ju.pod_index(pod, self.completions or 0) if self.indexed else None
                if index is not None:
                    completed.add(index)
            elif ju.failed(pod, self.job):
                failed.add(uid)
        return succeeded, failed, completed

    def _failure(self, failed: int) -> tuple[str, str] | None:
        target = ju.condition_of(self.job, "FailureTarget")
        if target is not None and target.get("status") == "True":
            return str(target.get("reason")), str(target.get("message"))
        if ju.backoff_exceeded(self.job, failed, self.active):
            return BACKOFF_LIMIT
        left = ju.deadline_left(self.job, str(self.status.get("startTime") or self.stamp), self.now)
        if left is not None and left <= 0:
            return DEADLINE
        if left is not None:
            self.requeue.append(left)
        return None

    async def _manage(self, succeeded: int, completed: set[int], wait: float) -> None:
        """Step 3: as many active pods as wanted (none while suspended)."""
        parallelism = 0 if self.spec.get("suspend") else int(self.spec.get("parallelism", 1))
        if self.indexed:
            extra, pending = ju.indexed_plan(
                self.active, completed, self.completions or 0, parallelism
            )
            if extra:
                await self._delete(extra)
            await self._create(list(pending), wait)
            return
        want = ju.wanted_active(self.completions, parallelism, succeeded)
        if len(self.active) > want:
            extra = sorted(self.active, key=ju.deletion_order)[: len(self.active) - want]
            await self._delete(extra)
        elif len(self.active) < want:
            await self._create([None] * (want - len(self.active)), wait)

    async def _delete(self, pods: list[Obj]) -> None:
        deleted = await self.c.delete_pods(self.key, self.job, pods)
        self.terminating += deleted
        gone = {metadata(p)["uid"] for p in pods}
        self.active = [p for p in self.active if metadata(p)["uid"] not in gone]

    async def _create(self, indexes: list[int | None], wait: float) -> None:
        if not indexes:
            return
        if wait > 0:
            self.requeue.append(wait)
            return
        self.created += await self.c.create_pods(self.key, self.job, indexes)

    async def _count_released(self, succeeded: set[str], failed: set[str], done: set[int]) -> None:
        """Step 1's second half: drop finalizers, then move those uids into the counters."""
        by_uid = {str(metadata(p)["uid"]): p for p in self.pods}
        holding = [by_uid[u] for u in succeeded | failed if u in by_uid and _tracked(by_uid[u])]
        released = await self.c.remove_finalizers(holding)
        released |= {u for u in succeeded | failed if u not in by_uid or not _tracked(by_uid[u])}
        moved_s, moved_f = succeeded & released, failed & released
        if self.indexed:
            ju.set_count(self.status, "succeeded", len(done))
            if done:
                self.status["completedIndexes"] = ju.format_indexes(done)
        else:
            ju.set_count(self.status, "succeeded", self._count("succeeded") + len(moved_s))
        ju.set_count(self.status, "failed", self._count("failed") + len(moved_f))
        self.status["uncountedTerminatedPods"] = ju.uncounted(succeeded - moved_s, failed - moved_f)

    def _conclude(self, failure: tuple[str, str] | None, success: bool) -> None:
        status, stamp = self.status, self.stamp
        ju.set_count(status, "active", len(self.active) + self.created)
        status["ready"] = sum(1 for p in self.active if ju.ready(p))
        status["terminating"] = self.terminating
        self._suspension()
        settled = not self.active and not self.terminating and not ju.any_uncounted(status)
        if failure is not None:
            ju.set_condition(status, "FailureTarget", True, *failure, stamp)
            if settled and not ju.has_condition(self.job, "Failed"):
                ju.set_condition(status, "Failed", True, *failure, stamp)
                self.c.events.record(self.job, "Warning", failure[0], failure[1])
        elif success:
            ju.set_condition(status, "SuccessCriteriaMet", True, *COMPLETED, stamp)
            if settled:
                ju.set_condition(status, "Complete", True, *COMPLETED, stamp)
                status["completionTime"] = stamp
                self.c.events.record(self.job, "Normal", "Completed", "Job completed")

    def _suspension(self) -> None:
        status = self.status
        if self.spec.get("suspend"):
            if not ju.has_condition(self.job, "Suspended"):
                ju.set_condition(
                    status, "Suspended", True, "JobSuspended", "Job suspended", self.stamp
                )
                self.c.events.record(self.job, "Normal", "Suspended", "Job suspended")
            return
        if ju.has_condition(self.job, "Suspended"):
            ju.set_condition(status, "Suspended", False, "JobResumed", "Job resumed", self.stamp)
            status["startTime"] = self.stamp
            self.c.events.record(self.job, "Normal", "Resumed", "Job resumed")
        status.setdefault("startTime", self.stamp)

    async def _write(self, status: Obj) -> Obj:
        if status == (self.job.get("status") or {}):
            return self.job
        namespace = str(metadata(self.job)["namespace"])
        body = {**self.job, "status": status}
        written = await self.c.client.update(JOBS, namespace, body, subresource="status")
        self.c.written[self.key] = written
        return written
