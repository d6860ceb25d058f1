"""The async client: one API over TF Serving's gRPC and REST transports.

Switching ``grpc://`` for ``http://`` changes nothing else in the caller's code:
same inputs, same outputs (numpy arrays with the signature's dtypes), same
exceptions. The client owns options, deadlines, retries, validation and the
metadata cache; the transport below it performs single exchanges.

>>> import asyncio
>>> async def main() -> None:
...     async with Client("grpc://127.0.0.1:8500", timeout=2.0) as client:
...         fast = client.with_options(timeout=0.5, max_retries=0)
...         print(fast.options.timeout, fast.transport is client.transport)
>>> asyncio.run(main())
0.5 True
"""

from __future__ import annotations

import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from tfs_async.batching import Batching, BatchingStats, batchable_signature
from tfs_async.batching.batcher import PredictSend, QueuedCall
from tfs_async.batching.stream import OnError, check_stream_args, stream_calls
from tfs_async.client_calls import ModelServiceCalls
from tfs_async.client_state import SharedState, model_spec, rest_format_option
from tfs_async.errors import (
    FailedPreconditionError,
    NotFoundError,
    StatusCode,
)
from tfs_async.observe import CallInfo, Observer, observe_attempts, observe_call, split_target
from tfs_async.options import (
    DEFAULT_TIMEOUT,
    ClientOptions,
    MetadataLike,
    normalize_metadata,
)
from tfs_async.retry import RetryPolicy, call_with_retries
from tfs_async.transport.base import CallOptions, RestFormat, Transport
from tfs_async.transport.target import transport_for as transport_for  # the CLI imports it here
from tfs_async.transport.tls import TLSConfig
from tfs_async.types import (
    DEFAULT_SIGNATURE,
    ModelMetadata,
    ModelSpec,
    PredictRequest,
    PredictResult,
    SignatureSpec,
)
from tfs_async.validation import (
    check_output_filter,
    has_untyped_inputs,
    name_single_input,
    prepare_inputs,
)

if TYPE_CHECKING:
    pass

__all__ = ["Client"]

T = TypeVar("T")


def _metadata_needed(
    error: NotFoundError, model: ModelSpec, single: bool, validate: bool, cast: bool
) -> NotFoundError:
    """The NOT_FOUND of a metadata fetch a predict needed, saying why it was needed.

    Over REST a 404 also comes from servers that have no metadata route at all
    (KServe's v1 protocol, gateways exposing only ``:predict``): the message says
    so and what the caller can do instead. Other failures are passed on as they are.
    """
    if error.http_status != 404 or not (single or validate or cast):
        return error
    needs = []
    remedies = []
    if validate:
        needs.append("validate the inputs (validate=True)")
        remedies.append("send without validate")
    if cast:
        needs.append("cast the inputs to its dtypes (cast=True)")
        remedies.append("send without cast")
    if single:
        needs.append("name the single unnamed input")
        remedies.append("give the inputs as a dict by name")
    message = (
        f"predict needs the model's metadata to {' and to '.join(needs)}, and the server "
        f"answered 404 for it ({error.message}): the model is not there, or the server has "
        "no TF Serving metadata route (KServe v1, gateways exposing only :predict); "
        f"against such a server {' and '.join(remedies)}"
    )
    failure = NotFoundError(message, http_status=error.http_status, model=error.model or model)
    failure.attempts, failure.previous = error.attempts, error.previous
    failure.retry_after = error.retry_after
    return failure


class Client(ModelServiceCalls):
    """An asyncio client for one TF Serving server (or a load-balanced set).

    Args:
        target: a target string (see :func:`~tfs_async.transport.target.transport_for`)
            or a :class:`Transport`. A transport given here is closed with the client.
        timeout: default seconds per call, all retries included (default 60, so that a
            stalled server cannot hang a caller forever; ``None``: no deadline).
        max_retries: default retries after a failed attempt (see :mod:`tfs_async.retry`).
        retry: which failures are retried and how long to wait between attempts.
        validate: check inputs against the model's metadata (cached) before sending.
        cast: convert inputs to the signature's dtypes where safe (float64 -> float32).
        metadata: call metadata (gRPC) / headers (HTTP) sent with every attempt.
        compress: gzip request bodies (HTTP) / gzip call compression (gRPC).
        pool_size: connections (gRPC channels or HTTP connections) to the server.
        tls: certificates for ``grpcs://`` / ``https://`` targets.
        max_connection_age: gRPC: seconds after which a channel is replaced, so that
            new replicas behind a DNS name get traffic.
        metadata_ttl: seconds a model's metadata stays cached (metadata asked for by
            label or for the latest version: at most 1 s, so it follows a label
            that moves; and it is dropped when the server answers NOT_FOUND).
        wait_for_ready: a call that reaches no server (refused, unreachable, name not
            resolved) waits for one within its deadline and is then sent (default);
            ``False`` fails fast. Per call: ``with_options(wait_for_ready=False)``.
        max_message_size: largest request and response in bytes; larger ones fail
            with MessageTooLargeError, never retried (gRPC default: TF Serving's
            2 GiB - 1; HTTP: no limit).
        rest_format: how REST Predict bodies are written: ``"columns"`` (TF
            Serving's ``inputs``, the default) or ``"rows"`` (``instances``, for
            servers that accept only that, such as KServe's v1 protocol).
        observer: told of every call, attempt, retry, pool wait and batch
            (see :mod:`tfs_async.observe`; :mod:`tfs_async.otel` for OpenTelemetry).
        batching: merge concurrent ``predict`` calls into batched requests
            (:class:`~tfs_async.batching.Batching`, per model with its ``models``);
            callers keep calling :meth:`predict`. ``None`` (default): each call alone.
        http_transport: ``"aiohttp"`` or ``"lean"`` for ``http(s)://`` targets
            (``None``: :data:`~tfs_async.transport.target.DEFAULT_HTTP_TRANSPORT`; see
            README, "Lean HTTP transport").

    Bad targets and options raise ValueError here, before anything is dialled.

    Use it as ``async with Client(...) as client:`` or call :meth:`close`.
    A client belongs to one event loop at a time.
    """

    def __init__(
        self,
        target: str | Transport,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        validate: bool = False,
        cast: bool = False,
        metadata: MetadataLike | None = None,
        compress: bool = False,
        pool_size: int | None = None,
        tls: TLSConfig | None = None,
        max_connection_age: float | None = None,
        metadata_ttl: float = 60.0,
        wait_for_ready: bool = True,
        max_message_size: int | None = None,
        rest_format: RestFormat | None = None,
        observer: Observer | None = None,
        batching: Batching | None = None,
        http_transport: str | None = None,
    ) -> None:
        if not metadata_ttl >= 0:
            raise ValueError(f"metadata_ttl must be >= 0 seconds, got {metadata_ttl!r}")
        options = ClientOptions(
            timeout=timeout,
            max_retries=max_retries,
            retry=retry or RetryPolicy(),
            validate=validate,
            cast=cast,
            metadata=normalize_metadata(metadata),
            compress=compress,
            wait_for_ready=wait_for_ready,
            batching=batching,
        )
        if isinstance(target, Transport):
            transport = target
        else:
            transport = transport_for(
                target,
                pool_size=pool_size,
                tls=tls,
                max_connection_age=max_connection_age,
                max_message_size=max_message_size,
                http_transport=http_transport,
            )
        self._shared = SharedState(transport, options.retry, metadata_ttl)
        self._options = options
        self._rest_format = rest_format_option(rest_format)
        if observer is not None:
            self._shared.observer = transport.observer = observer
            self._shared.batcher.observer = observer
            target = getattr(transport, "target", getattr(transport, "base_url", ""))
            self._shared.peer = split_target(target)
        self._send_options = self._shared.send_token(options, self._rest_format)

    @classmethod
    def _clone(
        cls, shared: SharedState, options: ClientOptions, rest_format: RestFormat | None
    ) -> Client:
        client = cls.__new__(cls)
        client._shared = shared
        client._options = options
        client._rest_format = rest_format
        client._send_options = shared.send_token(options, rest_format)
        return client

    @property
    def transport(self) -> Transport:
        """The transport this client (and its copies) send through."""
        return self._shared.transport

    @property
    def options(self) -> ClientOptions:
        """The defaults every call of this client uses."""
        return self._options

    def with_options(self, **overrides: Any) -> Client:
        """A client sharing this one's transport, caches and budget, with other defaults.

        Takes the :class:`ClientOptions` fields: ``timeout``, ``max_retries``,
        ``retry``, ``validate``, ``cast``, ``metadata``, ``compress``,
        ``wait_for_ready``, ``rest_format`` and ``batching``. Copies batch together
        whenever their calls could go as one request.
        """
        rest_format = self._rest_format
        if "rest_format" in overrides:
            rest_format = rest_format_option(overrides.pop("rest_format"))
        return Client._clone(self._shared, self._options.merged(**overrides), rest_format)

    async def __aenter__(self) -> Client:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client; idempotent. Later calls raise RuntimeError.

        Calls already queued for batching are sent and answered first; then the
        transport and its connections are closed.
        """
        if self._shared.closed:
            return
        self._shared.closed = True
        try:
            await self._shared.batcher.aclose()
        finally:
            await self._shared.transport.aclose()

    def batching_stats(self) -> BatchingStats:
        """The batcher's counters (shared with the ``with_options`` copies), as plain numbers.

        Requests sent, rows, flush reasons, batch sizes, queue delays, isolation
        splits; see :class:`~tfs_async.batching.BatchingStats`.
        """
        return self._shared.batcher.stats()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (on this client or a copy)."""
        return self._shared.closed

    async def connect(self, timeout: float | None = None) -> None:
        """Open the connections now (gRPC channel warm-up) instead of on the first call."""
        self._check_open()
        await self._shared.transport.connect(timeout)

    def _check_open(self) -> None:
        if self._shared.closed:
            raise RuntimeError("this Client is closed; create a new one")

    # -- the calls ---------------------------------------------------------------

    def _call(
        self,
        run: Callable[[CallOptions], Awaitable[T]],
        model: ModelSpec | None,
        timeout: float | None,
        method: str = "Predict",
    ) -> Awaitable[T]:
        self._check_open()
        left = self._options.timeout if timeout is None else timeout
        return self._attempts(run, model, left, method)

    async def _attempts(
        self,
        run: Callable[[CallOptions], Awaitable[T]],
        model: ModelSpec | None,
        timeout: float | None,
        method: str = "Predict",
    ) -> T:
        """``run`` under the retry rules within exactly ``timeout`` seconds (``None``: none)."""
        options = self._options
        metadata, compress, rest_format = options.metadata, options.compress, self._rest_format
        ready = options.wait_for_ready

        def send(
            left: float | None, metadata: tuple[tuple[str, str], ...] = metadata
        ) -> Awaitable[T]:
            return run(
                CallOptions(
                    timeout=left,
                    metadata=metadata,
                    compress=compress,
                    wait_for_ready=ready,
                    rest_format=rest_format,
                )
            )

        # With an observer, each attempt and the whole call are reported (and an
        # observer may add metadata to an attempt, e.g. a trace context).
        observer = self._shared.observer
        call = None
        attempt: Callable[[float | None], Awaitable[T]] = send
        if observer is not None:
            call = CallInfo(method, model, self._shared.transport.protocol, *self._shared.peer)
            attempt = observe_attempts(observer, call, send, metadata)
        running = call_with_retries(
            attempt,
            timeout=timeout,
            max_retries=options.max_retries,
            policy=options.retry,
            budget=self._shared.budget,
            model=model,
            wait_for_ready=ready,
            wait_for_server=self._shared.transport.wait_for_server,
            observer=observer,
            call=call,
        )
        try:
            if observer is None or call is None:
                return await running
            return await observe_call(observer, call, running)
        except NotFoundError:
            if model is not None:
                # A version went away or a label moved: the cached metadata may be stale.
                self._shared.metadata.invalidate(model)
            raise

    async def _cached_metadata(self, model: ModelSpec, timeout: float | None) -> ModelMetadata:
        transport = self._shared.transport

        def fetch() -> Awaitable[ModelMetadata]:
            spec = model.with_signature(None)
            return self._call(
                lambda o: transport.get_model_metadata(spec, o), spec, timeout, "GetModelMetadata"
            )

        return await self._shared.metadata.get(model, fetch)

    async def predict(
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
        """Run the model on ``inputs``; the result maps output names to numpy arrays.

        ``inputs`` is a dict of arrays (anything ``numpy.asarray`` takes), or one
        array for a single-input signature (its name comes from the metadata).
        Plain Python numbers and numpy float64/int64 arrays take the signature's
        dtype over every transport; other arrays keep theirs unless ``cast``
        (:func:`~tfs_async.validation.prepare_inputs`). ``output_filter`` asks for
        some outputs only. ``timeout`` overrides the client's for this call.
        ``result.model`` is the model spec the server used; ``result.output`` is
        the array of a single-output answer, whatever its name.

        The model's metadata is fetched (once, then cached) only when the call
        cannot do without it: ``validate=True``, ``cast=True``, a single unnamed
        input, and over gRPC inputs that need the signature's dtypes. A REST
        predict otherwise is exactly one request, so it works against servers
        without TF Serving's metadata route (KServe v1, gateways exposing only
        ``:predict``). Its outputs are then named and typed from the JSON
        (:func:`~tfs_async.codec.json.decode_predict_body`): an answer's single
        unnamed output is called ``outputs`` (columnar answer) or ``predictions``
        (row answer); decimals become float32, integers int64. Once the model's
        metadata was fetched (:meth:`metadata`, or a call that needed it) it names
        and types them as over gRPC (``y``), however old the cache entry. A 404
        for needed metadata raises NotFoundError saying what needed it.

        >>> import asyncio
        >>> from tfs_async.testing import ModelServer
        >>> from tfs_async.testing.half_plus_two import half_plus_two_model
        >>> async def main() -> None:
        ...     async with ModelServer([half_plus_two_model()]) as server:
        ...         async with Client(server.rest_url, timeout=10) as client:
        ...             fresh = await client.predict("half_plus_two", {"x": [[1.0]]})
        ...             await client.metadata("half_plus_two")  # now cached
        ...             named = await client.predict("half_plus_two", {"x": [[1.0]]})
        ...     print(list(fresh), list(named), fresh.output.tolist(), named.output.dtype)
        >>> asyncio.run(main())
        ['outputs'] ['y'] [[2.5]] float32
        """
        spec = model_spec(model, version, label, signature)
        options = self._options
        shared = self._shared
        transport = shared.transport
        time_left = options.timeout if timeout is None else timeout
        single = type(inputs) is not dict and not isinstance(inputs, Mapping)
        validate, cast = options.validate, options.cast
        # The input rule (README, "Inputs"): numbers without a dtype of their own take
        # the signature's. A wire with dtypes needs them converted here; over REST's
        # JSON the server does it, so no metadata is fetched for it. cast and validate
        # work on the signature whatever the wire.
        convert = (
            validate
            or cast
            or (not transport.server_types_inputs and (single or has_untyped_inputs(inputs)))
        )
        signature_name = signature or DEFAULT_SIGNATURE
        signature_info: SignatureSpec | None = None
        if single or convert:
            metadata = shared.metadata.peek(spec)
            if metadata is None:
                started = time.monotonic()
                try:
                    metadata = await self._cached_metadata(spec, time_left)
                except NotFoundError as error:
                    raise _metadata_needed(error, spec, single, validate, cast) from error
                if time_left is not None:
                    # One deadline for the whole call, the metadata fetch included.
                    time_left = max(time_left - (time.monotonic() - started), 1e-3)
            signature_info = metadata.signatures.get(signature_name)
            if signature_info is None:
                # What gRPC Predict answers (REST says INVALID_ARGUMENT, which the
                # transport reports so too): one error class whatever the protocol.
                raise FailedPreconditionError(
                    f'Serving signature key "{signature_name}" not found.',
                    http_status=transport.http_status_for(StatusCode.FAILED_PRECONDITION),
                    model=spec,
                )
        else:
            # Only the answer's decoding would use it (a single unnamed REST output's
            # name, the declared dtypes): the last one fetched, however old, so that
            # names do not change when it ages; never fetched for that.
            metadata = shared.metadata.last(spec)
            if metadata is not None:
                signature_info = metadata.signatures.get(signature_name)
        named: Mapping[str, Any] = inputs
        if single:
            assert signature_info is not None
            named = name_single_input(inputs, signature_info, spec)
        if signature_info is not None and convert:
            named = prepare_inputs(named, signature_info, spec, cast=cast, validate=validate)
        if output_filter and (validate or not transport.sends_output_filter):
            # Repeated names always; unknown names when the signature is known (else
            # the transport checks them against the answer, as the server would).
            check_output_filter(output_filter, signature_info, spec)
        outputs = tuple(output_filter or ())
        batched = self._batch_plan(spec, outputs, signature_info)
        if batched is not None:
            self._check_open()
            config, route, send = batched
            return await self._shared.batcher.submit(route, config, named, send, time_left, spec)
        request = PredictRequest(spec, named, outputs, signature_info)
        return await self._call(lambda o: transport.predict(request, o), spec, time_left)

    def _batch_plan(
        self, spec: ModelSpec, outputs: tuple[str, ...], signature_info: SignatureSpec | None
    ) -> tuple[Batching, object, PredictSend] | None:
        """How a predict of ``spec`` is batched: its settings, its route (calls merge
        only when everything that shapes their request is equal) and how the batcher
        sends a merged request (one Predict, retries included); None: not batched."""
        batching = self._options.batching
        config = batching.for_model(spec.name) if batching is not None else None
        if config is None or (
            signature_info is not None and not batchable_signature(signature_info)
        ):
            return None
        transport = self._shared.transport

        def send(merged: Mapping[str, Any], left: float | None) -> Awaitable[PredictResult]:
            batch = PredictRequest(spec, merged, outputs, signature_info)
            return self._attempts(lambda o: transport.predict(batch, o), spec, left)

        return config, self._shared.route(spec, outputs, self._send_options), send

    def _join_batch(
        self,
        spec: ModelSpec,
        inputs: Mapping[str, Any] | Any,
        output_filter: Sequence[str] | None,
        timeout: float | None,
    ) -> QueuedCall | None:
        """``predict``'s batched path without a coroutine, for ``predict_stream``.

        The call is queued in the batcher at once when it needs nothing ``predict``
        would await first (no metadata to fetch, no validation or cast, a dict of
        inputs that need no conversion); otherwise None, and the stream runs
        ``predict`` itself. The same request and the same answer either way.
        """
        options = self._options
        transport = self._shared.transport
        outputs = tuple(output_filter or ())
        if (
            options.batching is None
            or options.validate
            or options.cast
            or type(inputs) is not dict
            or (outputs and not transport.sends_output_filter)
            or (not transport.server_types_inputs and has_untyped_inputs(inputs))
            or self._shared.closed  # predict raises it, as the item's outcome
        ):
            return None
        signature_info: SignatureSpec | None = None
        metadata = self._shared.metadata.last(spec)
        if metadata is not None:
            signature_info = metadata.signatures.get(spec.signature or DEFAULT_SIGNATURE)
        batched = self._batch_plan(spec, outputs, signature_info)
        if batched is None:
            return None
        config, route, send = batched
        left = options.timeout if timeout is None else timeout
        return self._shared.batcher.join(route, config, inputs, send, left, spec)

    @overload
    def predict_stream(
        self,
        model: str,
        source: Iterable[Mapping[str, Any] | Any] | AsyncIterable[Mapping[str, Any] | Any],
        *,
        version: int | None = ...,
        label: str | None = ...,
        signature: str | None = ...,
        output_filter: Sequence[str] | None = ...,
        timeout: float | None = ...,
        ordered: bool = ...,
        max_in_flight: int = ...,
        on_error: Literal["raise"] = ...,
    ) -> AsyncGenerator[PredictResult, None]: ...

    @overload
    def predict_stream(
        self,
        model: str,
        source: Iterable[Mapping[str, Any] | Any] | AsyncIterable[Mapping[str, Any] | Any],
        *,
        version: int | None = ...,
        label: str | None = ...,
        signature: str | None = ...,
        output_filter: Sequence[str] | None = ...,
        timeout: float | None = ...,
        ordered: bool = ...,
        max_in_flight: int = ...,
        on_error: OnError,
    ) -> AsyncGenerator[PredictResult | Exception, None]: ...

    def predict_stream(
        self,
        model: str,
        source: Iterable[Mapping[str, Any] | Any] | AsyncIterable[Mapping[str, Any] | Any],
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
        ordered: bool = True,
        max_in_flight: int = 256,
        on_error: OnError = "raise",
    ) -> AsyncGenerator[PredictResult | Exception, None]:
        """Predict every item of ``source``, yielding one result per item.

        ``source`` is a plain or async iterable of :meth:`predict` inputs (one
        call's inputs per item, usually one row). Items are predicted
        concurrently, at most ``max_in_flight`` of them read ahead of what the
        consumer took (memory stays bounded whatever the stream's length), so
        with ``batching`` set they are merged into batched requests. Results come
        in input order (``ordered=True``) or as they complete. ``timeout`` bounds
        each item's call. An item that is an :class:`Exception` is not sent: it
        is that item's outcome.

        ``on_error="raise"`` ends the stream with the first failed item's error
        (in order when ordered); ``"return"`` yields the error in the item's
        place. Leaving the loop or cancelling the consumer cancels every call
        still running once the generator is closed (``contextlib.aclosing``
        closes it at once).

        >>> import asyncio, contextlib
        >>> from tfs_async import ConnectionFailedError
        >>> async def main() -> None:
        ...     target = "grpc://127.0.0.1:8500"  # nothing listens here
        ...     no_server = Client(target, batching=Batching(), wait_for_ready=False)
        ...     async with no_server as client:
        ...         rows = ({"x": [[float(i)]]} for i in range(1_000_000))
        ...         stream = client.predict_stream("m", rows, on_error="return")
        ...         async with contextlib.aclosing(stream) as results:
        ...             async for result in results:
        ...                 # No server here: the item's error is yielded in its place.
        ...                 print(isinstance(result, ConnectionFailedError))
        ...                 break
        >>> asyncio.run(main())
        True
        """
        spec = model_spec(model, version, label, signature)
        check_stream_args(max_in_flight, on_error)
        self._check_open()

        def call(item: Mapping[str, Any] | Any) -> Coroutine[Any, Any, PredictResult]:
            return self.predict(
                spec.name,
                item,
                version=spec.version,
                label=spec.label,
                signature=spec.signature,
                output_filter=output_filter,
                timeout=timeout,
            )

        def join(item: Mapping[str, Any] | Any) -> QueuedCall | None:
            return self._join_batch(spec, item, output_filter, timeout)

        return stream_calls(
            call,
            source,
            ordered=ordered,
            max_in_flight=max_in_flight,
            on_error=on_error,
            join=join,
        )

    @overload
    async def predict_many(
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
    async def predict_many(
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

    async def predict_many(
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
        """Predict every item of a finite collection; the results in input order.

        :meth:`predict_stream` collected into a list (same arguments).
        """
        stream = self.predict_stream(
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
        return [result async for result in stream]
