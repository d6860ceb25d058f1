"""The gRPC transport: TF Serving's PredictionService and ModelService over grpc.aio.

Requests are serialized by the codecs (the Predict hot path writes the wire bytes
itself), so the channel's callables pass bytes through unchanged; responses come
back as bytes and are decoded by the codecs.

Connections: ``pool_size`` channels, each with its own TCP connection (a local
subchannel pool per channel), used round-robin. Message limits are raised to
TF Serving's (2 GiB - 1); a request over the limit fails before it is sent, and
both directions raise :class:`~tfs_async.errors.MessageTooLargeError` (never
retried). Reconnection after a server restart is fast: the channel's reconnect
backoff starts at 100 ms and is capped at 1 s (gRPC's defaults: 1 s growing to
120 s), jittered by gRPC. A call that reached no server (no ready subchannel:
refused, unreachable, not resolved) raises :class:`~tfs_async.errors.NotSentError`
at once, and :meth:`GrpcTransport.wait_for_server` waits for the channels to be
ready again: the caller's wait-for-ready is built on the two, so that a TLS
failure (which gRPC's own ``wait_for_ready`` would wait on until the deadline)
still fails at once as :class:`~tfs_async.errors.ConnectionFailedError`. A server's
``grpc-retry-pushback-ms`` trailer is kept on the error as ``retry_after``.
Targets may be ``host:port`` or any gRPC name
(``dns:///host:8500``, ``ipv4:127.0.0.1:1,127.0.0.1:2``); ``dns:``/``ipv4:``/
``ipv6:`` targets use the ``round_robin`` policy so every replica gets traffic,
and ``max_connection_age`` replaces a channel once it is that old, so that new
replicas behind a name are found.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import DecodeError, Message

from tfs_async import _grpc_methods
from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_server_config_pb2,
    regression_pb2,
)
from tfs_async.codec import messages
from tfs_async.codec.predict_wire import decode_predict_response, encode_predict_request
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    MessageTooLargeError,
    NotSentError,
    ResponseDecodeError,
    StatusCode,
    TFServingError,
    TLSError,
    error_for_code,
    error_from_grpc,
    is_tls_failure,
)
from tfs_async.transport.base import CallOptions, Transport
from tfs_async.transport.tls import TLSConfig
from tfs_async.types import (
    ClassifyRequest,
    ClassifyResult,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    PredictRequest,
    PredictResult,
    RegressRequest,
    RegressResult,
)

__all__ = ["GrpcTransport"]

M = TypeVar("M", bound=Message)
D = TypeVar("D")
R = TypeVar("R")

MAX_MESSAGE_LENGTH = 2**31 - 1
#: channel reconnect backoff (gRPC's defaults: 1 s initial, 120 s max)
INITIAL_RECONNECT_BACKOFF_MS = 100
MAX_RECONNECT_BACKOFF_MS = 1_000
# UNAVAILABLE raised by the channel before a stream to a server existed: nothing was sent.
_NOT_SENT = re.compile(
    r"failed to connect|connection refused|connect failed|dns resolution|name resolution|"
    r"failed to resolve|no address|empty address list|unreachable|no route to host",
    re.IGNORECASE,
)
# Failures that say no server listens (as opposed to one closing the connection).
_NO_LISTENER = re.compile(
    r"connection refused|dns resolution|name resolution|failed to resolve|no address|"
    r"empty address list|unreachable|no route to host",
    re.IGNORECASE,
)
# ... unless the connection failed in its TLS handshake: not an outage to wait out.
_TOO_LARGE = re.compile(r"(sent|received) message larger than max \((\d+) vs\. (\d+)\)", re.I)
_LOAD_BALANCED_PREFIXES = ("dns:", "ipv4:", "ipv6:")


class _Channel:
    """One pooled channel, its cached method callables and its birth time."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.created = time.monotonic()
        self.methods: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}

    def method(self, path: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        call = self.methods.get(path)
        if call is None:
            # No serializers: requests are bytes already, responses stay bytes.
            call = self.channel.unary_unary(path)
            self.methods[path] = call
        return call


class GrpcTransport(Transport):
    """TF Serving over gRPC (grpc.aio), with a pool of channels.

    Args:
        target: ``host:port`` or a gRPC target name (``dns:///h:8500``, ``ipv4:a:p,b:p``).
        pool_size: channels (TCP connections) to spread requests over.
        tls: TLS settings; ``None`` for a plaintext channel unless ``secure``.
        secure: use TLS with the system's roots when ``tls`` is ``None``.
        max_message_length: send and receive limit in bytes (TF Serving: 2 GiB - 1).
        keepalive_time_ms: ping an idle connection with calls in flight this often.
        max_connection_age: seconds after which a channel is replaced (``None``: never).
        channel_options: extra ``grpc`` channel arguments, applied last.
    """

    protocol = "grpc"

    def __init__(
        self,
        target: str,
        *,
        pool_size: int = 1,
        tls: TLSConfig | None = None,
        secure: bool = False,
        max_message_length: int = MAX_MESSAGE_LENGTH,
        keepalive_time_ms: int = 60_000,
        max_connection_age: float | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        if not target:
            raise ValueError("empty gRPC target")
        if not 1 <= max_message_length <= MAX_MESSAGE_LENGTH:
            raise ValueError(
                f"max_message_length must be within [1, {MAX_MESSAGE_LENGTH}], "
                f"got {max_message_length}"
            )
        self.target = target
        self.pool_size = pool_size
        self.max_message_length = max_message_length
        self.max_connection_age = max_connection_age
        self._tls = tls if tls is not None else (TLSConfig() if secure else None)
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", max_message_length),
            ("grpc.max_send_message_length", max_message_length),
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.keepalive_time_ms", keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", 20_000),
            # Retries are the client's job, with its own budget and deadline.
            ("grpc.enable_retries", 0),
            # Find a restarted server within about a second, not gRPC's default minutes.
            ("grpc.initial_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
            ("grpc.min_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
            ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ]
        if target.startswith(_LOAD_BALANCED_PREFIXES):
            options.append(("grpc.lb_policy_name", "round_robin"))
        if self._tls is not None and self._tls.server_name:
            options.append(("grpc.ssl_target_name_override", self._tls.server_name))
        options.extend(channel_options)
        self._options = tuple(options)
        self._credentials: grpc.ChannelCredentials | None = None
        self._channels: list[_Channel] = []
        self._next = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._guard: asyncio.Task[None] | None = None
        self._pid = os.getpid()
        self._closed = False
        # The channels a finished event loop's guard closed (see _close_when_loop_ends).
        self._released: list[_Channel] | None = None

    # -- connections -------------------------------------------------------------

    def _new_channel(self) -> _Channel:
        if self._tls is None:
            return _Channel(grpc.aio.insecure_channel(self.target, options=self._options))
        if self._credentials is None:
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=self._tls.ca_pem(),
                private_key=self._tls.client_key_pem(),
                certificate_chain=self._tls.client_cert_pem(),
            )
        return _Channel(
            grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
        )

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        forked = self._pid != os.getpid()
        if self._loop is not None and not self._loop.is_closed() and not forked:
            raise RuntimeError(
                "this gRPC transport is in use by another running event loop; "
                "create one client per event loop"
            )
        # First use, the loop that owned the channels is gone (e.g. a second
        # asyncio.run), or this is a forked child whose channels are the parent's:
        # start afresh.
        self._channels = [self._new_channel() for _ in range(self.pool_size)]
        self._retiring = set()
        self._loop = loop
        self._pid = os.getpid()
        self._guard = loop.create_task(self._close_when_loop_ends())
        # asyncio's own flag: this guard may be destroyed pending with its loop, quietly.
        self._guard._log_destroy_pending = False  # type: ignore[attr-defined]

    def __del__(self) -> None:
        # A client dropped without close(): warn once (gRPC releases its channels itself).
        channels = getattr(self, "_channels", None)  # None: not fully built
        if not channels or self._closed or channels is self._released:
            return
        warnings.warn(
            f"a tfs_async Client (gRPC, {self.target}) was never closed: use "
            "`async with Client(...) as client:` or `await client.close()`",
            ResourceWarning,
            stacklevel=1,
        )

    def _pick(self) -> _Channel:
        if self._closed:
            raise RuntimeError("the gRPC transport is closed")
        if self._loop is not asyncio.get_running_loop():
            self._bind_loop()
        index = next(self._next) % self.pool_size
        chosen = self._channels[index]
        if (
            self.max_connection_age is not None
            and time.monotonic() - chosen.created > self.max_connection_age
        ):
            chosen = self._replace(index)
        return chosen

    def _replace(self, index: int) -> _Channel:
        old = self._channels[index]
        fresh = self._new_channel()
        self._channels[index] = fresh
        # Calls already on the old channel may finish; it closes once they did.
        task = asyncio.get_running_loop().create_task(old.channel.close(grace=30.0))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return fresh

    async def _close_when_loop_ends(self) -> None:
        """Wait until cancelled, then close the channels of this loop.

        ``asyncio.run`` cancels the tasks left when its coroutine ends: a client
        still open then (used across several ``asyncio.run`` calls) closes its
        channels inside the loop that owns them instead of leaking them.
        """
        channels = self._channels
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            # Not a ``finally``: a guard garbage-collected with its loop must not await.
            await asyncio.gather(*(c.channel.close() for c in channels))
            self._released = channels
            raise

    async def connect(self, timeout: float | None = None) -> None:
        """Open every pooled connection now and wait until all are ready.

        Raises ConnectionFailedError when they are not ready within ``timeout``.
        """
        self._pick()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.channel.channel_ready() for c in self._channels)), timeout
            )
        except asyncio.TimeoutError:
            raise ConnectionFailedError(
                f"could not connect to {self.target} within {timeout} s"
            ) from None

    async def wait_for_server(self, timeout: float | None) -> bool:
        """Wait until every pooled channel is READY again, at most ``timeout`` seconds.

        gRPC reconnects by itself (backoff from 100 ms, capped at 1 s); this only
        waits for it, so every caller waiting on a restarted server re-sends as
        soon as the channel is back.
        """
        if self._closed or self._loop is not asyncio.get_running_loop():
            return False
        channels = list(self._channels)
        ready = asyncio.ensure_future(
            asyncio.gather(*(c.channel.channel_ready() for c in channels))
        )
        done, _ = await asyncio.wait({ready}, timeout=timeout)
        if not done:
            # Not ready in time. Cancel without waiting for gRPC to acknowledge it (its
            # poller thread may take tens of milliseconds): the caller's deadline is now.
            ready.cancel()
            ready.add_done_callback(_retrieve)
            return False
        try:
            ready.result()
        except (grpc.RpcError, RuntimeError, asyncio.CancelledError):
            return False  # the channels closed meanwhile
        return True

    async def aclose(self) -> None:
        """Close every channel (pending calls are cancelled); idempotent."""
        if self._closed:
            return
        self._closed = True
        channels, self._channels = self._channels, []
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if loop is asyncio.get_running_loop():
            await asyncio.gather(*(c.channel.close() for c in channels))
            tasks = [*self._retiring, *([self._guard] if self._guard is not None else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the calls ---------------------------------------------------------------

    async def _unary(
        self, path: str, payload: bytes, options: CallOptions, model: ModelSpec | None
    ) -> bytes:
        if len(payload) > self.max_message_length:
            raise MessageTooLargeError(
                f"the request is {len(payload)} bytes, over the gRPC message limit of "
                f"{self.max_message_length} bytes; nothing was sent (raise it with "
                "Client(max_message_size=...); TF Serving receives up to 2 GiB - 1)",
                size=len(payload),
                limit=self.max_message_length,
                model=model,
            )
        method = self._pick().method(path)
        call = method(
            payload,
            timeout=options.timeout,
            metadata=options.metadata or None,
            compression=grpc.Compression.Gzip if options.compress else None,
        )
        # gRPC enforces the deadline in its core, but reports it through its poller
        # thread, which a busy process can delay by tens of milliseconds: the event
        # loop's own timer ends the call at its deadline too.
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            call.cancel()

        timer = (
            asyncio.get_running_loop().call_later(options.timeout, expire)
            if options.timeout is not None
            else None
        )
        try:
            response: bytes = await call
        except grpc.aio.AioRpcError as error:
            raise self._error(error, model) from error
        except asyncio.CancelledError:
            if not expired:
                raise
            raise DeadlineExceededError(
                f"{self.target}: no answer within {options.timeout:.3g} s", model=model
            ) from None
        finally:
            if timer is not None:
                timer.cancel()
        return response

    def _not_sent(self, details: str) -> bool:
        """Whether an UNAVAILABLE says no connection existed: nothing reached a server."""
        if not _NOT_SENT.search(details) or is_tls_failure(details):
            return False
        # Over TLS, a connection closed while being set up is most likely the
        # handshake being refused (e.g. no client certificate): not an outage.
        return self._tls is None or bool(_NO_LISTENER.search(details))

    def _error(self, error: grpc.aio.AioRpcError, model: ModelSpec | None) -> TFServingError:
        """The typed error for a failed call: not sent, too large, or the server's own."""
        code = error.code()
        details = error.details() or ""
        if self._tls is not None and is_tls_failure(details):
            # Deterministic: a TLSError, neither waited out nor retried as UNAVAILABLE.
            return TLSError(f"TLS handshake with {self.target} failed: {details}", model=model)
        if code == grpc.StatusCode.UNAVAILABLE and self._not_sent(details):
            return NotSentError(f"{self.target}: {details}", model=model)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            too_large = _TOO_LARGE.search(details)
            if too_large is not None:
                direction = "response" if too_large.group(1).lower() == "received" else "request"
                return MessageTooLargeError(
                    f"the {direction} is {too_large.group(2)} bytes, over the gRPC message "
                    f"limit of {too_large.group(3)} bytes (raise it with "
                    "Client(max_message_size=...)): " + details,
                    size=int(too_large.group(2)),
                    limit=int(too_large.group(3)),
                    code=StatusCode.RESOURCE_EXHAUSTED,
                    model=model,
                )
        typed = error_from_grpc(error, model=model)
        typed.retry_after = _pushback(error)
        return typed

    @staticmethod
    def _parse(cls: type[M], data: bytes, model: ModelSpec | None) -> M:
        try:
            return cls.FromString(data)
        except DecodeError as error:
            raise ResponseDecodeError(
                f"could not decode {cls.__name__}: {error}", model=model
            ) from error

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        """Run Predict; the request bytes are written by the codec's fast path."""
        payload = encode_predict_request(request.model, request.inputs, request.output_filter)
        data = await self._unary(_grpc_methods.PREDICT, payload, options, request.model)
        return _decoded(decode_predict_response, data, request.model)

    async def classify(self, request: ClassifyRequest, options: CallOptions) -> ClassifyResult:
        """Run Classify over tf.Examples built from the request's features."""
        proto = messages.classify_request_to_proto(request)
        data = await self._unary(
            _grpc_methods.CLASSIFY, proto.SerializeToString(), options, request.model
        )
        response = self._parse(classification_pb2.ClassificationResponse, data, request.model)
        return messages.classify_result_from_proto(response)

    async def regress(self, request: RegressRequest, options: CallOptions) -> RegressResult:
        """Run Regress over tf.Examples built from the request's features."""
        proto = messages.regress_request_to_proto(request)
        data = await self._unary(
            _grpc_methods.REGRESS, proto.SerializeToString(), options, request.model
        )
        response = self._parse(regression_pb2.RegressionResponse, data, request.model)
        return messages.regress_result_from_proto(response)

    async def multi_inference(
        self, request: MultiInferenceRequest, options: CallOptions
    ) -> MultiInferenceResult:
        """Run MultiInference: several classify/regress signatures over the same examples."""
        model = request.tasks[0].model if request.tasks else None
        proto = messages.multi_inference_request_to_proto(request)
        data = await self._unary(
            _grpc_methods.MULTI_INFERENCE, proto.SerializeToString(), options, model
        )
        response = self._parse(inference_pb2.MultiInferenceResponse, data, model)
        return messages.multi_inference_result_from_proto(response)

    async def get_model_metadata(self, model: ModelSpec, options: CallOptions) -> ModelMetadata:
        """Fetch the model's signature defs (metadata_field ``signature_def``)."""
        proto = messages.metadata_request_to_proto(model)
        data = await self._unary(
            _grpc_methods.GET_MODEL_METADATA, proto.SerializeToString(), options, model
        )
        response = self._parse(get_model_metadata_pb2.GetModelMetadataResponse, data, model)
        return _decoded(messages.metadata_from_proto, response, model)

    async def get_model_status(
        self, model: ModelSpec, options: CallOptions
    ) -> list[ModelVersionStatus]:
        """Fetch the state of the model's versions, newest first."""
        proto = messages.status_request_to_proto(model)
        data = await self._unary(
            _grpc_methods.GET_MODEL_STATUS, proto.SerializeToString(), options, model
        )
        response = self._parse(get_model_status_pb2.GetModelStatusResponse, data, model)
        statuses = messages.status_from_proto(response)
        return sorted(statuses, key=lambda s: s.version, reverse=True)

    async def reload_config(
        self, config: model_server_config_pb2.ModelServerConfig, options: CallOptions
    ) -> None:
        """Send HandleReloadConfigRequest; raise if the server reports a non-OK status."""
        proto = model_management_pb2.ReloadConfigRequest(config=config)
        data = await self._unary(
            _grpc_methods.HANDLE_RELOAD_CONFIG, proto.SerializeToString(), options, None
        )
        response = self._parse(model_management_pb2.ReloadConfigResponse, data, None)
        if response.status.error_code != 0:
            raise error_for_code(response.status.error_code, response.status.error_message)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a cancelled helper's outcome as seen (no "exception never retrieved" log)."""
    if not future.cancelled():
        future.exception()


def _pushback(error: grpc.aio.AioRpcError) -> float | None:
    """``grpc-retry-pushback-ms`` from the trailers, in seconds (gRPC's retry design, A6)."""
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # a channel-side error may have no trailers at all
        return None
    for key, value in trailers:
        if key == "grpc-retry-pushback-ms":
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            try:
                millis = int(text.strip())
            except ValueError:
                return None
            return millis / 1000.0
    return None


def _decoded(decode: Callable[[D], R], data: D, model: ModelSpec | None) -> R:
    """Run a codec over a response; anything but our own errors is a decode failure."""
    try:
        return decode(data)
    except TFServingError:
        raise
    except (DecodeError, ValueError, TypeError, KeyError) as error:
        raise ResponseDecodeError(f"could not decode the response: {error}", model=model) from error
