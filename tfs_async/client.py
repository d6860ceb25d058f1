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

import asyncio
import functools
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

from tfs_async.batching import Batcher, Batching, BatchingStats, batchable_signature
from tfs_async.batching.stream import OnError, check_stream_args, stream_calls
from tfs_async.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidInputError,
    NotFoundError,
    ResourceExhaustedError,
    StatusCode,
    TFServingError,
    UnavailableError,
)
from tfs_async.metadata_cache import MetadataCache
from tfs_async.observe import CallInfo, Observer, observe_attempts, observe_call, split_target
from tfs_async.options import (
    DEFAULT_TIMEOUT,
    ClientOptions,
    MetadataLike,
    normalize_metadata,
)
from tfs_async.retry import RetryBudget, RetryPolicy, backoff_delay, call_with_retries
from tfs_async.transport.base import REST_FORMATS, CallOptions, RestFormat, Transport
from tfs_async.transport.target import transport_for as transport_for  # the CLI imports it here
from tfs_async.transport.tls import TLSConfig
from tfs_async.types import (
    DEFAULT_SIGNATURE,
    ClassifyRequest,
    ClassifyResult,
    Features,
    InferenceTask,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    PredictRequest,
    PredictResult,
    RegressRequest,
    RegressResult,
    SignatureSpec,
    VersionState,
)
from tfs_async.validation import (
    check_output_filter,
    has_untyped_inputs,
    name_single_input,
    prepare_inputs,
)

if TYPE_CHECKING:
    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig

__all__ = ["Client"]

T = TypeVar("T")


class _Shared:
    """What a client and its ``with_options`` copies share."""

    def __init__(self, transport: Transport, policy: RetryPolicy, metadata_ttl: float) -> None:
        self.transport = transport
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_min_retries)
        self.metadata = MetadataCache(metadata_ttl)
        # Models whose server answered Predict but has no metadata route: when.
        self.no_metadata: dict[tuple[str, int | None, str | None], float] = {}
        self.closed = False
        self.observer: Observer | None = None
        #: the server's (host, port), for observers
        self.peer: tuple[str | None, int | None] = (None, None)
        self.batcher = Batcher()
        self._send_tokens: dict[tuple[Any, ...], object] = {}
        self._routes: dict[tuple[Any, ...], object] = {}

    def lacks_metadata(self, model: ModelSpec) -> bool:
        since = self.no_metadata.get(MetadataCache.key(model))
        return since is not None and time.monotonic() - since < self.metadata.ttl

    def remember_no_metadata(self, model: ModelSpec) -> None:
        if len(self.no_metadata) >= 1024:
            self.no_metadata.clear()
        self.no_metadata[MetadataCache.key(model)] = time.monotonic()

    def route(self, spec: ModelSpec, outputs: tuple[str, ...], send_options: object) -> object:
        """One object per model spec, output filter and send options (cheap to hash)."""
        key = (spec.name, spec.version, spec.label, spec.signature, outputs, send_options)
        token = self._routes.get(key)
        if token is None:
            token = self._routes[key] = object()
        return token

    def send_token(self, options: ClientOptions, rest_format: RestFormat | None) -> object:
        """One object per distinct set of options that shape a request (cheap to hash).

        Calls of clients whose tokens differ (other call metadata, say) never merge.
        """
        key = (
            options.metadata,
            options.compress,
            options.max_retries,
            options.retry,
            options.wait_for_ready,
            rest_format,
        )
        return self._send_tokens.setdefault(key, object())


_MAX_VERSION = 2**63 - 1
# wait_until_available: its polls back off from poll_interval up to this many seconds.
_MAX_POLL_INTERVAL = 1.0


@functools.lru_cache(maxsize=1024)  # specs are frozen: one per distinct call target
def _model(
    name: str, version: int | None, label: str | None, signature: str | None = None
) -> ModelSpec:
    try:
        spec = ModelSpec(name, version=version, label=label, signature=signature)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    # gRPC cannot carry it and REST would not route it: refuse it the same way for both.
    if spec.version is not None and not 0 <= spec.version <= _MAX_VERSION:
        raise InvalidInputError(
            f"version {spec.version} is out of range: TF Serving versions are int64 >= 0",
            expected=f"0 <= version <= {_MAX_VERSION}",
            model=ModelSpec(name),
        )
    return spec


def _rest_format(value: object) -> RestFormat | None:
    if value is None:
        return None
    for known in REST_FORMATS:
        if value == known:
            return known
    raise ValueError(f"rest_format must be one of {REST_FORMATS} or None, got {value!r}")


def _examples(examples: Features | Sequence[Features]) -> Sequence[Features]:
    return [examples] if isinstance(examples, Mapping) else examples


class Client:
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
        http_transport: ``"aiohttp"`` (default) or ``"lean"`` for ``http(s)://`` targets
            (see :mod:`tfs_async.transport.http_lean`).

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
        http_transport: str = "aiohttp",
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
        self._shared = _Shared(transport, options.retry, metadata_ttl)
        self._options = options
        self._rest_format = _rest_format(rest_format)
        if observer is not None:
            self._shared.observer = transport.observer = observer
            self._shared.batcher.observer = observer
            target = getattr(transport, "target", getattr(transport, "base_url", ""))
            self._shared.peer = split_target(target)
        self._send_options = self._shared.send_token(options, self._rest_format)

    @classmethod
    def _clone(
        cls, shared: _Shared, options: ClientOptions, rest_format: RestFormat | None
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
            rest_format = _rest_format(overrides.pop("rest_format"))
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
        ``result.model`` is the model spec the server used.

        Over REST the metadata is used where the server has it; a server without
        TF Serving's metadata route (KServe v1 and the like) still answers: the
        outputs are then named and typed from the JSON
        (:func:`~tfs_async.codec.json.decode_predict_body`).
        """
        spec = _model(model, version, label, signature)
        options = self._options
        shared = self._shared
        transport = shared.transport
        time_left = options.timeout if timeout is None else timeout
        single = not isinstance(inputs, Mapping)
        validate = options.validate
        # The input rule (README, "Inputs"): numbers without a dtype of their own take
        # the signature's. A wire with dtypes needs them converted here; over REST's
        # JSON the server does it, so no metadata is fetched for it.
        convert = validate or (
            not transport.server_types_inputs
            and (single or options.cast or has_untyped_inputs(inputs))
        )
        signature_name = signature or DEFAULT_SIGNATURE
        signature_info: SignatureSpec | None = None
        metadata = shared.metadata.peek(spec)
        without_metadata = False
        if metadata is None:
            needed = single or convert
            # Otherwise only the answer's decoding would use it (a single output's name,
            # dtypes): fetched if the transport wants it and the server has it.
            if needed or (transport.wants_signature_info and not shared.lacks_metadata(spec)):
                started = time.monotonic()
                try:
                    metadata = await self._cached_metadata(spec, time_left)
                except TFServingError as error:
                    if needed or isinstance(
                        error, (UnavailableError, DeadlineExceededError, ResourceExhaustedError)
                    ):
                        # Needed, or the server itself is out of reach: Predict would be too.
                        raise
                    # A server without TF Serving's metadata route (KServe v1, gateways
                    # exposing only :predict): the answer names and types the outputs.
                    without_metadata = True
                if time_left is not None:
                    # One deadline for the whole call, the metadata fetch included.
                    time_left = max(time_left - (time.monotonic() - started), 1e-3)
        if metadata is not None:
            signature_info = metadata.signatures.get(signature_name)
            if signature_info is None:
                # What gRPC Predict answers (REST would say INVALID_ARGUMENT): one error
                # class whatever the protocol.
                raise FailedPreconditionError(
                    f'Serving signature key "{signature_name}" not found.',
                    http_status=transport.http_status_for(StatusCode.FAILED_PRECONDITION),
                    model=spec,
                )
        named: Mapping[str, Any] = inputs
        if single:
            assert signature_info is not None
            named = name_single_input(inputs, signature_info, spec)
        if signature_info is not None and (convert or options.cast):
            named = prepare_inputs(
                named, signature_info, spec, cast=options.cast, validate=validate
            )
        if output_filter and (validate or not transport.sends_output_filter):
            # Repeated names always; unknown names when the signature is known (else
            # the transport checks them against the answer, as the server would).
            check_output_filter(output_filter, signature_info, spec)
        outputs = tuple(output_filter or ())
        batching = options.batching
        config = batching.for_model(spec.name) if batching is not None else None
        if config is not None and (signature_info is None or batchable_signature(signature_info)):
            self._check_open()

            def send(merged: Mapping[str, Any], left: float | None) -> Awaitable[PredictResult]:
                batch = PredictRequest(spec, merged, outputs, signature_info)
                return self._attempts(lambda o: transport.predict(batch, o), spec, left)

            # Calls merge only when everything that shapes their request is equal.
            route = self._shared.route(spec, outputs, self._send_options)
            return await self._shared.batcher.submit(route, config, named, send, time_left, spec)
        request = PredictRequest(spec, named, outputs, signature_info)
        result = await self._call(lambda o: transport.predict(request, o), spec, time_left)
        if without_metadata:
            # The model answered, so the metadata route is what is missing: do not ask
            # again for a while.
            shared.remember_no_metadata(spec)
        return result

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
        spec = _model(model, version, label, signature)
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

        return stream_calls(
            call, source, ordered=ordered, max_in_flight=max_in_flight, on_error=on_error
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

    async def classify(
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
        """Classify examples given as plain dicts of features (tf.Examples are built for you)."""
        spec = _model(model, version, label, signature)
        request = ClassifyRequest(spec, _examples(examples), context)
        transport = self._shared.transport
        return await self._call(lambda o: transport.classify(request, o), spec, timeout, "Classify")

    async def regress(
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
        """Regress examples given as plain dicts of features (tf.Examples are built for you)."""
        spec = _model(model, version, label, signature)
        request = RegressRequest(spec, _examples(examples), context)
        transport = self._shared.transport
        return await self._call(lambda o: transport.regress(request, o), spec, timeout, "Regress")

    async def multi_inference(
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
        """Run several classify/regress signatures over the same examples (gRPC only).

        ``tasks`` maps a signature name to its method, ``"classify"`` or ``"regress"``;
        results come back in that order.
        """
        spec = _model(model, version, label)
        if not tasks:
            raise InvalidInputError("multi_inference needs at least one task", model=spec)
        request = MultiInferenceRequest(
            [InferenceTask(spec.with_signature(sig), method) for sig, method in tasks.items()],
            _examples(examples),
            context,
        )
        transport = self._shared.transport
        return await self._call(
            lambda o: transport.multi_inference(request, o), spec, timeout, "MultiInference"
        )

    async def metadata(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> ModelMetadata:
        """The model's signatures (names, dtypes, shapes, method); refreshes the cache."""
        spec = _model(model, version, label)
        transport = self._shared.transport
        cache = self._shared.metadata
        cache.invalidate(spec)
        return await cache.get(
            spec,
            lambda: self._call(
                lambda o: transport.get_model_metadata(spec, o), spec, timeout, "GetModelMetadata"
            ),
        )

    async def status(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> list[ModelVersionStatus]:
        """The state of the model's versions, newest first.

        TF Serving ignores a label here and lists every version.
        """
        spec = _model(model, version, label)
        transport = self._shared.transport
        return await self._call(
            lambda o: transport.get_model_status(spec, o), spec, timeout, "GetModelStatus"
        )

    async def wait_until_available(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> ModelVersionStatus:
        """Wait until the model (the version, the label, or any version) can serve.

        Polls the model's status (for a label: its metadata) with backoff from
        ``poll_interval`` up to 1 s (:func:`~tfs_async.retry.backoff_delay`, jitter
        up to ``poll_interval``), while the server is unreachable or the model
        unknown or loading. Returns the available version's status; raises
        DeadlineExceededError after ``timeout`` seconds, with the last answer as cause.
        """
        spec = _model(model, version, label)
        deadline = time.monotonic() + timeout
        polls = 0
        last: BaseException | None = None
        quick = self.with_options(max_retries=0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceededError(
                    f"not available within {timeout} s"
                    + (f"; last answer: {last}" if last is not None else ""),
                    model=spec,
                ) from last
            try:
                found = await quick._available_version(spec, left)
            except (NotFoundError, UnavailableError, InvalidArgumentError) as error:
                if isinstance(error, InvalidInputError):
                    raise
                # Unknown label (INVALID_ARGUMENT) may be set by a coming reload.
                last, found = error, None
            except DeadlineExceededError as error:
                last, found = error, None
            if found is not None:
                return found
            polls += 1
            pause = backoff_delay(
                polls, initial=poll_interval, maximum=_MAX_POLL_INTERVAL, jitter=poll_interval
            )
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))

    async def _available_version(
        self, spec: ModelSpec, timeout: float
    ) -> ModelVersionStatus | None:
        wanted = spec.version
        if spec.label is not None:
            # Status ignores labels: resolve the label through the metadata.
            metadata = await self.metadata(spec.name, label=spec.label, timeout=timeout)
            wanted = metadata.model.version
        statuses = await self.status(spec.name, version=spec.version, timeout=timeout)
        for status in statuses:
            if status.state == VersionState.AVAILABLE and wanted in (None, status.version):
                return status
        return None

    async def reload_config(
        self, config: str | ModelServerConfig, *, timeout: float | None = None
    ) -> None:
        """Replace the server's model config (gRPC only): text format or a ModelServerConfig.

        The cached metadata is dropped afterwards (versions and labels may have moved).
        """
        if isinstance(config, str):
            from tfs_async.config import parse_model_server_config

            config = parse_model_server_config(config)
        transport = self._shared.transport
        proto = config
        try:
            await self._call(
                lambda o: transport.reload_config(proto, o),
                None,
                timeout,
                "HandleReloadConfigRequest",
            )
        finally:
            self._shared.metadata.invalidate()
