"""The generic registry: one fixed create/update/patch/delete pipeline for every kind.

As in kube-apiserver's ``genericregistry.Store``: decode → defaults → prepare → validate →
admit → write with optimistic concurrency, the per-kind differences coming from the
``Strategy``. Storage errors are translated into API errors here, once.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from minikube_py import errors
from minikube_py.errors import FieldError, Target
from minikube_py.meta.objects import (
    Clock,
    Obj,
    deep_copy,
    format_time,
    metadata,
    new_uid,
    resource_version,
)
from minikube_py.registry.codec import decode_kv, encode
from minikube_py.registry.options import DeleteOptions
from minikube_py.registry.resource import ResourceInfo
from minikube_py.registry.strategy import Strategy, SubresourceStrategy
from minikube_py.storage.interface import (
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionConflict,
    Store,
)

log = structlog.get_logger(__name__)

Admit = Callable[[str, Strategy, Obj, Obj | None], Awaitable[None]]
"""Admission: (operation CREATE|UPDATE|DELETE, strategy, new object, old object)."""

Mutate = Callable[[Obj], Obj]
"""Turns the current object into the desired one (a patch, or a PUT body)."""

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
UPDATE_RETRIES = 5
IMMUTABLE_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


async def _admit_nothing(operation: str, strategy: Strategy, new: Obj, old: Obj | None) -> None:
    return None


@dataclass
class Written:
    obj: Obj
    created: bool = False


class Registry:
    """Storage-backed CRUD for one resource type."""

    def __init__(
        self,
        strategy: Strategy,
        store: Store,
        *,
        clock: Clock,
        admit: Admit = _admit_nothing,
    ) -> None:
        self.strategy = strategy
        self.info: ResourceInfo = strategy.info
        self.store = store
        self.clock = clock
        self.admit = admit
        self.subresources = {
            "status": SubresourceStrategy(strategy, "status"),
            "finalize": SubresourceStrategy(strategy, "spec", "finalizers"),
        }

    def target(self, name: str) -> Target:
        return Target(self.info.plural, self.info.group, name, self.info.kind)

    def _output(self, obj: Obj, namespace: str) -> Obj:
        """Objects leave the registry without derived fields; the API layer adds selfLink."""
        metadata(obj).pop("selfLink", None)
        return obj

    # -- reads --

    async def get(self, namespace: str, name: str) -> Obj:
        kv = await self._get_kv(namespace, name)
        return self._output(decode_kv(kv), namespace)

    async def _get_kv(self, namespace: str, name: str) -> KeyValue:
        try:
            return await self.store.get(self.info.key(namespace, name))
        except KeyNotFound:
            raise errors.NotFound.of(self.target(name)) from None

    # -- create --

    def _bind_namespace(self, obj: Obj, namespace: str) -> None:
        meta = metadata(obj)
        if not self.info.namespaced:
            meta.pop("namespace", None)
            return
        given = meta.get("namespace")
        if given and given != namespace:
            raise errors.BadRequest(
                "the namespace of the provided object does not match the namespace sent on"
                " the request"
            )
        meta["namespace"] = namespace

    def _fresh_metadata(self, obj: Obj) -> None:
        meta = metadata(obj)
        if meta.get("resourceVersion"):
            raise errors.BadRequest("resourceVersion should not be set on objects to be created")
        for derived in ("selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(derived, None)
        if "uid" not in meta:
            meta["uid"] = new_uid()
        meta["creationTimestamp"] = format_time(self.clock())
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(GENERATE_ALPHABET, k=5))
            meta["name"] = str(meta["generateName"])[:58] + suffix

    def _validate(self, obj: Obj, problems: list[FieldError]) -> None:
        if not metadata(obj).get("name"):
            problems.insert(0, errors.required("metadata.name", "name or generateName is required"))
        if problems:
            raise errors.Invalid(self.target(str(metadata(obj).get("name", ""))), problems)

    async def create(self, namespace: str, obj: Obj, *, dry_run: bool = False) -> Obj:
        self._bind_namespace(obj, namespace)
        # The uid exists before defaulting: a Job's default selector names it.
        metadata(obj)["uid"] = new_uid()
        generated = not metadata(obj).get("name") and bool(metadata(obj).get("generateName"))
        self.strategy.default(obj)
        self.strategy.prepare_for_create(obj)
        for attempt in range(8 if generated else 1):
            candidate = deep_copy(obj) if generated else obj
            self._fresh_metadata(candidate)
            self._validate(candidate, self.strategy.validate(candidate))
            await self.admit("CREATE", self.strategy, candidate, None)
            if dry_run:
                return self._output(candidate, namespace)
            try:
                return await self._store_new(namespace, candidate)
            except errors.AlreadyExists:
                if attempt == 7 or not generated:
                    raise
        raise AssertionError("unreachable")

    async def _store_new(self, namespace: str, obj: Obj) -> Obj:
        name = str(metadata(obj)["name"])
        try:
            revision = await self.store.create(self.info.key(namespace, name), encode(obj))
        except KeyExists:
            raise errors.AlreadyExists.of(self.target(name)) from None
        metadata(obj)["resourceVersion"] = str(revision)
        return self._output(obj, namespace)

    # -- update and patch --

    async def update(
        self,
        namespace: str,
        name: str,
        mutate: Mutate,
        *,
        subresource: str = "",
        dry_run: bool = False,
        create_if_missing: Obj | None = None,
    ) -> Written:
        """Read, mutate, prepare, validate, write; retry on a race the caller did not pin.

        A caller pins a version by putting ``metadata.resourceVersion`` in what ``mutate``
        returns; a mismatch then is a 409 Conflict, as the client asked for.
        """
        for _ in range(UPDATE_RETRIES):
            try:
                kv = await self.store.get(self.info.key(namespace, name))
            except KeyNotFound:
                if create_if_missing is not None and self.strategy.allow_create_on_update:
                    created = await self.create(namespace, create_if_missing, dry_run=dry_run)
                    return Written(created, created=True)
                raise errors.NotFound.of(self.target(name)) from None
            old = decode_kv(kv)
            new = mutate(deep_copy(old))
            pinned = resource_version(new)
            if pinned and pinned != str(kv.mod_revision):
                raise errors.Conflict.modified(self.target(name))
            self._check_identity(new, namespace, name)
            self._check_uid(new, old, name)
            self._keep_metadata(new, old)
            strategy: Strategy | SubresourceStrategy = self.subresources.get(
                subresource, self.strategy
            )
            if strategy is self.strategy:
                self.strategy.default(new)
            strategy.prepare_for_update(new, old)
            problems = strategy.validate_update(new, old)
            if problems:
                raise errors.Invalid(self.target(name), problems)
            await self.admit("UPDATE", self.strategy, new, old)
            result = await self._write(namespace, name, kv, old, new, dry_run=dry_run)
            if result is not None:
                return Written(result)
            if pinned:
                raise errors.Conflict.modified(self.target(name))
        raise errors.Conflict.modified(self.target(name))

    async def update_direct(self, namespace: str, name: str, mutate: Mutate) -> Obj:
        """Read-modify-write with no strategy: for subresources that own their rules
        (``pods/binding`` sets spec.nodeName and a status condition in one write)."""
        for _ in range(UPDATE_RETRIES):
            kv = await self._get_kv(namespace, name)
            old = decode_kv(kv)
            new = mutate(deep_copy(old))
            self._keep_metadata(new, old)
            try:
                revision = await self.store.update(
                    kv.key, encode(new), expected_revision=kv.mod_revision
                )
            except (RevisionConflict, KeyNotFound):
                continue
            metadata(new)["resourceVersion"] = str(revision)
            return self._output(new, namespace)
        raise errors.Conflict.modified(self.target(name))

    def _check_identity(self, new: Obj, namespace: str, name: str) -> None:
        meta = metadata(new)
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequest(
                f"the name of the object ({meta['name']}) does not match the name on the URL"
                f" ({name})"
            )
        meta["name"] = name
        self._bind_namespace(new, namespace)

    def _check_uid(self, new: Obj, old: Obj, name: str) -> None:
        """A uid in the request is a precondition: the object must be that very object."""
        wanted, actual = metadata(new).get("uid"), metadata(old).get("uid")
        if wanted and wanted != actual:
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {self.target(name).qualified} "{name}":'
                f" Precondition failed: UID in precondition: {wanted}, UID in object meta:"
                f" {actual}",
                target=self.target(name),
            )

    @staticmethod
    def _keep_metadata(new: Obj, old: Obj) -> None:
        meta, before = metadata(new), metadata(old)
        for key in IMMUTABLE_METADATA:
            if key in before:
                meta[key] = before[key]
            else:
                meta.pop(key, None)
        meta.pop("resourceVersion", None)
        meta.pop("selfLink", None)

    async def _write(
        self, namespace: str, name: str, kv: KeyValue, old: Obj, new: Obj, *, dry_run: bool
    ) -> Obj | None:
        """Store ``new`` over ``kv``; None if someone else wrote first (caller retries)."""
        meta = metadata(new)
        finished = (
            self.strategy.grace_period(new, None) == 0
            or meta.get("deletionGracePeriodSeconds") == 0
        )
        released = not meta.get("finalizers") and not self.strategy.pending_finalizers(new)
        if meta.get("deletionTimestamp") and released and finished:
            return await self._finish_delete(namespace, kv, new, dry_run=dry_run)
        old_meta = {
            k: v for k, v in metadata(old).items() if k not in ("resourceVersion", "selfLink")
        }
        if {**old, "metadata": old_meta} == new:
            return self._output(old, namespace)  # no-op: kube does not bump the version
        if dry_run:
            return self._output(new, namespace)
        try:
            revision = await self.store.update(
                kv.key, encode(new), expected_revision=kv.mod_revision
            )
        except (RevisionConflict, KeyNotFound):
            return None
        meta["resourceVersion"] = str(revision)
        return self._output(new, namespace)

    # -- delete --

    async def delete(self, namespace: str, name: str, options: DeleteOptions) -> tuple[Obj, bool]:
        """Delete or start deleting; returns the object and whether it is gone now.

        An object held by finalizers, or given a grace period (a pod on a node), is only
        marked with deletionTimestamp; whoever clears the hold completes the deletion.
        """
        for _ in range(UPDATE_RETRIES):
            kv = await self._get_kv(namespace, name)
            obj = decode_kv(kv)
            self._check_preconditions(obj, options, name)
            await self.admit("DELETE", self.strategy, obj, obj)
            meta = metadata(obj)
            grace = self.strategy.grace_period(obj, options.grace_period_seconds)
            finalizers = self._finalizers_for(meta, options)
            held = bool(finalizers or self.strategy.pending_finalizers(obj))
            if not held and grace == 0:
                done = await self._finish_delete(namespace, kv, obj, dry_run=options.dry_run)
                if done is not None:
                    return done, True
                continue
            unchanged = finalizers == (meta.get("finalizers") or [])
            if meta.get("deletionTimestamp") and unchanged and not self._shortens(meta, grace):
                return self._output(obj, namespace), False
            updated = self._mark_deleting(obj, finalizers, grace)
            written = await self._write_marked(namespace, kv, updated, dry_run=options.dry_run)
            if written is not None:
                return written, False
        raise errors.Conflict.modified(self.target(name))

    @staticmethod
    def _shortens(meta: Obj, grace: int) -> bool:
        current = meta.get("deletionGracePeriodSeconds")
        return current is None or grace < int(current)

    def _check_preconditions(self, obj: Obj, options: DeleteOptions, name: str) -> None:
        meta, pre = metadata(obj), options.preconditions
        if pre.uid is not None and pre.uid != meta.get("uid"):
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {self.target(name).qualified} "{name}":'
                f" Precondition failed: UID in precondition: {pre.uid}, UID in object meta:"
                f" {meta.get('uid')}",
                target=self.target(name),
            )
        if pre.resource_version is not None and pre.resource_version != meta.get("resourceVersion"):
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {self.target(name).qualified} "{name}":'
                " Precondition failed: ResourceVersion in precondition:"
                f" {pre.resource_version}, ResourceVersion in object meta:"
                f" {meta.get('resourceVersion')}",
                target=self.target(name),
            )

    @staticmethod
    def _finalizers_for(meta: Obj, options: DeleteOptions) -> list[str]:
        """The object's finalizers plus the one its propagation policy asks for."""
        finalizers: list[str] = list(meta.get("finalizers") or [])
        policy = options.propagation_policy
        wanted = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(policy or "")
        if wanted and wanted not in finalizers:
            finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
            finalizers.append(wanted)
        if policy == "Background":
            finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
        return finalizers

    def _mark_deleting(self, obj: Obj, finalizers: list[str], grace: int) -> Obj:
        meta = metadata(obj)
        now = self.clock()
        self.strategy.mark_deleting(obj)
        if not meta.get("deletionTimestamp") or self._shortens(meta, grace):
            meta["deletionTimestamp"] = format_time(now + grace)
            meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        else:
            meta.pop("finalizers", None)
        if meta.get("generation") is not None:
            meta["generation"] = int(meta["generation"]) + 1
        return obj

    async def _write_marked(
        self, namespace: str, kv: KeyValue, obj: Obj, *, dry_run: bool
    ) -> Obj | None:
        if dry_run:
            return self._output(obj, namespace)
        try:
            revision = await self.store.update(
                kv.key, encode(obj), expected_revision=kv.mod_revision
            )
        except (RevisionConflict, KeyNotFound):
            return None
        metadata(obj)["resourceVersion"] = str(revision)
        return self._output(obj, namespace)

    async def _finish_delete(
        self, namespace: str, kv: KeyValue, obj: Obj, *, dry_run: bool
    ) -> Obj | None:
        if dry_run:
            return self._output(obj, namespace)
        try:
            deleted = await self.store.delete(kv.key, expected_revision=kv.mod_revision)
        except (RevisionConflict, KeyNotFound):
            return None
        metadata(obj)["resourceVersion"] = str(deleted.mod_revision)
        return self._output(obj, namespace)


__all__ = ["Admit", "Any", "Mutate", "Registry", "Written"]
