"""What the batcher holds: each caller's rows and future, the batches, the groups,
and how a batch's rows are merged into one request and its answer split back.

:mod:`tfs_async.batching.batcher` decides when batches go; this module is the data
it moves and the rules that do not depend on time: a call's merge key
(:func:`_prepare`), the merged inputs (:func:`_merge`), every caller's rows of the
answer (:func:`_split`), failing, expiring and leaving calls.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.batching.options import Batching, FlushReason
from tfs_async.errors import DeadlineExceededError
from tfs_async.types import ModelSpec, PredictResult, SignatureSpec

__all__ = ["PredictSend", "QueuedCall", "batchable_signature"]

#: How the batcher sends one request: ``send(inputs, timeout)`` runs one Predict of
#: ``inputs`` (a dict of arrays) within ``timeout`` seconds (``None``: no deadline),
#: retries included, and returns its outputs or raises a
#: :class:`~tfs_async.errors.TFServingError`.
PredictSend = Callable[[Mapping[str, Any], "float | None"], Awaitable[PredictResult]]

# One input as it merges: name, dtype (strings: their kind), shape after dimension 0.
_InputKey = tuple[str, "str | np.dtype[Any]", tuple[int, ...]]


def batchable_signature(signature: SignatureSpec) -> bool:
    """Whether the metadata allows merging calls: every input and output batch-major.

    A tensor of known rank 0, or whose dimension 0 is fixed (not -1), cannot
    carry several callers' rows. Unknown ranks are given the benefit of the
    doubt (the first answer decides).
    """
    for spec in (*signature.inputs.values(), *signature.outputs.values()):
        if spec.shape is not None and (len(spec.shape) == 0 or spec.shape[0] != -1):
            return False
    return True


class _Call:
    """One caller's rows and the future its answer goes to.

    :meth:`Batcher.join` hands it out as a :data:`QueuedCall`: ``future`` gets the
    answer; :meth:`leave` gives the call up.
    """

    __slots__ = ("batch", "deadline", "future", "inputs", "queued_at", "rows")

    def __init__(
        self,
        inputs: dict[str, npt.NDArray[Any]],
        rows: int,
        future: asyncio.Future[PredictResult],
        deadline: float | None,
        queued_at: float,
    ) -> None:
        self.inputs = inputs
        self.rows = rows
        self.future = future
        self.deadline = deadline
        self.queued_at = queued_at
        self.batch: _Batch | None = None

    def leave(self) -> asyncio.Task[None] | None:
        """Give the call up: cancel its future, and its request once no caller is left.

        Returns that request's task if this call cancelled it (await it to be sure
        that nothing outlives the call), else None.
        """
        self.future.cancel()
        return _abandon(self)


#: A call queued by :meth:`Batcher.join`: ``future`` gets its answer, ``leave()`` gives it up.
QueuedCall = _Call


class _Batch:
    __slots__ = ("calls", "closed", "expires_at", "expiry", "reason", "rows", "task")

    def __init__(self) -> None:
        self.calls: list[_Call] = []
        self.rows = 0
        # Taking no more calls. A batch of an idle group has its task before it closes.
        self.closed = False
        self.reason: FlushReason = "delay"
        self.task: asyncio.Task[None] | None = None
        # One timer per batch, at the earliest deadline of its callers still waiting.
        self.expiry: asyncio.TimerHandle | None = None
        self.expires_at = 0.0


def _abandon(call: _Call) -> asyncio.Task[None] | None:
    """The caller left: once every caller of its request has, cancel the request.

    Returns the request's task when this caller was the last one and cancelled it.
    """
    batch = call.batch
    if (
        batch is not None
        and batch.closed
        and batch.task is not None
        and not batch.task.done()
        and all(c.future.done() for c in batch.calls)
    ):
        batch.task.cancel()
        return batch.task
    return None


class _Group:
    """The queue of one group: an open batch, ready batches, requests in flight."""

    __slots__ = (
        "config",
        "in_flight",
        "key",
        "model",
        "open",
        "queued",
        "ready",
        "reserved",
        "route",
        "send",
        "space",
        "timer",
    )

    def __init__(
        self, key: Hashable, route: Hashable, config: Batching, send: PredictSend, model: ModelSpec
    ) -> None:
        self.key = key
        self.route = route
        self.config = config
        self.send = send
        self.model = model
        self.open: _Batch | None = None
        self.ready: deque[_Batch] = deque()
        self.queued = 0
        self.in_flight = 0
        self.timer: asyncio.Handle | None = None
        # Callers waiting for room in the queue, and callers woken but not yet back.
        self.space: deque[asyncio.Future[None]] = deque()
        self.reserved = 0

    def empty(self) -> bool:
        return not (self.in_flight or self.queued or self.space or self.reserved)


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: float) -> None:
        self.left = left


def _prepare(
    inputs: Mapping[str, Any],
) -> tuple[dict[str, npt.NDArray[Any]], int, tuple[_InputKey, ...]] | None:
    """The call's inputs as arrays, their common rows and merge key; None: cannot merge."""
    if len(inputs) == 1:
        # The common case, without the list and the sort.
        [(name, raw)] = inputs.items()
        value = raw if type(raw) is np.ndarray else np.asarray(raw)
        shape = value.shape
        if not shape or not shape[0]:
            return None
        dtype = value.dtype
        kind = dtype.kind
        if kind == "O":
            return None
        return {name: value}, shape[0], ((name, kind if kind in "SU" else dtype, shape[1:]),)
    arrays: dict[str, npt.NDArray[Any]] = {}
    keys: list[_InputKey] = []
    rows = -1
    for name, raw in inputs.items():
        value = raw if type(raw) is np.ndarray else np.asarray(raw)
        shape = value.shape
        if not shape or shape[0] == 0 or (rows >= 0 and shape[0] != rows):
            return None
        dtype = value.dtype
        kind = dtype.kind
        if kind == "O":
            return None
        rows = shape[0]
        arrays[name] = value
        # Strings of any length concatenate (into the longest); other dtypes must be equal.
        keys.append((name, kind if kind in "SU" else dtype, shape[1:]))
    if rows < 0:
        return None
    keys.sort()
    return arrays, rows, tuple(keys)


def _merge(calls: list[_Call]) -> dict[str, npt.NDArray[Any]]:
    first = calls[0].inputs
    if len(calls) == 1:
        return first
    return {name: np.concatenate([c.inputs[name] for c in calls]) for name in first}


def _splittable(result: PredictResult, rows: int) -> bool:
    return all(v.ndim > 0 and v.shape[0] == rows for v in result.values())


def _split(result: PredictResult, calls: list[_Call]) -> None:
    """Give every caller its rows of each output (views, no copies)."""
    if len(calls) == 1:
        if not calls[0].future.done():
            calls[0].future.set_result(result)
        return
    start = 0
    spec = result.model
    if len(result) == 1:
        [(name, value)] = result.items()
        for call in calls:
            stop = start + call.rows
            if not call.future.done():
                call.future.set_result(PredictResult({name: value[start:stop]}, model=spec))
            start = stop
        return
    items = list(result.items())
    for call in calls:
        stop = start + call.rows
        if not call.future.done():
            call.future.set_result(PredictResult({k: v[start:stop] for k, v in items}, model=spec))
        start = stop


def _own_copy(error: BaseException) -> BaseException:
    """A copy of ``error`` (same type and attributes) chained to it, else ``error`` itself.

    One exception object raised in several tasks would mix their tracebacks.
    """
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    if type(clone) is not type(error):
        return error
    clone.__dict__.update(error.__dict__)
    clone.__cause__ = error
    return clone


def _waiting(calls: list[_Call]) -> tuple[list[_Call], int, float, float | None]:
    """In one pass: the callers still waiting, their rows, the oldest queueing time and
    the latest of their deadlines (``None``: one has none; each caller leaves at its own)."""
    live: list[_Call] = []
    rows = 0
    oldest = float("inf")
    latest: float | None = 0.0
    for c in calls:
        if c.future.done():
            continue
        live.append(c)
        rows += c.rows
        if c.queued_at < oldest:
            oldest = c.queued_at
        if latest is not None:
            deadline = c.deadline
            if deadline is None:
                latest = None
            elif deadline > latest:
                latest = deadline
    return live, rows, oldest, latest


def _fail(calls: list[_Call], error: BaseException) -> None:
    live = [c for c in calls if not c.future.done()]
    for call in live:
        call.future.set_exception(error if len(live) == 1 else _own_copy(error))


def _expire(batch: _Batch, model: ModelSpec) -> None:
    """Fail the callers of ``batch`` whose deadline has passed; re-arm for the next one."""
    batch.expiry = None
    loop = asyncio.get_running_loop()
    now = loop.time()
    following: float | None = None
    where = "in flight" if batch.closed and batch.task is not None else "queued"
    for call in batch.calls:
        deadline = call.deadline
        if deadline is None or call.future.done():
            continue
        if deadline <= now:
            call.future.set_exception(
                DeadlineExceededError(
                    f"the call's deadline passed while its batch was {where}", model=model
                )
            )
        elif following is None or deadline < following:
            following = deadline
    if following is not None:
        batch.expires_at = following
        batch.expiry = loop.call_at(following, _expire, batch, model)
    elif batch.closed and batch.task is not None and all(c.future.done() for c in batch.calls):
        batch.task.cancel()
