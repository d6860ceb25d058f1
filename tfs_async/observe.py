"""Seeing what the client does: the :class:`Observer` interface and the ``tfs_async`` loggers.

An observer is told about every logical call (:meth:`Observer.call_started`,
:meth:`Observer.call_ended`), every attempt of it (:meth:`Observer.attempt_started`,
:meth:`Observer.attempt_ended`), each retry the client decides on, each retry the
retry budget refuses, each wait for a free pooled connection, and each batch a
request the client's batcher (``batching=``) sends. Give one to the client::

    client = Client("grpc://127.0.0.1:8500", observer=my_observer)

Subclass :class:`Observer` and override the methods you need (the others do
nothing); :class:`Observers` fans the events out to several observers.
:mod:`tfs_async.otel` is an observer producing OpenTelemetry spans and metrics.
Without an observer the client pays one ``is None`` test per call.

Observer methods run inline on the event loop, in the caller's task: keep them
short and never block. An exception raised by an observer propagates to the caller.

Logging
    Everything is logged under the ``tfs_async`` logger, one child per part
    (``tfs_async.retry``, ``tfs_async.batching``, ``tfs_async.transport``...;
    :func:`get_logger` gives them). Retries, budget refusals, batch flushes,
    pool waits, reconnects and requeues are logged at DEBUG; nothing is logged
    per successful call at INFO or above. Log lines name the model, method,
    status code, attempt and delays only: never tensor values, request or
    response bodies, call metadata or headers (they may hold credentials).
    Turn it on with ``logging.getLogger("tfs_async").setLevel(logging.DEBUG)``
    plus a handler.

>>> class Count(Observer):
...     def __init__(self) -> None:
...         self.calls = 0
...     def call_started(self, call: CallInfo) -> None:
...         self.calls += 1
>>> count = Count()
>>> both = Observers([count, Observer()])
>>> both.call_started(CallInfo("Predict", None, "grpc", "127.0.0.1", 8500))
>>> count.calls
1
>>> get_logger("retry").name
'tfs_async.retry'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tfs_async.types import ModelSpec

__all__ = [
    "LOGGER_NAME",
    "AttemptInfo",
    "BatchFlush",
    "CallInfo",
    "Observer",
    "Observers",
    "PoolWait",
    "RetryScheduled",
    "get_logger",
    "observe_attempts",
    "observe_call",
    "split_target",
]

T = TypeVar("T")

#: the root of the SDK's loggers
LOGGER_NAME = "tfs_async"


def get_logger(part: str) -> logging.Logger:
    """The logger of one part of the SDK: ``tfs_async.<part>`` (e.g. ``"retry"``)."""
    return logging.getLogger(f"{LOGGER_NAME}.{part}")


#: TF Serving's gRPC service of each method (the REST API maps onto the same calls).
_SERVICES = {
    "Predict": "tensorflow.serving.PredictionService",
    "Classify": "tensorflow.serving.PredictionService",
    "Regress": "tensorflow.serving.PredictionService",
    "MultiInference": "tensorflow.serving.PredictionService",
    "GetModelMetadata": "tensorflow.serving.PredictionService",
    "GetModelStatus": "tensorflow.serving.ModelService",
    "HandleReloadConfigRequest": "tensorflow.serving.ModelService",
}


@dataclass(eq=False)
class CallInfo:
    """One logical call (all its attempts), as observers see it.

    Attributes:
        method: TF Serving's method name (``"Predict"``, ``"GetModelStatus"``...),
            whichever the protocol.
        model: the model spec the call addresses (``None`` for config reloads).
        protocol: the transport's protocol (``"grpc"``, ``"http"``).
        server_address: host name or address of the target, if known.
        server_port: port of the target, if known.
        started: ``time.monotonic()`` at the start of the call.
        attempts: attempts started so far.
        state: free room for observers to keep per-call state (key it by observer).
    """

    method: str
    model: ModelSpec | None
    protocol: str
    server_address: str | None
    server_port: int | None
    started: float = field(default_factory=time.monotonic)
    attempts: int = 0
    state: dict[object, Any] = field(default_factory=dict)

    @property
    def service(self) -> str:
        """TF Serving's gRPC service holding :attr:`method`."""
        return _SERVICES.get(self.method, "tensorflow.serving.PredictionService")


@dataclass(eq=False)
class AttemptInfo:
    """One attempt (one exchange with the server) of a call.

    Attributes:
        call: the call it belongs to.
        number: 1 for the first attempt, 2 for the first retry...
        timeout: seconds the attempt may take (``None``: no deadline).
        metadata: extra call metadata (gRPC) / headers (HTTP) for this attempt
            only; observers may append pairs (e.g. ``traceparent``), keys in lower case.
        state: free room for observers to keep per-attempt state.
    """

    call: CallInfo
    number: int
    timeout: float | None
    metadata: list[tuple[str, str]] = field(default_factory=list)
    state: dict[object, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryScheduled:
    """The client will retry ``call`` after ``delay`` seconds because of ``error``."""

    call: CallInfo | None
    attempt: int
    delay: float
    error: BaseException


@dataclass(frozen=True)
class PoolWait:
    """A call waited ``seconds`` for a free pooled connection to ``target``.

    ``acquired`` is False when the call's deadline passed first (it then fails
    with :class:`~tfs_async.errors.DeadlineExceededError`).
    """

    protocol: str
    target: str
    seconds: float
    acquired: bool


@dataclass(frozen=True)
class BatchFlush:
    """The client's batcher sent one request (see :class:`tfs_async.Batching`).

    Attributes:
        model: what the batch addresses.
        rows: rows in the batch (dimension 0 of the merged inputs).
        requests: callers merged into it.
        reason: why it was sent now (:data:`tfs_async.batching.FlushReason`):
            ``"idle"`` (nothing of its group in flight), ``"size"`` (max_batch_size
            reached), ``"delay"`` (max_delay passed), ``"close"`` (the client
            closed), ``"isolation"`` (a part re-sent to find a bad row), ``"alone"``
            (a call that cannot be merged).
        queue_delay: seconds its oldest caller waited before it was sent.
    """

    model: ModelSpec
    rows: int
    requests: int
    reason: str
    queue_delay: float


class Observer:
    """Told what the client does; every method does nothing unless overridden."""

    def call_started(self, call: CallInfo) -> None:
        """A logical call begins (before its first attempt and any wait)."""

    def call_ended(self, call: CallInfo, error: BaseException | None) -> None:
        """The call ended: with ``error`` ``None`` it succeeded."""

    def attempt_started(self, attempt: AttemptInfo) -> None:
        """An attempt is about to be sent; ``attempt.metadata`` may be appended to."""

    def attempt_ended(self, attempt: AttemptInfo, error: BaseException | None) -> None:
        """The attempt got its answer (``error`` ``None``) or failed."""

    def retry_scheduled(self, event: RetryScheduled) -> None:
        """A failed attempt will be retried after ``event.delay`` seconds."""

    def budget_exhausted(self, call: CallInfo | None, error: BaseException) -> None:
        """A retry was refused because the retry budget is spent; ``error`` is raised."""

    def pool_wait(self, event: PoolWait) -> None:
        """A call had to wait for a free pooled connection.

        HTTP only: its pool holds ``pool_size`` connections and callers beyond
        wait in turn. gRPC multiplexes calls over its channels and never waits here.
        """

    def batch_flushed(self, event: BatchFlush) -> None:
        """A micro-batcher sent a batch."""


class Observers(Observer):
    """Several observers as one: each event goes to each, in order."""

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

    def call_started(self, call: CallInfo) -> None:
        for observer in self.observers:
            observer.call_started(call)

    def call_ended(self, call: CallInfo, error: BaseException | None) -> None:
        for observer in self.observers:
            observer.call_ended(call, error)

    def attempt_started(self, attempt: AttemptInfo) -> None:
        for observer in self.observers:
            observer.attempt_started(attempt)

    def attempt_ended(self, attempt: AttemptInfo, error: BaseException | None) -> None:
        for observer in self.observers:
            observer.attempt_ended(attempt, error)

    def retry_scheduled(self, event: RetryScheduled) -> None:
        for observer in self.observers:
            observer.retry_scheduled(event)

    def budget_exhausted(self, call: CallInfo | None, error: BaseException) -> None:
        for observer in self.observers:
            observer.budget_exhausted(call, error)

    def pool_wait(self, event: PoolWait) -> None:
        for observer in self.observers:
            observer.pool_wait(event)

    def batch_flushed(self, event: BatchFlush) -> None:
        for observer in self.observers:
            observer.batch_flushed(event)


def split_target(target: str) -> tuple[str | None, int | None]:
    """Host and port of a target string (``grpc://h:1``, ``http://h:1``, ``h:1``, ``dns:///h:1``).

    >>> split_target("http://127.0.0.1:8501"), split_target("dns:///[::1]:8500")
    (('127.0.0.1', 8501), ('::1', 8500))
    >>> split_target("ipv4:10.0.0.1:1,10.0.0.2:1")
    (None, None)
    """
    if target.startswith(("dns:", "ipv4:", "ipv6:", "unix:")):
        if "," in target or target.startswith("unix:"):
            return None, None
        rest = target.split(":", 1)[1].rstrip("/").rsplit("/", 1)[-1]  # dns://authority/host
    else:
        rest = target.split("://", 1)[-1]
    rest = rest.rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return (rest or None), None
    return host.strip("[]") or None, int(port)


def observe_attempts(
    observer: Observer,
    call: CallInfo,
    send: Callable[[float | None, tuple[tuple[str, str], ...]], Awaitable[T]],
    metadata: tuple[tuple[str, str], ...],
) -> Callable[[float | None], Awaitable[T]]:
    """Wrap one attempt (``send(timeout, metadata)``) with the attempt hooks.

    The result is the ``attempt(timeout)`` callable the retry loop runs; metadata
    that observers add in :meth:`Observer.attempt_started` is sent with the attempt.
    """

    async def attempt(timeout: float | None) -> T:
        call.attempts += 1
        info = AttemptInfo(call, call.attempts, timeout)
        observer.attempt_started(info)
        extra = (*metadata, *info.metadata) if info.metadata else metadata
        try:
            result = await send(timeout, extra)
        except BaseException as error:
            observer.attempt_ended(info, error)
            raise
        observer.attempt_ended(info, None)
        return result

    return attempt


async def observe_call(observer: Observer, call: CallInfo, running: Awaitable[T]) -> T:
    """Await the whole call ``running`` between :meth:`Observer.call_started` and ``call_ended``."""
    try:
        observer.call_started(call)
    except BaseException:
        close = getattr(running, "close", None)  # never awaited: do not leave it dangling
        if close is not None:
            close()
        raise
    try:
        result = await running
    except BaseException as error:
        observer.call_ended(call, error)
        raise
    observer.call_ended(call, None)
    return result
