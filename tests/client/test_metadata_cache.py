"""The metadata cache: one fetch per model shared by concurrent callers, failures not kept."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.support.client import within
from tfs_async.errors import NotFoundError
from tfs_async.metadata_cache import MetadataCache
from tfs_async.types import ModelMetadata, ModelSpec, SignatureSpec, TensorSpec

MODEL = ModelSpec("m")
X = TensorSpec("x", "DT_FLOAT", (-1, 3), numpy_dtype=np.dtype("float32"))
S = TensorSpec("s", "DT_STRING", (-1,), numpy_dtype=np.dtype(object))
SIG = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": X, "s": S},
    {"y": TensorSpec("y", "DT_FLOAT", (-1,)), "z": TensorSpec("z", "DT_INT64", None)},
)


async def test_metadata_cache_shares_one_fetch_and_does_not_cache_failures() -> None:
    cache = MetadataCache(ttl=60)
    calls = 0
    release = asyncio.Event()
    answer = ModelMetadata(MODEL, {"serving_default": SIG})

    async def fetch() -> ModelMetadata:
        nonlocal calls
        calls += 1
        await release.wait()
        return answer

    async def fail() -> ModelMetadata:
        raise NotFoundError("not yet")

    async with within(5):
        with pytest.raises(NotFoundError):
            await cache.get(MODEL, fail)
        waiters = [asyncio.create_task(cache.get(MODEL, fetch)) for _ in range(5)]
        await asyncio.sleep(0)  # let every waiter reach the cache
        release.set()
        results = await asyncio.gather(*waiters)
    assert calls == 1
    assert all(r is answer for r in results)
    assert await cache.get(ModelSpec("m", signature="other"), fetch) is answer
    cache.invalidate(MODEL)
    async with within(5):
        await cache.get(MODEL, fetch)
    assert calls == 2


async def test_a_cancelled_first_caller_does_not_cancel_the_others() -> None:
    cache = MetadataCache(ttl=60)
    started, release = asyncio.Event(), asyncio.Event()
    answer = ModelMetadata(MODEL, {"serving_default": SIG})

    async def fetch() -> ModelMetadata:
        started.set()
        await release.wait()
        return answer

    async with within(5):
        first = asyncio.create_task(cache.get(MODEL, fetch))
        await started.wait()  # the first caller's fetch is under way
        others = [asyncio.create_task(cache.get(MODEL, fetch)) for _ in range(3)]
        await asyncio.sleep(0)  # let the others join the shared fetch
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        results = await asyncio.gather(*others)
    assert all(r is answer for r in results)
    async with within(5):
        assert await cache.get(MODEL, fetch) is answer  # and the answer was cached
