"""Server-side batching as TF Serving does it (``--enable_batching``).

TF Serving wraps each model's session in a ``BatchingSession`` whose calls go
through TensorFlow's ``SharedBatchScheduler``. :class:`SharedBatchScheduler`
reproduces what a client can observe of it:

* one queue per (servable version, signature, input and output names); a queue
  is a deque of batches whose last one is open;
* a task larger than ``max_batch_size`` is refused (INVALID_ARGUMENT
  ``Task size N is larger than maximum input batch size M``); a task that does
  not fit the open batch closes it and opens a new one, unless the queue already
  holds ``max_enqueued_batches`` batches: then UNAVAILABLE
  ``The batch scheduling queue to which this task was submitted is full; ...``;
* ``num_batch_threads`` workers take batches round-robin across queues: a closed
  batch at once, the open one when it is full or its oldest task has waited
  ``batch_timeout_micros``;
* a batch is padded up to the smallest ``allowed_batch_sizes`` entry; without
  ``pad_variable_length_inputs`` its tasks' inputs must agree on every dimension
  but the first (else FAILED_PRECONDITION for the whole batch); a batch whose
  tasks all passed their deadline in the queue fails with RESOURCE_EXHAUSTED
  ``Run() timeout exceeded while waiting in batching queue``.

Each task is a coroutine factory (``run(timeout)``, "run this predict"). A batch
runs its tasks together on one worker, after the optional
:class:`~tfs_async.testing.device_model.DeviceModel` charged the padded batch
once. The tasks' tensors are not concatenated: each request is computed on its
own, so answers are exactly the unbatched ones.

Sources: TF's ``core/kernels/batching_util/shared_batch_scheduler.h``
(``Queue::Schedule``, ``ValidateBatchTaskQueueCapacity``, ``ScheduleBatch``) and
TF Serving's ``batching/batching_session.cc`` (``MergeInputTensors``,
``ProcessBatch``) and ``batching/batching_util.h`` (``ComputeTensorBatchSize``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfs_async.errors import StatusCode
from tfs_async.testing.device_model import DeviceModel
from tfs_async.testing.monitoring import Metrics
from tfs_async.testing.server_config import BatchingParameters
from tfs_async.testing.status import ServingStatus

__all__ = ["BatchStats", "SharedBatchScheduler", "task_size"]

Run = Callable[[float | None], Awaitable[Any]]


def task_size(shapes: Mapping[str, Sequence[int]]) -> int:
    """A task's size: the common 0th dimension of its inputs (``ComputeTensorBatchSize``).

    >>> task_size({"x": [3, 2], "y": [3]})
    3
    """
    if not shapes:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT, "Batching Run() must have at least one input tensor"
        )
    sizes = set()
    for shape in shapes.values():
        if not shape:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                "Batching Run() input tensors must have at least one dimension",
            )
        sizes.add(shape[0])
    if len(sizes) != 1:
        raise ServingStatus(
            StatusCode.INVALID_ARGUMENT,
            "Batching Run() input tensors must have equal 0th-dimension size",
        )
    return sizes.pop()


@dataclass
class _Task:
    size: int
    shapes: Mapping[str, Sequence[int]]
    run: Run
    deadline: float | None
    enqueued: float
    future: asyncio.Future[Any]


@dataclass
class _Batch:
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    start: float = 0.0


@dataclass
class _Queue:
    key: Hashable
    batches: deque[_Batch] = field(default_factory=lambda: deque([_Batch()]))


@dataclass
class BatchStats:
    """What the scheduler has done (read by tests and the metrics page)."""

    batches: int = 0
    """Batches processed."""
    batch_sizes: list[int] = field(default_factory=list)
    """Each processed batch's size after padding, in processing order (the last 1000)."""
    queuing_micros: list[float] = field(default_factory=list)
    """Each task's time in the queue, microseconds (the last 1000)."""


_KEEP = 1000
_WRAPPED_RUNS = "/tensorflow/serving/batching_session/wrapped_run_count"


class SharedBatchScheduler:
    """Queues "run this predict" tasks and runs them in batches, like TF Serving.

    Args:
        params: the ``BatchingParameters`` in force.
        device: charged once per batch with its padded size, when given.
        metrics: where the batching session's queuing latency and run count go.

    Workers start with the first task; :meth:`close` stops them (tasks still
    queued fail with UNAVAILABLE).

    >>> import asyncio
    >>> from tfs_async.testing.server_config import BatchingParameters
    >>> async def main() -> list[int]:
    ...     scheduler = SharedBatchScheduler(BatchingParameters(max_batch_size=4))
    ...     async def run(timeout: float | None) -> int:
    ...         return 42
    ...     try:
    ...         return await asyncio.gather(
    ...             *(scheduler.schedule("q", {"x": [2]}, run, None) for _ in range(3))
    ...         )
    ...     finally:
    ...         await scheduler.close()
    >>> asyncio.run(main())
    [42, 42, 42]
    """

    def __init__(
        self,
        params: BatchingParameters,
        device: DeviceModel | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.params = params
        self.device = device
        self.metrics = metrics
        if metrics is not None:
            metrics.declare_counter(_WRAPPED_RUNS)
        self.stats = BatchStats()
        self._queues: dict[Hashable, _Queue] = {}
        self._order: deque[Hashable] = deque()
        self._changed: asyncio.Condition | None = None
        self._workers: list[asyncio.Task[None]] = []

    # -- submission --------------------------------------------------------

    async def schedule(
        self,
        key: Hashable,
        shapes: Mapping[str, Sequence[int]],
        run: Run,
        timeout: float | None,
    ) -> Any:
        """Queue one task (inputs of these ``shapes``) and return what its ``run`` returns.

        ``timeout`` (seconds, None: none) is the call's deadline; the time spent
        queued counts against it, and ``run`` gets what is left.
        """
        size = task_size(shapes)
        limit = self.params.max_batch_size
        if size > limit:
            raise ServingStatus(
                StatusCode.INVALID_ARGUMENT,
                f"Task size {size} is larger than maximum input batch size {limit}",
            )
        loop = asyncio.get_running_loop()
        self._ensure_workers()
        assert self._changed is not None
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(key)
            self._order.append(key)
        batches = queue.batches
        if batches[-1].size + size > limit:
            if len(batches) >= self.params.max_enqueued_batches:
                raise ServingStatus(
                    StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; "
                    f"currently {len(batches)} batches enqueued and max_enqueued_batches is "
                    f"{self.params.max_enqueued_batches}",
                )
            batches.append(_Batch())
        now = loop.time()
        task = _Task(
            size=size,
            shapes=shapes,
            run=run,
            deadline=None if timeout is None else now + timeout,
            enqueued=now,
            future=loop.create_future(),
        )
        open_batch = batches[-1]
        if not open_batch.tasks:
            open_batch.start = now
        open_batch.tasks.append(task)
        open_batch.size += size
        async with self._changed:
            self._changed.notify_all()
        return await task.future

    def num_enqueued_tasks(self) -> int:
        """Tasks accepted but not yet taken by a worker (TF's ``NumEnqueuedTasks``)."""
        return sum(len(batch.tasks) for queue in self._queues.values() for batch in queue.batches)

    async def wait_enqueued(self, count: int) -> None:
        """Wait until at least ``count`` tasks are queued (for tests; bound it with a timeout)."""
        self._ensure_workers()
        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(lambda: self.num_enqueued_tasks() >= count)

    # -- lifecycle ---------------------------------------------------------

    def _ensure_workers(self) -> None:
        if self._workers:
            return
        self._changed = asyncio.Condition()
        self._workers = [
            asyncio.create_task(self._work(), name=f"{self.params.thread_pool_name}-{i}")
            for i in range(self.params.num_batch_threads)
        ]

    async def close(self) -> None:
        """Stop the workers; queued tasks fail with UNAVAILABLE. Idempotent.

        A later task starts fresh workers (a server that stops and starts again).
        """
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for queue in self._queues.values():
            for batch in queue.batches:
                for task in batch.tasks:
                    if not task.future.done():
                        task.future.set_exception(
                            ServingStatus(StatusCode.UNAVAILABLE, "the server is shutting down")
                        )
        self._queues.clear()
        self._order.clear()

    # -- workers -----------------------------------------------------------

    def _take(self, now: float) -> tuple[_Batch | None, float | None]:
        """A schedulable batch (round-robin over queues), else when the next one may be."""
        timeout = self.params.batch_timeout_micros / 1e6
        wake: float | None = None
        for _ in range(len(self._order)):
            key = self._order[0]
            self._order.rotate(-1)
            batches = self._queues[key].batches
            if len(batches) == 1:
                open_batch = batches[0]
                if not open_batch.tasks:
                    continue
                ready_at = open_batch.start + timeout
                if open_batch.size >= self.params.max_batch_size or now >= ready_at:
                    batches.append(_Batch())
                else:
                    wake = ready_at if wake is None else min(wake, ready_at)
                    continue
            return batches.popleft(), None
        return None, wake

    async def _work(self) -> None:
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        while True:
            async with self._changed:
                while True:
                    batch, wake = self._take(loop.time())
                    if batch is not None:
                        break
                    if wake is None:
                        await self._changed.wait()
                    else:
                        # Woken by a new task or when the open batch's timeout is due.
                        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                            await asyncio.wait_for(
                                self._changed.wait(), max(0.0, wake - loop.time())
                            )
            await self._process(batch)

    async def _process(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        tasks = batch.tasks
        for task in tasks:
            waited = (now - task.enqueued) * 1e6
            self._keep(self.stats.queuing_micros, waited)
            if self.metrics is not None:
                self.metrics.queuing_latency(self.params.thread_pool_name, waited)
        padded = self.params.padded_size(batch.size)
        self.stats.batches += 1
        self._keep(self.stats.batch_sizes, padded)
        if all(task.deadline is not None and task.deadline <= now for task in tasks):
            self._fail(
                tasks,
                ServingStatus(
                    StatusCode.RESOURCE_EXHAUSTED,
                    "Run() timeout exceeded while waiting in batching queue",
                ),
            )
            return
        mismatch = None if self.params.pad_variable_length_inputs else _shape_mismatch(tasks)
        if mismatch is not None:
            self._fail(
                tasks,
                ServingStatus(
                    StatusCode.FAILED_PRECONDITION,
                    f"Tensors with name '{mismatch}' from different tasks have different shapes "
                    "and padding is turned off. Set pad_variable_length_inputs to true, or "
                    "ensure that all tensors with the same name have equal dimensions starting "
                    "with the first dim.",
                ),
            )
            return
        if self.metrics is not None:
            self.metrics.counter(_WRAPPED_RUNS, ())
        if self.device is not None:
            await self.device.run(padded)
        live = [task for task in tasks if not task.future.done()]
        results = await asyncio.gather(
            *(task.run(_remaining(task, loop.time())) for task in live), return_exceptions=True
        )
        for task, result in zip(live, results, strict=True):
            if task.future.done():
                continue
            if isinstance(result, BaseException):
                task.future.set_exception(result)
            else:
                task.future.set_result(result)

    @staticmethod
    def _fail(tasks: Sequence[_Task], status: ServingStatus) -> None:
        for task in tasks:
            if not task.future.done():
                task.future.set_exception(status)

    @staticmethod
    def _keep(values: list[Any], value: Any) -> None:
        values.append(value)
        if len(values) > _KEEP:
            del values[: len(values) - _KEEP]


def _remaining(task: _Task, now: float) -> float | None:
    return None if task.deadline is None else max(0.0, task.deadline - now)


def _shape_mismatch(tasks: Sequence[_Task]) -> str | None:
    """The first input name whose non-batch dimensions differ between tasks, if any."""
    first = tasks[0].shapes
    for task in itertools.islice(tasks, 1, None):
        for name, shape in task.shapes.items():
            reference = first.get(name)
            if reference is not None and tuple(reference[1:]) != tuple(shape[1:]):
                return name
    return None
