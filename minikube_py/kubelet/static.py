"""Static pods: pods a node runs from manifest files, with or without the API server.

Shaped after the kubelet's file source (``pkg/kubelet/config/file.go``, ``common.go``)
and mirror client (``pkg/kubelet/pod/mirror_client.go``):

- ``StaticPodSource`` reads ``--pod-manifest-path`` (YAML or JSON, one or several documents
  a file; dotfiles ignored; no recursion) every ``period`` seconds, the kubelet's file
  check frequency. A pod is named ``<name>-<node>``, bound to this node, and its uid is a
  hash of node, file and content: a changed file is a new pod (new uid), never an
  in-place update, so the old pod stops and the new one starts, as in the kubelet.
- ``MirrorPods`` keeps one mirror pod per static pod in the API (annotation
  ``kubernetes.io/config.mirror: <hash>``, controlled by the Node) and writes the static
  pod's status onto it. A mirror is only a view: deleting or editing it never touches
  the containers, and it is recreated.
- ``StaticPods`` is what the kubelet's pod worker does for a static pod uid. It needs the
  API only for mirrors, so static pods run while the API server is down and their mirrors
  catch up (logged, retried) once it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog
import yaml

from minikube_py import errors
from minikube_py.client.interface import Client
from minikube_py.kubelet.node import NODES
from minikube_py.meta.objects import Clock, Obj, annotations_of, deep_copy, dig, format_micro_time
from minikube_py.registry.kinds import catalog
from minikube_py.registry.kinds.pods import Pods, qos_class

log = structlog.get_logger(__name__)

PODS = catalog().by_kind("", "Pod").info  # type: ignore[union-attr]

CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
FILE_SOURCE = "file"
API_SOURCE = "api"
FILE_CHECK_FREQUENCY = 20.0
"""Seconds between two reads of the manifest directory (kubelet's --file-check-frequency)."""
MIRROR_RETRY = 5.0
"""Seconds before a mirror pod write that failed is tried again."""
TOLERATE_NO_EXECUTE = {"operator": "Exists", "effect": "NoExecute"}
"""Added to every static pod, as the kubelet does, so node problems never evict it."""

API_ERRORS: tuple[type[BaseException], ...] = (errors.APIError, OSError, aiohttp.ClientError)
"""What a call through a Client raises when the API server refuses or cannot be reached
(LocalClient raises API errors; HttpClient also connection errors)."""

_PODS = Pods()
_SERVER_SET = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)
"""Metadata only the API server sets: never taken from a manifest."""


class ManifestError(ValueError):
    """A manifest the kubelet cannot run; its file contributes no pod."""


class MirrorError(Exception):
    """The mirror pod cannot be written now (no Node yet, or its name is taken)."""


_WRITE_ERRORS: tuple[type[BaseException], ...] = (*API_ERRORS, MirrorError)


# -- what a pod is --


def is_mirror(pod: Obj) -> bool:
    """A pod in the API that shows a static pod (never run by the kubelet itself)."""
    return CONFIG_MIRROR in annotations_of(pod)


def is_static(pod: Obj) -> bool:
    """A pod the kubelet got from a file, not from the API."""
    source = annotations_of(pod).get(CONFIG_SOURCE, API_SOURCE)
    return source != API_SOURCE and not is_mirror(pod)


def config_hash(pod: Obj) -> str:
    return str(annotations_of(pod).get(CONFIG_HASH, ""))


def mirror_hash(pod: Obj) -> str:
    return str(annotations_of(pod).get(CONFIG_MIRROR, ""))


def _uid(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _full_name(pod: Obj) -> tuple[str, str]:
    meta = pod["metadata"]
    return str(meta.get("namespace", "")), str(meta["name"])


# -- manifests --


def parse_documents(text: str) -> list[Obj]:
    """The objects of one manifest: a JSON object or YAML documents (a List's items count).

    JSON is read as JSON because YAML 1.1 rejects some valid JSON (tab indentation).
    Values YAML would turn into dates come back as strings, as the API would hold them.
    """
    try:
        if text.lstrip().startswith(("{", "[")):
            raw: list[Any] = [json.loads(text)]
        else:
            raw = list(yaml.safe_load_all(text))
    except (ValueError, yaml.YAMLError) as exc:
        raise ManifestError(f"cannot parse: {exc}") from None
    documents: list[Any] = []
    for document in raw:
        if isinstance(document, dict) and document.get("kind") in ("List", "PodList"):
            documents += document.get("items") or []
        elif document is not None:
            documents.append(document)
    if not all(isinstance(d, dict) for d in documents):
        raise ManifestError("every document must be an object")
    plain: list[Obj] = json.loads(json.dumps(documents, default=str))
    return plain


def static_hash(document: Obj, *, path: Path, node_name: str) -> str:
    """The uid and ``config.hash`` of a static pod: md5 of node, file and content.

    As the kubelet's ``applyDefaults``: the same document at the same path on the same node
    is the same pod across kubelet restarts (so its containers are re-adopted), while any
    change to it is a new pod.
    """
    hasher = hashlib.md5(usedforsecurity=False)
    hasher.update(f"host:{node_name}".encode())
    hasher.update(f"file:{path}".encode())
    hasher.update(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    return hasher.hexdigest()


def static_pod(document: Obj, *, path: Path, node_name: str, seen: float) -> Obj:
    """The pod the kubelet runs for one manifest document, or ManifestError.

    What the API server would do to a created pod (defaults, validation), plus what the
    kubelet's file source adds: the node-qualified name, namespace ``default``, the
    node binding, a content-hash uid, the ``config.*`` annotations and a toleration of
    every NoExecute taint.
    """
    if document.get("apiVersion") != "v1" or document.get("kind") != "Pod":
        raise ManifestError(
            f"not a v1 Pod (apiVersion {document.get('apiVersion')!r},"
            f" kind {document.get('kind')!r})"
        )
    pod = deep_copy(document)
    meta, spec = pod.get("metadata"), pod.get("spec")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ManifestError("metadata.name is required")
    if not isinstance(spec, dict):
        raise ManifestError("spec is required")
    digest = static_hash(document, path=path, node_name=node_name)
    for derived in (*_SERVER_SET, "generateName"):
        meta.pop(derived, None)
    meta["name"] = f"{meta['name']}-{node_name.lower()}"
    meta["namespace"] = meta.get("namespace") or "default"
    meta["uid"] = digest
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        CONFIG_SOURCE: FILE_SOURCE,
        CONFIG_HASH: digest,
        CONFIG_SEEN: format_micro_time(seen),
    }
    spec["nodeName"] = node_name
    tolerations = list(spec.get("tolerations") or [])
    _PODS.default(pod)
    # DefaultTolerationSeconds admits nothing over a toleration of every NoExecute taint.
    spec["tolerations"] = tolerations + (
        [] if TOLERATE_NO_EXECUTE in tolerations else [dict(TOLERATE_NO_EXECUTE)]
    )
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
    problems = _PODS.validate(pod)
    if problems:
        raise ManifestError("invalid pod: " + "; ".join(map(str, problems)))
    return pod


def read_manifests(path: Path, node_name: str, now: float) -> list[Obj]:
    """Every static pod under ``path`` (a directory or one file); bad files are skipped.

    As the kubelet: dotfiles are ignored (editor swap files, ``..data`` links), sub
    directories are not entered, a missing path means no static pods, a file that does
    not parse or validate contributes no pod at all (a broken edit stops its pods rather
    than running half a file), and a pod whose name an earlier file took is dropped.
    An unreadable directory raises OSError: the caller keeps what it had.
    """
    if path.is_file():
        files = [path]
    else:
        try:
            files = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []
    pods: list[Obj] = []
    taken: set[tuple[str, str]] = set()
    for file in files:
        for pod in _read_file(file, node_name, now):
            if _full_name(pod) in taken:
                log.warning("static pod dropped: duplicate name", pod=pod["metadata"]["name"])
                continue
            taken.add(_full_name(pod))
            pods.append(pod)
    return pods


def _read_file(file: Path, node_name: str, now: float) -> list[Obj]:
    if file.is_dir():
        log.warning("not recursing into manifest directory", path=str(file))
        return []
    if not file.is_file():
        log.warning("manifest path is not a regular file", path=str(file))
        return []
    try:
        return [
            static_pod(document, path=file, node_name=node_name, seen=now)
            for document in parse_documents(file.read_text())
        ]
    except (OSError, UnicodeDecodeError, ManifestError) as exc:
        log.warning("cannot process manifest file", path=str(file), error=str(exc))
        return []


# -- the source --


class StaticPodSource:
    """The pods of ``--pod-manifest-path``, by uid, re-read every ``period`` seconds.

    Each uid that appears or disappears is passed to ``on_change`` (the kubelet enqueues
    it). A removed pod stays in ``terminating`` until ``stopped(uid)``: its successor with
    the same name (a changed file) is ``blocked`` until then, because both may not run at
    once (same host ports, same volumes), and is handed to ``on_change`` again when free.
    """

    def __init__(
        self,
        path: Path | None,
        node_name: str,
        *,
        period: float = FILE_CHECK_FREQUENCY,
        on_change: Callable[[str], None] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.path = path
        self.node_name = node_name
        self.period = period
        self.on_change = on_change or (lambda _uid: None)
        self.clock = clock
        self.pods: dict[str, Obj] = {}
        self.terminating: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        """Set once the manifests were read (the kubelet starts the API's pods after)."""

    def get(self, uid: str) -> Obj | None:
        return self.pods.get(uid)

    def named(self, namespace: str, name: str) -> Obj | None:
        """The live static pod with this full name (the one a mirror pod shows)."""
        return next((p for p in self.pods.values() if _full_name(p) == (namespace, name)), None)

    def blocked(self, uid: str) -> bool:
        """Does a removed pod of the same name still have to stop before ``uid`` starts?"""
        pod = self.pods.get(uid)
        return pod is not None and any(
            _full_name(old) == _full_name(pod) for old in self.terminating.values()
        )

    def stopped(self, uid: str) -> None:
        """A removed pod is torn down: forget it, and wake the pod that replaces it."""
        old = self.terminating.pop(uid, None)
        if old is None:
            return
        for successor, pod in self.pods.items():
            if _full_name(pod) == _full_name(old):
                self.on_change(successor)

    def replace(self, found: Iterable[Obj]) -> set[str]:
        """Make ``found`` the current static pods; the uids that changed (each notified).

        A pod seen before keeps its object (and so its ``config.seen``): same uid, same
        content.
        """
        fresh = {_uid(pod): pod for pod in found}
        gone = set(self.pods) - set(fresh)
        new = set(fresh) - set(self.pods)
        for uid in gone:
            self.terminating[uid] = self.pods.pop(uid)
        for uid in new:
            self.terminating.pop(uid, None)  # back before it was stopped: it runs on
            self.pods[uid] = fresh[uid]
        for uid in sorted(gone):
            log.info("static pod removed", pod=self.terminating[uid]["metadata"]["name"], uid=uid)
        for uid in sorted(new):
            log.info("static pod added", pod=self.pods[uid]["metadata"]["name"], uid=uid)
        for uid in sorted(gone | new):
            self.on_change(uid)
        return gone | new

    async def refresh(self) -> set[str]:
        """Read the manifests once (off the event loop) and apply them."""
        if self.path is None:
            self.synced.set()
            return set()
        try:
            found = await asyncio.to_thread(read_manifests, self.path, self.node_name, self.clock())
        except OSError as exc:
            log.warning("cannot read manifest path", path=str(self.path), error=str(exc))
            self.synced.set()
            return set()
        changed = self.replace(found)
        self.synced.set()
        return changed

    async def run(self) -> None:
        """Poll until cancelled (a poll is cheap; inotify would only save the latency)."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.period)


# -- mirror pods --


class MirrorPods:
    """Mirror pods through the Client seam, and the last status of each static pod.

    As the kubelet's mirror client plus the part of its status manager that serves
    static pods: a mirror is the static pod with ``config.mirror`` set to its hash and a
    controller reference to the Node (MirrorPodNodeRestriction requires it since 1.19);
    it is replaced when it is being deleted or shows another hash, and the status the
    syncer computed goes onto it. API failures are logged and answered with "retry"
    (False), never raised: a static pod runs whether or not its mirror can be written.
    """

    def __init__(
        self, client: Client, node_name: str, *, retry_interval: float = MIRROR_RETRY
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.retry_interval = retry_interval
        self.statuses: dict[str, Obj] = {}
        self._failing: set[str] = set()

    # status, as the syncer hands it over

    def remember(self, pod: Obj, status: Obj) -> None:
        """The syncer's latest status for a static pod; ``report`` writes it to the mirror."""
        self.statuses[_uid(pod)] = status

    def with_status(self, pod: Obj) -> Obj:
        """The static pod with its last status: what the syncer compares and builds on
        (conditions keep their transition times), as a regular pod's API object does."""
        status = self.statuses.get(_uid(pod))
        return pod if status is None else {**pod, "status": status}

    def forget(self, uid: str) -> None:
        self.statuses.pop(uid, None)
        self._failing.discard(uid)

    # the mirror

    def mirror_of(self, pod: Obj, node_uid: str) -> Obj:
        """The object created in the API for static ``pod`` (the API sets uid and status)."""
        mirror = {key: value for key, value in deep_copy(pod).items() if key != "status"}
        meta = mirror["metadata"]
        meta.pop("uid", None)
        meta["annotations"] = {**meta.get("annotations", {}), CONFIG_MIRROR: config_hash(pod)}
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self.node_name,
                "uid": node_uid,
                "controller": True,
            }
        ]
        return mirror

    async def ensure(self, pod: Obj) -> Obj:
        """The current mirror of static ``pod``: kept, replaced or created (raises on failure)."""
        namespace, name = _full_name(pod)
        try:
            mirror: Obj | None = await self.client.get(PODS, namespace, name)
        except errors.NotFound:
            mirror = None
        if mirror is not None and not is_mirror(mirror):
            raise MirrorError(f"pod {namespace}/{name} exists and is not a mirror pod")
        if mirror is not None and (
            dig(mirror, "metadata", "deletionTimestamp") or mirror_hash(mirror) != config_hash(pod)
        ):
            await self._delete(mirror)
            mirror = None
        return mirror if mirror is not None else await self.create(pod)

    async def create(self, pod: Obj) -> Obj:
        node = await self.client.get(NODES, "", self.node_name)
        if dig(node, "metadata", "deletionTimestamp"):
            raise MirrorError(f"node {self.node_name} is being deleted")
        namespace, name = _full_name(pod)
        try:
            created = await self.client.create(
                PODS, namespace, self.mirror_of(pod, str(node["metadata"]["uid"]))
            )
        except errors.AlreadyExists:  # created meanwhile: fine if it shows this pod
            existing = await self.client.get(PODS, namespace, name)
            if mirror_hash(existing) != config_hash(pod):
                raise
            return existing
        log.info("mirror pod created", pod=f"{namespace}/{name}", hash=config_hash(pod))
        return created

    async def _delete(self, mirror: Obj) -> None:
        """Delete now (grace 0), only this very object (uid precondition), as the kubelet."""
        namespace, name = _full_name(mirror)
        try:
            await self.client.delete(
                PODS, namespace, name, grace_period=0, uid=str(mirror["metadata"]["uid"])
            )
        except (errors.NotFound, errors.Conflict):
            return  # gone already, or replaced by someone else
        log.info("mirror pod deleted", pod=f"{namespace}/{name}", hash=mirror_hash(mirror))

    async def report(self, pod: Obj) -> bool:
        """Make the API show static ``pod``: its mirror, with its last status. False: retry."""
        uid = _uid(pod)
        status = self.statuses.get(uid)
        try:
            mirror = await self.ensure(pod)
            if status is not None and mirror.get("status") != status:
                await self.client.update(
                    PODS,
                    str(mirror["metadata"]["namespace"]),
                    {**mirror, "status": status},
                    subresource="status",
                )
        except _WRITE_ERRORS as exc:
            self._failed(uid, pod, exc)
            return False
        if uid in self._failing:
            self._failing.discard(uid)
            log.info("mirror pod written again", pod=pod["metadata"]["name"])
        return True

    async def remove(self, namespace: str, name: str) -> bool:
        """Delete the mirror pod at this name, if any (never a pod that is no mirror)."""
        try:
            mirror = await self.client.get(PODS, namespace, name)
            if is_mirror(mirror):
                await self._delete(mirror)
        except errors.NotFound:
            return True
        except API_ERRORS as exc:
            log.warning(
                "mirror pod not deleted; will retry", pod=f"{namespace}/{name}", error=_text(exc)
            )
            return False
        return True

    async def delete(self, mirror: Obj) -> bool:
        """Delete this mirror pod (an orphan); False when it must be retried."""
        try:
            await self._delete(mirror)
        except API_ERRORS as exc:
            log.warning(
                "mirror pod not deleted; will retry",
                pod=mirror["metadata"]["name"],
                error=_text(exc),
            )
            return False
        return True

    def _failed(self, uid: str, pod: Obj, exc: BaseException) -> None:
        """Warn once per outage, then quietly: the retry runs every few seconds."""
        report = log.debug if uid in self._failing else log.warning
        self._failing.add(uid)
        report(
            "mirror pod not written; will retry",
            pod=pod["metadata"]["name"],
            error=_text(exc),
            retry_in=self.retry_interval,
        )


# -- the kubelet's part --


class Syncer(Protocol):
    """What StaticPods needs of the kubelet's PodSyncer."""

    async def sync(self, uid: str, pod: Obj | None) -> float | None: ...

    async def teardown(self, uid: str, grace: float) -> None: ...


class StaticPods:
    """The kubelet's pod worker for static pods and mirror pods.

    Static pod uids, mirror pod events and orphaned mirrors all come through the
    kubelet's one work queue, so a uid is never handled twice at once. The runtime is
    driven from the files alone; the API sees mirrors, written after each sync.
    """

    def __init__(
        self,
        source: StaticPodSource,
        mirrors: MirrorPods,
        syncer: Syncer,
        *,
        resync_interval: float = 60.0,
    ) -> None:
        self.source = source
        self.mirrors = mirrors
        self.syncer = syncer
        self.resync_interval = resync_interval
        self.leaving: dict[str, Obj] = {}
        """Stopped static pods whose mirror is still to be deleted."""
        self.orphans: dict[str, Obj] = {}
        """Mirror pods (by their own uid) that no static pod explains."""

    @property
    def synced(self) -> asyncio.Event:
        return self.source.synced

    async def run(self) -> None:
        await self.source.run()

    def owns(self, uid: str) -> bool:
        """Is ``uid`` a key for ``sync`` rather than for the API pods' path?"""
        return (
            uid in self.source.pods
            or uid in self.source.terminating
            or uid in self.leaving
            or uid in self.orphans
        )

    def mirror_changed(self, kind: str, mirror: Obj) -> str | None:
        """The work-queue key for an informer event on a mirror pod (None: nothing to do).

        A mirror is never run. Its static pod is synced instead, which recreates a deleted
        or outdated mirror; a static pod still stopping deletes it when done; a mirror no
        static pod explains (its file went while the kubelet was down) is deleted.
        """
        uid = _uid(mirror)
        namespace, name = _full_name(mirror)
        holder = self.source.named(namespace, name) or next(
            (
                p
                for p in (*self.source.terminating.values(), *self.leaving.values())
                if _full_name(p) == (namespace, name)
            ),
            None,
        )
        if holder is not None:
            self.orphans.pop(uid, None)
            return _uid(holder)
        if kind == "DELETED":
            self.orphans.pop(uid, None)
            return None
        self.orphans[uid] = mirror
        return uid

    async def sync(self, uid: str) -> float | None:
        """Handle one key; seconds until it wants another look (None: only on events)."""
        pod = self.source.get(uid)
        if pod is not None:
            return await self._run(uid, pod)
        if uid in self.source.terminating:
            return await self._stop(uid, self.source.terminating[uid])
        if uid in self.leaving:
            return await self._unmirror(uid, self.leaving[uid])
        if uid in self.orphans:
            return await self._drop(uid, self.orphans[uid])
        return None

    async def _run(self, uid: str, pod: Obj) -> float | None:
        if self.source.blocked(uid):
            return None  # its predecessor is stopping; ``source.stopped`` queues it again
        again = await self.syncer.sync(uid, self.mirrors.with_status(pod))
        if not await self.mirrors.report(pod):
            retry = self.mirrors.retry_interval
            again = retry if again is None else min(again, retry)
        return self.resync_interval if again is None else min(again, self.resync_interval)

    async def _stop(self, uid: str, pod: Obj) -> float | None:
        """Its file is gone (or changed): stop it with its grace period, then its mirror."""
        grace = float(dig(pod, "spec", "terminationGracePeriodSeconds") or 0)
        await self.syncer.teardown(uid, grace)
        self.leaving[uid] = pod
        self.source.stopped(uid)
        return await self._unmirror(uid, pod)

    async def _unmirror(self, uid: str, pod: Obj) -> float | None:
        namespace, name = _full_name(pod)
        successor = self.source.named(namespace, name)  # it replaces the mirror itself
        if successor is None and not await self.mirrors.remove(namespace, name):
            return self.mirrors.retry_interval
        self.leaving.pop(uid, None)
        self.mirrors.forget(uid)
        return None

    async def _drop(self, uid: str, mirror: Obj) -> float | None:
        if self.source.named(*_full_name(mirror)) is None and not await self.mirrors.delete(mirror):
            return self.mirrors.retry_interval
        self.orphans.pop(uid, None)
        return None
