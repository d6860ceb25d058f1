"""``SyncClient``: the :class:`~tfs_async.client.Client` API without ``await``.

For scripts, notebooks, WSGI apps and the workers of Beam, Spark or Ray, which
call into user code synchronously. Each ``SyncClient`` runs one event loop in a
background thread and runs an async :class:`~tfs_async.client.Client` there:
every call is submitted to that loop and the calling thread waits for its
answer. Many threads may call one ``SyncClient`` at once; they share its
connections, caches, retry budget and batchers. Errors are the client's own
(``NotFoundError``, ``DeadlineExceededError``, ...), raised unchanged. It also
works from a thread that already runs an event loop (a Jupyter cell): the
call blocks that thread, never re-enters its loop, and needs no ``nest_asyncio``.

>>> import numpy as np
>>> from tfs_async import NotFoundError, SyncClient
>>> from tfs_async.testing import ModelServerProcess
>>> models = ["tfs_async.bench.models:benchmark_models"]  # "bench": y = x
>>> with ModelServerProcess(python_models=models) as server:
...     with SyncClient(f"grpc://{server.grpc_target}", timeout=10) as client:
...         print(client.predict("bench", {"x": np.array([1.0, 3.0], np.float32)})["y"])
...         try:
...             client.predict("missing", {"x": np.array([1.0], np.float32)})
...         except NotFoundError as error:
...             print(type(error).__name__, error.model.name)
[1. 3.]
NotFoundError missing
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from tfs_async.client import Client
from tfs_async.types import (
    ClassifyResult,
    Features,
    ModelMetadata,
    ModelVersionStatus,
    MultiInferenceResult,
    PredictResult,
    RegressResult,
)

if TYPE_CHECKING:
    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig
    from tfs_async.batching import BatchingStats, OnError
    from tfs_async.options import ClientOptions
    from tfs_async.transport.base import Transport

__all__ = ["SyncClient"]

P = ParamSpec("P")
T = TypeVar("T")

# Seconds close() waits for the loop thread to finish closing the connections.
_CLOSE_TIMEOUT = 60.0


class _LoopThread:
    """An event loop running in a daemon thread, with thread-safe submission and shutdown.

    ``call`` submits a coroutine function and blocks the caller until it finishes.
    ``close`` stops the loop: the registered cleanups run on it first, then any
    task still pending is cancelled, async generators and the default executor are
    shut down and the loop is closed, all on the loop's own thread.
    """

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._closed = False
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self._cleanup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def add_cleanup(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        self._cleanups.append(cleanup)

    def _main(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            for cleanup in self._cleanups:
                try:
                    loop.run_until_complete(cleanup())
                except BaseException as error:  # reported by close()
                    self._cleanup_error = self._cleanup_error or error
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def call(
        self, function: Callable[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``function(*args, **kwargs)`` on the loop; block until it returns or raises."""
        if self.in_loop_thread():
            raise RuntimeError(
                "a SyncClient was called from its own event loop thread (e.g. from a callback "
                "of its async client); use the async Client there"
            )

        async def invoke() -> T:
            return await function(*args, **kwargs)

        with self._lock:
            # Under the lock: a submission either precedes the stop (and its task is run
            # or cancelled by the shutdown) or sees the closed flag; it can never be lost.
            if self._closed:
                raise RuntimeError("this SyncClient is closed; create a new one")
            future = asyncio.run_coroutine_threadsafe(invoke(), self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._closed:
                raise RuntimeError(
                    "the SyncClient was closed while this call was running"
                ) from None
            raise
        except BaseException:
            # KeyboardInterrupt while waiting: cancel the call on the loop too.
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop after the cleanups; idempotent; waits unless called from the loop."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._loop.call_soon_threadsafe(self._loop.stop)
        if self.in_loop_thread():
            return  # the loop finishes closing once the current callback returns
        self._thread.join(_CLOSE_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"the SyncClient's event loop did not stop in {_CLOSE_TIMEOUT} s")
        error, self._cleanup_error = self._cleanup_error, None
        if error is not None:
            raise error


def _close_unclosed(runner: _LoopThread, description: str) -> None:
    """The finalizer of a SyncClient that was garbage-collected (or alive at exit) unclosed."""
    if runner.closed:
        return
    warnings.warn(
        f"{description} was never closed; call close() or use it as a context manager",
        ResourceWarning,
        stacklevel=2,
    )
    runner.close()


async def _open_client(target: str | Transport, options: Mapping[str, Any]) -> Client:
    # Built on the loop that will run it: transports bind to the running loop.
    return Client(target, **options)


class SyncClient:
    """The :class:`~tfs_async.client.Client` API without ``await`` (thread-safe).

    Args:
        target: as for :class:`~tfs_async.client.Client`: ``grpc://host:8500``,
            ``http://host:8501``, ... or a :class:`~tfs_async.transport.Transport`.
        **options: the keyword options of :class:`~tfs_async.client.Client`
            (``timeout``, ``max_retries``, ``retry``, ``validate``, ``cast``,
            ``metadata``, ``compress``, ``pool_size``, ``tls``, ...).

    Every method blocks until the call finishes and returns what the async
    method returns, or raises its exception unchanged; the client's deadline
    (``timeout``) bounds each call as it does in asyncio. Use it as
    ``with SyncClient(...) as client:`` or call :meth:`close`, which closes the
    connections and stops the background thread. A client that is garbage-collected
    unclosed emits a ResourceWarning and is closed then.
    """

    _runner: _LoopThread
    _client: Client
    _root: SyncClient | None
    _finalizer: weakref.finalize[[_LoopThread, str], SyncClient] | None

    def __init__(self, target: str | Transport, **options: Any) -> None:
        runner = _LoopThread("tfs_async.SyncClient")
        try:
            client = runner.call(_open_client, target, options)
        except BaseException:
            runner.close()
            raise
        runner.add_cleanup(client.close)
        self._runner = runner
        self._client = client
        self._root = None
        description = f"SyncClient({target!r})" if isinstance(target, str) else "SyncClient"
        self._finalizer = weakref.finalize(self, _close_unclosed, runner, description)

    def _copy(self, client: Client) -> SyncClient:
        copy = SyncClient.__new__(SyncClient)
        copy._runner = self._runner
        copy._client = client
        # A copy keeps the original alive: the original's finalizer closes the shared loop.
        copy._root = self if self._root is None else self._root
        copy._finalizer = None
        return copy

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> SyncClient:
        if self.closed:
            raise RuntimeError("this SyncClient is closed; create a new one")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the background thread; idempotent.

        Closing a copy made by :meth:`with_options` closes the original too (they
        share the connections), as with the async client.
        """
        root = self if self._root is None else self._root
        if root._finalizer is not None:
            root._finalizer.detach()
        self._runner.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (on this client or a copy)."""
        return self._runner.closed or self._client.closed

    @property
    def options(self) -> ClientOptions:
        """The defaults every call of this client uses."""
        return self._client.options

    @property
    def transport(self) -> Transport:
        """The transport the async client sends through."""
        return self._client.transport

    @property
    def async_client(self) -> Client:
        """The async client behind this one; it runs on this client's own event loop only."""
        return self._client

    def with_options(self, **overrides: Any) -> SyncClient:
        """A client sharing this one's connections, caches, budget and thread; other defaults."""
        return self._copy(self._client.with_options(**overrides))

    def connect(self, timeout: float | None = None) -> None:
        """Open the connections now instead of on the first call."""
        self._runner.call(self._client.connect, timeout)

    # -- the calls --------------------------------------------------------------------

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any] | Any,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> PredictResult:
        """:meth:`Client.predict <tfs_async.client.Client.predict>`, blocking."""
        return self._runner.call(
            self._client.predict,
            model,
            inputs,
            version=version,
            label=label,
            signature=signature,
            output_filter=output_filter,
            timeout=timeout,
        )

    def classify(
        self,
        model: str,
        examples: Features | Sequence[Features],
        *,
        context: Features | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
    ) -> ClassifyResult:
        """:meth:`Client.classify <tfs_async.client.Client.classify>`, blocking."""
        return self._runner.call(
            self._client.classify,
            model,
            examples,
            context=context,
            version=version,
            label=label,
            signature=signature,
            timeout=timeout,
        )

    def regress(
        self,
        model: str,
        examples: Features | Sequence[Features],
        *,
        context: Features | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
    ) -> RegressResult:
        """:meth:`Client.regress <tfs_async.client.Client.regress>`, blocking."""
        return self._runner.call(
            self._client.regress,
            model,
            examples,
            context=context,
            version=version,
            label=label,
            signature=signature,
            timeout=timeout,
        )

    def multi_inference(
        self,
        model: str,
        examples: Features | Sequence[Features],
        *,
        tasks: Mapping[str, str],
        context: Features | None = None,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> MultiInferenceResult:
        """:meth:`Client.multi_inference <tfs_async.client.Client.multi_inference>`, blocking."""
        return self._runner.call(
            self._client.multi_inference,
            model,
            examples,
            tasks=tasks,
            context=context,
            version=version,
            label=label,
            timeout=timeout,
        )

    def metadata(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> ModelMetadata:
        """:meth:`Client.metadata <tfs_async.client.Client.metadata>`, blocking."""
        return self._runner.call(
            self._client.metadata, model, version=version, label=label, timeout=timeout
        )

    def status(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> list[ModelVersionStatus]:
        """:meth:`Client.status <tfs_async.client.Client.status>`, blocking."""
        return self._runner.call(
            self._client.status, model, version=version, label=label, timeout=timeout
        )

    def wait_until_available(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> ModelVersionStatus:
        """:meth:`Client.wait_until_available <tfs_async.client.Client.wait_until_available>`,
        blocking."""
        return self._runner.call(
            self._client.wait_until_available,
            model,
            version=version,
            label=label,
            timeout=timeout,
            poll_interval=poll_interval,
        )

    def reload_config(
        self, config: str | ModelServerConfig, *, timeout: float | None = None
    ) -> None:
        """:meth:`Client.reload_config <tfs_async.client.Client.reload_config>`, blocking."""
        self._runner.call(self._client.reload_config, config, timeout=timeout)

    @overload
    def predict_many(
        self,
        model: str,
        items: Iterable[Mapping[str, Any] | Any],
        *,
        version: int | None = ...,
        label: str | None = ...,
        signature: str | None = ...,
        output_filter: Sequence[str] | None = ...,
        timeout: float | None = ...,
        max_in_flight: int = ...,
        on_error: Literal["raise"] = ...,
    ) -> list[PredictResult]: ...

    @overload
    def predict_many(
        self,
        model: str,
        items: Iterable[Mapping[str, Any] | Any],
        *,
        version: int | None = ...,
        label: str | None = ...,
        signature: str | None = ...,
        output_filter: Sequence[str] | None = ...,
        timeout: float | None = ...,
        max_in_flight: int = ...,
        on_error: OnError,
    ) -> list[PredictResult | Exception]: ...

    def predict_many(
        self,
        model: str,
        items: Iterable[Mapping[str, Any] | Any],
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
        max_in_flight: int = 256,
        on_error: OnError = "raise",
    ) -> list[PredictResult] | list[PredictResult | Exception]:
        """:meth:`Client.predict_many <tfs_async.client.Client.predict_many>`, blocking.

        The items are predicted concurrently (merged into batched requests when the
        client has ``batching=``); the answers come back in the items' order.
        """
        return self._runner.call(
            self._client.predict_many,
            model,
            items,
            version=version,
            label=label,
            signature=signature,
            output_filter=output_filter,
            timeout=timeout,
            max_in_flight=max_in_flight,
            on_error=on_error,
        )

    def batching_stats(self) -> BatchingStats:
        """:meth:`Client.batching_stats <tfs_async.client.Client.batching_stats>`."""
        return self._client.batching_stats()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SyncClient {self._client.transport!r} {state}>"
