"""The transport interface: the one seam between the client and the wire.

A transport takes a fully resolved call (a request from :mod:`tfs_async.types`,
already validated by the client) plus :class:`CallOptions` for this one attempt,
performs exactly one exchange with the server, and returns the decoded result or
raises a :class:`tfs_async.errors.TFServingError`. It knows nothing of retries,
batching, metadata caches or default options: the client owns those.

``GrpcTransport`` and ``HttpTransport`` are mirror images: same methods, same
arguments, same results, same exceptions. To plug in your own (a mock, a proxy,
another protocol), subclass :class:`Transport` and implement its methods.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfs_async._proto.model_server_config_pb2 import ModelServerConfig
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
    """One protocol's way of carrying TF Serving calls.

    Every method performs one attempt and either returns the decoded answer or
    raises a :class:`~tfs_async.errors.TFServingError` subclass carrying the
    code, the HTTP status (if any), the server's message and the model spec.
    A transport that cannot carry a call (REST has no MultiInference or
    reload) raises :class:`~tfs_async.errors.UnimplementedError` before sending.
    Transports are used from one event loop; ``aclose`` releases every
    connection and may be called more than once.
    """

    #: short protocol name used in reports and errors ("grpc", "http")
    protocol: str = "custom"

    #: True when decoding needs the signature (the client then passes it, from its
    #: cached metadata, as ``PredictRequest.signature_info``): REST answers omit a
    #: single output's name and every dtype.
    wants_signature_info: bool = False

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
        """Release every connection; idempotent."""
