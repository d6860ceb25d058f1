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
    fetch is not cached.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
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
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ModelMetadata] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            metadata = await fetch()
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
                future.exception()  # mark it retrieved: nobody else may be waiting
            raise
        else:
            self._entries[key] = (time.monotonic(), metadata)
            future.set_result(metadata)
            return metadata
        finally:
            del self._pending[key]

    def peek(self, model: ModelSpec) -> ModelMetadata | None:
        """The cached metadata if it is there and fresh, else ``None``; never fetches."""
        entry = self._entries.get(self.key(model))
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        return None

    def invalidate(self, model: ModelSpec | None = None) -> None:
        """Forget one model's metadata (every version and label), or everything."""
        if model is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == model.name]:
            del self._entries[key]
