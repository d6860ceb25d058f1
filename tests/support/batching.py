"""The batching tests' model: it records dimension 0 of every request it receives."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.client import Client
from tfs_async.errors import FailedPreconditionError, InvalidArgumentError
from tfs_async.testing import PythonModel, signature

MODEL = "rec"
Arrays = dict[str, npt.NDArray[Any]]
BAD = -1.0  # a row whose first value is this makes the whole request fail


@dataclass
class Recorder:
    """What the model saw: dimension 0 of each request, per signature; a gate to hold answers.

    Signature ``gated`` holds every request until :meth:`release` (all of them)
    or :meth:`allow` (request number k, from 0); ``entered`` is set as soon as
    one arrived.
    """

    sizes: dict[str, list[int]] = field(default_factory=dict)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    allowed: set[int] = field(default_factory=set)
    _waiters: list[asyncio.Event] = field(default_factory=list)

    def _changed(self) -> None:
        for waiter in self._waiters:
            waiter.set()
        self._waiters.clear()

    async def _until(self, done: Any) -> None:
        while not done():
            waiter = asyncio.Event()
            self._waiters.append(waiter)
            await waiter.wait()

    def seen(self, name: str, rows: int) -> int:
        self.sizes.setdefault(name, []).append(rows)
        self._changed()
        return len(self.sizes[name]) - 1

    async def requests(self, name: str, count: int) -> list[int]:
        """Wait until signature ``name`` has received ``count`` requests; their sizes."""
        await self._until(lambda: len(self.sizes.get(name, [])) >= count)
        return self.sizes[name]

    def release(self) -> None:
        self.gate.set()
        self._changed()

    def allow(self, request: int) -> None:
        self.allowed.add(request)
        self._changed()

    def model(self) -> PythonModel:
        async def double(t: Arrays) -> Arrays:
            self.seen("serving_default", len(t["x"]))
            return {"y": t["x"] * 2}

        async def pair(t: Arrays) -> Arrays:
            self.seen("pair", len(t["a"]))
            return {"sum": t["a"] + t["b"], "diff": t["a"] - t["b"]}

        async def echo(t: Arrays) -> Arrays:
            self.seen("strings", len(t["s"]))
            return {"s": t["s"]}

        async def total(t: Arrays) -> Arrays:
            self.seen("total", len(t["x"]))
            return {"total": np.asarray(t["x"].sum(), np.float32)}

        async def gated(t: Arrays) -> Arrays:
            k = self.seen("gated", len(t["x"]))
            self.entered.set()
            await self._until(lambda: self.gate.is_set() or k in self.allowed)
            return {"y": t["x"] * 2}

        async def picky(t: Arrays) -> Arrays:
            # Refuses the whole request when one row is bad, as a TF assert op would.
            self.seen("picky", len(t["x"]))
            if (t["x"][:, 0] == BAD).any():
                raise InvalidArgumentError("x must not start with -1")
            return {"y": t["x"] * 2}

        async def strict(t: Arrays) -> Arrays:
            self.seen("strict", len(t["x"]))
            if (t["x"][:, 0] == BAD).any():
                raise FailedPreconditionError("table not initialized for -1")
            return {"y": t["x"] * 2}

        matrix = ("DT_FLOAT", [-1, -1])

        def same(function: Any) -> Any:
            return signature(function, inputs={"x": matrix}, outputs={"y": matrix})

        return PythonModel(
            MODEL,
            {
                "serving_default": same(double),
                "pair": signature(
                    pair,
                    inputs={"a": ("DT_INT64", [-1]), "b": ("DT_INT64", [-1])},
                    outputs={"sum": ("DT_INT64", [-1]), "diff": ("DT_INT64", [-1])},
                ),
                "strings": signature(
                    echo, inputs={"s": ("DT_STRING", [-1])}, outputs={"s": ("DT_STRING", [-1])}
                ),
                # A scalar output: rows cannot be split back.
                "total": signature(
                    total, inputs={"x": matrix}, outputs={"total": ("DT_FLOAT", [])}
                ),
                "gated": same(gated),
                "picky": same(picky),
                "strict": same(strict),
            },
        )


def rows(caller: int, count: int, cols: int = 3) -> npt.NDArray[np.float32]:
    """``count`` rows unique to ``caller``: row r holds caller * 1000 + r."""
    column = np.arange(count, dtype=np.float32)[:, None] + caller * 1000
    return np.repeat(column, cols, axis=1)


def batch_tasks() -> set[asyncio.Task[Any]]:
    """The batcher's and the streams' tasks still alive."""
    return {
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith(("tfs_async.batching", "tfs_async.stream")) and not t.done()
    }


async def hold_group(client: Client, signature: str, rec: Recorder) -> asyncio.Task[Any]:
    """Start one call on ``signature`` and wait until the server holds it (the group is busy)."""
    first = asyncio.create_task(client.predict(MODEL, {"x": rows(999, 1)}, signature=signature))
    await rec.entered.wait()
    return first


async def _nothing() -> None:
    return None


async def after_started() -> None:
    """Return once every task created before this call has run up to its first await.

    Tasks run their first step in creation order, so a task created now ends after them.
    """
    await asyncio.create_task(_nothing())


def target_of(server: Any, protocol: str) -> str:
    return f"grpc://{server.grpc_target}" if protocol == "grpc" else str(server.rest_url)
