"""Client-side micro-batching: concurrent ``predict`` calls merged into one request.

Many callers each predicting a few rows is the common production pattern (one web
request, one prediction); TF Serving answers a batch of N rows in about the time of
one. A :class:`MicroBatcher` queues the rows of concurrent calls for one
model/version/label/signature, sends them as one Predict request (inputs
concatenated along dimension 0) and hands every caller its own rows of each output.

>>> import asyncio
>>> import numpy as np
>>> from tfs_async.client import Client
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
...         async with Client(f"grpc://{server.grpc_target}", timeout=10) as client:
...             async with client.batcher("double", max_delay=0.01) as batcher:
...                 rows = [np.full((n, 2), n, np.float32) for n in (1, 2, 3)]
...                 results = await asyncio.gather(*(batcher.predict({"x": r}) for r in rows))
...     return [r["y"][:, 0].tolist() for r in results]
>>> asyncio.run(main())
[[2.0], [4.0, 4.0], [6.0, 6.0, 6.0]]
>>> sizes  # three callers, one request of six rows
[6]
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.errors import CancelledError, InvalidArgumentError, InvalidInputError
from tfs_async.observe import BatchFlush, Observer, get_logger
from tfs_async.types import ModelSpec, PredictResult

__all__ = ["BatchingError", "MicroBatcher", "PredictSend"]

#: How a batcher sends one batch: ``send(model, inputs, timeout)`` runs one Predict of
#: ``inputs`` (a dict of arrays, or one array for a single-input signature) for
#: ``model`` within ``timeout`` seconds (``None``: the sender's default) and returns
#: its outputs or raises a :class:`~tfs_async.errors.TFServingError`. The sender owns
#: retries, deadlines, metadata and validation; :meth:`Client.batcher
#: <tfs_async.client.Client.batcher>` passes the client's predict.
PredictSend = Callable[
    [ModelSpec, "Mapping[str, Any] | Any", "float | None"], Awaitable[PredictResult]
]

# One input of a call as it merges: its name (None: a single unnamed input), dtype, trailing shape.
_InputKey = tuple[str | None, str, tuple[int, ...]]
_GroupKey = tuple[_InputKey, ...]
_TASK_NAME = "tfs_async.batching.send"
_log = get_logger("batching")


class BatchingError(InvalidArgumentError):
    """A batch's answer cannot be split back into the callers' rows.

    Raised (to every caller of the batch) when an output's dimension 0 is not the
    batch's total number of rows: the model's outputs are not batch-major, so
    this model cannot be called through a :class:`MicroBatcher`.

    Attributes:
        output_name: the output that could not be split.
    """

    def __init__(
        self, message: str, *, output_name: str | None = None, model: ModelSpec | None = None
    ) -> None:
        super().__init__(message, model=model)
        self.output_name = output_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_batching_error, (self.message, self.output_name, self.model))


def _rebuild_batching_error(
    message: str, output_name: str | None, model: ModelSpec | None
) -> BatchingError:
    return BatchingError(message, output_name=output_name, model=model)


@dataclass(eq=False)
class _Call:
    """One caller's rows and the future its answer goes to."""

    inputs: dict[str | None, npt.NDArray[Any]]
    rows: int
    future: asyncio.Future[PredictResult]


@dataclass(eq=False)
class _Batch:
    """Calls of one group waiting to be sent together."""

    key: _GroupKey
    calls: list[_Call] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None
    opened: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Merges concurrent :meth:`predict` calls for one model into batched requests.

    Args:
        send: sends one batch (see :data:`PredictSend`); :meth:`Client.batcher
            <tfs_async.client.Client.batcher>` passes the client's predict, so its
            retries, deadline, metadata and validation options apply to every batch.
        model / version / label / signature: what every call addresses.
        max_batch_size: a batch is sent as soon as it holds this many rows; calls
            are never split, so a single call larger than this is sent alone.
        max_delay: seconds a batch waits for more calls after its first one.
        timeout: seconds each batch call may take, retries included (``None``:
            the client's timeout).
        observer: told of each batch sent (:meth:`~tfs_async.observe.Observer.batch_flushed`).

    Only calls that can be concatenated are merged: the same input names, and
    per input the same dtype and the same shape after dimension 0 (strings: the
    same kind, any length). Other calls wait in batches of their own.

    A failed batch call fails every caller of that batch with the same exception
    type: each caller gets its own copy (same attributes), whose ``__cause__`` is
    the batch's original exception. A caller cancelled while waiting leaves the
    others alone; its rows are dropped if the batch has not been sent yet, else
    computed and discarded.

    Each output must have dimension 0 equal to the batch's rows (batch-major);
    otherwise every caller gets a :class:`BatchingError`. This is checked for
    every batch, a lone caller's too, so the outcome never depends on timing.
    A caller's outputs are views (slices) of the batch's arrays.

    Use it as ``async with client.batcher(...) as batcher:`` or call
    :meth:`aclose`, which sends what is pending and waits for it. A batcher
    belongs to the event loop of its first call.
    """

    def __init__(
        self,
        send: PredictSend,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        max_batch_size: int = 64,
        max_delay: float = 0.002,
        timeout: float | None = None,
        observer: Observer | None = None,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
            raise TypeError(f"max_batch_size must be an int, got {max_batch_size!r}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if not max_delay >= 0:
            raise ValueError(f"max_delay must be >= 0 seconds, got {max_delay!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        try:
            self._spec = ModelSpec(model, version=version, label=label, signature=signature)
        except ValueError as error:
            raise InvalidInputError(str(error)) from None
        self._send_batch = send
        self._max_batch_size = max_batch_size
        self._max_delay = float(max_delay)
        self._timeout = timeout
        self._observer = observer
        self._pending: dict[_GroupKey, _Batch] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def model(self) -> ModelSpec:
        """The model, version or label, and signature every call addresses."""
        return self._spec

    @property
    def max_batch_size(self) -> int:
        """Rows at which a batch is sent without waiting."""
        return self._max_batch_size

    @property
    def max_delay(self) -> float:
        """Seconds a batch waits for more calls after its first one."""
        return self._max_delay

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def __aenter__(self) -> MicroBatcher:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this MicroBatcher is closed; create a new one")

    async def predict(self, inputs: Mapping[str, Any] | Any) -> PredictResult:
        """Run the model on this caller's rows, batched with concurrent calls.

        ``inputs`` is a dict of arrays, or one array for a single-input signature
        (named from the model's metadata, as :meth:`Client.predict` does); dimension
        0 of every input holds this caller's rows. Returns exactly these rows of
        every output. Raises :class:`InvalidInputError` before queueing anything
        for a scalar input, an input with no rows, or inputs whose row counts differ.
        """
        self._check_open()
        call_inputs, rows = self._rows_of(inputs)
        key: _GroupKey = tuple(
            sorted(
                (name, _dtype_key(value.dtype), value.shape[1:])
                for name, value in call_inputs.items()
            )
        )
        future: asyncio.Future[PredictResult] = asyncio.get_running_loop().create_future()
        call = _Call(call_inputs, rows, future)
        if rows >= self._max_batch_size:
            self._send(_Batch(key, [call], rows), "oversized")
        else:
            batch = self._pending.get(key)
            if batch is not None and batch.rows + rows > self._max_batch_size:
                self._flush(batch, "incompatible")
                batch = None
            if batch is None:
                batch = _Batch(key)
                self._pending[key] = batch
                batch.timer = future.get_loop().call_later(self._max_delay, self._flush, batch)
            batch.calls.append(call)
            batch.rows += rows
            if batch.rows >= self._max_batch_size:
                self._flush(batch, "full")
        # Awaiting the future itself: cancelling the caller cancels it, and the batch skips it.
        return await future

    def _rows_of(self, inputs: Mapping[str, Any] | Any) -> tuple[dict[str | None, Any], int]:
        """The call's inputs as arrays, and their common number of rows."""
        named: list[tuple[str | None, Any]] = (
            list(inputs.items()) if isinstance(inputs, Mapping) else [(None, inputs)]
        )
        if not named:
            raise InvalidInputError("predict needs at least one input", model=self._spec)
        arrays: dict[str | None, npt.NDArray[Any]] = {}
        rows: int | None = None
        first: str | None = None
        for name, raw in named:
            value = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
            label = "the input" if name is None else f"input {name!r}"
            if value.ndim == 0:
                raise InvalidInputError(
                    f"{label} is a scalar: batching needs rows along dimension 0",
                    input_name=name,
                    expected="rank >= 1, one row per item along dimension 0",
                    model=self._spec,
                )
            if value.shape[0] == 0:
                raise InvalidInputError(
                    f"{label} has no rows (shape {list(value.shape)})",
                    input_name=name,
                    expected="at least one row along dimension 0",
                    model=self._spec,
                )
            if rows is None:
                rows, first = value.shape[0], name
            elif value.shape[0] != rows:
                raise InvalidInputError(
                    f"{label} has {value.shape[0]} rows but input {first!r} has {rows}: "
                    "every input of a call needs the same dimension 0",
                    input_name=name,
                    expected=f"{rows} rows along dimension 0",
                    model=self._spec,
                )
            arrays[name] = value
        assert rows is not None
        return arrays, rows

    def _flush(self, batch: _Batch, reason: str = "timer") -> None:
        """Send ``batch`` now (timer fired, batch full, or closing); once only."""
        if self._pending.get(batch.key) is batch:
            del self._pending[batch.key]
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        self._send(batch, reason)

    def _send(self, batch: _Batch, reason: str) -> None:
        if self._observer is not None or _log.isEnabledFor(logging.DEBUG):
            self._flushed(batch, reason)
        try:
            task = asyncio.get_running_loop().create_task(self._run(batch), name=_TASK_NAME)
        except BaseException as error:
            _fail(batch.calls, error)
            raise
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, batch: _Batch) -> None:
        """Send one batch and settle every caller's future, whatever happens."""
        calls = [c for c in batch.calls if not c.future.done()]
        try:
            if calls:
                result = await self._send_batch(self._spec, _merge(calls), self._timeout)
                _split(result, calls, self._spec)
        except asyncio.CancelledError:
            _fail(calls, CancelledError("the batch call was cancelled", model=self._spec))
            raise
        except BaseException as error:
            _fail(calls, error)
            if not isinstance(error, Exception):
                raise
        finally:
            # Belt and braces: no caller may wait forever, whatever went wrong above.
            _fail(calls, CancelledError("the batch ended without an answer", model=self._spec))

    async def aclose(self) -> None:
        """Send every pending batch, wait for all batches in flight, refuse later calls.

        Idempotent. Later :meth:`predict` calls raise RuntimeError.
        """
        self._closed = True
        for batch in list(self._pending.values()):
            self._flush(batch, "close")
        while self._sending:
            # wait() rather than gather(): cancelling aclose() must not cancel the batches.
            await asyncio.wait(set(self._sending))

    def _flushed(self, batch: _Batch, reason: str) -> None:
        event = BatchFlush(
            self._spec, batch.rows, len(batch.calls), reason, time.monotonic() - batch.opened
        )
        _log.debug(
            "batch for %s sent (%s): %d rows from %d calls after %.4f s",
            event.model,
            reason,
            event.rows,
            event.requests,
            event.queue_delay,
        )
        if self._observer is not None:
            self._observer.batch_flushed(event)


def _dtype_key(dtype: np.dtype[Any]) -> str:
    # Strings of any length concatenate into the longest; other dtypes must match exactly.
    return dtype.kind if dtype.kind in "SU" else dtype.str


def _merge(calls: list[_Call]) -> Mapping[str, Any] | Any:
    """The batch's inputs: each input's rows concatenated once, in call order."""
    first = calls[0].inputs
    if len(calls) == 1:
        merged = first
    else:
        merged = {name: np.concatenate([c.inputs[name] for c in calls]) for name in first}
    if None in merged:
        return merged[None]
    return merged


def _split(result: PredictResult, calls: list[_Call], model: ModelSpec) -> None:
    """Give every caller its rows of each output (slices, no copies)."""
    rows = sum(c.rows for c in calls)
    for name, value in result.items():
        if value.ndim == 0 or value.shape[0] != rows:
            shape = list(value.shape)
            raise BatchingError(
                f"output {name!r} has shape {shape} for a batch of {rows} rows: the model's "
                "outputs are not batch-major (dimension 0 must be the rows), so they cannot "
                "be split between callers; call Client.predict for this model instead",
                output_name=name,
                model=model,
            )
    start = 0
    for call in calls:
        stop = start + call.rows
        if not call.future.done():
            call.future.set_result(
                PredictResult({k: v[start:stop] for k, v in result.items()}, model=result.model)
            )
        start = stop


def _fail(calls: list[_Call], error: BaseException) -> None:
    """Fail every unsettled caller, each with its own copy of ``error``."""
    for call in calls:
        if not call.future.done():
            call.future.set_exception(_own_copy(error))


def _own_copy(error: BaseException) -> BaseException:
    """A copy of ``error`` (same type and attributes) chained to it, else ``error`` itself.

    Raising one exception object in several tasks would mix their tracebacks.
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
