"""The gRPC transport: TF Serving's PredictionService and ModelService over grpc.aio.

Requests are serialized by the codecs (the Predict hot path writes the wire bytes
itself), so the channel's callables pass bytes through unchanged; responses come
back as bytes and are decoded by the codecs.

Connections: ``pool_size`` channels, each with its own TCP connection (a local
subchannel pool per channel), used round-robin. Message limits are raised to
TF Serving's (2 GiB - 1). Targets may be ``host:port`` or any gRPC name
(``dns:///host:8500``, ``ipv4:127.0.0.1:1,127.0.0.1:2``); ``dns:``/``ipv4:``/
``ipv6:`` targets use the ``round_robin`` policy so every replica gets traffic,
and ``max_connection_age`` replaces a channel once it is that old, so that new
replicas behind a name are found.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
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
    ResponseDecodeError,
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
        self.target = target
        self.pool_size = pool_size
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
        finally:
            await asyncio.gather(*(c.channel.close() for c in channels))

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
        call = self._pick().method(path)
        try:
            response: bytes = await call(
                payload,
                timeout=options.timeout,
                metadata=options.metadata or None,
                compression=grpc.Compression.Gzip if options.compress else None,
            )
        except grpc.aio.AioRpcError as error:
            details = error.details() or ""
            if self._tls is not None and is_tls_failure(details):
                # Deterministic: a TLSError, not a retried UNAVAILABLE.
                raise TLSError(
                    f"TLS handshake with {self.target} failed: {details}", model=model
                ) from error
            raise error_from_grpc(error, model=model) from error
        return response

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


def _decoded(decode: Callable[[D], R], data: D, model: ModelSpec | None) -> R:
    """Run a codec over a response; anything but our own errors is a decode failure."""
    try:
        return decode(data)
    except TFServingError:
        raise
    except (DecodeError, ValueError, TypeError, KeyError) as error:
        raise ResponseDecodeError(f"could not decode the response: {error}", model=model) from error
