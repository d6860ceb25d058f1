"""Streaming many predicts with bounded memory: what ``Client.predict_stream`` runs.

:func:`stream_calls` takes items from a plain or async iterable and runs
``call(item)`` for each in a pool of at most ``max_in_flight`` worker tasks (one
started per item read while there are fewer), never reading more than
``max_in_flight`` items ahead of what the consumer took, and yields the outcomes
in input order or as they complete. Workers rather than a task per item: a
task's creation and its done callback cost more than the batched call itself.
It knows nothing of the client; concurrent calls meet in the client's batcher.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Coroutine, Iterable
from typing import Any, Generic, Literal, Protocol, TypeVar

__all__ = ["OnError", "stream_calls"]

T = TypeVar("T")
R = TypeVar("R")

#: What a failed item does to a stream: ``"raise"`` ends it with the item's error
#: (after cancelling every call still running), ``"return"`` yields the error in
#: the item's place and goes on.
OnError = Literal["raise", "return"]

_TASK_NAME = "tfs_async.stream"
_END = object()  # the source is exhausted


class _SourceFailed:
    """The source raised: the stream raises it when the consumer gets there."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Outcome(Generic[R]):
    """One item's place in the stream: pending until its call ends."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: R | None = None
        self.error: BaseException | None = None


class Joined(Protocol[R]):
    """A call already queued (e.g. in the batcher): its answer's future, and a way out."""

    @property
    def future(self) -> asyncio.Future[R]: ...

    def leave(self) -> asyncio.Task[None] | None: ...


#: Queues ``item``'s call at once and returns it, or None when it must run as a coroutine.
Join = Callable[[T], "Joined[R] | None"]


def check_stream_args(max_in_flight: int, on_error: str) -> None:
    """Refuse bad settings before anything starts."""
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
        raise TypeError(f"max_in_flight must be an int, got {max_in_flight!r}")
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")


def stream_calls(
    call: Callable[[T], Coroutine[Any, Any, R]],
    source: Iterable[T | Exception] | AsyncIterable[T | Exception],
    *,
    ordered: bool = True,
    max_in_flight: int = 256,
    on_error: OnError = "raise",
    join: Join[T, R] | None = None,
) -> AsyncGenerator[R | Exception, None]:
    """Yield the outcome of ``call(item)`` for every item of ``source``.

    An item that is an :class:`Exception` is not called: it is its own outcome
    (so rows that could not even be read keep their place). With
    ``on_error="return"`` a failed item yields its exception; with ``"raise"``
    the stream raises it. An error raised by ``source`` itself ends the stream
    once the items before it have been yielded. Leaving the loop early, or
    cancelling the consumer, cancels every call still running (at the latest
    when the generator is closed: ``contextlib.aclosing`` closes it at once).

    ``join``, if given, queues an item's call at once (the client's batcher) and
    returns it, or None for an item that must run as ``call(item)``. An ordered
    stream of a plain iterable then needs no task per item: the consumer itself
    reads the items and queues them, and awaits the answers in order.
    """
    check_stream_args(max_in_flight, on_error)
    if join is not None and ordered and not isinstance(source, AsyncIterable):
        return _joined(call, join, source, max_in_flight, on_error)
    return _pooled(call, source, ordered, max_in_flight, on_error)


async def _joined(  # noqa: C901 -- one loop: read ahead, order, cancel, on_error
    call: Callable[[T], Coroutine[Any, Any, R]],
    join: Join[T, R],
    source: Iterable[T | Exception],
    max_in_flight: int,
    on_error: OnError,
) -> AsyncGenerator[R | Exception, None]:
    """The ordered stream of a plain iterable whose calls can be queued at once."""
    loop = asyncio.get_running_loop()
    items = iter(source)
    # Every item read and not yet taken, in input order: its queued call, the task
    # running its call, the item itself if it is an exception, or the source's error.
    window: deque[Joined[R] | asyncio.Task[R] | Exception | _SourceFailed] = deque()
    finished = False
    try:
        while True:
            # Read ahead up to max_in_flight items; they all queue in this turn.
            while not finished and len(window) < max_in_flight:
                try:
                    item = next(items)
                except StopIteration:
                    finished = True
                    break
                except BaseException as raised:
                    window.append(_SourceFailed(raised))
                    finished = True
                    break
                if isinstance(item, Exception):
                    window.append(item)
                    continue
                joined = join(item)
                if joined is None:
                    window.append(loop.create_task(call(item), name=_TASK_NAME))
                else:
                    window.append(joined)
            if not window:
                return
            head = window[0]
            if isinstance(head, _SourceFailed):
                raise head.error
            if isinstance(head, Exception):
                window.popleft()
                failure: BaseException | None = head
            else:
                future = head if isinstance(head, asyncio.Task) else head.future
                if not future.done():
                    # Not cancelled with the consumer: the finally below settles it.
                    await asyncio.wait((future,))
                window.popleft()
                if future.cancelled():
                    raise asyncio.CancelledError()
                failure = future.exception()
                if failure is None:
                    yield future.result()
                    continue
            assert failure is not None
            if on_error == "raise" or not isinstance(failure, Exception):
                raise failure
            yield failure
    finally:
        # Leaving early: give up every call still queued or running, and wait for
        # the requests and tasks this cancels, so that nothing outlives the stream.
        ending: list[asyncio.Future[Any]] = []
        for entry in window:
            if isinstance(entry, asyncio.Task):
                entry.cancel()
                ending.append(entry)
            elif not isinstance(entry, (Exception, _SourceFailed)):
                if entry.future.done():
                    if not entry.future.cancelled():
                        entry.future.exception()  # retrieved: no "never retrieved" log
                    continue
                request = entry.leave()
                if request is not None:
                    ending.append(request)
        if ending:
            await asyncio.gather(*ending, return_exceptions=True)


async def _pooled(  # noqa: C901 -- one loop: read ahead, order, cancel, on_error
    call: Callable[[T], Coroutine[Any, Any, R]],
    source: Iterable[T | Exception] | AsyncIterable[T | Exception],
    ordered: bool,
    max_in_flight: int,
    on_error: OnError,
) -> AsyncGenerator[R | Exception, None]:
    """Any stream: a pool of worker tasks runs the calls."""
    loop = asyncio.get_running_loop()
    # A place is taken before an item is read and given back when the consumer takes
    # its outcome: never more than max_in_flight items read ahead. (Not an
    # asyncio.Semaphore: its release scans every waiter, once per item.)
    free = max_in_flight
    parked: deque[asyncio.Future[None]] = deque()
    reading = asyncio.Lock()  # an async iterator is read by one worker at a time
    # Ordered: every item read, in input order. Unordered: the outcomes that ended.
    window: deque[_Outcome[R] | _SourceFailed] = deque()
    wake = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()  # the workers and the one starting them
    workers = 0
    finished = False  # the source is exhausted (or failed)
    busy = 0  # items read whose outcome is not yet in the window (unordered)
    iterator: Any = aiter(source) if isinstance(source, AsyncIterable) else iter(source)
    is_async = isinstance(source, AsyncIterable)

    async def wait_for_place() -> None:
        nonlocal free
        while not free:
            place: asyncio.Future[None] = loop.create_future()
            parked.append(place)
            await place
        free -= 1

    def give_place() -> None:
        nonlocal free
        free += 1
        while parked:
            place = parked.popleft()
            if not place.done():
                place.set_result(None)
                return

    def read() -> Any:
        """The next item of a plain iterable, or ``_END``; its error: a ``_SourceFailed``."""
        nonlocal finished
        if finished:
            return _END
        try:
            return next(iterator)
        except StopIteration:
            finished = True
            return _END
        except BaseException as error:
            finished = True
            return _SourceFailed(error)

    async def read_async() -> Any:
        """The same for an async iterable, read by one worker at a time."""
        nonlocal finished
        async with reading:
            if finished:
                return _END
            try:
                return await anext(iterator)
            except StopAsyncIteration:
                finished = True
                return _END
            except asyncio.CancelledError:
                raise
            except BaseException as error:
                finished = True
                return _SourceFailed(error)

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coro, name=_TASK_NAME)
        tasks.add(task)
        task.add_done_callback(ended)

    def ended(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        wake.set()

    async def next_item() -> tuple[Any, _Outcome[R]] | None:
        """Take a place and read the next item, its outcome placed; None: no more."""
        nonlocal busy, free
        if free:  # no await on the way when a place is free and the source is plain
            free -= 1
        else:
            await wait_for_place()
        item = await read_async() if is_async else read()
        if item is _END:
            give_place()
            return None
        if isinstance(item, _SourceFailed):
            window.append(item)
            wake.set()
            return None
        outcome: _Outcome[R] = _Outcome()
        if ordered:
            window.append(outcome)
        else:
            busy += 1
        return item, outcome

    async def work(item: Any, outcome: _Outcome[R]) -> None:
        """Run the item's call and record its outcome; then the next item, until none."""
        nonlocal busy
        while True:
            if isinstance(item, Exception):
                outcome.error = item
            else:
                try:
                    outcome.value = await call(item)
                except BaseException as error:
                    outcome.error = error
            outcome.done = True
            if not ordered:
                busy -= 1
                window.append(outcome)
            wake.set()
            if isinstance(outcome.error, asyncio.CancelledError):
                raise outcome.error
            following = await next_item()
            if following is None:
                return
            item, outcome = following

    async def fill() -> None:
        """Start a worker per item read, up to max_in_flight workers. The items of a
        plain iterable are read in one turn of the loop, so their calls start (and
        merge) together."""
        nonlocal workers
        while workers < max_in_flight:
            first = await next_item()
            if first is None:
                return
            workers += 1
            spawn(work(*first))

    spawn(fill())
    try:
        while True:
            head = window[0] if window else None
            if head is None or (isinstance(head, _Outcome) and not head.done):
                # Nothing to yield yet: the stream is over once the source is, and no
                # worker is left to add an outcome.
                if head is None and finished and not tasks and (ordered or not busy):
                    break
                wake.clear()
                await wake.wait()
                continue
            if isinstance(head, _SourceFailed):
                raise head.error
            window.popleft()
            give_place()
            error = head.error
            if error is None:
                yield head.value  # type: ignore[misc]
                continue
            if on_error == "raise" or not isinstance(error, Exception):
                raise error
            yield error
    finally:
        # Leaving early (break, an error, cancellation): stop every worker, and wait
        # for them so that no call outlives the stream.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
