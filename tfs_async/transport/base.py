"""The transport interface: the one seam between the client and the wire.

The contract, for whoever implements or calls a :class:`Transport`:

What goes in
    One fully resolved call: a request from :mod:`tfs_async.types` (a model
    spec with its version or label and signature, inputs as arrays or features)
    plus :class:`CallOptions` for this one attempt (the seconds left, the call
    metadata, compression). The caller has already validated the request:
    input names, dtypes and shapes when the user asked for validation, and the
    names of a Predict ``output_filter`` whenever the transport does not send
    the filter to the server (:attr:`Transport.sends_output_filter`). When the
    transport says it needs the signature to decode a Predict answer
    (:attr:`Transport.wants_signature_info`), the request carries it as
    ``PredictRequest.signature_info``.

What comes out
    The decoded answer (numpy arrays, dataclasses of :mod:`tfs_async.types`),
    or a :class:`~tfs_async.errors.TFServingError` subclass carrying the
    canonical code, the HTTP status if the protocol has one
    (:meth:`Transport.http_status_for`), the server's message and the model
    spec. One method call is exactly one exchange with the server: no retries,
    no waiting between attempts. A call the protocol cannot carry raises
    :class:`~tfs_async.errors.UnimplementedError` before sending anything.

Who owns what
    The transport owns its connections: it opens them lazily on the first call
    (or on :meth:`Transport.connect`), binds them to the running event loop,
    and releases every one of them on :meth:`Transport.aclose`. The caller
    owns everything above one exchange: retries and their budget, the call's
    deadline across attempts, default options, the metadata cache, batching
    and validation. A transport therefore imports nothing of the client side
    (``tfs_async.client``, ``validation``, ``batching``, ``retry``); it uses the
    codecs, the types and the error hierarchy only.

``GrpcTransport`` and ``HttpTransport`` are mirror images: same methods, same
arguments, same results, same exceptions. To plug in your own (a mock, a proxy,
another protocol), subclass :class:`Transport` and implement its abstract
methods; the hooks with defaults (:meth:`~Transport.connect`,
:meth:`~Transport.http_status_for`, the capability flags) fit a transport that
connects lazily, has no HTTP statuses and carries every Predict field.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tfs_async.errors import StatusCode

if TYPE_CHECKING:
    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig
    from tfs_async.observe import Observer
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

__all__ = ["CallOptions", "Transport"]


@dataclass(frozen=True)
class CallOptions:
    """Per-attempt options.

    Attributes:
        timeout: seconds this attempt may take (the client has already taken the
            time spent by earlier attempts off it); ``None`` means no deadline.
        metadata: extra call metadata (gRPC) or headers (HTTP), e.g. auth tokens.
        compress: gzip the request body (HTTP) or use gzip call compression (gRPC).
    """

    timeout: float | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    compress: bool = False


class Transport(abc.ABC):
    """One protocol's way of carrying TF Serving calls (see the module's contract).

    Every method performs one attempt and either returns the decoded answer or
    raises a :class:`~tfs_async.errors.TFServingError` subclass carrying the
    code, the HTTP status (if any), the server's message and the model spec.
    A transport that cannot carry a call (REST has no MultiInference or
    reload) raises :class:`~tfs_async.errors.UnimplementedError` before sending.
    Transports are used from one event loop; ``aclose`` releases every
    connection and may be called more than once.
    """

    #: short protocol name used in reports and errors ("grpc", "http"); for
    #: people reading them only: callers never branch on it.
    protocol: str = "custom"

    #: True when decoding a Predict answer needs the signature: the caller then
    #: fetches the model's metadata (cached) and passes the signature as
    #: ``PredictRequest.signature_info``. REST answers omit a single output's
    #: name and every dtype, so the REST transport sets it.
    wants_signature_info: bool = False

    #: False when the protocol cannot carry Predict's ``output_filter`` (REST):
    #: the transport then picks the asked outputs out of the full answer, and the
    #: caller checks the filter's names against the signature before the call,
    #: as the server would have (unknown or repeated names: InvalidArgumentError).
    sends_output_filter: bool = True

    #: told of waits for a pooled connection (:meth:`Observer.pool_wait
    #: <tfs_async.observe.Observer.pool_wait>`); the client sets it.
    observer: Observer | None = None

    def http_status_for(self, code: StatusCode) -> int | None:
        """The HTTP status this transport's errors carry for ``code`` (``None``: no HTTP).

        Used by the caller for errors it raises itself on the transport's behalf,
        so that they look like the server's answer over this protocol.
        """
        return None

    async def connect(self, timeout: float | None = None) -> None:
        """Open the connections now rather than on the first call, and wait until ready.

        Raises :class:`~tfs_async.errors.ConnectionFailedError` when they are not
        ready within ``timeout`` seconds (``None``: no limit). The default does
        nothing: a transport without a warm-up connects on its first call.
        """
        return None

    @abc.abstractmethod
    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        """Run Predict; outputs come back as numpy arrays."""

    @abc.abstractmethod
    async def classify(self, request: ClassifyRequest, options: CallOptions) -> ClassifyResult:
        """Run Classify over tf.Examples built from the request's features."""

    @abc.abstractmethod
    async def regress(self, request: RegressRequest, options: CallOptions) -> RegressResult:
        """Run Regress over tf.Examples built from the request's features."""

    @abc.abstractmethod
    async def multi_inference(
        self, request: MultiInferenceRequest, options: CallOptions
    ) -> MultiInferenceResult:
        """Run MultiInference (several classify/regress signatures, one input)."""

    @abc.abstractmethod
    async def get_model_metadata(self, model: ModelSpec, options: CallOptions) -> ModelMetadata:
        """Fetch the model's signature defs."""

    @abc.abstractmethod
    async def get_model_status(
        self, model: ModelSpec, options: CallOptions
    ) -> list[ModelVersionStatus]:
        """Fetch the state of the model's versions, newest first."""

    @abc.abstractmethod
    async def reload_config(self, config: ModelServerConfig, options: CallOptions) -> None:
        """Send HandleReloadConfigRequest; raise if the server reports a non-OK status."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release every connection the transport opened; idempotent.

        Calls made after it raise RuntimeError.
        """
