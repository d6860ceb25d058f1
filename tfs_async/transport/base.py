"""The transport interface: the one seam between the client and the wire.

The contract, for whoever implements or calls a :class:`Transport`:

What goes in
    One fully resolved call: a request from :mod:`tfs_async.types` (a model
    spec with its version or label and signature, inputs as arrays or features)
    plus :class:`CallOptions` for this one attempt (the seconds left, the call
    metadata, compression). The caller has already validated the request:
    input names, dtypes and shapes when the user asked for validation, and the
    names of a Predict ``output_filter`` whenever the transport does not send
    the filter to the server (:attr:`Transport.sends_output_filter`) and the
    caller knows the signature. The request carries the signature as
    ``PredictRequest.signature_info`` whenever the caller has it (cached, or
    fetched because the call needed it); a transport must decode a Predict
    answer without it too (REST: names and dtypes from the JSON). When the wire
    carries dtypes (:attr:`Transport.server_types_inputs` is False), inputs
    given as plain Python values or numpy's default float64/int64 have already
    been given the signature's dtypes.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

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

__all__ = ["REST_FORMATS", "CallOptions", "RestFormat", "Transport"]

#: A REST Predict body: columnar (``{"inputs": ...}``) or rows (``{"instances": [...]}``).
RestFormat: TypeAlias = Literal["columns", "rows"]
REST_FORMATS: tuple[RestFormat, ...] = ("columns", "rows")


@dataclass(frozen=True)
class CallOptions:
    """Per-attempt options.

    Attributes:
        timeout: seconds this attempt may take (the client has already taken the
            time spent by earlier attempts off it); ``None`` means no deadline.
        metadata: extra call metadata (gRPC) or headers (HTTP), e.g. auth tokens.
        compress: gzip the request body (HTTP) or use gzip call compression (gRPC).
        wait_for_ready: the caller waits for a server when none is reachable
            (gRPC: the call's ``wait_for_ready``); a transport that cannot wait
            raises :class:`~tfs_async.errors.NotSentError` and the caller re-sends.
        rest_format: how a REST transport writes a Predict body: ``"columns"``
            (``inputs``), ``"rows"`` (``instances``, for servers that accept only
            that) or ``None`` for the transport's own default. Other transports
            ignore it.
    """

    timeout: float | None = None
    # Not in repr: values are often credentials (authorization tokens).
    metadata: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    compress: bool = False
    wait_for_ready: bool = False
    rest_format: RestFormat | None = None


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

    #: True when the wire carries no dtypes and the server gives every input its
    #: signature's dtype (REST's JSON): plain Python numbers and numpy's default
    #: float64/int64 arrays then need no client-side conversion, hence no
    #: metadata. False (gRPC's typed tensors): the caller fetches the signature
    #: (cached) and converts such inputs first, so the same input gets the same
    #: answer over every transport.
    server_types_inputs: bool = False

    #: False when the protocol cannot carry Predict's ``output_filter`` (REST):
    #: the transport then picks the asked outputs out of the full answer and
    #: raises InvalidArgumentError, as the server would have, for a name the
    #: answer lacks; the caller rejects repeated names, and unknown names too
    #: when it knows the signature.
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

    async def wait_for_server(self, timeout: float | None) -> bool:
        """Wait until a server looks reachable again, at most ``timeout`` seconds.

        Called between re-sends of a call that reached no server
        (:class:`~tfs_async.errors.NotSentError`). True: reachable now, re-send at
        once; False: the transport cannot tell (the default), the caller backs off.
        """
        return False

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
