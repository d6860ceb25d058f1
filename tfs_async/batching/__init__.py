"""Client-side micro-batching and streaming.

Many callers each predicting a row or two is the common production pattern (one
web request, one prediction), and TF Serving answers a batch of N rows in about
the time of one. With ``Client(target, batching=Batching(...))`` concurrent
``predict`` calls that can be merged are concatenated along dimension 0 into
one request and every caller gets exactly its own rows back; callers change
nothing. ``Client.predict_stream`` feeds a stream of inputs through it with
bounded memory.

>>> import asyncio
>>> import numpy as np
>>> from tfs_async import Batching, Client
>>> from tfs_async.testing import ModelServer, PythonModel, signature
>>> sizes = []
>>> async def double(t):
...     sizes.append(len(t["x"]))
...     return {"y": t["x"] * 2}
>>> model = PythonModel("double", {"serving_default": signature(
...     double, inputs={"x": ("DT_FLOAT", [-1, 2])}, outputs={"y": ("DT_FLOAT", [-1, 2])},
... )})
>>> async def main() -> list[list[float]]:
...     async with ModelServer([model]) as server:
...         target = f"grpc://{server.grpc_target}"
...         async with Client(target, batching=Batching(max_delay=0.01)) as client:
...             rows = [np.full((n, 2), n, np.float32) for n in (1, 2, 3, 4)]
...             results = await asyncio.gather(*(client.predict("double", {"x": r}) for r in rows))
...     return [r["y"][:, 0].tolist() for r in results]
>>> asyncio.run(main())
[[2.0], [4.0, 4.0], [6.0, 6.0, 6.0], [8.0, 8.0, 8.0, 8.0]]
>>> sizes  # four callers, one request, sent at once: nothing was in flight
[10]
"""

from __future__ import annotations

from tfs_async.batching.batcher import (
    Batcher,
    BatchQueueFullError,
    PredictSend,
    batchable_signature,
)
from tfs_async.batching.options import BatchEvent, Batching, BatchingStats, FlushReason
from tfs_async.batching.stream import OnError, stream_calls

__all__ = [
    "BatchEvent",
    "BatchQueueFullError",
    "Batcher",
    "Batching",
    "BatchingStats",
    "FlushReason",
    "OnError",
    "PredictSend",
    "batchable_signature",
    "stream_calls",
]
