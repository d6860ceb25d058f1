"""The batcher: concurrent predicts of one group merged into requests, answers split back.

It sits between the client and the retry layer: the client hands it each call's
inputs together with a ``send`` callable that runs one Predict (through the
retry rules and the deadline of :mod:`tfs_async.retry`); the batcher decides what
goes together and when, and imports nothing of the client.

Per group (same route, same batching settings, same input names, dtypes and
trailing shapes):

* a call arriving when nothing of the group is in flight is sent at once: its
  request task starts on the next turn of the event loop and takes the calls of
  the same group that arrived in this turn with it (``"idle"``), never after a
  timer;
* otherwise it joins the open batch, which is sent when it is full
  (``"size"``), when its first call has waited ``max_delay`` (``"delay"``), or as
  soon as the group has nothing in flight (``"idle"``), at most
  ``max_in_flight`` requests of the group at a time;
* a merged request refused with INVALID_ARGUMENT or FAILED_PRECONDITION is split
  in halves and sent again until the callers at fault are found; the others get
  their rows;
* an answer whose outputs are not batch-major marks the route unbatchable and
  its callers are sent again one by one.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from collections.abc import Hashable, Mapping
from typing import Any

import numpy.typing as npt

from tfs_async.batching.calls import (
    PredictSend,
    QueuedCall,
    _abandon,
    _Batch,
    _Budget,
    _Call,
    _expire,
    _fail,
    _Group,
    _merge,
    _prepare,
    _split,
    _splittable,
    _waiting,
    batchable_signature,
)
from tfs_async.batching.options import BatchEvent, Batching, BatchingStats, FlushReason
from tfs_async.errors import (
    CancelledError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
)
from tfs_async.observe import BatchFlush, Observer
from tfs_async.types import ModelSpec, PredictResult

__all__ = ["BatchQueueFullError", "Batcher", "PredictSend", "QueuedCall", "batchable_signature"]

_log = logging.getLogger("tfs_async.batching")

_TASK_NAME = "tfs_async.batching.send"


class BatchQueueFullError(ResourceExhaustedError):
    """A batching queue was full and its settings say ``when_full="raise"``.

    Raised to the caller before anything is sent; nothing was queued.
    """


class Batcher:
    """Every batching group of a client (and its ``with_options`` copies).

    :meth:`submit` is the one entry: the client passes the call's inputs, a
    hashable ``route`` (everything that must be equal for calls to merge, but
    the inputs' names, dtypes and shapes, which the batcher adds), the settings,
    the ``send`` callable and the call's timeout.
    """

    def __init__(self) -> None:
        #: the client's observer, told of each request sent (``batch_flushed``)
        self.observer: Observer | None = None
        self._groups: dict[Hashable, _Group] = {}
        self._unbatchable: set[Hashable] = set()
        self._stats = BatchingStats()
        self._closing = False
        self._drained: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def is_unbatchable(self, route: Hashable) -> bool:
        """Whether answers on ``route`` were found not batch-major."""
        return route in self._unbatchable

    def stats(self) -> BatchingStats:
        """A snapshot of the counters (see :class:`BatchingStats`)."""
        snap = copy.copy(self._stats)
        snap.flushes = dict(self._stats.flushes)
        snap.batch_rows = dict(self._stats.batch_rows)
        snap.queued = sum(g.queued for g in self._groups.values())
        snap.in_flight = sum(g.in_flight for g in self._groups.values())
        return snap

    def _locate(
        self,
        route: Hashable,
        config: Batching,
        inputs: Mapping[str, Any],
        send: PredictSend,
        model: ModelSpec,
    ) -> tuple[_Group, dict[str, npt.NDArray[Any]], int] | None:
        """The call's group (made if new), arrays and rows; None: it goes alone."""
        prepared = _prepare(inputs) if route not in self._unbatchable else None
        if prepared is None or prepared[1] >= config.max_batch_size:
            return None
        arrays, rows, shape_key = prepared
        key = (route, config, shape_key)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, route, config, send, model)
        return group, arrays, rows

    async def submit(
        self,
        route: Hashable,
        config: Batching,
        inputs: Mapping[str, Any],
        send: PredictSend,
        timeout: float | None,
        model: ModelSpec,
    ) -> PredictResult:
        """Run one caller's predict, merged with the concurrent calls of its group."""
        located = self._locate(route, config, inputs, send, model)
        if located is None:
            return await send(inputs, timeout)
        group, arrays, rows = located
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = None if timeout is None else now + timeout
        if group.queued + group.reserved >= config.max_queue or group.space:
            if config.when_full == "raise":
                self._stats.rejected += 1
                raise BatchQueueFullError(
                    f"the batching queue of model {model} holds {group.queued} calls "
                    f"(max_queue={config.max_queue}) and when_full='raise'",
                    model=model,
                )
            # Woken in arrival order, each holding a place: the group stays alive meanwhile.
            await self._wait_for_room(group, deadline, model, timeout)
            now = loop.time()
        # asyncio.Future directly: loop.create_future() is one Python call more per caller.
        future: asyncio.Future[PredictResult] = asyncio.Future(loop=loop)
        call = _Call(arrays, rows, future, deadline, now)
        self._enqueue(group, call, loop)
        if group.space:
            self._make_room(group)
        try:
            return await future
        except asyncio.CancelledError:
            request = _abandon(call)
            if request is not None:
                # The last caller leaves once its request has ended: nothing outlives it.
                await asyncio.wait((request,))
            raise

    def join(
        self,
        route: Hashable,
        config: Batching,
        inputs: Mapping[str, Any],
        send: PredictSend,
        timeout: float | None,
        model: ModelSpec,
    ) -> QueuedCall | None:
        """Queue one caller's predict without waiting; None when it cannot be at once.

        What :meth:`submit` does up to its wait for the answer, for callers that
        hold many calls at once (``predict_stream``): None when the call would go
        alone (unbatchable route, too many rows) or would wait for room in a full
        queue; the caller then runs it through :meth:`submit`.
        """
        located = self._locate(route, config, inputs, send, model)
        if located is None:
            return None
        group, arrays, rows = located
        if group.queued + group.reserved >= config.max_queue or group.space:
            return None
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = None if timeout is None else now + timeout
        call = _Call(arrays, rows, asyncio.Future(loop=loop), deadline, now)
        self._enqueue(group, call, loop)
        return call

    async def _wait_for_room(
        self, group: _Group, deadline: float | None, model: ModelSpec, timeout: float | None
    ) -> None:
        """Wait for a place in ``group``'s queue; on return the caller holds one."""
        loop = asyncio.get_running_loop()
        room: asyncio.Future[None] = loop.create_future()
        group.space.append(room)
        try:
            if deadline is None:
                await room
            else:
                await asyncio.wait_for(room, max(deadline - loop.time(), 0))
        except BaseException as error:
            if room in group.space:
                group.space.remove(room)
            elif room.done() and not room.cancelled():
                # Woken, but leaving: hand the place on.
                group.reserved -= 1
                self._make_room(group)
            if isinstance(error, asyncio.TimeoutError):
                raise DeadlineExceededError(
                    f"the call's deadline ({timeout:g} s) passed while the batching queue "
                    f"was full (max_queue={group.config.max_queue})",
                    model=model,
                ) from None
            raise
        group.reserved -= 1

    def _make_room(self, group: _Group) -> None:
        """Wake waiters, first come first served, while the group's queue has room."""
        space = group.space
        while space and group.queued + group.reserved < group.config.max_queue:
            room = space.popleft()
            if not room.done():
                room.set_result(None)
                group.reserved += 1

    def _enqueue(self, group: _Group, call: _Call, loop: asyncio.AbstractEventLoop) -> None:
        config = group.config
        batch = group.open
        if batch is not None and batch.rows + call.rows > config.max_batch_size:
            self._close_open(group, "size")
            batch = None
        if batch is None:
            batch = group.open = _Batch()
            if self._closing:
                pass
            elif group.in_flight == 0:
                # Idle: its request task starts on the next turn of the event loop and
                # takes the calls that arrive in this one (callers woken together come
                # back together).
                batch.reason = "idle"
                self._start(group, batch, loop)
            else:
                group.timer = loop.call_at(
                    call.queued_at + config.max_delay, self._on_timer, group, batch, "delay"
                )
        batch.calls.append(call)
        call.batch = batch
        batch.rows += call.rows
        deadline = call.deadline
        if deadline is not None and (batch.expiry is None or deadline < batch.expires_at):
            if batch.expiry is not None:
                batch.expiry.cancel()
            batch.expires_at = deadline
            batch.expiry = loop.call_at(deadline, _expire, batch, group.model)
        group.queued += 1
        if batch.rows >= config.max_batch_size:
            self._close_open(group, "size")
        elif self._closing:
            self._close_open(group, "close")

    def _on_timer(self, group: _Group, batch: _Batch, reason: FlushReason) -> None:
        if group.open is batch:
            group.timer = None
            self._close_open(group, reason)

    def _close_open(self, group: _Group, reason: FlushReason) -> None:
        batch = group.open
        if batch is None:
            return
        group.open = None
        batch.closed = True
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None
        batch.reason = reason
        if batch.task is not None:
            # An idle group's batch: its task, already started, sends it.
            group.queued -= len(batch.calls)
            return
        group.ready.append(batch)
        self._pump(group)

    def _start(self, group: _Group, batch: _Batch, loop: asyncio.AbstractEventLoop) -> None:
        """Give ``batch`` its request task, which holds one of the group's slots."""
        group.in_flight += 1
        task = batch.task = loop.create_task(self._run(group, batch), name=_TASK_NAME)
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._ended, group, batch))

    def _pump(self, group: _Group) -> None:
        """Send ready batches while the group has request slots."""
        loop: asyncio.AbstractEventLoop | None = None
        while group.ready and group.in_flight < group.config.max_in_flight:
            batch = group.ready.popleft()
            group.queued -= len(batch.calls)
            if loop is None:
                loop = asyncio.get_running_loop()
            self._start(group, batch, loop)
        if group.space:
            self._make_room(group)

    def _settle(self, group: _Group) -> None:
        """After a request of ``group`` ended: send what waits, forget an empty group."""
        batch = group.open
        if group.in_flight == 0 and batch is not None and not group.ready:
            if self._closing:
                self._close_open(group, "close")
            else:
                # Idle again: the open batch gets its task, which starts on the next turn
                # of the loop, so the callers this answer woke still join it.
                if group.timer is not None:
                    group.timer.cancel()
                    group.timer = None
                batch.reason = "idle"
                self._start(group, batch, asyncio.get_running_loop())
        else:
            self._pump(group)
        if group.empty() and self._groups.get(group.key) is group:
            del self._groups[group.key]
            if not self._groups and self._drained is not None:
                self._drained.set()

    async def _run(self, group: _Group, batch: _Batch) -> None:
        if group.open is batch:
            # An idle group's batch: it takes no more calls from now on.
            group.open = None
            batch.closed = True
            group.queued -= len(batch.calls)
        limit = group.config.max_isolation_requests
        budget = _Budget(float("inf") if limit is None else limit)
        await self._deliver(group, batch.calls, batch.reason, budget)

    def _ended(self, group: _Group, batch: _Batch, task: asyncio.Task[None]) -> None:
        # A done callback, not a ``finally``: a task cancelled before it started
        # (all its callers left at once) never runs its coroutine.
        if group.open is batch:  # cancelled before it started (the loop is closing)
            group.open = None
            batch.closed = True
            group.queued -= len(batch.calls)
            _fail(
                batch.calls, CancelledError("the batch's request was cancelled", model=group.model)
            )
        if batch.expiry is not None:
            batch.expiry.cancel()
            batch.expiry = None
        # Every caller is answered: break the batch <-> calls cycle, so that the answers
        # are freed now rather than at the next full garbage collection.
        batch.calls = []
        self._tasks.discard(task)
        group.in_flight -= 1
        self._settle(group)

    def _count(
        self, group: _Group, rows: int, callers: int, reason: FlushReason, delay: float
    ) -> None:
        stats = self._stats
        stats.batches += 1
        stats.rows += rows
        stats.callers += callers
        stats.flushes[reason] = stats.flushes.get(reason, 0) + 1
        stats.batch_rows[rows] = stats.batch_rows.get(rows, 0) + 1
        stats.queue_delay_total += delay
        if delay > stats.queue_delay_max:
            stats.queue_delay_max = delay
        _log.debug("batch for %s (%s): %d rows from %d calls", group.model, reason, rows, callers)
        if self.observer is not None:
            self.observer.batch_flushed(BatchFlush(group.model, rows, callers, reason, delay))
        observer = group.config.observer
        if observer is not None:
            event = BatchEvent(group.model.name, rows, callers, reason, delay, group.in_flight)
            try:
                observer(event)
            except Exception:
                _log.exception("batching observer %r failed on %r", observer, event)

    async def _deliver(
        self, group: _Group, calls: list[_Call], reason: FlushReason, budget: _Budget
    ) -> None:
        """Send ``calls`` as one request and settle every caller's future, whatever happens."""
        live, rows, oldest, latest = _waiting(calls)
        if not live:
            return
        if len(live) > 1 and group.route in self._unbatchable:
            await asyncio.gather(*(self._deliver(group, [c], "alone", budget) for c in live))
            return
        now = asyncio.get_running_loop().time()
        self._count(group, rows, len(live), reason, now - oldest)
        timeout = None if latest is None else max(latest - now, 1e-3)
        try:
            result = await group.send(_merge(live), timeout)
        except (InvalidArgumentError, FailedPreconditionError) as error:
            sent = len(live)
            live = [c for c in live if not c.future.done()]
            if len(live) > 1 and budget.left >= 2:
                # Someone's rows were refused: split in halves until the culprits are alone.
                budget.left -= 2
                self._stats.isolation_splits += 1
                half = len(live) // 2
                await asyncio.gather(
                    self._deliver(group, live[:half], "isolation", budget),
                    self._deliver(group, live[half:], "isolation", budget),
                )
                return
            if len(live) == 1 and sent > 1 and budget.left >= 1:
                # The others left meanwhile: the refused rows may have been theirs.
                budget.left -= 1
                await self._deliver(group, live, "isolation", budget)
                return
            if reason == "isolation" and sent == 1:
                self._stats.isolated_errors += 1
            _fail(live, error)
            return
        except asyncio.CancelledError:
            _fail(live, CancelledError("the batch's request was cancelled", model=group.model))
            raise
        except BaseException as error:
            _fail(live, error)
            if not isinstance(error, Exception):
                raise
            return
        if _splittable(result, rows):
            _split(result, live)
            return
        self._mark_unbatchable(group.route)
        if len(live) == 1:
            _split(result, live)  # a caller alone gets the answer as the server gave it
            return
        await asyncio.gather(*(self._deliver(group, [c], "alone", budget) for c in live))

    def _mark_unbatchable(self, route: Hashable) -> None:
        if route not in self._unbatchable:
            self._unbatchable.add(route)
            self._stats.unbatchable += 1

    async def aclose(self) -> None:
        """Send every queued call now and wait until every request has ended; idempotent."""
        self._closing = True
        for group in list(self._groups.values()):
            self._close_open(group, "close")
        while self._groups:
            self._drained = asyncio.Event()
            # wait() rather than awaiting the event alone: cancelling aclose() must not
            # cancel the requests.
            await self._drained.wait()
