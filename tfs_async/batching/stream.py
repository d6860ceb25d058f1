"""Streaming many predicts with bounded memory: what ``Client.predict_stream`` runs.

:func:`stream_calls` takes items from a plain or async iterable, starts ``call(item)``
for each as a task, at most ``max_in_flight`` of them ahead of what the consumer
took, and yields their outcomes in input order or as they complete. It knows
nothing of the client; concurrent calls meet in the client's batcher.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Coroutine, Iterable
from typing import Any, Generic, Literal, TypeVar

__all__ = ["OnError", "stream_calls"]

T = TypeVar("T")
R = TypeVar("R")

#: What a failed item does to a stream: ``"raise"`` ends it with the item's error
#: (after cancelling every call still running), ``"return"`` yields the error in
#: the item's place and goes on.
OnError = Literal["raise", "return"]

_TASK_NAME = "tfs_async.stream"


class _SourceFailed(Generic[T]):
    """The source raised: the stream raises it when the consumer gets there."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def check_stream_args(max_in_flight: int, on_error: str) -> None:
    """Refuse bad settings before anything starts."""
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
        raise TypeError(f"max_in_flight must be an int, got {max_in_flight!r}")
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")


async def stream_calls(  # noqa: C901 -- one loop: read ahead, order, cancel, on_error
    call: Callable[[T], Coroutine[Any, Any, R]],
    source: Iterable[T | Exception] | AsyncIterable[T | Exception],
    *,
    ordered: bool = True,
    max_in_flight: int = 256,
    on_error: OnError = "raise",
) -> AsyncGenerator[R | Exception, None]:
    """Yield the outcome of ``call(item)`` for every item of ``source``.

    An item that is an :class:`Exception` is not called: it is its own outcome
    (so rows that could not even be read keep their place). With
    ``on_error="return"`` a failed item yields its exception; with ``"raise"``
    the stream raises it. An error raised by ``source`` itself ends the stream
    once the items before it have been yielded. Leaving the loop early, or
    cancelling the consumer, cancels every call still running (at the latest
    when the generator is closed: ``contextlib.aclosing`` closes it at once).
    """
    check_stream_args(max_in_flight, on_error)
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(max_in_flight)
    running: set[asyncio.Task[R]] = set()
    # ordered: every started item, in input order; unordered: finished items.
    window: deque[asyncio.Task[R] | Exception | _SourceFailed[T]] = deque()
    wake = asyncio.Event()
    finished = False

    def on_done(task: asyncio.Task[R]) -> None:
        running.discard(task)
        if not ordered:
            window.append(task)
        wake.set()

    def start(item: T | Exception) -> None:
        if isinstance(item, Exception):
            window.append(item)
        else:
            task: asyncio.Task[R] = loop.create_task(call(item), name=_TASK_NAME)
            running.add(task)
            task.add_done_callback(on_done)
            if ordered:
                window.append(task)
        wake.set()

    async def produce() -> None:
        nonlocal finished
        try:
            if isinstance(source, AsyncIterable):
                iterator = aiter(source)
                while True:
                    await slots.acquire()
                    try:
                        item = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    start(item)
            else:
                items = iter(source)
                while True:
                    await slots.acquire()
                    try:
                        item = next(items)
                    except StopIteration:
                        break
                    start(item)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            window.append(_SourceFailed(error))
        finally:
            finished = True
            wake.set()

    producer = loop.create_task(produce(), name=f"{_TASK_NAME}.source")
    try:
        while True:
            if not window:
                # Ordered, every started item is in the window (``running`` may still
                # list a finished task whose callbacks have not run yet); unordered, a
                # running item lands in the window when it ends.
                if finished and (ordered or not running):
                    break
                wake.clear()
                await wake.wait()
                continue
            head = window[0]
            if isinstance(head, asyncio.Task):
                if not head.done():
                    await asyncio.wait((head,))
                window.popleft()
                slots.release()
                if head.cancelled():
                    raise asyncio.CancelledError()
                error = head.exception()
                if error is None:
                    yield head.result()
                    continue
            elif isinstance(head, _SourceFailed):
                raise head.error
            else:
                window.popleft()
                slots.release()
                error = head
            if on_error == "raise" or not isinstance(error, Exception):
                raise error
            yield error
    finally:
        # Calls still running, and calls that ended but were never taken (the consumer
        # left early): cancel the ones running, and collect every outcome so that no
        # failure is reported as never retrieved.
        left = {t for t in window if isinstance(t, asyncio.Task)} | set(running)
        producer.cancel()
        for task in left:
            task.cancel()
        await asyncio.gather(producer, *left, return_exceptions=True)
