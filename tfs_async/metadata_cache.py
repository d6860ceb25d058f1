"""The client's cache of model metadata (signatures), shared by concurrent callers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tfs_async.types import ModelMetadata, ModelSpec

__all__ = ["MetadataCache"]

_CacheKey = tuple[str, "int | None", "str | None"]


class MetadataCache:
    """Model metadata per (name, version, label), fetched once and kept ``ttl`` seconds.

    Concurrent callers asking for the same model share one fetch. A failed
    fetch is not cached. Metadata asked for without a version (by label, or the
    latest version) names whichever version the server resolved then; a label
    can move and a new version can load, so such entries are kept at most
    ``unpinned_ttl`` seconds (and the client drops a model's entries when the
    server answers NOT_FOUND for it).
    """

    def __init__(self, ttl: float = 60.0, unpinned_ttl: float = 1.0) -> None:
        self.ttl = ttl
        self.unpinned_ttl = min(ttl, unpinned_ttl)
        self._entries: dict[_CacheKey, tuple[float, ModelMetadata]] = {}
        self._pending: dict[_CacheKey, asyncio.Future[ModelMetadata]] = {}

    @staticmethod
    def key(model: ModelSpec) -> _CacheKey:
        """The cache key of a model spec (the signature does not matter)."""
        return (model.name, model.version, model.label)

    async def get(
        self, model: ModelSpec, fetch: Callable[[], Awaitable[ModelMetadata]]
    ) -> ModelMetadata:
        """The cached metadata, or ``await fetch()`` (shared by concurrent callers)."""
        key = self.key(model)
        entry = self._entries.get(key)
        ttl = self.ttl if model.version is not None else self.unpinned_ttl
        if entry is not None and time.monotonic() - entry[0] < ttl:
            return entry[1]
        pending = self._pending.get(key)
        if pending is None:
            # The fetch runs as its own task: a caller cancelled while waiting (its own
            # deadline, or its caller's) must not cancel it for the others sharing it.
            pending = asyncio.ensure_future(self._fetch(key, fetch))
            pending.add_done_callback(_retrieve)
            self._pending[key] = pending
        return await asyncio.shield(pending)

    async def _fetch(
        self, key: _CacheKey, fetch: Callable[[], Awaitable[ModelMetadata]]
    ) -> ModelMetadata:
        try:
            metadata = await fetch()
            self._entries[key] = (time.monotonic(), metadata)
            return metadata
        finally:
            self._pending.pop(key, None)

    def peek(self, model: ModelSpec) -> ModelMetadata | None:
        """The cached metadata if it is there and fresh, else ``None``; never fetches."""
        entry = self._entries.get(self.key(model))
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        return None

    def last(self, model: ModelSpec) -> ModelMetadata | None:
        """The last metadata fetched for the model, however old; never fetches.

        ``None`` if none was fetched, or since :meth:`invalidate` (a NOT_FOUND drops
        it). Used to name and type a REST answer's outputs, which must not change
        name when an entry ages; inputs are checked against fresh metadata only.
        """
        entry = self._entries.get(self.key(model))
        return None if entry is None else entry[1]

    def invalidate(self, model: ModelSpec | None = None) -> None:
        """Forget one model's metadata (every version and label), or everything."""
        if model is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == model.name]:
            del self._entries[key]


def _retrieve(task: asyncio.Future[ModelMetadata]) -> None:
    """Mark a fetch's failure as seen: every caller that waited for it was cancelled."""
    if not task.cancelled():
        task.exception()
