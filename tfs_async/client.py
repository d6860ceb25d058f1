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
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tfs_async.batching import MicroBatcher
from tfs_async.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidInputError,
    NotFoundError,
    StatusCode,
    UnavailableError,
)
from tfs_async.metadata_cache import MetadataCache
from tfs_async.options import (
    DEFAULT_TIMEOUT,
    ClientOptions,
    MetadataLike,
    normalize_metadata,
)
from tfs_async.retry import RetryBudget, RetryPolicy, backoff_delay, call_with_retries
from tfs_async.transport.base import CallOptions, Transport
from tfs_async.transport.target import transport_for
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
    VersionState,
)
from tfs_async.validation import (
    check_inputs,
    check_output_filter,
    name_single_input,
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
        self.closed = False


_MAX_VERSION = 2**63 - 1
# wait_until_available: its polls back off from poll_interval up to this many seconds.
_MAX_POLL_INTERVAL = 1.0


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
        metadata_ttl: seconds a model's metadata stays cached.
        http_transport: ``"aiohttp"`` (default) or ``"lean"`` for ``http(s)://`` targets
            (see :mod:`tfs_async.transport.http_lean`).

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
        http_transport: str = "aiohttp",
    ) -> None:
        options = ClientOptions(
            timeout=timeout,
            max_retries=max_retries,
            retry=retry or RetryPolicy(),
            validate=validate,
            cast=cast,
            metadata=normalize_metadata(metadata),
            compress=compress,
        )
        if isinstance(target, Transport):
            transport = target
        else:
            transport = transport_for(
                target,
                pool_size=pool_size,
                tls=tls,
                max_connection_age=max_connection_age,
                http_transport=http_transport,
            )
        self._shared = _Shared(transport, options.retry, metadata_ttl)
        self._options = options

    @classmethod
    def _clone(cls, shared: _Shared, options: ClientOptions) -> Client:
        client = cls.__new__(cls)
        client._shared = shared
        client._options = options
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
        ``retry``, ``validate``, ``cast``, ``metadata``, ``compress``.
        """
        return Client._clone(self._shared, self._options.merged(**overrides))

    async def __aenter__(self) -> Client:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the transport and its connections; idempotent. Later calls raise RuntimeError."""
        if self._shared.closed:
            return
        self._shared.closed = True
        await self._shared.transport.aclose()

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

    async def _call(
        self,
        run: Callable[[CallOptions], Awaitable[T]],
        model: ModelSpec | None,
        timeout: float | None,
    ) -> T:
        self._check_open()
        options = self._options
        metadata, compress = options.metadata, options.compress

        def attempt(left: float | None) -> Awaitable[T]:
            return run(CallOptions(timeout=left, metadata=metadata, compress=compress))

        return await call_with_retries(
            attempt,
            timeout=options.timeout if timeout is None else timeout,
            max_retries=options.max_retries,
            policy=options.retry,
            budget=self._shared.budget,
            model=model,
        )

    async def _cached_metadata(self, model: ModelSpec, timeout: float | None) -> ModelMetadata:
        transport = self._shared.transport

        def fetch() -> Awaitable[ModelMetadata]:
            spec = model.with_signature(None)
            return self._call(lambda o: transport.get_model_metadata(spec, o), spec, timeout)

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
        ``output_filter`` asks for some outputs only. ``timeout`` overrides the
        client's for this call. ``result.model`` is the model spec the server used.
        """
        spec = _model(model, version, label, signature)
        options = self._options
        transport = self._shared.transport
        started = time.monotonic()
        time_left = options.timeout if timeout is None else timeout
        single = not isinstance(inputs, Mapping)
        signature_info = None
        filter_here = bool(output_filter) and (
            options.validate or not transport.sends_output_filter
        )
        if (
            single
            or options.validate
            or options.cast
            or filter_here
            or transport.wants_signature_info
        ):
            metadata = await self._cached_metadata(spec, time_left)
            signature_info = metadata.signatures.get(signature or DEFAULT_SIGNATURE)
            if signature_info is None:
                # What gRPC Predict answers (REST would say INVALID_ARGUMENT): one error
                # class whatever the protocol.
                raise FailedPreconditionError(
                    f'Serving signature key "{signature or DEFAULT_SIGNATURE}" not found.',
                    http_status=transport.http_status_for(StatusCode.FAILED_PRECONDITION),
                    model=spec,
                )
            if time_left is not None:
                # One deadline for the whole call, the metadata fetch included.
                time_left = max(time_left - (time.monotonic() - started), 1e-3)
        named: Mapping[str, Any] = inputs
        if single:
            assert signature_info is not None
            named = name_single_input(inputs, signature_info, spec)
        if signature_info is not None and (options.validate or options.cast):
            named = check_inputs(named, signature_info, spec, cast=options.cast)
        if filter_here:
            # A transport that cannot send the filter relies on this check (the
            # server's own, done here); otherwise it is the optional validation.
            assert output_filter is not None
            check_output_filter(output_filter, signature_info, spec)
        request = PredictRequest(spec, named, tuple(output_filter or ()), signature_info)
        return await self._call(lambda o: transport.predict(request, o), spec, time_left)

    def batcher(
        self,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        max_batch_size: int = 64,
        max_delay: float = 0.002,
        timeout: float | None = None,
    ) -> MicroBatcher:
        """A :class:`~tfs_async.batching.MicroBatcher` merging concurrent predicts for ``model``.

        A batch is sent when it holds ``max_batch_size`` rows or ``max_delay``
        seconds after its first call; ``timeout`` bounds each batch call.

        >>> import asyncio
        >>> async def main() -> None:
        ...     async with Client("grpc://127.0.0.1:8500") as client:
        ...         async with client.batcher("half_plus_two", max_batch_size=32) as batcher:
        ...             print(batcher.model, batcher.max_batch_size)
        >>> asyncio.run(main())
        'half_plus_two' 32
        """
        self._check_open()

        def send(
            spec: ModelSpec, inputs: Mapping[str, Any] | Any, timeout: float | None
        ) -> Awaitable[PredictResult]:
            return self.predict(
                spec.name,
                inputs,
                version=spec.version,
                label=spec.label,
                signature=spec.signature,
                timeout=timeout,
            )

        return MicroBatcher(
            send,
            model,
            version=version,
            label=label,
            signature=signature,
            max_batch_size=max_batch_size,
            max_delay=max_delay,
            timeout=timeout,
        )

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
        return await self._call(lambda o: transport.classify(request, o), spec, timeout)

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
        return await self._call(lambda o: transport.regress(request, o), spec, timeout)

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
        return await self._call(lambda o: transport.multi_inference(request, o), spec, timeout)

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
            spec, lambda: self._call(lambda o: transport.get_model_metadata(spec, o), spec, timeout)
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
        return await self._call(lambda o: transport.get_model_status(spec, o), spec, timeout)

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
            await self._call(lambda o: transport.reload_config(proto, o), None, timeout)
        finally:
            self._shared.metadata.invalidate()
