"""One sync of one Deployment: find or create the new ReplicaSet, move replicas, report.

Mirrors ``sync.go``, ``rolling.go``, ``recreate.go`` and ``progress.go`` of
kube-controller-manager. Every write is optimistic (it carries the resourceVersion the
decision was made on), so a decision taken from a stale cache fails with a conflict
and the work queue retries it against fresh objects instead of acting twice.
"""

from __future__ import annotations

import contextlib

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.interface import Client
from minikube_py.controllers import deployment_util as du
from minikube_py.controllers.base import resource
from minikube_py.controllers.podtemplate import (
    POD_TEMPLATE_HASH,
    compute_hash,
    controller_of,
    controller_ref,
    equal_ignore_hash,
    is_deleting,
    namespace_terminating,
    uid_of,
)
from minikube_py.meta.objects import (
    Obj,
    annotations_of,
    deep_copy,
    dig,
    name_of,
    namespace_of,
    parse_time,
)

DEPLOYMENTS = resource("apps", "Deployment")
REPLICASETS = resource("apps", "ReplicaSet")

MaybeRS = Obj | None


def _min_ready(obj: Obj) -> dict[str, int]:
    """``minReadySeconds`` as Go marshals it: omitted when zero."""
    seconds = int(dig(obj, "spec", "minReadySeconds") or 0)
    return {"minReadySeconds": seconds} if seconds else {}


class Rollout:
    """The Deployment (``d``), its claimed ReplicaSets and their pods, and the writes.

    ``d`` and ``rss`` are replaced by what the API answers after each write, so later
    steps of the same sync decide on what was just written.
    """

    def __init__(
        self,
        client: Client,
        events: EventRecorder,
        d: Obj,
        rss: list[Obj],
        pods_by_rs: dict[str, list[Obj]],
        now: float,
    ) -> None:
        self.client = client
        self.events = events
        self.d = d
        self.rss = rss
        self.pods_by_rs = pods_by_rs
        self.now = now
        self.requeue: float | None = None

    # --- writes --------------------------------------------------------------------------------

    def fresh(self, rs: MaybeRS) -> MaybeRS:
        """The latest known version of ``rs`` (after this sync's own writes)."""
        if rs is None:
            return None
        return next((known for known in self.rss if uid_of(known) == uid_of(rs)), rs)

    async def update_rs(self, rs: Obj) -> Obj:
        written = deep_copy(await self.client.update(REPLICASETS, namespace_of(rs), rs))
        self.rss = [written if uid_of(r) == uid_of(written) else r for r in self.rss]
        return written

    async def write_status(self, status: Obj) -> None:
        updated = deep_copy(self.d)
        updated["status"] = status
        written = await self.client.update(
            DEPLOYMENTS, namespace_of(updated), updated, subresource="status"
        )
        self.d = deep_copy(written)

    async def set_revision(self, revision: str) -> None:
        """The revision annotation, written with the resourceVersion it was decided on.

        Kubernetes sends it with the status update; here ``/status`` keeps metadata as
        stored, so it is a separate, equally optimistic, metadata patch.
        """
        if annotations_of(self.d).get(du.REVISION) == revision:
            return
        meta = self.d["metadata"]
        patch = {
            "metadata": {
                "annotations": {du.REVISION: revision},
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        written = await self.client.patch(DEPLOYMENTS, namespace_of(self.d), name_of(self.d), patch)
        self.d = deep_copy(written)

    async def scale_rs(self, rs: Obj, size: int, operation: str) -> tuple[bool, Obj]:
        """scaleReplicaSet: new size and the desired/max-replicas annotations, one update."""
        desired = du.replicas_of(self.d)
        maximum = desired + du.max_surge(self.d)
        resize = du.replicas_of(rs) != size
        if not resize and not du.replicas_annotations_need_update(rs, desired, maximum):
            return False, rs
        before = du.replicas_of(rs)
        changed = deep_copy(rs)
        changed["spec"]["replicas"] = size
        du.set_replicas_annotations(changed, desired, maximum)
        written = await self.update_rs(changed)
        if resize:
            message = f"Scaled {operation} replica set {name_of(rs)} from {before} to {size}"
            self.events.record(self.d, "Normal", "ScalingReplicaSet", message)
        return resize, written

    async def scale_to(self, rs: Obj, size: int) -> tuple[bool, Obj]:
        if du.replicas_of(rs) == size:
            return False, rs
        return await self.scale_rs(rs, size, "up" if du.replicas_of(rs) < size else "down")

    # --- the new ReplicaSet and revisions ------------------------------------------------------

    async def all_replica_sets(self, create: bool) -> tuple[MaybeRS, list[Obj]]:
        """getAllReplicaSetsAndSyncRevision: (new set or None, every old set)."""
        old = du.find_old(self.d, self.rss)
        return await self._new_replica_set(old, create), old

    async def _new_replica_set(self, old: list[Obj], create: bool) -> MaybeRS:
        existing = du.find_new(self.d, self.rss)
        revision = du.max_revision(old) + 1
        if existing is not None:
            return await self._sync_existing(existing, revision)
        if not create:
            return None
        return await self._create_new(old, revision)

    async def _sync_existing(self, existing: Obj, revision: int) -> Obj:
        copy = deep_copy(existing)
        changed = du.set_new_rs_annotations(self.d, copy, revision, exists=True)
        if changed or _min_ready(copy) != _min_ready(self.d):
            copy["spec"].pop("minReadySeconds", None)
            copy["spec"].update(_min_ready(self.d))
            return await self.update_rs(copy)
        await self.set_revision(annotations_of(copy).get(du.REVISION, ""))
        status = deep_copy(self.d.get("status") or {})
        if du.has_progress_deadline(self.d) and du.get_condition(status, "Progressing") is None:
            message = f'Found new replica set "{name_of(copy)}"'
            condition = du.new_condition("Progressing", "True", du.FOUND_NEW_RS, message, self.now)
            du.set_condition(status, condition)
            await self.write_status(status)
        return copy

    def _new_rs_object(self, hash_: str) -> Obj:
        d = self.d
        template = deep_copy(dig(d, "spec", "template") or {})
        template_meta = template.setdefault("metadata", {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), POD_TEMPLATE_HASH: hash_}
        selector = deep_copy(dig(d, "spec", "selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH: hash_}
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name_of(d)}-{hash_}",
                "namespace": namespace_of(d),
                "ownerReferences": [controller_ref(d, DEPLOYMENTS)],
                "labels": dict(template_meta["labels"]),
            },
            "spec": {
                "replicas": 0,
                **_min_ready(d),
                "selector": selector,
                "template": template,
            },
        }

    async def _create_new(self, old: list[Obj], revision: int) -> Obj:
        collisions = dig(self.d, "status", "collisionCount")
        rs = self._new_rs_object(compute_hash(dig(self.d, "spec", "template") or {}, collisions))
        rs["spec"]["replicas"] = du.new_rs_new_replicas(self.d, [*old, rs], rs)
        du.set_new_rs_annotations(self.d, rs, revision, exists=False)
        try:
            created = deep_copy(await self.client.create(REPLICASETS, namespace_of(rs), rs))
        except errors.AlreadyExists:
            return await self._adopt_existing_or_collide(rs, revision)
        except errors.APIError as exc:
            await self._report_create_failure(rs, exc)
            raise
        self.rss.append(created)
        if du.replicas_of(created) > 0:
            message = (
                f"Scaled up replica set {name_of(created)} from 0 to {du.replicas_of(created)}"
            )
            self.events.record(self.d, "Normal", "ScalingReplicaSet", message)
        await self.set_revision(str(revision))
        if du.has_progress_deadline(self.d):
            status = deep_copy(self.d.get("status") or {})
            message = f'Created new replica set "{name_of(created)}"'
            condition = du.new_condition(
                "Progressing", "True", du.NEW_REPLICA_SET, message, self.now
            )
            du.set_condition(status, condition)
            await self.write_status(status)
        return created

    async def _adopt_existing_or_collide(self, rs: Obj, revision: int) -> Obj:
        """A set with the new name exists: ours with our template, or a hash collision.

        On a collision ``status.collisionCount`` goes up, which changes the next hash.
        """
        found = await self.client.get(REPLICASETS, namespace_of(rs), name_of(rs))
        ref = controller_of(found)
        template = dig(self.d, "spec", "template") or {}
        ours = ref is not None and ref.get("uid") == uid_of(self.d)
        if ours and equal_ignore_hash(template, dig(found, "spec", "template") or {}):
            self.rss.append(found)
            await self.set_revision(str(revision))
            return found
        status = deep_copy(self.d.get("status") or {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self.write_status(status)
        raise errors.AlreadyExists(f'replicasets.apps "{name_of(rs)}" already exists')

    async def _report_create_failure(self, rs: Obj, exc: errors.APIError) -> None:
        if namespace_terminating(exc):
            return
        message = f'Failed to create new replica set "{name_of(rs)}": {exc}'
        if du.has_progress_deadline(self.d):
            status = deep_copy(self.d.get("status") or {})
            condition = du.new_condition(
                "Progressing", "False", du.FAILED_RS_CREATE, message, self.now
            )
            du.set_condition(status, condition)
            # the failure to create is what gets reported and retried, not this write
            with contextlib.suppress(errors.APIError):
                await self.write_status(status)
        self.events.record(self.d, "Warning", du.FAILED_RS_CREATE, message)

    # --- status --------------------------------------------------------------------------------

    async def sync_deployment_status(self, all_rss: list[MaybeRS], new_rs: MaybeRS) -> None:
        status = du.calculate_status(self._fresh_all(all_rss), self.fresh(new_rs), self.d, self.now)
        if status != (self.d.get("status") or {}):
            await self.write_status(status)

    def _fresh_all(self, rss: list[MaybeRS]) -> list[MaybeRS]:
        return [self.fresh(rs) for rs in rss]

    async def sync_rollout_status(self, all_rss: list[MaybeRS], new_rs: MaybeRS) -> None:
        """syncRolloutStatus: status and the Progressing condition ``rollout status`` reads."""
        new_rs = self.fresh(new_rs)
        status = du.calculate_status(self._fresh_all(all_rss), new_rs, self.d, self.now)
        if du.has_progress_deadline(self.d):
            self._progress(status, new_rs)
        else:
            du.remove_condition(status, "Progressing")
        failures = self._replica_failures(all_rss, new_rs)
        if failures:
            du.set_condition(status, failures[0])
        else:
            du.remove_condition(status, "ReplicaFailure")
        if status == (self.d.get("status") or {}):
            self._requeue_if_stuck(status)
            return
        await self.write_status(status)

    def _progress(self, status: Obj, new_rs: MaybeRS) -> None:
        current = du.get_condition(self.d.get("status") or {}, "Progressing")
        replicas, updated = (
            int(status.get("replicas") or 0),
            int(status.get("updatedReplicas") or 0),
        )
        if (
            replicas == updated
            and current is not None
            and current.get("reason") == du.NEW_RS_AVAILABLE
        ):
            return
        subject = f'ReplicaSet "{name_of(new_rs)}"' if new_rs else f'Deployment "{name_of(self.d)}"'
        if du.complete(self.d, status):
            message = f"{subject} has successfully progressed."
            condition = du.new_condition(
                "Progressing", "True", du.NEW_RS_AVAILABLE, message, self.now
            )
            du.set_condition(status, condition)
        elif du.progressing(self.d, status):
            message = f"{subject} is progressing."
            condition = du.new_condition(
                "Progressing", "True", du.REPLICA_SET_UPDATED, message, self.now
            )
            if current is not None:
                if current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                du.remove_condition(status, "Progressing")
            du.set_condition(status, condition)
        elif du.timed_out(self.d, status, self.now):
            message = f"{subject} has timed out progressing."
            condition = du.new_condition("Progressing", "False", du.TIMED_OUT, message, self.now)
            du.set_condition(status, condition)

    @staticmethod
    def _replica_failures(all_rss: list[MaybeRS], new_rs: MaybeRS) -> list[Obj]:
        """ReplicaFailure conditions of the sets, the new set's first, as Deployment conditions."""

        def of(rs: MaybeRS) -> list[Obj]:
            found = []
            for c in dig(rs, "status", "conditions") or []:
                if c.get("type") == "ReplicaFailure":
                    found.append({**c, "lastUpdateTime": c.get("lastTransitionTime")})
            return found

        return of(new_rs) or [c for rs in all_rss for c in of(rs)]

    def _requeue_if_stuck(self, status: Obj) -> None:
        """requeueStuckDeployment: look again when the progress deadline would pass."""
        current = du.get_condition(self.d.get("status") or {}, "Progressing")
        if not du.has_progress_deadline(self.d) or current is None:
            return
        if du.complete(self.d, status) or current.get("reason") == du.TIMED_OUT:
            return
        deadline = int(dig(self.d, "spec", "progressDeadlineSeconds"))
        since = parse_time(str(current.get("lastUpdateTime")))
        after = since + deadline - self.now
        self.requeue = 0.0 if after < 1 else after + 1.0

    async def check_paused_conditions(self) -> None:
        """A paused or resumed rollout gets Progressing=Unknown, so pausing never times out."""
        if not du.has_progress_deadline(self.d):
            return
        status = deep_copy(self.d.get("status") or {})
        current = du.get_condition(status, "Progressing")
        if current is not None and current.get("reason") == du.TIMED_OUT:
            return
        paused_now = current is not None and current.get("reason") == du.PAUSED
        paused = bool(dig(self.d, "spec", "paused"))
        if paused and not paused_now:
            condition = du.new_condition(
                "Progressing", "Unknown", du.PAUSED, "Deployment is paused", self.now
            )
        elif not paused and paused_now:
            message = "Deployment is resumed"
            condition = du.new_condition("Progressing", "Unknown", du.RESUMED, message, self.now)
        else:
            return
        du.set_condition(status, condition)
        await self.write_status(status)

    # --- cleanup -------------------------------------------------------------------------------

    async def cleanup(self, old: list[Obj]) -> None:
        """cleanupDeployment: delete the oldest empty sets beyond revisionHistoryLimit."""
        limit = dig(self.d, "spec", "revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in (self.fresh(r) for r in old) if rs and not is_deleting(rs)]
        surplus = len(cleanable) - int(limit)
        for rs in sorted(cleanable, key=du.revision_key)[: max(surplus, 0)]:
            observed = int(dig(rs, "status", "observedGeneration") or 0)
            busy = du.status_count(rs, "replicas") != 0 or du.replicas_of(rs) != 0
            if busy or int(dig(rs, "metadata", "generation") or 0) > observed:
                continue
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(REPLICASETS, namespace_of(rs), name_of(rs))
