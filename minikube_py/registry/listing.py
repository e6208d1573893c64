"""LIST and WATCH, answered from the watch cache with kube-apiserver's semantics.

resourceVersion rules (apimachinery's "resource version semantics"):
- LIST with none: a consistent read (wait until the cache has the store's latest write);
  "0": whatever the cache holds now; N: at least as new as N (``NotOlderThan``).
- WATCH with none or "0": synthetic ADDED events for the current state, then changes;
  N: exactly the changes after N, or 410 Expired when the cache no longer reaches back.
- ``continue`` pages after the first are read from the store at the first page's revision.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from minikube_py import errors
from minikube_py.meta import fields, labels
from minikube_py.meta.objects import Obj, labels_of, namespace_of
from minikube_py.registry.cache import CacheEvent, ResourceCache, WatchCache
from minikube_py.registry.codec import decode_kv
from minikube_py.registry.options import Continue, ListOptions
from minikube_py.registry.resource import ResourceInfo
from minikube_py.storage.interface import Compacted, Store

Filter = Callable[[Obj], bool]

CACHE_CATCH_UP = 0.25
"""Seconds a consistent LIST waits for the watch cache before reading the store instead."""

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted"
    " between the time the first chunk was returned and now may show up in the list."
)


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
        accepts = make_filter(self.info, namespace, options)
        if options.continue_token:
            if options.resource_version not in ("", "0"):
                raise errors.BadRequest(
                    "specifying resource version is not allowed when using continue"
                )
            return await self._list_from_store(namespace, options, accepts)
        stale_at = await self._wait_fresh(options)
        if stale_at:
            return await self._list_at(namespace, options, accepts, stale_at)
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

    async def _list_at(
        self, namespace: str, options: ListOptions, accepts: Filter, revision: int
    ) -> Page:
        """A first page read from the store at ``revision`` (the cache is behind)."""
        token = Continue(revision, "").encode()
        pinned = ListOptions(
            label_selector=options.label_selector,
            field_selector=options.field_selector,
            limit=options.limit,
            continue_token=token,
        )
        return await self._list_from_store(namespace, pinned, accepts)

    async def _list_from_store(self, namespace: str, options: ListOptions, accepts: Filter) -> Page:
        """A continuation page, read from the store at the first page's revision."""
        token = Continue.decode(options.continue_token)
        try:
            rest = await self.store.list(
                self.info.prefix(namespace), start_after=token.start_after, revision=token.revision
            )
        except Compacted:
            raise errors.Expired(EXPIRED_CONTINUE) from None
        items: builtins.list[Obj] = []
        remaining, last_key = 0, ""
        for kv in rest.items:
            obj = decode_kv(kv)
            if not accepts(obj):
                continue
            if options.limit and len(items) >= options.limit:
                remaining += 1
                continue
            items.append(obj)
            last_key = kv.key
        if not remaining:
            return Page(items, token.revision)
        return Page(items, token.revision, Continue(token.revision, last_key).encode(), remaining)

    async def watch(self, namespace: str, options: ListOptions) -> AsyncIterator[CacheEvent]:
        """Events for one client; raises Expired (before the first event) if too old."""
        accepts = make_filter(self.info, namespace, options)
        await self.watch_cache.ready.wait()
        subscription = self.cache.subscribe(accepts)
        try:
            if options.resource_version in ("", "0"):
                after = self.watch_cache.revision
                prefix = self.info.prefix(namespace)
                current = [obj for _, obj in self.cache.items(prefix) if accepts(obj)]
                for obj in current:
                    yield CacheEvent("ADDED", obj, None, after)
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
                if live.revision > after:
                    yield live
        finally:
            subscription.close()


__all__ = ["Lister", "Page"]
