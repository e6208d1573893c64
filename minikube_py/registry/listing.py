"""LIST and WATCH, answered from the watch cache with kube-apiserver's semantics.

resourceVersion rules (apimachinery's "resource version semantics"):
- LIST with none: a consistent read (wait until the cache has the store's latest write);
  "0": whatever the cache holds now; N: at least as new as N (``NotOlderThan``);
  N with ``resourceVersionMatch=Exact``: the store's state at N, 410 once compacted.
- WATCH with none or "0": synthetic ADDED events for the current state, then changes;
  N: exactly the changes after N, or 410 Expired when the cache no longer reaches back.
  With ``sendInitialEvents`` (a streaming list): the state, then an end-marking BOOKMARK.
- ``continue`` pages after the first are read from the store at the first page's revision;
  once compaction has passed it, 410 Expired with a token to go on, inconsistently.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from minikube_py import errors
from minikube_py.meta import fields, labels
from minikube_py.meta.objects import Obj, labels_of, namespace_of
from minikube_py.registry.cache import (
    BOOKMARK,
    Bookmarks,
    CacheEvent,
    ResourceCache,
    WatchCache,
    bookmark_object,
)
from minikube_py.registry.codec import decode_kv
from minikube_py.registry.options import Continue, ListOptions
from minikube_py.registry.resource import ResourceInfo
from minikube_py.storage.interface import Compacted, Store

Filter = Callable[[Obj], bool]

NOT_OLDER_THAN = "NotOlderThan"
EXACT = "Exact"
LIST_OPTIONS = errors.Target(group="meta.k8s.io", kind="ListOptions")
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

CACHE_CATCH_UP = 0.25
"""Seconds a consistent LIST waits for the watch cache before reading the store instead."""

EXPIRED_LIST = "The resourceVersion for the provided list is too old."
EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted"
    " between the time the first chunk was returned and now may show up in the list."
)


class ExpiredContinue(errors.Expired):
    """410 for a continue token whose revision was compacted away.

    As kube-apiserver, the Status carries a fresh token in ``metadata.continue``: it
    lists the rest at a newer revision, a result that may mix two points in time.
    """

    def __init__(self, token: str) -> None:
        super().__init__(EXPIRED_CONTINUE)
        self.token = token

    def status(self) -> Obj:
        body = super().status()
        body["metadata"] = {"continue": self.token}
        return body


def check_list_options(options: ListOptions) -> None:
    """kube-apiserver's ListOptions validation for LIST: 422 naming every problem."""
    match = options.resource_version_match
    if not match:
        return
    problems: list[errors.FieldError] = []
    field = "resourceVersionMatch"
    if not options.resource_version:
        problems.append(
            errors.forbidden(
                field, "resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        )
    if options.continue_token:
        problems.append(
            errors.forbidden(field, "resourceVersionMatch is forbidden when continue is provided")
        )
    if match not in (EXACT, NOT_OLDER_THAN):
        problems.append(errors.not_supported(field, match, [EXACT, NOT_OLDER_THAN, ""]))
    if match == EXACT and options.resource_version == "0":
        problems.append(
            errors.forbidden(
                field, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
            )
        )
    if problems:
        raise errors.Invalid(LIST_OPTIONS, problems)


@dataclass
class Page:
    items: list[Obj]
    revision: int
    continue_token: str = ""
    remaining: int | None = None


def make_filter(info: ResourceInfo, namespace: str, options: ListOptions) -> Filter:
    """Namespace, label and field selection as one predicate; bad selectors are 400s."""
    try:
        label_sel = labels.parse_label_selector(options.label_selector)
        field_sel = fields.check_supported(
            fields.parse_field_selector(options.field_selector), info.group, info.plural
        )
    except labels.SelectorError as exc:
        raise errors.BadRequest(str(exc)) from None
    wants_labels = not label_sel.is_empty()
    wants_fields = not field_sel.is_empty()

    def accepts(obj: Obj) -> bool:
        if namespace and namespace_of(obj) != namespace:
            return False
        if wants_labels and not label_sel.matches(labels_of(obj)):
            return False
        return not wants_fields or field_sel.matches(fields.field_set(info.group, info.plural, obj))

    return accepts


def _revision_of(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.BadRequest(f'invalid resource version "{text}"') from None
    if value < 0:
        raise errors.BadRequest(f'invalid resource version "{text}"')
    return value


class Lister:
    """Reads for one resource: LIST pages and WATCH streams."""

    def __init__(self, info: ResourceInfo, cache: WatchCache, store: Store) -> None:
        self.info = info
        self.watch_cache = cache
        self.cache: ResourceCache = cache.cache_for(info)
        self.store = store

    async def list(self, namespace: str, options: ListOptions) -> Page:
        check_list_options(options)
        accepts = make_filter(self.info, namespace, options)
        if options.continue_token:
            if options.resource_version not in ("", "0"):
                raise errors.BadRequest(
                    "specifying resource version is not allowed when using continue"
                )
            token = Continue.decode(options.continue_token)
            return await self._list_from_store(namespace, options.limit, accepts, token)
        if options.resource_version_match == EXACT:
            return await self._list_exact(namespace, options, accepts)
        stale_at = await self._wait_fresh(options)
        if stale_at:
            token = Continue(stale_at, "")
            return await self._list_from_store(namespace, options.limit, accepts, token)
        return self._page(namespace, options, accepts, self.watch_cache.revision)

    async def _wait_fresh(self, options: ListOptions) -> int:
        """0 when the cache may answer; else the revision to read from the store at.

        A consistent read waits briefly for the cache to reach the store's revision. It
        may never get there when that revision belongs to a write the cache does not see
        (outside ``/registry/`` in a shared etcd): then, as kube-apiserver falls back to
        etcd, the answer is read from the store at that revision.
        """
        await self.watch_cache.ready.wait()
        if options.resource_version == "":
            current = await self.store.current_revision()
            if not await self.watch_cache.wait_for(current, within=CACHE_CATCH_UP):
                return current
            return 0
        if options.resource_version != "0":
            wanted = _revision_of(options.resource_version)
            if not await self.watch_cache.wait_for(wanted, within=3.0):
                raise errors.Timeout(
                    f"Too large resource version: {wanted}, current: {self.watch_cache.revision}"
                )
        return 0

    def _page(self, namespace: str, options: ListOptions, accepts: Filter, revision: int) -> Page:
        items: builtins.list[Obj] = []
        limit = options.limit
        matched_after = 0
        last_key = ""
        for key, obj in self.cache.items(self.info.prefix(namespace)):
            if not accepts(obj):
                continue
            if limit and len(items) >= limit:
                matched_after += 1
                continue
            items.append(obj)
            last_key = key
        if limit and matched_after:
            token = Continue(revision, last_key).encode()
            return Page(items, revision, token, matched_after)
        return Page(items, revision)

    async def _list_exact(self, namespace: str, options: ListOptions, accepts: Filter) -> Page:
        """``resourceVersionMatch=Exact``: the state at exactly that revision, from the store."""
        wanted = _revision_of(options.resource_version)
        current = await self.store.current_revision()
        if wanted > current:
            raise errors.Timeout(f"Too large resource version: {wanted}, current: {current}")
        try:
            return await self._list_from_store(
                namespace, options.limit, accepts, Continue(wanted, "")
            )
        except ExpiredContinue:
            raise errors.Expired(EXPIRED_LIST) from None

    async def _list_from_store(
        self,
        namespace: str,
        limit: int,
        accepts: Filter,
        token: Continue,
    ) -> Page:
        """A page read from the store at ``token``'s revision, after its key.

        Continuations come here (the first page's revision may be older than the
        cache's), as do first pages the cache cannot answer.
        """
        try:
            rest = await self.store.list(
                self.info.prefix(namespace), start_after=token.start_after, revision=token.revision
            )
        except Compacted:
            current = await self.store.current_revision()
            raise ExpiredContinue(Continue(current, token.start_after).encode()) from None
        items: builtins.list[Obj] = []
        remaining, last_key = 0, ""
        for kv in rest.items:
            obj = decode_kv(kv)
            if not accepts(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
            last_key = kv.key
        if not remaining:
            return Page(items, token.revision)
        return Page(items, token.revision, Continue(token.revision, last_key).encode(), remaining)

    async def watch(self, namespace: str, options: ListOptions) -> AsyncIterator[CacheEvent]:
        """Events for one client; raises Expired (before the first event) if too old.

        With ``allow_bookmarks``, BOOKMARK events come in line with the others. A watch
        with ``send_initial_events`` is a streaming list: the state at least as new as
        ``resourceVersion`` (a consistent read when unset) as ADDED events, then a
        BOOKMARK annotated ``k8s.io/initial-events-end`` at that state's revision.
        """
        accepts = make_filter(self.info, namespace, options)
        streaming = options.send_initial_events
        if streaming or options.resource_version not in ("", "0"):
            await self._wait_fresh(options)  # a future resourceVersion: wait, or 504
        await self.watch_cache.ready.wait()
        subscription = self.cache.subscribe(accepts, self._bookmarks(options))
        try:
            if streaming or options.resource_version in ("", "0"):
                after = self.watch_cache.revision
                prefix = self.info.prefix(namespace)
                current = [obj for _, obj in self.cache.items(prefix) if accepts(obj)]
                for obj in current:
                    yield CacheEvent("ADDED", obj, None, after)
                if streaming and options.allow_bookmarks:
                    end = bookmark_object(after, {INITIAL_EVENTS_END: "true"})
                    yield CacheEvent(BOOKMARK, end, None, after)
            else:
                after = _revision_of(options.resource_version)
                history = self.cache.events_after(after)
                if history is None:
                    raise errors.Expired(f"too old resource version: {after} ({self.cache.oldest})")
                for event in history:
                    translated = subscription.translate(event)
                    if translated is not None:
                        yield translated
                if history:
                    after = history[-1].revision
            while True:
                live = await subscription.next()
                if live is None:
                    return
                # As upstream, a BOOKMARK that would not move the client forward is dropped.
                if live.revision > after:
                    yield live
        finally:
            subscription.close()

    def _bookmarks(self, options: ListOptions) -> Bookmarks | None:
        if not options.allow_bookmarks:
            return None
        deadline = None
        if options.timeout_seconds is not None:
            deadline = asyncio.get_running_loop().time() + options.timeout_seconds
        cache = self.watch_cache
        return Bookmarks(cache.bookmark_interval, deadline, lambda: cache.revision)


__all__ = ["Lister", "Page"]
